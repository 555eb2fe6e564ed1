//! Making a restored tree durable: fsync every file, then every directory, on a few threads.
//!
//! One fsync at a time halves restore throughput (wal-g/wal-g#1046); the device can take many
//! flushes at once. Files go first so that, when a directory is synced, the entries it
//! records point at data that is already on disk.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Fsyncs every path in `paths` (files and directories, in any order) on up to `threads`
/// threads: all non-directories first, then all directories. Symlinks are not followed. The
/// first failure stops the work and is returned, naming the path.
pub fn sync_all(paths: &[PathBuf], threads: usize) -> io::Result<()> {
    let dirs = Mutex::new(Vec::new());
    parallel(paths, threads, |path| {
        let file = open(path)?;
        if file.metadata()?.is_dir() {
            dirs.lock()
                .map_err(|_| io::Error::other("a sync thread panicked"))?
                .push(path.clone());
            return Ok(());
        }
        file.sync_all()
    })?;
    let dirs = dirs
        .into_inner()
        .map_err(|_| io::Error::other("a sync thread panicked"))?;
    parallel(&dirs, threads, |path| open(path)?.sync_all())
}

fn open(path: &Path) -> io::Result<File> {
    File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Runs `work` on every path with at most `threads` workers; returns the first error.
fn parallel(
    paths: &[PathBuf],
    threads: usize,
    work: impl Fn(&PathBuf) -> io::Result<()> + Sync,
) -> io::Result<()> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<io::Error>> = Mutex::new(None);
    let workers = threads.clamp(1, paths.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else {
                        return;
                    };
                    if let Err(e) = work(path) {
                        failed.store(true, Ordering::Relaxed);
                        if let Ok(mut slot) = first_error.lock()
                            && slot.is_none()
                        {
                            *slot = Some(io::Error::new(
                                e.kind(),
                                format!("fsync {}: {e}", path.display()),
                            ));
                        }
                        return;
                    }
                }
            });
        }
    });
    match first_error.into_inner() {
        Ok(None) => Ok(()),
        Ok(Some(e)) => Err(e),
        Err(_) => Err(io::Error::other("a sync thread panicked")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = vec![dir.path().to_path_buf()];
        for i in 0..50 {
            let sub = dir.path().join(format!("d{}", i % 5));
            std::fs::create_dir_all(&sub).unwrap();
            let file = sub.join(format!("f{i}"));
            std::fs::write(&file, b"data").unwrap();
            paths.push(file);
            paths.push(sub);
        }
        sync_all(&paths, 4).unwrap();
        sync_all(&paths, 0).unwrap();
        sync_all(&[], 8).unwrap();
    }

    #[test]
    fn a_missing_path_fails_and_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = sync_all(&[dir.path().to_path_buf(), missing.clone()], 2).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains(&missing.display().to_string()));
    }

    #[test]
    fn symlinks_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        std::os::unix::fs::symlink("f", dir.path().join("l")).unwrap();
        assert!(sync_all(&[dir.path().join("l")], 1).is_err());
    }
}
