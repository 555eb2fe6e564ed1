//! The S3 client behind [`S3Storage`] (the `s3` feature, on by default).
//!
//! - `client`: builds the SDK client (region, endpoint, TLS, timeouts, no SDK retries).
//! - `credentials`: the explicit credentials chain built from [`S3Credentials`].
//! - `retry`: bounded retries with jittered backoff and the mapping of SDK errors.
//! - `upload`: `put` (single PutObject or multipart with bounded memory).
//! - `download`: `get` with an idle deadline, a Content-Length check, resumes of a broken
//!   body (ranged GETs checked by ETag) and the check of a stored CRC32C.
//! - `checksum`: the CRC32C sent with uploads and checked on downloads.

mod checksum;
mod client;
mod credentials;
mod download;
mod retry;
mod upload;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use super::{S3Credentials, S3Settings};
use crate::storage::{BoxReader, Key, ObjectMeta, Storage, StorageError};
use retry::{Failure, RetryPolicy};

/// Multipart parts of one upload in flight at once, at most (see `upload`).
const MAX_PARTS_IN_FLIGHT: usize = 4;

/// The S3 backend. Cheap to clone: every clone shares one client and connection pool.
#[derive(Clone)]
pub struct S3Storage {
    inner: Arc<Inner>,
}

/// What every request needs; shared with the tasks uploading parts.
struct Inner {
    client: Client,
    bucket: String,
    root: String,
    region: String,
    storage_class: String,
    sse: Option<String>,
    sse_kms_id: Option<String>,
    part_size: usize,
    parts_in_flight: usize,
    request_timeout: Duration,
    delete_batch_size: usize,
    retry: RetryPolicy,
    /// Resumes allowed to one download (`WALG_DOWNLOAD_FILE_RETRIES`).
    download_retries: u32,
    /// Where credentials are looked for, for the "no credentials" error.
    credential_sources: String,
}

impl S3Storage {
    /// Builds the client. Asks the bucket for its region only when no region and no endpoint
    /// are set (that is, on AWS proper); otherwise no request is made here.
    pub async fn new(settings: &S3Settings) -> Result<Self, StorageError> {
        if settings.bucket.is_empty() {
            return Err(StorageError::Refused {
                op: "configure",
                key: String::new(),
                message: "s3 bucket name is empty".into(),
            });
        }
        let built = client::build(settings).await?;
        let retry = RetryPolicy::new(settings.max_retries);
        Ok(S3Storage {
            inner: Arc::new(Inner {
                client: built.client,
                bucket: settings.bucket.clone(),
                root: settings.root.trim_matches('/').to_string(),
                region: built.region,
                storage_class: settings.storage_class.clone(),
                sse: settings.sse.clone().filter(|s| !s.is_empty()),
                sse_kms_id: settings.sse_kms_id.clone().filter(|s| !s.is_empty()),
                part_size: settings.max_part_size.max(1),
                parts_in_flight: settings.upload_concurrency.clamp(1, MAX_PARTS_IN_FLIGHT),
                request_timeout: settings.request_timeout,
                delete_batch_size: settings.delete_batch_size.clamp(1, 1000),
                retry,
                download_retries: settings.download_retries,
                credential_sources: built.credential_sources,
            }),
        })
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.inner.region
    }
}

impl Inner {
    /// The object key in the bucket for a storage key.
    fn object_key(&self, key: &Key) -> String {
        match (self.root.is_empty(), key.is_root()) {
            (true, _) => key.as_str().to_string(),
            (false, true) => self.root.clone(),
            (false, false) => format!("{}/{}", self.root, key.as_str()),
        }
    }

    /// The listing prefix of a folder: its object key followed by `/` (empty for the bucket root).
    fn folder_prefix(&self, folder: &Key) -> String {
        let key = self.object_key(folder);
        if key.is_empty() {
            key
        } else {
            format!("{key}/")
        }
    }

