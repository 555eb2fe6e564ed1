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
use crate::pg::wal::WalCheck;
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

/// A stored WAL file whose content cannot be genuine.
#[derive(Debug, thiserror::Error)]
#[error("stored {kind} '{name}' is corrupt: {reason}")]
pub struct CorruptWal {
    pub kind: &'static str,
    pub name: String,
    pub reason: String,
}

/// Decodes `found` into `out`, the new temp file at `tmp`, checking the content with `check`
/// as it streams (WAL file `name`), and fsyncs it. Returns the bytes written and the file,
/// still open so that the caller keeps its lock until it has renamed it. On any error the temp
/// file is removed.
pub async fn decode_to_file(
    found: Found,
    name: &str,
    tmp: PathBuf,
    out: File,
    check: WalCheck,
) -> anyhow::Result<(u64, File)> {
    let Found {
        key,
        decoder,
        reader,
    } = found;
    let name = name.to_string();
    let result = tokio::task::spawn_blocking(move || -> io::Result<(u64, File)> {
        let mut out = out;
        let written = (|| {
            let mut decoded = compression::decoder(decoder, SyncIoBridge::new(reader))?;
            let n = copy_checked(&mut decoded, &mut out, check, &name)?;
            out.sync_all()?;
            Ok(n)
        })();
        match written {
            Ok(n) => Ok((n, out)),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                drop(out);
                Err(e)
            }
        }
    })
    .await
    .context("decompression task failed")?;
    result
        .map_err(classify)
        .with_context(|| format!("reading '{key}'"))
}

/// Copies everything, feeding `check`; a check failure is an `InvalidData` error carrying a
/// [`CorruptWal`].
fn copy_checked(
    from: &mut dyn Read,
    to: &mut dyn Write,
    mut check: WalCheck,
    name: &str,
) -> io::Result<u64> {
    let kind = check.kind();
    let corrupt = |reason: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            CorruptWal {
                kind,
                name: name.to_string(),
                reason,
            },
        )
    };
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        check.feed(&buf[..n]).map_err(corrupt)?;
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
    check.finish().map_err(corrupt)?;
    Ok(total)
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
    copy_checked(from, to, WalCheck::Unchecked, "")
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
