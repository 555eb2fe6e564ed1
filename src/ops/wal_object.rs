//! Moving one WAL file between a local path and storage: compress and upload, find the stored
//! object among its possible names, decode it into a file or compare it with a file.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::io::SyncIoBridge;

use crate::compression::{self, CompressionSettings, Decoder};
use crate::layout;
use crate::storage::{BoxReader, Key, Storage, StorageError, storage_error_in};

const CHUNK: usize = 256 * 1024;

/// Compresses the file at `path` and stores it at `key`. Returns once the object is durable.
pub async fn upload_file(
    storage: &Arc<dyn Storage>,
    compression: CompressionSettings,
    path: &Path,
    key: &Key,
) -> anyhow::Result<u64> {
    let source = path.to_path_buf();
    let what = format!("reading and compressing '{}'", path.display());
    super::upload::stream_to_storage(storage, key, &what, move |writer| {
        let mut file = File::open(&source)?;
        let mut encoder = compression::encoder(compression, writer)?;
        let copied = copy(&mut file, &mut encoder)?;
        encoder.finish()?.finish()?;
        Ok(copied)
    })
    .await
}

/// A stored WAL object, opened for reading.
pub struct Found {
    pub key: Key,
    pub decoder: Decoder,
    pub reader: BoxReader,
}

