//! Object storage: one small async trait and its backends (memory, local folder, S3).
//!
//! Storage knows nothing of WAL-G, PostgreSQL or compression: keys are opaque `/`-separated
//! strings relative to the configured prefix, built by `crate::layout`.

pub mod fs;
pub mod fs_temp;
pub mod memory;
pub mod s3;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

/// A byte stream read from or written to storage.
pub type BoxReader = Box<dyn AsyncRead + Send + Unpin>;

/// A validated object key: relative, `/`-separated, no empty, `.` or `..` segments,
/// no leading or trailing `/`. A key may name an object or a folder (a prefix).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// Parses a key. Leading and trailing `/` are stripped, as WAL-G does.
    pub fn new(raw: &str) -> Result<Self, StorageError> {
        let trimmed = raw.trim_matches('/');
        if trimmed.is_empty() {
            return Ok(Key(String::new()));
        }
        for segment in trimmed.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." || segment.contains('\0') {
                return Err(StorageError::InvalidKey {
                    key: raw.to_string(),
                });
            }
        }
        Ok(Key(trimmed.to_string()))
    }

    /// A key from text its builder made only of valid segments (not empty, `.` or `..`, no
    /// `/` or NUL inside one): the constructor of `crate::layout`'s typed key builders, whose
    /// parts are checked once, when their types are made. Debug builds check the text again.
    pub(crate) fn from_valid(text: String) -> Self {
        debug_assert!(
            Key::new(&text).is_ok_and(|key| key.0 == text),
            "not a valid key: {text:?}"
        );
        Key(text)
    }

    /// The empty key: the root of the storage prefix.
    pub fn root() -> Self {
        Key(String::new())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends a relative path below this key.
    pub fn join(&self, rel: &str) -> Result<Self, StorageError> {
        if self.0.is_empty() {
            Key::new(rel)
        } else {
            Key::new(&format!("{}/{}", self.0, rel))
        }
    }

    /// The last segment of the key.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// True when `self` lies below the folder `prefix` (or `prefix` is the root).
    pub fn is_under(&self, prefix: &Key) -> bool {
        prefix.is_root()
            || (self.0.len() > prefix.0.len()
                && self.0.starts_with(&prefix.0)
                && self.0.as_bytes()[prefix.0.len()] == b'/')
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?})", self.0)
    }
}

/// What storage knows of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: Key,
    pub size: u64,
    pub last_modified: jiff::Timestamp,
}

/// Errors of every backend, with the variants callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object does not exist. An expected outcome for `get` and `head`.
    #[error("object '{key}' not found in storage")]
    NotFound { key: Key },
    /// A key that cannot be used (empty segment, `..`).
    #[error("invalid storage key '{key}'")]
    InvalidKey { key: String },
    /// The storage could not be reached or kept failing after bounded retries
    /// (timeouts, connection errors, throttling, 5xx).
    #[error("storage unavailable: {op} '{key}': {message}")]
    Unavailable {
        op: &'static str,
        key: String,
        message: String,
    },
    /// The storage answered, but refused (credentials, permissions, bad request).
    #[error("storage refused {op} '{key}': {message}")]
    Refused {
        op: &'static str,
        key: String,
        message: String,
    },
    /// The object's bytes are not what was stored: they do not match the checksum stored with
    /// it, or the object was replaced while it was being read. Retrying does not help.
    #[error("object '{key}' in storage cannot be trusted: {message}")]
    Corrupt { key: String, message: String },
    /// The storage location itself is missing: the local folder does not exist (a typo, an
    /// unmounted volume). Never taken for an empty storage.
    #[error("storage folder '{path}' does not exist")]
    LocationMissing { path: String },
    /// A local I/O error (local folder backend, or reading the body being uploaded).
    #[error("{op} '{path}': {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StorageError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::Unavailable { .. })
    }
}

/// A flat object store. Keys are relative to the configured prefix.
///
/// Contracts every backend keeps (checked by the conformance suite in `tests/`):
/// - `put` is atomic: readers see the whole new object or the old state, never a part;
///   it returns only once the object is durable.
/// - `get` and `head` return [`StorageError::NotFound`] for an absent object.
/// - the reader `get` returns yields the object's bytes or fails; it never yields bytes of
///   another object, nor bytes that a checksum stored with the object disowns
///   ([`StorageError::Corrupt`]).
/// - `list` is recursive below a folder; a missing folder below the root is an empty list.
/// - a backend whose location itself is missing (a local folder that does not exist) fails
///   `put`, `get`, `head` and `list` with [`StorageError::LocationMissing`], and never creates
///   it.
/// - `delete` of an absent key is not an error.
/// - temp files of interrupted writes are never objects; [`Storage::stale_temporaries`] finds
///   those no live writer holds.
#[async_trait]
pub trait Storage: fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// Stores everything `body` yields at `key`, replacing any existing object.
    /// `size_hint` is the exact body length when the caller knows it.
    async fn put(
        &self,
        key: &Key,
        body: BoxReader,
        size_hint: Option<u64>,
    ) -> Result<(), StorageError>;

    /// Streams the object's bytes.
    async fn get(&self, key: &Key) -> Result<BoxReader, StorageError>;

    /// Size and modification time of one object.
    async fn head(&self, key: &Key) -> Result<ObjectMeta, StorageError>;

    /// Every object below the folder `prefix`, recursively, in no particular order.
    async fn list(&self, prefix: &Key) -> Result<Vec<ObjectMeta>, StorageError>;

    /// Deletes `keys`; absent keys are skipped silently.
    async fn delete(&self, keys: &[Key]) -> Result<(), StorageError>;

    /// Leftovers of interrupted writes below the folder `prefix` that no live writer holds
    /// (the local folder's temp files of killed processes). They are not objects: `list`
    /// never shows them. Backends without such leftovers have none.
    async fn stale_temporaries(&self, prefix: &Key) -> Result<Vec<ObjectMeta>, StorageError> {
        let _ = prefix;
        Ok(Vec::new())
    }

    /// Removes those of `keys` that are still leftovers no live writer holds (each is checked
    /// again); returns how many were removed.
    async fn remove_temporaries(&self, keys: &[Key]) -> Result<usize, StorageError> {
        let _ = keys;
        Ok(0)
    }
}

