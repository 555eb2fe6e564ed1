//! `put`: one PutObject for a body that fits in one part, else a multipart upload.
//!
//! The body is read a part at a time (`max_part_size` bytes). A body that ends within the
//! first part goes out as one PutObject with its Content-Length. A longer one becomes a
//! multipart upload with at most `min(upload_concurrency, 4)` parts in flight; the next part is
//! read only once a slot is free, so one upload holds at most that many part buffers:
//! **memory ≤ min(upload_concurrency, 4) × max_part_size** (80 MiB with the 20 MiB default).
//! Every attempt of a part resends the same buffered bytes. On any failure the upload is
//! aborted (best effort, bounded). `put` returns only after the 200 of PutObject or
//! CompleteMultipartUpload: only then is the object durable.
//!
//! Every upload carries a CRC32C that walg computes itself (see `checksum`), sent as a plain
//! header, so S3 rejects bytes damaged on the way: a PutObject carries the object's CRC32C;
//! a multipart upload is created as a full-object CRC32C upload, each part carries its own
//! CRC32C, and CompleteMultipartUpload carries the CRC32C of the whole object, which S3 checks
//! against the parts and stores, so a download can verify it (see `download`).

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
    StorageClass,
};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinSet;

use super::Inner;
use super::checksum::{Crc32c, crc32c_of};
use super::client::transfer_allowance;
use super::retry::{self, RetryPolicy};
use crate::storage::{BoxReader, Key, StorageError, read_error};

/// S3 allows at most this many parts in one upload.
const MAX_PARTS: i32 = 10_000;

/// Stores `body` at `key`.
pub(super) async fn put(
    inner: &Arc<Inner>,
    key: &Key,
    mut body: BoxReader,
    size_hint: Option<u64>,
) -> Result<(), StorageError> {
    let object = inner.object_key(key);
    let shown = key.as_str();
    let first = read_part(&mut body, None, inner.part_size, size_hint, shown).await?;
    let Some(carry) = first.next_byte else {
        return inner.put_single(&object, shown, first.bytes).await;
    };
    let upload_id = inner.create_multipart(&object, shown).await?;
    let parts = upload_parts(inner, &object, shown, &upload_id, first.bytes, carry, body).await;
    let result = match parts {
        Ok((parts, whole)) => {
            inner
                .complete_multipart(&object, shown, &upload_id, parts, &whole)
                .await
        }
        Err(e) => Err(e),
    };
    if result.is_err() {
        inner.abort_multipart(&object, shown, &upload_id).await;
    }
    result
}

/// One part read from the body, and the byte after it if the body goes on.
struct Part {
    bytes: Bytes,
    next_byte: Option<u8>,
}

