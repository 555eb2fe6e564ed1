//! Local folder storage (`WALG_FILE_PREFIX`): one file per object below a root directory.
//!
//! WAL-G compat (internal/storages/fs/folder.go): writes go to a temp file named
//! `<final>.tmp.<UTC YYYYMMDDTHHMMSSZ>-<16 hex>` in the same directory, which is fsynced, renamed
//! into place, and the directory fsynced. WAL-G's listings ignore exactly that pattern, so a
//! temp file left by a crash of either tool is invisible to both.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio_util::io::SyncIoBridge;

use super::{BoxReader, Key, ObjectMeta, Storage, StorageError};

/// Resolved settings of the local folder backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsSettings {
    /// The folder holding the objects (`WALG_FILE_PREFIX`, plus `WALG_STORAGE_PREFIX`).
    pub root: PathBuf,
}

/// Objects as files below `root`.
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
}

const COPY_BUFFER: usize = 256 * 1024;

impl FsStorage {
    pub fn new(settings: FsSettings) -> Self {
        FsStorage {
            root: settings.root,
        }
    }

    fn path(&self, key: &Key) -> PathBuf {
        if key.is_root() {
            self.root.clone()
        } else {
            self.root.join(key.as_str())
        }
    }
}

impl fmt::Display for FsStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "folder '{}'", self.root.display())
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.display().to_string();
    move |source| StorageError::Io { op, path, source }
}

/// The temp file name WAL-G uses, so that WAL-G's listings skip ours.
pub fn temp_name(final_name: &str) -> String {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    format!("{final_name}.tmp.{stamp}-{:016x}", rand::random::<u64>())
}

/// True for names of temp files written by this backend or by WAL-G.
pub fn is_temp_name(name: &str) -> bool {
    // `.tmp.` + 8 digits + `T` + 6 digits + `Z-` + 16 lower-case hex digits, at the end.
    const TAIL: usize = ".tmp.".len() + 8 + 1 + 6 + 2 + 16;
    if name.len() < TAIL || !name.is_char_boundary(name.len() - TAIL) {
        return false;
    }
    let tail = &name.as_bytes()[name.len() - TAIL..];
    let (dot, rest) = tail.split_at(5);
    let (date, rest) = rest.split_at(8);
    let (t, rest) = rest.split_at(1);
    let (time, rest) = rest.split_at(6);
    let (zdash, hex) = rest.split_at(2);
    dot == b".tmp."
        && date.iter().all(u8::is_ascii_digit)
        && t == b"T"
        && time.iter().all(u8::is_ascii_digit)
        && zdash == b"Z-"
        && hex
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// Bytes written between two requests to start writeback.
const WRITEBACK_STEP: u64 = 2 * 1024 * 1024;

/// Asks the kernel to start writing a range of `file` to disk now, without waiting, so that the
/// final fsync has little left to do (PostgreSQL does the same with `sync_file_range`). On
/// Linux, `POSIX_FADV_DONTNEED` starts writeback of the dirty pages of the range and drops the
/// clean ones: an archived object is not read back soon. Only a hint: errors are ignored.
fn start_writeback(file: &File, offset: u64, len: u64) {
    let _ = rustix::fs::fadvise(
        file,
        offset,
        std::num::NonZeroU64::new(len),
        rustix::fs::Advice::DontNeed,
    );
}

/// Fsyncs a directory, so that a rename or unlink inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing parents, fsyncing each parent after a child appears in it, so
/// that a folder created for an object survives a crash as the object does.
pub fn create_dir_durable(dir: &Path) -> Result<(), StorageError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut current = dir;
    while !current.exists() {
        missing.push(current);
        match current.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => current = parent,
            _ => break,
        }
    }
    for folder in missing.into_iter().rev() {
        match fs::create_dir(folder) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(StorageError::Io {
                    op: "creating folder",
                    path: folder.display().to_string(),
                    source,
                });
            }
        }
        if let Some(parent) = folder.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent).map_err(io_err("syncing folder", parent))?;
        }
    }
    Ok(())
}

/// Writes everything from `body` to `path` atomically and durably: temp file, fsync, rename,
/// fsync of the directory. On any error the temp file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, body: &mut dyn Read) -> Result<u64, StorageError> {
    let dir = path.parent().ok_or_else(|| StorageError::InvalidKey {
        key: path.display().to_string(),
    })?;
    let name =
        path.file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| StorageError::InvalidKey {
                key: path.display().to_string(),
            })?;
    create_dir_durable(dir)?;
    let tmp = dir.join(temp_name(name));
    let result = write_then_rename(&tmp, path, body);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    let written = result?;
    sync_dir(dir).map_err(io_err("syncing folder", dir))?;
    Ok(written)
}

fn write_then_rename(tmp: &Path, path: &Path, body: &mut dyn Read) -> Result<u64, StorageError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(io_err("creating", tmp))?;
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut written = 0u64;
    let mut flushed = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(super::read_error("upload body", e));
            }
        };
        file.write_all(&buf[..n]).map_err(io_err("writing", tmp))?;
        written += n as u64;
        if written - flushed >= WRITEBACK_STEP {
            start_writeback(&file, flushed, written - flushed);
            flushed = written;
        }
    }
    file.sync_all().map_err(io_err("syncing", tmp))?;
    drop(file);
    fs::rename(tmp, path).map_err(io_err("renaming into place", path))?;
    Ok(written)
}

