//! Temp files of the local folder backend and of WAL downloads: their names, the lock a writer
//! holds on them, and how a cleaner tells a dead writer's leftovers from a live writer's file.
//!
//! WAL-G compat (internal/storages/fs/folder.go): a temp file is named
//! `<final>.tmp.<UTC YYYYMMDDTHHMMSSZ>-<16 hex>`, and both tools' listings skip that pattern.
//!
//! Liveness: walg's writer creates its temp file exclusively and holds an advisory lock
//! (`flock`) on it until the file is renamed into place or removed; the kernel drops the lock
//! when the process dies, even by `kill -9`. The last 8 of the 16 hex digits of walg's temp
//! names are a function of the first 8, so walg recognises its own temp files (a WAL-G name
//! matches by chance once in 2^32). A cleaner that gets the lock of one of walg's temp files
//! without waiting knows its writer is gone. WAL-G never locks its temp files, so one of those
//! (or any temp file on a file system without locks) counts as dead only once it has not been
//! modified for [`FOREIGN_STALE_AFTER`].
//!
//! Races: a cleaner removes a file only while it holds the lock and only when the name still
//! points at the file it locked; a writer that finds its fresh file unlinked once it has the
//! lock (a cleaner came between its create and its lock) starts again under a new name.

use std::fs::{self, File, Metadata, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// An unlocked temp file not written by walg (WAL-G's) is dead once unmodified this long.
pub const FOREIGN_STALE_AFTER: Duration = Duration::from_secs(60 * 60);

const TAG_KEY: u32 = 0x5741_4C47;

fn tag(random: u32) -> u32 {
    (random.rotate_left(13) ^ TAG_KEY).wrapping_mul(0x9E37_79B1)
}

/// The temp file name WAL-G uses, so that WAL-G's listings skip ours, with walg's tag in its
/// hex digits.
pub fn temp_name(final_name: &str) -> String {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    let random = rand::random::<u32>();
    format!("{final_name}.tmp.{stamp}-{random:08x}{:08x}", tag(random))
}

/// The 16 hex digits of a temp name, when `name` is one written by this backend or by WAL-G.
fn temp_hex(name: &str) -> Option<&str> {
    // `.tmp.` + 8 digits + `T` + 6 digits + `Z-` + 16 lower-case hex digits, at the end.
    const TAIL: usize = ".tmp.".len() + 8 + 1 + 6 + 2 + 16;
    if name.len() < TAIL || !name.is_char_boundary(name.len() - TAIL) {
        return None;
    }
    let tail = &name.as_bytes()[name.len() - TAIL..];
    let (dot, rest) = tail.split_at(5);
    let (date, rest) = rest.split_at(8);
    let (t, rest) = rest.split_at(1);
    let (time, rest) = rest.split_at(6);
    let (zdash, hex) = rest.split_at(2);
    let matches = dot == b".tmp."
        && date.iter().all(u8::is_ascii_digit)
        && t == b"T"
        && time.iter().all(u8::is_ascii_digit)
        && zdash == b"Z-"
        && hex
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    matches.then(|| &name[name.len() - 16..])
}

/// True for names of temp files written by this backend or by WAL-G.
pub fn is_temp_name(name: &str) -> bool {
    temp_hex(name).is_some()
}

/// True for temp names walg wrote (its writers lock them).
pub fn is_own_temp_name(name: &str) -> bool {
    temp_hex(name).is_some_and(|hex| {
        let random = u32::from_str_radix(&hex[..8], 16);
        let check = u32::from_str_radix(&hex[8..], 16);
        matches!((random, check), (Ok(r), Ok(c)) if tag(r) == c)
    })
}

/// Creates `path` exclusively for writing and locks it; the lock lasts as long as the
/// returned file is open. Fails with `AlreadyExists` when the name is taken and with
/// `Interrupted` when a cleaner removed the new file before it was locked.
pub fn create_locked(path: &Path) -> io::Result<File> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    match file.lock() {
        Ok(()) => {}
        // No locks on this file system: the file is then only removed by age.
        Err(e) if lock_unsupported(&e) => return Ok(file),
        Err(e) => return Err(e),
    }
    if file.metadata()?.nlink() == 0 {
        return Err(io::Error::new(
            io::ErrorKind::Interrupted,
            "the new temp file was removed before it was locked",
        ));
    }
    Ok(file)
}