/// Reads up to `limit` bytes (starting with `carry`), then one byte more to learn whether the
/// body goes on. The buffer is sized from `size_hint` when that is smaller than `limit`.
async fn read_part(
    body: &mut BoxReader,
    carry: Option<u8>,
    limit: usize,
    size_hint: Option<u64>,
    key: &str,
) -> Result<Part, StorageError> {
    let capacity = size_hint
        .and_then(|h| usize::try_from(h.saturating_add(1)).ok())
        .map_or(limit, |h| h.min(limit));
    let mut buf = BytesMut::with_capacity(capacity);
    if let Some(byte) = carry {
        buf.extend_from_slice(&[byte]);
    }
    while buf.len() < limit {
        let want = u64::try_from(limit - buf.len()).unwrap_or(u64::MAX);
        let n = read_retrying(&mut (&mut *body).take(want), &mut buf)
            .await
            .map_err(|e| read_error(key, e))?;
        if n == 0 {
            return Ok(Part {
                bytes: buf.freeze(),
                next_byte: None,
            });
        }
    }
    let mut one = [0u8; 1];
    let more = loop {
        match body.read(&mut one).await {
            Ok(0) => break None,
            Ok(_) => break Some(one[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(key, e)),
        }
    };
    Ok(Part {
        bytes: buf.freeze(),
        next_byte: more,
    })
}

/// `read_buf`, repeated on `Interrupted`.
async fn read_retrying<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    loop {
        match reader.read_buf(buf).await {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Uploads every part, `first` included, with at most `parts_in_flight` at once. Returns the
/// parts and the CRC32C of the whole body.
async fn upload_parts(
    inner: &Arc<Inner>,
    object: &str,
    shown: &str,
    upload_id: &str,
    first: Bytes,
    carry: u8,
    mut body: BoxReader,
) -> Result<(Vec<CompletedPart>, String), StorageError> {
    let mut whole = Crc32c::new();
    let mut in_flight: JoinSet<Result<CompletedPart, StorageError>> = JoinSet::new();
    let mut done = Vec::new();
    let mut pending = Some(first);
    let mut carry = Some(carry);
    let mut number: i32 = 0;
    loop {
        // Stop early when a part has failed.
        while let Some(finished) = in_flight.try_join_next() {
            done.push(joined(Some(finished), shown)?);
        }
        // Free a slot before reading the next part: this is what bounds memory.
        while in_flight.len() >= inner.parts_in_flight {
            done.push(joined(in_flight.join_next().await, shown)?);
        }
        let bytes = match pending.take() {
            Some(bytes) => bytes,
            None => {
                let Some(byte) = carry.take() else { break };
                let part = read_part(&mut body, Some(byte), inner.part_size, None, shown).await?;
                carry = part.next_byte;
                part.bytes
            }
        };
        whole.update(&bytes);
        number += 1;
        if number > MAX_PARTS {
            return Err(StorageError::Refused {
                op: "put",
                key: shown.to_string(),
                message: format!(
                    "the body needs more than {MAX_PARTS} parts of {} bytes; raise S3_MAX_PART_SIZE",
                    inner.part_size
                ),
            });
        }
        let task = Arc::clone(inner);
        let (object, shown, upload_id) =
            (object.to_string(), shown.to_string(), upload_id.to_string());
        in_flight.spawn(async move {
            task.upload_part(&object, &shown, &upload_id, number, bytes)
                .await
        });
    }
    while !in_flight.is_empty() {
        done.push(joined(in_flight.join_next().await, shown)?);
    }
    done.sort_by_key(|p| p.part_number());
    Ok((done, whole.header()))
}

/// The outcome of one finished part upload.
fn joined(
    finished: Option<Result<Result<CompletedPart, StorageError>, tokio::task::JoinError>>,
    shown: &str,
) -> Result<CompletedPart, StorageError> {
    match finished {
        Some(Ok(result)) => result,
        Some(Err(e)) => Err(StorageError::Io {
            op: "uploading a part of",
            path: shown.to_string(),
            source: std::io::Error::other(e.to_string()),
        }),
        None => Err(StorageError::Io {
            op: "uploading a part of",
            path: shown.to_string(),
            source: std::io::Error::other("no part upload was running"),
        }),
    }
}

impl Inner {
    fn storage_class(&self) -> Option<StorageClass> {
        let class = self.storage_class.trim();
        (!class.is_empty()).then(|| StorageClass::from(class))
    }

    fn sse(&self) -> Option<ServerSideEncryption> {
        self.sse.as_deref().map(ServerSideEncryption::from)
    }

    /// The KMS key id, sent only with `aws:kms` encryption (the only mode it applies to).
    fn kms_key_id(&self) -> Option<String> {
        self.sse_kms_id
            .clone()
            .filter(|_| self.sse.as_deref() == Some("aws:kms"))
    }

    async fn put_single(
        &self,
        object: &str,
        shown: &str,
        bytes: Bytes,
    ) -> Result<(), StorageError> {
        let deadline = self.request_timeout + transfer_allowance(bytes.len());
        let length = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let crc = crc32c_of(&bytes);
        retry::run(&self.retry, "put", shown, deadline, || async {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(object)
                .content_length(length)
                .checksum_crc32_c(&crc)
                .body(ByteStream::from(bytes.clone()))
                .set_storage_class(self.storage_class())
                .set_server_side_encryption(self.sse())
                .set_ssekms_key_id(self.kms_key_id())
                .send()
                .await
                .map_err(|e| self.classify("put", shown, &e))
        })
        .await
        .map(|_| ())
    }

    async fn create_multipart(&self, object: &str, shown: &str) -> Result<String, StorageError> {
        let out = retry::run(&self.retry, "put", shown, self.request_timeout, || async {
            self.client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(object)
                .checksum_algorithm(ChecksumAlgorithm::Crc32C)
                .checksum_type(ChecksumType::FullObject)
                .set_storage_class(self.storage_class())
                .set_server_side_encryption(self.sse())
                .set_ssekms_key_id(self.kms_key_id())
                .send()
                .await
                .map_err(|e| self.classify("put", shown, &e))
        })
        .await?;
        out.upload_id()
            .map(str::to_string)
            .ok_or_else(|| StorageError::Refused {
                op: "put",
                key: shown.to_string(),
                message: "s3 answered CreateMultipartUpload without an upload id".into(),
            })
    }

    async fn upload_part(
        &self,
        object: &str,
        shown: &str,
        upload_id: &str,
        number: i32,
        bytes: Bytes,
    ) -> Result<CompletedPart, StorageError> {
        let deadline = self.request_timeout + transfer_allowance(bytes.len());
        let length = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let crc = crc32c_of(&bytes);
        let out = retry::run(&self.retry, "put", shown, deadline, || async {
            self.client
                .upload_part()
                .bucket(&self.bucket)
                .key(object)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(length)
                .checksum_crc32_c(&crc)
                .body(ByteStream::from(bytes.clone()))
                .send()
                .await
                .map_err(|e| self.classify("put", shown, &e))
        })
        .await?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag().map(str::to_string))
            .checksum_crc32_c(crc)
            .build())
    }

    async fn complete_multipart(
        &self,
        object: &str,
        shown: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        whole: &str,
    ) -> Result<(), StorageError> {
        let upload = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        // S3 may take a while to assemble a large object; give it more than a plain request.
        let deadline = self.request_timeout * 3;
        retry::run(&self.retry, "put", shown, deadline, || async {
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(object)
                .upload_id(upload_id)
                .multipart_upload(upload.clone())
                .checksum_crc32_c(whole)
                .checksum_type(ChecksumType::FullObject)
                .send()
                .await
                .map_err(|e| self.classify("put", shown, &e))
        })
        .await
        .map(|_| ())
    }

    /// Best effort: at most two attempts; a failure is logged (the parts of an upload that was
    /// never completed are not an object, and bucket lifecycle rules can clean them up).
    async fn abort_multipart(&self, object: &str, shown: &str, upload_id: &str) {
        let policy = RetryPolicy::new(self.retry.max_retries.min(1));
        let result = retry::run(
            &policy,
            "abort upload",
            shown,
            self.request_timeout,
            || async {
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(object)
                    .upload_id(upload_id)
                    .send()
                    .await
                    .map_err(|e| self.classify("abort upload", shown, &e))
            },
        )
        .await;
        if let Err(e) = result {
            tracing::warn!(key = shown, error = %e, "could not abort an unfinished multipart upload");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(data: &'static [u8]) -> BoxReader {
        Box::new(std::io::Cursor::new(data))
    }

    #[tokio::test]
    async fn parts_split_and_carry_one_byte() {
        let mut body = reader(b"abcdefg");
        let first = read_part(&mut body, None, 3, None, "k")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (&first.bytes[..], first.next_byte),
            (&b"abc"[..], Some(b'd'))
        );
        let second = read_part(&mut body, first.next_byte, 3, None, "k")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (&second.bytes[..], second.next_byte),
            (&b"def"[..], Some(b'g'))
        );
        let third = read_part(&mut body, second.next_byte, 3, None, "k")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((&third.bytes[..], third.next_byte), (&b"g"[..], None));
    }

    #[tokio::test]
    async fn an_exact_part_is_the_whole_body() {
        let mut body = reader(b"abc");
        let only = read_part(&mut body, None, 3, Some(3), "k")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((&only.bytes[..], only.next_byte), (&b"abc"[..], None));
        let mut empty = reader(b"");
        let none = read_part(&mut empty, None, 3, Some(0), "k")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(none.bytes.is_empty() && none.next_byte.is_none());
    }
}
