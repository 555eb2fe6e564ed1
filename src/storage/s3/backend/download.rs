//! `get`: a streamed GetObject that survives a broken body and checks what it delivers.
//!
//! The request (up to the response headers) is retried like any other. The body is then
//! streamed, never buffered whole. Each response body is watched: one that yields no bytes for
//! `request_timeout`, breaks off, or ends short of (or runs past) its Content-Length fails
//! (WAL-G compat, format §1.6). Such a break is not the end: the download resumes from the byte
//! reached with a ranged GET (`Range: bytes=N-`, `If-Match: <etag>`), at most
//! `download_retries` times per object, each resume after a jittered backoff and itself
//! retried like any request. A resumed answer must carry the first answer's ETag and the
//! expected Content-Range (a server that ignores the range and sends the whole object again is
//! read past the bytes already delivered); anything else is [`StorageError::Corrupt`], never a
//! splice of two objects.
//!
//! The first request asks for the stored checksum (`x-amz-checksum-mode: ENABLED`). When the
//! answer carries a whole-object CRC32C, the CRC32C of every delivered byte, across resumes, is
//! compared with it when the last byte arrives: a mismatch fails that read with
//! [`StorageError::Corrupt`] instead of delivering the last chunk. Objects stored without a
//! checksum (WAL-G writes none) or with a composite multipart one are read without this check.
//!
//! The errors travel through the reader as `io::Error`s made by [`into_io`], so
//! [`crate::storage::read_error`] recovers them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::time::{Instant, Sleep};
use tokio_util::io::StreamReader;

use super::Inner;
use super::checksum::{self, Crc32c};
use super::retry::{self, Failure, RetryPolicy, chain_text, seconds};
use crate::storage::{BoxReader, Key, StorageError, into_io, read_error};

/// Streams the object at `key`.
pub(super) async fn get(inner: &Arc<Inner>, key: &Key) -> Result<BoxReader, StorageError> {
    let object = inner.object_key(key);
    let shown = key.as_str().to_string();
    let out = request(inner, &object, &shown, None).await?;
    let total = out.content_length().and_then(|l| u64::try_from(l).ok());
    let download = Download {
        inner: Arc::clone(inner),
        object,
        etag: out.e_tag().map(str::to_string),
        expected_crc: checksum::full_object(out.checksum_crc32_c(), out.checksum_type()),
        total,
        delivered: 0,
        skip: 0,
        crc: Crc32c::new(),
        resumes: 0,
        body: Some(WatchedBody::new(
            out.body,
            total,
            inner.request_timeout,
            shown.clone(),
        )),
        key: shown,
    };
    let stream = futures::stream::unfold(download, Download::next);
    Ok(Box::new(StreamReader::new(Box::pin(stream))))
}

/// One GetObject with its retries: the whole object, or from byte `from.0` of the object
/// whose ETag is `from.1`.
async fn request(
    inner: &Inner,
    object: &str,
    shown: &str,
    from: Option<(u64, &str)>,
) -> Result<GetObjectOutput, StorageError> {
    retry::run(
        &inner.retry,
        "get",
        shown,
        inner.request_timeout,
        || async {
            let mut get = inner.client.get_object().bucket(&inner.bucket).key(object);
            if let Some((offset, etag)) = from {
                get = get.range(format!("bytes={offset}-")).if_match(etag);
            }
            get.customize()
                .mutate_request(|req| {
                    req.headers_mut().insert("x-amz-checksum-mode", "ENABLED");
                })
                .send()
                .await
                .map_err(|e| {
                    let status = match &e {
                        SdkError::ServiceError(service) => service.raw().status().as_u16(),
                        _ => 0,
                    };
                    match status {
                        412 if from.is_some() => {
                            Failure::Fatal(changed(shown, "its ETag no longer matches"))
                        }
                        416 if from.is_some() => Failure::Fatal(changed(
                            shown,
                            "it is now shorter than the byte reached",
                        )),
                        _ => inner.classify("get", shown, &e),
                    }
                })
        },
    )
    .await
}

fn changed(key: &str, why: &str) -> StorageError {
    StorageError::Corrupt {
        key: key.to_string(),
        message: format!("the object changed while it was read ({why})"),
    }
}

