//! The PGDATA walk with WAL-G's rules, and the split of its entries into tar parts.
//!
//! Order: lexical (byte order of names) within each directory, a directory's entry before its
//! contents, symlinks not followed (`lstat`). Any entry whose basename is on
//! [`EXCLUDED_NAMES`] is left out, except that an excluded *directory* keeps its own entry (so
//! it is recreated empty on restore) while its contents are skipped. `/global/pg_control` is
//! held back: it goes into its own tar after everything else. (WAL-G holds back any file named
//! `pg_control` and keeps only the last one seen; a data directory has just the one.)
//!
//! Tablespaces: when the walk reaches `<PGDATA>/pg_tblspc`, each symlink in it is read, recorded
//! as a [`TablespaceLocation`], and the directory it points to is walked right away with member
//! names rewritten to `/pg_tblspc/<oid>/…`. Neither the symlink nor the tablespace root get an
//! entry; the `/pg_tblspc` entry itself comes after all tablespace contents.
//!
//! PostgreSQL drops and creates relations while a backup runs, so an entry that vanishes
//! between listing its directory and `lstat` (or a directory that vanishes before it is
//! listed) is skipped, not an error.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Basenames WAL-G leaves out of a backup, anywhere in the tree.
pub const EXCLUDED_NAMES: &[&str] = &[
    "log",
    "pg_log",
    "pg_xlog",
    "pg_wal",
    "pgsql_tmp",
    "postgresql.auto.conf.tmp",
    "postmaster.pid",
    "postmaster.opts",
    "recovery.conf",
    "pg_dynshmem",
    "pg_notify",
    "pg_replslot",
    "pg_serial",
    "pg_stat_tmp",
    "pg_snapshots",
    "pg_subtrans",
    "standby.signal",
];

/// The member name of the control file, which is written last, in its own tar.
pub const PG_CONTROL_MEMBER: &str = "/global/pg_control";

/// The directory of tablespace symlinks, directly under PGDATA.
const TABLESPACE_DIR: &str = "pg_tblspc";

/// What kind of file system object an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory: a header-only member.
    Dir,
    /// A regular file: a member with content.
    File,
    /// A symbolic link (not a tablespace link): a header-only member naming the target.
    Symlink {
        /// The link's target, as `readlink` returned it.
        target: PathBuf,
    },
    /// A socket, FIFO or device. [`super::TarWriter`] writes no member for it.
    Other,
}

/// One walked object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The tar member name: `/` for PGDATA itself, else `/` + the path relative to PGDATA
    /// (`/base/5/1259`, `/pg_tblspc/16400/PG_16_202307071/16384/16401`).
    pub member: String,
    /// Where the object is on disk (for tablespace contents: under the tablespace location).
    pub path: PathBuf,
    /// Directory, file, symlink or other.
    pub kind: EntryKind,
    /// Content size at walk time for regular files; 0 for everything else.
    pub size: u64,
    /// Permission bits, with setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Modification time, full precision (WAL-G's `files_metadata.json` compares it exactly).
    pub mtime: SystemTime,
}

impl Entry {
    fn new(member: String, path: PathBuf, kind: EntryKind, meta: &Metadata) -> Entry {
        let size = if kind == EntryKind::File {
            meta.len()
        } else {
            0
        };
        Entry {
            member,
            path,
            kind,
            size,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        }
    }

    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.kind == EntryKind::File
    }
}

/// A tablespace found under `pg_tblspc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablespaceLocation {
    /// The symlink's name (the tablespace OID).
    pub oid: String,
    /// The directory it points to (a relative link target is joined to `pg_tblspc`).
    pub location: PathBuf,
}

/// The result of [`walk`].
#[derive(Debug, Clone, Default)]
pub struct Walk {
    /// Every entry to archive, in WAL-G's order, without `pg_control`.
    pub entries: Vec<Entry>,
    /// `/global/pg_control`, if present: archived last, in its own tar.
    pub pg_control: Option<Entry>,
    /// Tablespaces, in the order they were walked.
    pub tablespaces: Vec<TablespaceLocation>,
}