    /// The storage key of an object key found by a listing, if it lies below the root.
    fn storage_key(&self, object_key: &str) -> Option<Key> {
        let rel = if self.root.is_empty() {
            object_key
        } else {
            object_key.strip_prefix(&self.root)?.strip_prefix('/')?
        };
        if rel.is_empty() || rel.ends_with('/') {
            return None;
        }
        Key::new(rel).ok().filter(|k| !k.is_root())
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta, StorageError> {
        let object = self.object_key(key);
        let shown = key.as_str();
        let out = retry::run(&self.retry, "head", shown, self.request_timeout, || async {
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(&object)
                .send()
                .await
                .map_err(|e| self.classify("head", shown, &e))
        })
        .await?;
        Ok(ObjectMeta {
            key: key.clone(),
            size: out
                .content_length()
                .and_then(|l| u64::try_from(l).ok())
                .unwrap_or(0),
            last_modified: out
                .last_modified()
                .map_or(jiff::Timestamp::UNIX_EPOCH, timestamp),
        })
    }

    async fn list(&self, folder: &Key) -> Result<Vec<ObjectMeta>, StorageError> {
        let prefix = self.folder_prefix(folder);
        let shown = folder.as_str();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = retry::run(&self.retry, "list", shown, self.request_timeout, || async {
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&prefix)
                    .set_continuation_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| self.classify("list", shown, &e))
            })
            .await?;
            for object in page.contents() {
                let Some(object_key) = object.key() else {
                    continue;
                };
                let Some(key) = self.storage_key(object_key) else {
                    tracing::debug!(
                        object_key,
                        "skipping a listed key that is not a storage key"
                    );
                    continue;
                };
                out.push(ObjectMeta {
                    key,
                    size: object
                        .size()
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(0),
                    last_modified: object
                        .last_modified()
                        .map_or(jiff::Timestamp::UNIX_EPOCH, timestamp),
                });
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) && !next.is_empty() => {
                    token = Some(next.to_string())
                }
                _ => break,
            }
        }
        Ok(out)
    }

    async fn delete(&self, keys: &[Key]) -> Result<(), StorageError> {
        for batch in keys.chunks(self.delete_batch_size) {
            self.delete_batch(batch).await?;
        }
        Ok(())
    }

    /// One DeleteObjects request (quiet mode) and its retries. A retry sends only the keys
    /// the previous answer reported as failed with a transient error code.
    async fn delete_batch(&self, batch: &[Key]) -> Result<(), StorageError> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let shown = if batch.len() == 1 {
            first.to_string()
        } else {
            format!("{first} and {} more", batch.len() - 1)
        };
        let remaining = Mutex::new(batch.iter().map(|k| self.object_key(k)).collect::<Vec<_>>());
        let remaining = &remaining;
        let shown = shown.as_str();
        retry::run(
            &self.retry,
            "delete",
            shown,
            self.request_timeout,
            || async move {
                let keys = remaining
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let objects = keys
                    .iter()
                    .map(|k| ObjectIdentifier::builder().key(k).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        Failure::Fatal(refused("delete", shown, format!("invalid request: {e}")))
                    })?;
                let delete = Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()
                    .map_err(|e| {
                        Failure::Fatal(refused("delete", shown, format!("invalid request: {e}")))
                    })?;
                let out = self
                    .client
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(|e| self.classify("delete", shown, &e))?;
                let mut failed = Vec::new();
                for err in out.errors() {
                    let code = err.code().unwrap_or("unknown");
                    match err.key() {
                        // An absent key is not an error (the contract of `delete`).
                        _ if code == "NoSuchKey" => {}
                        Some(k) if retry::is_transient_code(code) => failed.push(k.to_string()),
                        k => {
                            let message = format!(
                                "s3 error '{code}' deleting '{}': {}",
                                k.unwrap_or(""),
                                retry::one_line(err.message().unwrap_or(""))
                            );
                            return Err(Failure::Fatal(refused("delete", shown, message)));
                        }
                    }
                }
                if failed.is_empty() {
                    return Ok(());
                }
                let count = failed.len();
                *remaining.lock().unwrap_or_else(PoisonError::into_inner) = failed;
                Err(Failure::Transient(format!("{count} keys were not deleted")))
            },
        )
        .await
    }
}