/// The state of one download across its resumes.
struct Download {
    inner: Arc<Inner>,
    object: String,
    key: String,
    /// The ETag of the first answer; without one, a broken body cannot be resumed safely.
    etag: Option<String>,
    /// The whole-object CRC32C stored with the object, if any.
    expected_crc: Option<String>,
    /// The object's size, from the first answer.
    total: Option<u64>,
    /// Bytes handed to the reader so far.
    delivered: u64,
    /// Bytes of the current answer to drop: it restarted from byte 0 instead of resuming.
    skip: u64,
    crc: Crc32c,
    /// Resumes made so far.
    resumes: u32,
    /// The body being read; `None` once the download is over.
    body: Option<WatchedBody>,
}

impl Download {
    /// The next chunk for the reader, or the end; used with `stream::unfold`.
    async fn next(mut self) -> Option<(std::io::Result<Bytes>, Download)> {
        loop {
            let body = self.body.as_mut()?;
            let step = match body.next().await {
                Some(Ok(chunk)) => self.deliver(chunk),
                Some(Err(broken)) => {
                    let broken = read_error(&self.key, broken);
                    self.resume(broken).await.err().map(Err)
                }
                None => self.finish().err().map(Err),
            };
            match step {
                Some(Ok(chunk)) => return Some((Ok(chunk), self)),
                Some(Err(e)) => {
                    self.body = None;
                    return Some((Err(into_io(e)), self));
                }
                None => continue,
            }
        }
    }

    /// The part of `chunk` to pass on (after any bytes to skip), checking the checksum when
    /// the last byte of the object arrives. `None`: nothing to pass on.
    fn deliver(&mut self, mut chunk: Bytes) -> Option<Result<Bytes, StorageError>> {
        if self.skip > 0 {
            let drop = usize::try_from(self.skip)
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            let _ = chunk.split_to(drop);
            self.skip -= drop as u64;
        }
        if chunk.is_empty() {
            return None;
        }
        self.crc.update(&chunk);
        self.delivered += chunk.len() as u64;
        if Some(self.delivered) == self.total
            && let Err(e) = self.verify()
        {
            return Some(Err(e));
        }
        Some(Ok(chunk))
    }

    /// The current answer ended where its length said. The object must be complete.
    fn finish(&mut self) -> Result<(), StorageError> {
        self.body = None;
        match self.total {
            Some(total) if self.delivered != total => Err(StorageError::Unavailable {
                op: "get",
                key: self.key.clone(),
                message: format!("body ended after {} of {total} bytes", self.delivered),
            }),
            // Checked with the last byte already.
            Some(total) if total > 0 => Ok(()),
            // An empty object (no chunk came to check it with), or one of unknown size.
            _ => self.verify(),
        }
    }