/// Walks `pgdata` with WAL-G's rules (see the module documentation).
///
/// `pgdata` itself may be a symlink to the data directory. Errors other than vanished entries
/// (permission denied, I/O errors) fail the walk and name the path.
pub fn walk(pgdata: &Path) -> io::Result<Walk> {
    let meta = fs::metadata(pgdata).map_err(|e| at(pgdata, e))?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a directory", pgdata.display()),
        ));
    }
    let mut walker = Walker::default();
    walker.out.entries.push(Entry::new(
        "/".to_string(),
        pgdata.to_path_buf(),
        EntryKind::Dir,
        &meta,
    ));
    walker.walk_dir(pgdata, "", Place::DataRoot)?;
    Ok(walker.out)
}

/// Splits walked entries into tar parts with WAL-G's rule: a part accumulates the `size` of its
/// regular files (directories and other entries add 0); right after a file, if the sum is
/// strictly greater than `threshold`, the part is closed. Files are never split, so every part
/// but the last exceeds the threshold by at most one file. No entries, no parts.
pub fn partition(entries: impl IntoIterator<Item = Entry>, threshold: u64) -> Vec<Vec<Entry>> {
    let mut parts = Vec::new();
    let mut current = Vec::new();
    let mut sum = 0u64;
    for entry in entries {
        let file_size = entry.is_file().then_some(entry.size);
        current.push(entry);
        if let Some(size) = file_size {
            sum = sum.saturating_add(size);
            if sum > threshold {
                parts.push(std::mem::take(&mut current));
                sum = 0;
            }
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

/// Where a directory being listed sits, for the two places with special rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// PGDATA itself: its `pg_tblspc` child is the tablespace directory.
    DataRoot,
    /// `<PGDATA>/pg_tblspc`: symlinks in it are tablespaces, already walked.
    TablespaceDir,
    /// Anywhere else.
    Plain,
}

#[derive(Default)]
struct Walker {
    out: Walk,
}

impl Walker {
    /// Visits the children of `dir`, whose member name is `prefix` (`""` for PGDATA).
    fn walk_dir(&mut self, dir: &Path, prefix: &str, place: Place) -> io::Result<()> {
        match sorted_names(dir)? {
            Some(names) => self.walk_names(dir, names, prefix, place),
            None => Ok(()),
        }
    }

    /// Visits `names` (listed from `dir`), skipping any that no longer exist.
    fn walk_names(
        &mut self,
        dir: &Path,
        names: Vec<std::ffi::OsString>,
        prefix: &str,
        place: Place,
    ) -> io::Result<()> {
        for name in names {
            let path = dir.join(&name);
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(at(&path, e)),
            };
            if place == Place::TablespaceDir && meta.file_type().is_symlink() {
                continue;
            }
            let name = name.to_string_lossy();
            let member = format!("{prefix}/{name}");
            let is_tablespace_dir = place == Place::DataRoot && name == TABLESPACE_DIR;
            self.visit(path, member, &name, &meta, is_tablespace_dir)?;
        }
        Ok(())
    }

    fn visit(
        &mut self,
        path: PathBuf,
        member: String,
        name: &str,
        meta: &Metadata,
        is_tablespace_dir: bool,
    ) -> io::Result<()> {
        let file_type = meta.file_type();
        let excluded = EXCLUDED_NAMES.contains(&name);
        if file_type.is_dir() {
            if excluded {
                self.out
                    .entries
                    .push(Entry::new(member, path, EntryKind::Dir, meta));
                return Ok(());
            }
            if is_tablespace_dir {
                self.walk_tablespaces(&path)?;
            }
            let place = if is_tablespace_dir {
                Place::TablespaceDir
            } else {
                Place::Plain
            };
            let prefix = member.clone();
            self.out
                .entries
                .push(Entry::new(member, path.clone(), EntryKind::Dir, meta));
            return self.walk_dir(&path, &prefix, place);
        }
        if excluded {
            return Ok(());
        }
        let kind = if file_type.is_file() {
            EntryKind::File
        } else if file_type.is_symlink() {
            match fs::read_link(&path) {
                Ok(target) => EntryKind::Symlink { target },
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(at(&path, e)),
            }
        } else {
            EntryKind::Other
        };
        let entry = Entry::new(member, path, kind, meta);
        if entry.member == PG_CONTROL_MEMBER && entry.is_file() {
            self.out.pg_control = Some(entry);
        } else {
            self.out.entries.push(entry);
        }
        Ok(())
    }

    /// Records and walks every tablespace symlink in `tblspc` (`<PGDATA>/pg_tblspc`).
    fn walk_tablespaces(&mut self, tblspc: &Path) -> io::Result<()> {
        let Some(names) = sorted_names(tblspc)? else {
            return Ok(());
        };
        for name in names {
            let link = tblspc.join(&name);
            let target = match fs::symlink_metadata(&link) {
                Ok(meta) if meta.file_type().is_symlink() => match fs::read_link(&link) {
                    Ok(target) => target,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(at(&link, e)),
                },
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(at(&link, e)),
            };
            let location = if target.is_absolute() {
                target
            } else {
                tblspc.join(target)
            };
            // Followed on purpose: a tablespace location may itself be reached through a symlink.
            match fs::metadata(&location) {
                Ok(meta) if meta.is_dir() => {}
                // Dropped while the backup runs.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        format!(
                            "tablespace link {} points to {}, which is not a directory",
                            link.display(),
                            location.display()
                        ),
                    ));
                }
                Err(e) => return Err(at(&location, e)),
            }
            let oid = name.to_string_lossy().into_owned();
            let prefix = format!("/{TABLESPACE_DIR}/{oid}");
            self.out.tablespaces.push(TablespaceLocation {
                oid,
                location: location.clone(),
            });
            self.walk_dir(&location, &prefix, Place::Plain)?;
        }
        Ok(())
    }
}

