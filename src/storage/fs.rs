//! Local folder storage (`WALG_FILE_PREFIX`): one file per object below a root directory.
//!
//! WAL-G compat (internal/storages/fs/folder.go): writes go to a temp file named
//! `<final>.tmp.<UTC YYYYMMDDTHHMMSSZ>-<16 hex>` in the same directory, which is fsynced, renamed
//! into place, and the directory fsynced. WAL-G's listings ignore exactly that pattern, so a
//! temp file left by a crash of either tool is invisible to both. A writer holds a lock on its
//! temp file (see [`super::fs_temp`]), so a killed writer's leftovers are recognised and
//! removed by [`Storage::remove_temporaries`].
//!
//! The root folder is never created: a missing root is [`StorageError::LocationMissing`] for
//! every read and write, so that a typo or an unmounted volume is an error rather than an
//! empty archive, or an archive written to the wrong file system. Folders below it are created
//! as needed.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio_util::io::SyncIoBridge;

use super::{BoxReader, Key, ObjectMeta, Storage, StorageError, fs_temp};

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

    /// The error for a missing root folder, when it is missing.
    fn root_missing(&self) -> Option<StorageError> {
        (!self.root.is_dir()).then(|| StorageError::LocationMissing {
            path: self.root.display().to_string(),
        })
    }

    /// A "not found" error stays one only while the root exists.
    fn or_root_missing(&self, err: StorageError) -> StorageError {
        match err {
            StorageError::NotFound { .. } => self.root_missing().unwrap_or(err),
            other => other,
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

pub use super::fs_temp::{is_temp_name, temp_name};

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
    let mut attempts = 0;
    let (tmp, file) = loop {
        create_dir_durable(dir)?;
        match super::fs_temp::create_temp(dir, name) {
            Ok(created) => break created,
            // A cleaner took our new temp file for a dead one before we locked it, and removed
            // the folder it left empty: make the folder again.
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 3 => attempts += 1,
            Err(e) => return Err(io_err("creating", dir)(e)),
        }
    };
    let result = write_then_rename(file, &tmp, path, body);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    let written = result?;
    sync_dir(dir).map_err(io_err("syncing folder", dir))?;
    Ok(written)
}

/// Writes `body` into the locked temp `file` at `tmp`, fsyncs it and renames it to `path`. The
/// lock is held until the rename is done.
fn write_then_rename(
    mut file: File,
    tmp: &Path,
    path: &Path,
    body: &mut dyn Read,
) -> Result<u64, StorageError> {
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
    fs::rename(tmp, path).map_err(io_err("renaming into place", path))?;
    drop(file);
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
        if let Some(missing) = self.root_missing() {
            return Err(missing);
        }
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
            .map_err(not_found_or(key, &path, "opening"))
            .map_err(|e| self.or_root_missing(e))?;
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
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(not_found_or(key, &path, "reading metadata of"))
            .map_err(|e| self.or_root_missing(e))?;
        if meta.is_dir() {
            return Err(StorageError::NotFound { key: key.clone() });
        }
        Ok(meta_of(key.clone(), &meta))
    }

    async fn list(&self, prefix: &Key) -> Result<Vec<ObjectMeta>, StorageError> {
        if let Some(missing) = self.root_missing() {
            return Err(missing);
        }
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
                remove_empty_parents(&path, &root);
            }
            Ok(())
        })
        .await
    }

    async fn stale_temporaries(&self, prefix: &Key) -> Result<Vec<ObjectMeta>, StorageError> {
        if let Some(missing) = self.root_missing() {
            return Err(missing);
        }
        let base = self.path(prefix);
        let root = self.root.clone();
        blocking(move || {
            let now = std::time::SystemTime::now();
            let mut out = Vec::new();
            if !base.is_dir() {
                return Ok(out);
            }
            for entry in walkdir::WalkDir::new(&base)
                .min_depth(1)
                .follow_links(false)
                .into_iter()
                .filter_map(Result::ok)
            {
                let name = entry.file_name().to_string_lossy();
                if !entry.file_type().is_file() || !is_temp_name(&name) {
                    continue;
                }
                let writer = fs_temp::Writer::of_temp_name(&name);
                let Ok(Some(meta)) = fs_temp::check_stale(entry.path(), writer, now, false) else {
                    continue;
                };
                let Some(key) = entry
                    .path()
                    .strip_prefix(&root)
                    .ok()
                    .and_then(|rel| rel.to_str())
                    .and_then(|rel| Key::new(rel).ok())
                else {
                    continue;
                };
                out.push(meta_of(key, &meta));
            }
            Ok(out)
        })
        .await
    }

    async fn remove_temporaries(&self, keys: &[Key]) -> Result<usize, StorageError> {
        let paths: Vec<(PathBuf, String)> = keys
            .iter()
            .filter(|k| is_temp_name(k.file_name()))
            .map(|k| (self.path(k), k.file_name().to_string()))
            .collect();
        let root = self.root.clone();
        blocking(move || {
            let now = std::time::SystemTime::now();
            let mut removed = 0;
            for (path, name) in paths {
                let writer = fs_temp::Writer::of_temp_name(&name);
                match fs_temp::check_stale(&path, writer, now, true) {
                    Ok(Some(_)) => {
                        removed += 1;
                        remove_empty_parents(&path, &root);
                    }
                    Ok(None) => {}
                    Err(source) => {
                        return Err(StorageError::Io {
                            op: "removing temp file",
                            path: path.display().to_string(),
                            source,
                        });
                    }
                }
            }
            Ok(removed)
        })
        .await
    }
}

/// WAL-G compat: removes the folders a deletion left empty, up to the root (excluded).
fn remove_empty_parents(path: &Path, root: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_survive_a_cleaner_that_removes_their_folder() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().to_path_buf();
        let dir = root.join("wal_005");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cleaner = {
            let (root, dir, stop) = (root.clone(), dir.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(entries) = std::fs::read_dir(&dir) else {
                        continue;
                    };
                    for entry in entries.flatten() {
                        let path = entry.path();
                        let name = entry.file_name().to_string_lossy().into_owned();
                        if !is_temp_name(&name) {
                            continue;
                        }
                        let now = std::time::SystemTime::now();
                        let writer = fs_temp::Writer::of_temp_name(&name);
                        if let Ok(Some(_)) = fs_temp::check_stale(&path, writer, now, true) {
                            remove_empty_parents(&path, &root);
                        }
                    }
                }
            })
        };
        for i in 0..1000 {
            let path = dir.join(format!("segment_{i}"));
            write_atomic(&path, &mut &b"wal"[..]).unwrap();
            // An empty folder again, for the cleaner to remove.
            std::fs::remove_file(&path).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        cleaner.join().unwrap();
    }

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
}