/// Opens the stored copy of WAL file `name`, trying its possible names in order. `Ok(None)`
/// only when every candidate is definitely absent; any other failure is an error.
pub async fn open_wal(
    storage: &Arc<dyn Storage>,
    name: &str,
    preferred: Decoder,
) -> Result<Option<Found>, StorageError> {
    for (key, decoder) in layout::wal_candidates(name, preferred)? {
        match storage.get(&key).await {
            Ok(reader) => {
                return Ok(Some(Found {
                    key,
                    decoder,
                    reader,
                }));
            }
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Turns an I/O error from a storage stream back into the storage error it carries, so that
/// callers can tell an outage from a local failure.
pub fn classify(err: io::Error) -> anyhow::Error {
    match storage_error_in(&err) {
        Some(_) => match err
            .into_inner()
            .map(|inner| inner.downcast::<StorageError>())
        {
            Some(Ok(storage)) => anyhow::Error::new(*storage),
            Some(Err(other)) => anyhow::anyhow!("{other}"),
            None => anyhow::anyhow!("storage stream failed"),
        },
        None => anyhow::Error::new(err),
    }
}

/// Decodes `found` into a new file at `tmp` (created exclusively), fsyncs it and returns the
/// number of bytes written and the first bytes (for header checks). The caller renames it.
pub async fn decode_to_file(found: Found, tmp: PathBuf) -> anyhow::Result<(u64, Vec<u8>)> {
    let Found {
        key,
        decoder,
        reader,
    } = found;
    let result = tokio::task::spawn_blocking(move || -> io::Result<(u64, Vec<u8>)> {
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let written = (|| {
            let mut decoded = compression::decoder(decoder, SyncIoBridge::new(reader))?;
            let mut head = Vec::new();
            let n = copy_keeping_head(&mut decoded, &mut out, &mut head)?;
            out.sync_all()?;
            Ok((n, head))
        })();
        if written.is_err() {
            drop(out);
            let _ = std::fs::remove_file(&tmp);
        }
        written
    })
    .await
    .context("decompression task failed")?;
    result
        .map_err(classify)
        .with_context(|| format!("reading '{key}'"))
}

/// Compares the decoded content of `found` with the file at `path`.
pub async fn same_content(found: Found, path: &Path) -> anyhow::Result<bool> {
    let Found {
        key,
        decoder,
        reader,
    } = found;
    let local = path.to_path_buf();
    let result = tokio::task::spawn_blocking(move || -> io::Result<bool> {
        let mut remote = compression::decoder(decoder, SyncIoBridge::new(reader))?;
        let mut file = File::open(&local)?;
        equal_streams(&mut remote, &mut file)
    })
    .await
    .context("comparison task failed")?;
    result
        .map_err(classify)
        .with_context(|| format!("comparing '{key}' with '{}'", path.display()))
}

/// The first bytes of a file: enough for a segment's long page header.
pub fn read_head(path: &Path) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; crate::pg::wal::LONG_HEADER_LEN];
    File::open(path)?.read_exact(&mut head)?;
    Ok(head)
}

fn copy(from: &mut dyn Read, to: &mut dyn Write) -> io::Result<u64> {
    let mut head = Vec::new();
    copy_keeping_head(from, to, &mut head)
}

/// Copies everything, keeping the first `LONG_HEADER_LEN` bytes in `head`.
fn copy_keeping_head(
    from: &mut dyn Read,
    to: &mut dyn Write,
    head: &mut Vec<u8>,
) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if head.len() < crate::pg::wal::LONG_HEADER_LEN {
            let want = (crate::pg::wal::LONG_HEADER_LEN - head.len()).min(n);
            head.extend_from_slice(&buf[..want]);
        }
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Reads into `buf` until it is full or the stream ends; returns how much was read.
fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// True when both streams hold the same bytes. Both are read to the end or to the first
/// difference; a read error of either is an error, not "different".
pub fn equal_streams(a: &mut dyn Read, b: &mut dyn Read) -> io::Result<bool> {
    let mut buf_a = vec![0u8; 64 * 1024];
    let mut buf_b = vec![0u8; 64 * 1024];
    loop {
        let n_a = fill(a, &mut buf_a)?;
        let n_b = fill(b, &mut buf_b)?;
        if n_a != n_b || buf_a[..n_a] != buf_b[..n_b] {
            return Ok(false);
        }
        if n_a == 0 {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageExt;
    use crate::storage::memory::MemoryStorage;

    #[test]
    fn stream_equality() {
        let eq = |a: &[u8], b: &[u8]| equal_streams(&mut &a[..], &mut &b[..]).unwrap();
        assert!(eq(b"", b""));
        assert!(eq(&[7u8; 200_000], &[7u8; 200_000]));
        assert!(!eq(&[7u8; 200_000], &[7u8; 200_001]));
        let mut other = vec![7u8; 200_000];
        other[150_000] = 8;
        assert!(!eq(&[7u8; 200_000], &other));
    }

    #[tokio::test]
    async fn upload_then_find_and_compare() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000002.history");
        std::fs::write(&path, b"1\t0/3000000\tno recovery target specified\n").unwrap();
        let settings = CompressionSettings {
            method: compression::Method::Lz4,
            zstd_level: compression::ZstdLevel::Default,
        };
        let key = layout::wal_key("00000002.history", Decoder::Lz4).unwrap();
        upload_file(&storage, settings, &path, &key).await.unwrap();
        assert!(storage.exists(&key).await.unwrap());

        let found = open_wal(&storage, "00000002.history", Decoder::Zstd)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.key, key);
        assert!(same_content(found, &path).await.unwrap());
        std::fs::write(&path, b"different").unwrap();
        let found = open_wal(&storage, "00000002.history", Decoder::Lz4)
            .await
            .unwrap()
            .unwrap();
        assert!(!same_content(found, &path).await.unwrap());
        assert!(
            open_wal(&storage, "00000003.history", Decoder::Lz4)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn unreadable_source_stores_nothing() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let settings = CompressionSettings {
            method: compression::Method::Lz4,
            zstd_level: compression::ZstdLevel::Default,
        };
        let key = layout::wal_key("000000010000000000000001", Decoder::Lz4).unwrap();
        let err = upload_file(
            &storage,
            settings,
            Path::new("/nonexistent/000000010000000000000001"),
            &key,
        )
        .await
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("reading and compressing"),
            "{err:#}"
        );
        assert!(!storage.exists(&key).await.unwrap());
    }
}