/// The names in `dir`, sorted bytewise; `None` if the directory vanished.
fn sorted_names(dir: &Path) -> io::Result<Option<Vec<std::ffi::OsString>>> {
    use std::os::unix::ffi::OsStrExt;
    let reader = match fs::read_dir(dir) {
        Ok(reader) => reader,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(at(dir, e)),
    };
    let mut names = Vec::new();
    for item in reader {
        match item {
            Ok(item) => names.push(item.file_name()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(at(dir, e)),
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(Some(names))
}

/// The same error, with the path in its message.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn touch(path: &Path, bytes: usize) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(path, vec![7u8; bytes]).unwrap();
    }

    fn members(walk: &Walk) -> Vec<&str> {
        walk.entries.iter().map(|e| e.member.as_str()).collect()
    }

    /// A small data directory with every special case of the walk.
    fn fake_pgdata(root: &Path, tablespace: &Path) -> PathBuf {
        let pgdata = root.join("data");
        touch(&pgdata.join("PG_VERSION"), 3);
        touch(&pgdata.join("base/1/1259"), 8192);
        touch(&pgdata.join("base/1/1259_fsm"), 100);
        touch(&pgdata.join("base/10/2600"), 10);
        touch(&pgdata.join("base/pgsql_tmp/pgsql_tmp123.0"), 10);
        touch(&pgdata.join("global/pg_control"), 8192);
        touch(&pgdata.join("global/1262"), 8192);
        touch(&pgdata.join("pg_wal/000000010000000000000001"), 16);
        touch(&pgdata.join("pg_wal/archive_status/x.done"), 0);
        touch(&pgdata.join("pg_replslot/slot/state"), 10);
        fs::create_dir_all(pgdata.join("pg_stat_tmp")).unwrap();
        touch(&pgdata.join("postmaster.pid"), 10);
        touch(&pgdata.join("postmaster.opts"), 10);
        touch(&pgdata.join("standby.signal"), 0);
        touch(&pgdata.join("recovery.signal"), 0);
        touch(&pgdata.join("postgresql.auto.conf"), 10);
        symlink("/nowhere/log", pgdata.join("log")).unwrap();
        symlink("PG_VERSION", pgdata.join("a_link")).unwrap();
        touch(&tablespace.join("PG_16_202307071/16384/16401"), 20);
        touch(&tablespace.join("PG_16_202307071/pgsql_tmp/t"), 20);
        fs::create_dir_all(pgdata.join("pg_tblspc")).unwrap();
        symlink(tablespace, pgdata.join("pg_tblspc/16400")).unwrap();
        // An in-place tablespace (allow_in_place_tablespaces): a real directory.
        touch(&pgdata.join("pg_tblspc/16500/PG_16_202307071/1/2"), 5);
        pgdata
    }

    #[test]
    fn walks_like_walg() {
        let dir = tempfile::tempdir().unwrap();
        let tablespace = dir.path().join("ts1");
        let pgdata = fake_pgdata(dir.path(), &tablespace);
        let walk = walk(&pgdata).unwrap();
        assert_eq!(
            members(&walk),
            [
                "/",
                "/PG_VERSION",
                "/a_link",
                "/base",
                "/base/1",
                "/base/1/1259",
                "/base/1/1259_fsm",
                "/base/10",
                "/base/10/2600",
                "/base/pgsql_tmp",
                "/global",
                "/global/1262",
                "/pg_replslot",
                "/pg_stat_tmp",
                "/pg_tblspc/16400/PG_16_202307071",
                "/pg_tblspc/16400/PG_16_202307071/16384",
                "/pg_tblspc/16400/PG_16_202307071/16384/16401",
                "/pg_tblspc/16400/PG_16_202307071/pgsql_tmp",
                "/pg_tblspc",
                "/pg_tblspc/16500",
                "/pg_tblspc/16500/PG_16_202307071",
                "/pg_tblspc/16500/PG_16_202307071/1",
                "/pg_tblspc/16500/PG_16_202307071/1/2",
                "/pg_wal",
                "/postgresql.auto.conf",
                "/recovery.signal",
            ]
        );
        let control = walk.pg_control.as_ref().unwrap();
        assert_eq!(control.member, PG_CONTROL_MEMBER);
        assert_eq!(control.size, 8192);
        assert_eq!(
            walk.tablespaces,
            [TablespaceLocation {
                oid: "16400".into(),
                location: tablespace.clone()
            }]
        );
        let by_name = |m: &str| walk.entries.iter().find(|e| e.member == m).unwrap();
        let ts_file = by_name("/pg_tblspc/16400/PG_16_202307071/16384/16401");
        assert_eq!(ts_file.path, tablespace.join("PG_16_202307071/16384/16401"));
        assert_eq!(ts_file.size, 20);
        assert_eq!(by_name("/base/1/1259").kind, EntryKind::File);
        assert_eq!(by_name("/base/1").kind, EntryKind::Dir);
        assert_eq!(by_name("/base/1").size, 0);
        assert_eq!(
            by_name("/a_link").kind,
            EntryKind::Symlink {
                target: "PG_VERSION".into()
            }
        );
        let version = by_name("/PG_VERSION");
        let meta = fs::metadata(pgdata.join("PG_VERSION")).unwrap();
        assert_eq!(version.mode, meta.mode() & 0o7777);
        assert_eq!(version.uid, meta.uid());
        assert_eq!(version.mtime, meta.modified().unwrap());
    }

    #[test]
    fn pgdata_given_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("real/PG_VERSION"), 3);
        symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        let walk = walk(&dir.path().join("link")).unwrap();
        assert_eq!(members(&walk), ["/", "/PG_VERSION"]);
        assert!(walk.pg_control.is_none());
    }

    #[test]
    fn not_a_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("f"), 1);
        assert!(walk(&dir.path().join("f")).is_err());
        assert!(walk(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn a_dropped_tablespace_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let pgdata = dir.path().join("data");
        fs::create_dir_all(pgdata.join("pg_tblspc")).unwrap();
        symlink(dir.path().join("gone"), pgdata.join("pg_tblspc/16400")).unwrap();
        let walk = walk(&pgdata).unwrap();
        assert_eq!(members(&walk), ["/", "/pg_tblspc"]);
        assert!(walk.tablespaces.is_empty());
    }

    #[test]
    fn a_vanished_directory_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(sorted_names(&dir.path().join("gone")).unwrap().is_none());
        let mut walker = Walker::default();
        walker
            .walk_dir(&dir.path().join("gone"), "/base/gone", Place::Plain)
            .unwrap();
        assert!(walker.out.entries.is_empty());
    }

    #[test]
    fn a_name_that_vanished_after_listing_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("a"), 1);
        touch(&dir.path().join("c"), 1);
        let mut walker = Walker::default();
        let names = ["a", "b_dropped", "c"]
            .map(std::ffi::OsString::from)
            .to_vec();
        walker
            .walk_names(dir.path(), names, "/base/5", Place::Plain)
            .unwrap();
        let got: Vec<&str> = walker
            .out
            .entries
            .iter()
            .map(|e| e.member.as_str())
            .collect();
        assert_eq!(got, ["/base/5/a", "/base/5/c"]);
    }

    #[test]
    fn files_vanishing_during_a_walk_are_tolerated() {
        // Many walks while another thread keeps creating and deleting relation files.
        let dir = tempfile::tempdir().unwrap();
        let pgdata = dir.path().join("data");
        let db = pgdata.join("base/5");
        fs::create_dir_all(&db).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut i = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let file = db.join(format!("{}", 16384 + i % 64));
                    if fs::write(&file, b"x").is_ok() {
                        let _ = fs::remove_file(&file);
                    }
                    let sub = db.join(format!("d{}", i % 8));
                    let _ = fs::create_dir(&sub);
                    let _ = fs::write(sub.join("f"), b"y");
                    let _ = fs::remove_file(sub.join("f"));
                    let _ = fs::remove_dir(&sub);
                    i += 1;
                }
            });
            for _ in 0..2000 {
                walk(&pgdata).unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }

    fn file(member: &str, size: u64) -> Entry {
        Entry {
            member: member.into(),
            path: PathBuf::from(member),
            kind: EntryKind::File,
            size,
            mode: 0o600,
            uid: 0,
            gid: 0,
            mtime: SystemTime::UNIX_EPOCH,
        }
    }

    fn dir_entry(member: &str) -> Entry {
        Entry {
            kind: EntryKind::Dir,
            size: 0,
            ..file(member, 0)
        }
    }

    fn names(parts: &[Vec<Entry>]) -> Vec<Vec<&str>> {
        parts
            .iter()
            .map(|p| p.iter().map(|e| e.member.as_str()).collect())
            .collect()
    }

    #[test]
    fn partition_closes_after_strictly_greater() {
        // Exactly at the threshold: the part stays open.
        let parts = partition(
            vec![file("/a", 5), file("/b", 5), file("/c", 1), dir_entry("/d")],
            10,
        );
        assert_eq!(names(&parts), [vec!["/a", "/b", "/c"], vec!["/d"]]);
        // One byte more closes it right after the file.
        let parts = partition(vec![file("/a", 5), file("/b", 6), file("/c", 1)], 10);
        assert_eq!(names(&parts), [vec!["/a", "/b"], vec!["/c"]]);
    }

    #[test]
    fn partition_edge_cases() {
        assert!(partition(Vec::new(), 10).is_empty());
        // Directories add nothing, however many.
        let dirs: Vec<Entry> = (0..100).map(|i| dir_entry(&format!("/d{i}"))).collect();
        assert_eq!(partition(dirs, 0).len(), 1);
        // A file bigger than the threshold shares its part with what came before.
        let parts = partition(
            vec![
                dir_entry("/"),
                file("/small", 1),
                file("/big", 100),
                file("/x", 0),
            ],
            10,
        );
        assert_eq!(names(&parts), [vec!["/", "/small", "/big"], vec!["/x"]]);
        // Threshold 0: every non-empty file closes a part; empty files do not.
        let parts = partition(vec![file("/e", 0), file("/a", 1), file("/b", 1)], 0);
        assert_eq!(names(&parts), [vec!["/e", "/a"], vec!["/b"]]);
        // The counter restarts in each part.
        let parts = partition((0..6).map(|i| file(&format!("/{i}"), 4)), 10);
        assert_eq!(
            names(&parts),
            [vec!["/0", "/1", "/2"], vec!["/3", "/4", "/5"]]
        );
        // No overflow near u64::MAX.
        let parts = partition(vec![file("/a", u64::MAX), file("/b", u64::MAX)], u64::MAX);
        assert_eq!(names(&parts), [vec!["/a", "/b"]]);
    }
}