/// Conveniences built on the required methods.
#[async_trait]
pub trait StorageExt: Storage {
    /// Stores a byte buffer.
    async fn put_bytes(&self, key: &Key, body: Bytes) -> Result<(), StorageError> {
        let len = body.len() as u64;
        self.put(key, Box::new(std::io::Cursor::new(body)), Some(len))
            .await
    }

    /// Reads a whole (small) object into memory.
    async fn get_bytes(&self, key: &Key) -> Result<Bytes, StorageError> {
        use tokio::io::AsyncReadExt;
        let mut reader = self.get(key).await?;
        let mut buf = Vec::new();
        reader
            .read_to_end(&mut buf)
            .await
            .map_err(|e| read_error(key.as_str(), e))?;
        Ok(Bytes::from(buf))
    }

    /// True when the object exists.
    async fn exists(&self, key: &Key) -> Result<bool, StorageError> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(StorageError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl<T: Storage + ?Sized> StorageExt for T {}

/// Maps an error raised while streaming an object's body.
///
/// Backends report body failures as `io::Error`s that wrap a [`StorageError`]; those keep their
/// meaning (an S3 stream that stalled is `Unavailable`), anything else is a local I/O error.
pub fn read_error(what: &str, err: std::io::Error) -> StorageError {
    if err
        .get_ref()
        .is_some_and(|inner| inner.is::<StorageError>())
    {
        if let Some(inner) = err.into_inner()
            && let Ok(storage) = inner.downcast::<StorageError>()
        {
            return *storage;
        }
        return StorageError::Io {
            op: "reading",
            path: what.to_string(),
            source: std::io::Error::other("body stream failed"),
        };
    }
    StorageError::Io {
        op: "reading",
        path: what.to_string(),
        source: err,
    }
}

/// Wraps a [`StorageError`] as an `io::Error`, so it can travel through `Read`/`AsyncRead`
/// and be recovered by [`read_error`] or [`storage_error_in`].
pub fn into_io(err: StorageError) -> std::io::Error {
    std::io::Error::other(err)
}

/// Finds a [`StorageError`] carried inside an `io::Error`, if there is one.
pub fn storage_error_in(err: &std::io::Error) -> Option<&StorageError> {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<StorageError>())
}

/// Which backend to build, with its resolved settings.
#[derive(Debug, Clone)]
pub enum StorageSettings {
    /// `WALG_FILE_PREFIX`
    Fs(fs::FsSettings),
    /// `WALG_S3_PREFIX`
    S3(Box<s3::S3Settings>),
}

/// Builds the configured backend: the one place where a backend is chosen.
pub async fn from_settings(settings: &StorageSettings) -> Result<Arc<dyn Storage>, StorageError> {
    match settings {
        StorageSettings::Fs(fs_settings) => Ok(Arc::new(fs::FsStorage::new(fs_settings.clone()))),
        #[cfg(feature = "s3")]
        StorageSettings::S3(s3_settings) => Ok(Arc::new(s3::S3Storage::new(s3_settings).await?)),
        #[cfg(not(feature = "s3"))]
        StorageSettings::S3(_) => Err(StorageError::Refused {
            op: "configure",
            key: String::new(),
            message: "this walg was built without S3 support (the `s3` feature)".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_normalises_and_rejects() {
        assert_eq!(Key::new("/a/b/").unwrap().as_str(), "a/b");
        assert!(Key::new("a//b").is_err());
        assert!(Key::new("a/../b").is_err());
        assert!(Key::new("./a").is_err());
        assert!(Key::new("").unwrap().is_root());
        assert_eq!(
            Key::new("a").unwrap().join("b/c").unwrap().as_str(),
            "a/b/c"
        );
        assert_eq!(Key::root().join("x").unwrap().as_str(), "x");
        assert_eq!(Key::new("a/b/c.lz4").unwrap().file_name(), "c.lz4");
    }

    #[test]
    fn key_is_under() {
        let folder = Key::new("wal_005").unwrap();
        assert!(Key::new("wal_005/x").unwrap().is_under(&folder));
        assert!(!Key::new("wal_0055/x").unwrap().is_under(&folder));
        assert!(!Key::new("wal_005").unwrap().is_under(&folder));
        assert!(Key::new("anything").unwrap().is_under(&Key::root()));
    }

    #[test]
    fn storage_errors_survive_io_wrapping() {
        let io = into_io(StorageError::Unavailable {
            op: "get",
            key: "k".into(),
            message: "timeout".into(),
        });
        assert!(storage_error_in(&io).is_some_and(StorageError::is_unavailable));
        assert!(read_error("k", io).is_unavailable());
        let plain = std::io::Error::other("disk");
        assert!(matches!(read_error("k", plain), StorageError::Io { .. }));
    }
}