    /// Compares the CRC32C of the delivered bytes with the stored one, if there is one.
    fn verify(&self) -> Result<(), StorageError> {
        match &self.expected_crc {
            Some(expected) if *expected != self.crc.header() => Err(StorageError::Corrupt {
                key: self.key.clone(),
                message: format!(
                    "its bytes do not match the CRC32C stored with it ({expected}, read {})",
                    self.crc.header()
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Replaces a broken body by a ranged GET from the byte reached, within the budget.
    async fn resume(&mut self, broken: StorageError) -> Result<(), StorageError> {
        self.body = None;
        let (Some(total), Some(etag)) = (self.total, self.etag.clone()) else {
            return Err(broken);
        };
        if self.delivered == total {
            // Every byte is here (and checked); only the end of the answer was lost.
            return Ok(());
        }
        let budget = self.inner.download_retries;
        if self.resumes >= budget {
            return Err(match broken {
                StorageError::Unavailable { op, key, message } => StorageError::Unavailable {
                    op,
                    key,
                    message: format!("{message} (gave up after {budget} resumes)"),
                },
                other => other,
            });
        }
        tracing::debug!(key = %self.key, at = self.delivered, of = total, resume = self.resumes + 1, error = %broken, "s3 download broke off, resuming");
        tokio::time::sleep(RetryPolicy::backoff(self.resumes)).await;
        self.resumes += 1;
        let from = self.delivered;
        let out = request(&self.inner, &self.object, &self.key, Some((from, &etag))).await?;
        if out.e_tag() != Some(etag.as_str()) {
            return Err(changed(&self.key, "its ETag differs"));
        }
        let length = out.content_length().and_then(|l| u64::try_from(l).ok());
        self.skip = match out.content_range() {
            Some(range) if parse_content_range(range) == Some((from, total)) => 0,
            Some(range) => {
                return Err(changed(
                    &self.key,
                    &format!("asked for bytes {from}- of {total}, got '{range}'"),
                ));
            }
            // The range was ignored: the whole object came again.
            None if length == Some(total) => from,
            None => return Err(changed(&self.key, "its length differs")),
        };
        self.body = Some(WatchedBody::new(
            out.body,
            length,
            self.inner.request_timeout,
            self.key.clone(),
        ));
        Ok(())
    }
}

/// The first byte and the object size of `bytes <first>-<last>/<size>`.
fn parse_content_range(range: &str) -> Option<(u64, u64)> {
    let rest = range.trim().strip_prefix("bytes ")?;
    let (span, size) = rest.split_once('/')?;
    let (first, _) = span.split_once('-')?;
    Some((first.trim().parse().ok()?, size.trim().parse().ok()?))
}

/// A body stream with an idle deadline and a length check.
struct WatchedBody {
    inner: ByteStream,
    idle_limit: Duration,
    idle: Pin<Box<Sleep>>,
    expected: Option<u64>,
    seen: u64,
    key: String,
    finished: bool,
}

impl WatchedBody {
    fn new(inner: ByteStream, expected: Option<u64>, idle_limit: Duration, key: String) -> Self {
        WatchedBody {
            inner,
            idle_limit,
            idle: Box::pin(tokio::time::sleep(idle_limit)),
            expected,
            seen: 0,
            key,
            finished: false,
        }
    }

    fn fail(&mut self, message: String) -> Poll<Option<std::io::Result<Bytes>>> {
        self.finished = true;
        Poll::Ready(Some(Err(into_io(StorageError::Unavailable {
            op: "get",
            key: self.key.clone(),
            message,
        }))))
    }
}

impl Stream for WatchedBody {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.seen += chunk.len() as u64;
                if let Some(expected) = this.expected.filter(|e| this.seen > *e) {
                    return this.fail(format!(
                        "body is longer than its content-length of {expected} bytes"
                    ));
                }
                let deadline = Instant::now() + this.idle_limit;
                this.idle.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.fail(format!("body stream failed: {}", chain_text(&e)))
            }
            Poll::Ready(None) => match this.expected {
                Some(expected) if this.seen != expected => {
                    let seen = this.seen;
                    this.fail(format!("body ended after {seen} of {expected} bytes"))
                }
                _ => {
                    this.finished = true;
                    Poll::Ready(None)
                }
            },
            Poll::Pending => {
                if this.idle.as_mut().poll(cx).is_ready() {
                    let limit = seconds(this.idle_limit);
                    return this.fail(format!("no data received for {limit}"));
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::read_error;
    use tokio::io::AsyncReadExt;

    async fn read_all(body: WatchedBody) -> Result<Vec<u8>, StorageError> {
        let mut reader = StreamReader::new(body);
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .await
            .map_err(|e| read_error("k", e))?;
        Ok(out)
    }

    #[test]
    fn content_ranges_parse() {
        assert_eq!(parse_content_range("bytes 100-199/200"), Some((100, 200)));
        assert_eq!(parse_content_range("bytes 0-0/1"), Some((0, 1)));
        assert_eq!(parse_content_range("bytes */200"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[tokio::test]
    async fn a_whole_body_passes() {
        let body = WatchedBody::new(
            ByteStream::from_static(b"hello"),
            Some(5),
            Duration::from_secs(1),
            "k".into(),
        );
        assert_eq!(read_all(body).await.ok().as_deref(), Some(&b"hello"[..]));
    }

    #[tokio::test]
    async fn a_short_or_long_body_is_unavailable() {
        let short = WatchedBody::new(
            ByteStream::from_static(b"hell"),
            Some(5),
            Duration::from_secs(1),
            "k".into(),
        );
        let err = read_all(short).await.err();
        assert!(
            err.as_ref().is_some_and(StorageError::is_unavailable),
            "{err:?}"
        );
        let long = WatchedBody::new(
            ByteStream::from_static(b"hello!"),
            Some(5),
            Duration::from_secs(1),
            "k".into(),
        );
        let err = read_all(long).await.err();
        assert!(
            err.as_ref().is_some_and(StorageError::is_unavailable),
            "{err:?}"
        );
    }
}
