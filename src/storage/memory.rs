//! An in-memory store for unit tests: a map from key to bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::{BoxReader, Key, ObjectMeta, Storage, StorageError};

/// A map from key to bytes, behind a mutex.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    objects: Mutex<BTreeMap<Key, (Bytes, jiff::Timestamp)>>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, (Bytes, jiff::Timestamp)>> {
        // A poisoned lock only means another test thread panicked; the map is still usable.
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Display for MemoryStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("memory")
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn put(
        &self,
        key: &Key,
        mut body: BoxReader,
        _size_hint: Option<u64>,
    ) -> Result<(), StorageError> {
        let mut buf = Vec::new();
        body.read_to_end(&mut buf)
            .await
            .map_err(|e| super::read_error("upload body", e))?;
        self.map()
            .insert(key.clone(), (Bytes::from(buf), jiff::Timestamp::now()));
        Ok(())
    }

    async fn get(&self, key: &Key) -> Result<BoxReader, StorageError> {
        match self.map().get(key) {
            Some((bytes, _)) => Ok(Box::new(std::io::Cursor::new(bytes.clone()))),
            None => Err(StorageError::NotFound { key: key.clone() }),
        }
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta, StorageError> {
        match self.map().get(key) {
            Some((bytes, modified)) => Ok(ObjectMeta {
                key: key.clone(),
                size: bytes.len() as u64,
                last_modified: *modified,
            }),
            None => Err(StorageError::NotFound { key: key.clone() }),
        }
    }

    async fn list(&self, prefix: &Key) -> Result<Vec<ObjectMeta>, StorageError> {
        Ok(self
            .map()
            .iter()
            .filter(|(key, _)| key.is_under(prefix))
            .map(|(key, (bytes, modified))| ObjectMeta {
                key: key.clone(),
                size: bytes.len() as u64,
                last_modified: *modified,
            })
            .collect())
    }

    async fn delete(&self, keys: &[Key]) -> Result<(), StorageError> {
        let mut map = self.map();
        for key in keys {
            map.remove(key);
        }
        Ok(())
    }
}