fn refused(op: &'static str, key: &str, message: String) -> StorageError {
    StorageError::Refused {
        op,
        key: key.to_string(),
        message,
    }
}

/// Converts an S3 timestamp; one outside jiff's range becomes the epoch.
fn timestamp(t: &aws_sdk_s3::primitives::DateTime) -> jiff::Timestamp {
    let nanos = i32::try_from(t.subsec_nanos()).unwrap_or(0);
    jiff::Timestamp::new(t.secs(), nanos).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage")
            .field("bucket", &self.inner.bucket)
            .field("root", &self.inner.root)
            .field("region", &self.inner.region)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.inner.bucket, self.inner.root)
    }
}

#[async_trait]
impl Storage for S3Storage {
    async fn put(
        &self,
        key: &Key,
        body: BoxReader,
        size_hint: Option<u64>,
    ) -> Result<(), StorageError> {
        upload::put(&self.inner, key, body, size_hint).await
    }

    async fn get(&self, key: &Key) -> Result<BoxReader, StorageError> {
        download::get(&self.inner, key).await
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta, StorageError> {
        self.inner.head(key).await
    }

    async fn list(&self, prefix: &Key) -> Result<Vec<ObjectMeta>, StorageError> {
        self.inner.list(prefix).await
    }

    async fn delete(&self, keys: &[Key]) -> Result<(), StorageError> {
        self.inner.delete(keys).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner_with_root(root: &str) -> Inner {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build();
        Inner {
            client: Client::from_conf(config),
            bucket: "b".into(),
            root: root.into(),
            region: "us-east-1".into(),
            storage_class: "STANDARD".into(),
            sse: None,
            sse_kms_id: None,
            part_size: 1,
            parts_in_flight: 1,
            request_timeout: Duration::from_secs(1),
            delete_batch_size: 1,
            retry: RetryPolicy::new(0),
            download_retries: 0,
            credential_sources: String::new(),
        }
    }

    fn key(s: &str) -> Key {
        Key::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn object_keys_join_root() {
        let rooted = inner_with_root("backups/pg");
        assert_eq!(rooted.object_key(&key("wal_005/x")), "backups/pg/wal_005/x");
        assert_eq!(rooted.folder_prefix(&key("wal_005")), "backups/pg/wal_005/");
        assert_eq!(rooted.folder_prefix(&Key::root()), "backups/pg/");
        let bare = inner_with_root("");
        assert_eq!(bare.object_key(&key("wal_005/x")), "wal_005/x");
        assert_eq!(bare.folder_prefix(&key("a")), "a/");
        assert_eq!(bare.folder_prefix(&Key::root()), "");
    }

    #[test]
    fn listed_keys_become_relative() {
        let rooted = inner_with_root("backups/pg");
        assert_eq!(rooted.storage_key("backups/pg/a/b"), Some(key("a/b")));
        assert_eq!(rooted.storage_key("backups/pg/a/"), None);
        assert_eq!(rooted.storage_key("backups/pg/"), None);
        assert_eq!(rooted.storage_key("backups/pgx/a"), None);
        assert_eq!(rooted.storage_key("backups/pg/a//b"), None);
        let bare = inner_with_root("");
        assert_eq!(bare.storage_key("a/b"), Some(key("a/b")));
    }

    #[test]
    fn timestamps_convert() {
        let t = aws_sdk_s3::primitives::DateTime::from_secs_and_nanos(1_700_000_000, 5);
        assert_eq!(timestamp(&t).as_second(), 1_700_000_000);
    }
}