/// Creates and locks a new temp file for `final_name` in `dir`; returns its path and the file.
pub fn create_temp(dir: &Path, final_name: &str) -> io::Result<(PathBuf, File)> {
    let mut attempts = 0;
    loop {
        let path = dir.join(temp_name(final_name));
        match create_locked(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e)
                if attempts < 3
                    && matches!(
                        e.kind(),
                        io::ErrorKind::AlreadyExists | io::ErrorKind::Interrupted
                    ) =>
            {
                attempts += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn lock_unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOLCK) | Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
    ) || err.kind() == io::ErrorKind::Unsupported
}

/// Who may have written a temp file, which decides how its liveness is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Only walg writes files of this name, always under its lock: unlocked means dead.
    Walg,
    /// WAL-G may have written it without a lock: unlocked and unmodified for
    /// [`FOREIGN_STALE_AFTER`] means dead.
    Unknown,
}

impl Writer {
    /// The writer of a temp file, from its name.
    pub fn of_temp_name(name: &str) -> Writer {
        if is_own_temp_name(name) {
            Writer::Walg
        } else {
            Writer::Unknown
        }
    }
}

/// Whether the temp file at `path` is a dead writer's leftover; when `remove`, removes it
/// (while holding its lock). `Ok(None)` when it is not stale (a live writer, too young, or
/// gone); `Ok(Some(meta))` with its metadata when it is (and was removed, with `remove`).
pub fn check_stale(
    path: &Path,
    writer: Writer,
    now: SystemTime,
    remove: bool,
) -> io::Result<Option<Metadata>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let locks = match file.try_lock() {
        Ok(()) => true,
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(e)) if lock_unsupported(&e) => false,
        Err(TryLockError::Error(e)) => return Err(e),
    };
    let meta = file.metadata()?;
    let dead_at_once = locks && writer == Writer::Walg;
    if !dead_at_once {
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if age < FOREIGN_STALE_AFTER {
            return Ok(None);
        }
    }
    // The name must still point at the file we hold: after a rename it is another file.
    match fs::symlink_metadata(path) {
        Ok(at_path) if at_path.dev() == meta.dev() && at_path.ino() == meta.ino() => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    if remove {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    drop(file);
    Ok(Some(meta))
}

/// Removes the dead writers' temp files directly in `dir` (not below); returns their paths.
/// A missing `dir` has none. Errors on single files are skipped: cleaning is best effort.
pub fn sweep_dir(dir: &Path, now: SystemTime) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_temp_name(name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        if let Ok(Some(_)) = check_stale(&path, Writer::of_temp_name(name), now, true) {
            removed.push(path);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_match_walg_pattern_and_carry_walg_tag() {
        let name = temp_name("000000010000000000000001.lz4");
        assert!(is_temp_name(&name), "{name}");
        assert!(is_own_temp_name(&name), "{name}");
        assert!(!is_temp_name("000000010000000000000001.lz4"));
        assert!(!is_temp_name("x.tmp.20260101T000000Z-0123456789ABCDEF"));
        assert!(!is_temp_name("x.tmp.2026010xT000000Z-0123456789abcdef"));
        assert!(is_temp_name("x.tmp.20260101T000000Z-0123456789abcdef"));
        assert!(!is_own_temp_name("x.tmp.20260101T000000Z-0123456789abcdef"));
    }

    #[test]
    fn a_held_temp_file_is_live_and_a_released_one_is_dead() {
        let dir = tempfile::tempdir().unwrap();
        let (path, file) = create_temp(dir.path(), "obj").unwrap();
        let now = SystemTime::now();
        assert!(
            check_stale(&path, Writer::Walg, now, true)
                .unwrap()
                .is_none()
        );
        assert!(sweep_dir(dir.path(), now).unwrap().is_empty());
        assert!(path.exists(), "a live writer's temp file was removed");
        drop(file);
        assert_eq!(sweep_dir(dir.path(), now).unwrap(), vec![path.clone()]);
        assert!(!path.exists());
    }

    #[test]
    fn an_unlocked_foreign_temp_file_is_dead_only_when_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("obj.tmp.20260101T000000Z-0123456789abcdef");
        fs::write(&path, b"x").unwrap();
        let now = SystemTime::now();
        assert!(sweep_dir(dir.path(), now).unwrap().is_empty());
        let later = now + FOREIGN_STALE_AFTER + Duration::from_secs(1);
        assert_eq!(sweep_dir(dir.path(), later).unwrap(), vec![path]);
    }
}