fn meta_of(key: Key, meta: &fs::Metadata) -> ObjectMeta {
    let last_modified = meta
        .modified()
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ObjectMeta {
        key,
        size: meta.len(),
        last_modified,
    }
}

fn not_found_or(
    key: &Key,
    path: &Path,
    op: &'static str,
) -> impl FnOnce(io::Error) -> StorageError {
    let key = key.clone();
    let path = path.display().to_string();
    move |source| {
        // `a/b/c` where `a/b` is a file: absent too, not a local I/O failure.
        if matches!(
            source.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
        ) {
            StorageError::NotFound { key }
        } else {
            StorageError::Io { op, path, source }
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Io {
            op: "running storage task",
            path: String::new(),
            source: io::Error::other(e.to_string()),
        })?
}

#[async_trait]
impl Storage for FsStorage {
    async fn put(
        &self,
        key: &Key,
        body: BoxReader,
        _size_hint: Option<u64>,
    ) -> Result<(), StorageError> {
        let path = self.path(key);
        blocking(move || {
            let mut reader = SyncIoBridge::new(body);
            write_atomic(&path, &mut reader).map(|_| ())
        })
        .await
    }

    async fn get(&self, key: &Key) -> Result<BoxReader, StorageError> {
        let path = self.path(key);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(not_found_or(key, &path, "opening"))?;
        let meta = file
            .metadata()
            .await
            .map_err(not_found_or(key, &path, "reading"))?;
        if meta.is_dir() {
            return Err(StorageError::NotFound { key: key.clone() });
        }
        Ok(Box::new(tokio::io::BufReader::with_capacity(
            COPY_BUFFER,
            file,
        )))
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta, StorageError> {
        let path = self.path(key);
        let meta = tokio::fs::metadata(&path).await.map_err(not_found_or(
            key,
            &path,
            "reading metadata of",
        ))?;
        if meta.is_dir() {
            return Err(StorageError::NotFound { key: key.clone() });
        }
        Ok(meta_of(key.clone(), &meta))
    }

    async fn list(&self, prefix: &Key) -> Result<Vec<ObjectMeta>, StorageError> {
        let base = self.path(prefix);
        let root = self.root.clone();
        blocking(move || {
            let mut out = Vec::new();
            if !base.is_dir() {
                return Ok(out);
            }
            for entry in walkdir::WalkDir::new(&base)
                .min_depth(1)
                .follow_links(false)
            {
                let entry = match entry {
                    Ok(entry) => entry,
                    // A file deleted while we walk is not an error.
                    Err(e)
                        if e.io_error()
                            .is_some_and(|io| io.kind() == io::ErrorKind::NotFound) =>
                    {
                        continue;
                    }
                    Err(e) => {
                        return Err(StorageError::Io {
                            op: "listing",
                            path: base.display().to_string(),
                            source: io::Error::other(e.to_string()),
                        });
                    }
                };
                if !entry.file_type().is_file() {
                    continue;
                }
                let name = entry.file_name().to_string_lossy();
                if is_temp_name(&name) {
                    continue;
                }
                let Ok(rel) = entry.path().strip_prefix(&root) else {
                    continue;
                };
                let Some(rel) = rel.to_str() else { continue };
                let Ok(key) = Key::new(rel) else { continue };
                match entry.metadata() {
                    Ok(meta) => out.push(meta_of(key, &meta)),
                    Err(e)
                        if e.io_error()
                            .is_some_and(|io| io.kind() == io::ErrorKind::NotFound) =>
                    {
                        continue;
                    }
                    Err(e) => {
                        return Err(StorageError::Io {
                            op: "listing",
                            path: entry.path().display().to_string(),
                            source: io::Error::other(e.to_string()),
                        });
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn delete(&self, keys: &[Key]) -> Result<(), StorageError> {
        let paths: Vec<PathBuf> = keys.iter().map(|k| self.path(k)).collect();
        let root = self.root.clone();
        blocking(move || {
            for path in paths {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(source) => {
                        return Err(StorageError::Io {
                            op: "deleting",
                            path: path.display().to_string(),
                            source,
                        });
                    }
                }
                // WAL-G compat: remove folders left empty, up to the root.
                let mut dir = path.parent();
                while let Some(d) = dir {
                    if d == root || !d.starts_with(&root) || fs::remove_dir(d).is_err() {
                        break;
                    }
                    dir = d.parent();
                }
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_created_level_by_level() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b/c");
        create_dir_durable(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_durable(&deep).unwrap();
        std::fs::write(root.path().join("file"), b"x").unwrap();
        assert!(create_dir_durable(&root.path().join("file/sub")).is_err());
    }

    #[test]
    fn temp_names_match_walg_pattern() {
        let name = temp_name("000000010000000000000001.lz4");
        assert!(is_temp_name(&name), "{name}");
        assert!(!is_temp_name("000000010000000000000001.lz4"));
        assert!(!is_temp_name("x.tmp.20260101T000000Z-0123456789ABCDEF"));
        assert!(!is_temp_name("x.tmp.2026010xT000000Z-0123456789abcdef"));
        assert!(is_temp_name("x.tmp.20260101T000000Z-0123456789abcdef"));
    }
}
