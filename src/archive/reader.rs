//! Extracting a tar stream from storage into a directory, treating the stream as untrusted.
//!
//! Parsing (USTAR, PAX, GNU long names, old V7) is the `tar` crate's; every file system change
//! is made here. Member names are joined to the target whether or not they start with `/` or
//! `./`. Directories are created (0700, then the header's mode), regular files written with the
//! header's permission bits (setuid, setgid and sticky dropped) if the filter accepts their
//! name, hard links made, symlinks made only when allowed, devices and FIFOs refused, other
//! types (global PAX headers, GNU sparse files) skipped. Extended headers larger than
//! [`super::guard::MAX_EXTENDED_HEADER`] are refused before they are read
//! ([`super::guard::HeaderGuard`]).
//!
//! Safety: nothing is ever written outside the target (or a [`Redirect`] directory).
//! * A name with a `..` component is refused.
//! * Every existing component of a parent path is checked with `lstat`: a real directory is
//!   fine, a symlink only if it resolves inside the same root; anything else is refused.
//! * Files are opened with `O_NOFOLLOW` and never written through an existing symlink.
//! * Symlink members are refused unless [`ExtractOptions::allow_symlinks`]; even then their
//!   target must be relative and stay inside the root.
//! * Hard links must name an existing regular file inside the root.
//!
//! A stream that ends inside a member is an error; one that ends without the two end-of-archive
//! blocks is accepted (WAL-G's reader does the same); anything after the end-of-archive block
//! must be zeros. Owners and mtimes are not restored (WAL-G restores neither). The checks
//! assume nothing else changes the target during extraction.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::guard::HeaderGuard;
use super::writer::BUFFER_SIZE;

/// Member names under a prefix go to another directory instead of the target: how the caller
/// restores tablespaces (`pg_tblspc/16400` → `/mnt/ts1`) without writing through a symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// A member name prefix, whole components (`/pg_tblspc/16400` or `pg_tblspc/16400`).
    pub member_prefix: String,
    /// Where members under it go; created if missing.
    pub dir: PathBuf,
}

/// How [`extract`] treats members.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Create symlink members whose target is relative and stays inside the root. Off: every
    /// symlink member is refused. Tablespace links are not members (the caller recreates them
    /// from the backup's tablespace spec), but other symlinks in PGDATA are (WAL-G stores them
    /// with the link's own name as target; walg stores the real target).
    pub allow_symlinks: bool,
    /// Skip a symlink member that would be refused instead of failing; it is counted in
    /// [`ExtractReport::skipped_symlinks`].
    pub skip_symlinks: bool,
    /// Member prefixes extracted elsewhere (tablespaces).
    pub redirects: Vec<Redirect>,
}

/// What [`extract`] wrote, for the fsync pass that must follow ([`super::sync_all`]). Paths
/// are under the canonical form of the target (symlinks in the target's own path resolved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractReport {
    /// Regular files written, in stream order.
    pub files: Vec<PathBuf>,
    /// Directories created or changed, and every directory in which an entry was created.
    pub dirs: Vec<PathBuf>,
    /// Regular members the filter turned down.
    pub skipped: u64,
    /// Symlink members skipped under [`ExtractOptions::skip_symlinks`].
    pub skipped_symlinks: u64,
    /// Content bytes written.
    pub bytes: u64,
    /// The names, as stored, of the members restored (directories, regular files, hard links
    /// and symlinks), for checking that a backup came back whole.
    pub members: Vec<String>,
}

/// Why an extraction failed. Each message is one line naming the member.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The member would write outside the target, or is a kind of member that is not allowed.
    #[error("tar member {member:?} refused: {reason}")]
    Unsafe {
        /// The member name as stored.
        member: String,
        /// Why.
        reason: String,
    },
    /// The stream ended inside a member's content.
    #[error(
        "tar member {member:?} is truncated: the stream ended after {got} of its {expected} bytes"
    )]
    Truncated {
        /// The member name as stored.
        member: String,
        /// The size its header gives.
        expected: u64,
        /// Bytes present.
        got: u64,
    },
    /// The stream is not a valid tar stream, or reading it failed (a decompression or network
    /// error arrives here too).
    #[error("cannot read the tar stream {place}: {source}")]
    Read {
        /// `at its start`, `after member "…"` or `in member "…"`.
        place: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Bytes after the end-of-archive block are not all zero.
    #[error("the tar stream has non-zero data {offset} bytes after its end-of-archive block")]
    TrailingData {
        /// Offset of the first non-zero byte, counted from the end of the first zero block.
        offset: u64,
    },
    /// Creating or writing something in the target failed.
    #[error("tar member {member:?}: cannot write {}: {source}", path.display())]
    Write {
        /// The member name as stored.
        member: String,
        /// The path that failed.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The target directory (or a redirect directory) cannot be created or resolved.
    #[error("cannot prepare the directory {}: {source}", path.display())]
    Target {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Extracts `stream` into `target` (created if missing); see the module documentation.
///
/// `filter(member)` decides, for regular files and hard links only, whether the member is
/// written: WAL-G's `files_metadata.json` filter. It gets the member name exactly as stored
/// (`/base/1/1259`, `backup_label`). Directories are always created.
pub fn extract(
    stream: impl Read,
    target: &Path,
    filter: &dyn Fn(&str) -> bool,
    opts: &ExtractOptions,
) -> Result<ExtractReport, ExtractError> {
    let mut extractor = Extractor::new(target, filter, opts)?;
    let mut archive = tar::Archive::new(HeaderGuard::new(stream));
    let mut last: Option<String> = None;
    {
        let entries = archive.entries().map_err(|source| ExtractError::Read {
            place: "at its start".into(),
            source,
        })?;
        for item in entries {
            let entry = item.map_err(|source| ExtractError::Read {
                place: match &last {
                    Some(member) => format!("after member {member:?}"),
                    None => "at its start".into(),
                },
                source,
            })?;
            let member = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            extractor.extract_member(entry, &member)?;
            last = Some(member);
        }
    }
    check_trailing_zeros(archive.into_inner().into_inner(), &mut extractor.buf)?;
    Ok(extractor.report())
}

/// One root members are resolved in: the target or a redirect directory (both canonical).
struct Root {
    prefix: Vec<Vec<u8>>,
    dir: PathBuf,
}

struct Extractor<'a> {
    target: PathBuf,
    redirects: Vec<Root>,
    filter: &'a dyn Fn(&str) -> bool,
    allow_symlinks: bool,
    skip_symlinks: bool,
    /// Paths checked (or created) as real directories.
    known_dirs: HashSet<PathBuf>,
    files: Vec<PathBuf>,
    dirs: BTreeSet<PathBuf>,
    skipped: u64,
    skipped_symlinks: u64,
    bytes: u64,
    members: Vec<String>,
    buf: Vec<u8>,
}

/// Where a member other than a directory goes: its root, its parent's components relative
/// to the root and its own file name.
struct Place<'m> {
    member: &'m str,
    root: &'m Path,
    parent_rel: &'m [&'m [u8]],
    last: &'m OsStr,
}

/// The refusal of `member` for `reason`.
fn refuse(member: &str, reason: String) -> ExtractError {
    ExtractError::Unsafe {
        member: member.to_string(),
        reason,
    }
}

/// What a member is, from its header; devices and FIFOs are refused with the reason.
fn member_kind(header: &tar::Header, raw_name: &[u8]) -> Result<Kind, String> {
    // Old (pre-POSIX) archives mark directories with typeflag NUL and a trailing slash.
    let old_style_dir = header.as_bytes()[156] == 0 && raw_name.ends_with(b"/");
    Ok(match header.entry_type() {
        tar::EntryType::Regular if old_style_dir => Kind::Dir,
        tar::EntryType::Regular => Kind::File,
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => Kind::Symlink,
        tar::EntryType::Link => Kind::HardLink,
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            return Err("it is a device or a FIFO, which a data directory does not hold".into());
        }
        _ => Kind::Ignored,
    })
}

/// What a member asks for.
enum Kind {
    Dir,
    File,
    Symlink,
    HardLink,
    Ignored,
}

impl<'a> Extractor<'a> {
    fn new(
        target: &Path,
        filter: &'a dyn Fn(&str) -> bool,
        opts: &ExtractOptions,
    ) -> Result<Extractor<'a>, ExtractError> {
        let prepare = |dir: &Path| -> Result<PathBuf, ExtractError> {
            let target_err = |source| ExtractError::Target {
                path: dir.to_path_buf(),
                source,
            };
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(target_err)?;
            fs::canonicalize(dir).map_err(target_err)
        };
        let target = prepare(target)?;
        let mut redirects = Vec::new();
        for redirect in &opts.redirects {
            let prefix = components(redirect.member_prefix.as_bytes()).map_err(|reason| {
                ExtractError::Target {
                    path: redirect.dir.clone(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("bad member prefix {:?}: {reason}", redirect.member_prefix),
                    ),
                }
            })?;
            if prefix.is_empty() {
                return Err(ExtractError::Target {
                    path: redirect.dir.clone(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a redirect needs a non-empty member prefix",
                    ),
                });
            }
            redirects.push(Root {
                prefix: prefix.into_iter().map(<[u8]>::to_vec).collect(),
                dir: prepare(&redirect.dir)?,
            });
        }
        // Longest prefix first, so nested prefixes pick the most specific.
        redirects.sort_by_key(|root| std::cmp::Reverse(root.prefix.len()));
        Ok(Extractor {
            target,
            redirects,
            filter,
            allow_symlinks: opts.allow_symlinks,
            skip_symlinks: opts.skip_symlinks,
            known_dirs: HashSet::new(),
            files: Vec::new(),
            dirs: BTreeSet::new(),
            skipped: 0,
            skipped_symlinks: 0,
            bytes: 0,
            members: Vec::new(),
            buf: vec![0; BUFFER_SIZE],
        })
    }

    fn report(self) -> ExtractReport {
        ExtractReport {
            files: self.files,
            dirs: self.dirs.into_iter().collect(),
            skipped: self.skipped,
            skipped_symlinks: self.skipped_symlinks,
            bytes: self.bytes,
            members: self.members,
        }
    }

    /// Extracts one member under its root: a directory, a regular file, a symlink or a hard
    /// link, each checked so that nothing lands outside the target; refuses devices and FIFOs,
    /// ignores other kinds.
    fn extract_member<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        member: &str,
    ) -> Result<(), ExtractError> {
        let raw_name = entry.path_bytes().into_owned();
        let comps = components(&raw_name).map_err(|r| refuse(member, r.to_string()))?;
        let kind = member_kind(entry.header(), &raw_name).map_err(|r| refuse(member, r))?;
        if matches!(kind, Kind::Ignored) {
            return Ok(());
        }
        let mode = entry.header().mode().map_err(|source| ExtractError::Read {
            place: format!("in member {member:?}"),
            source,
        })?;
        let (root, rel) = self.root_for(&comps);
        let root = root.to_path_buf();

        if matches!(kind, Kind::Dir) {
            self.directory(member, &root, &rel, mode)?;
            self.members.push(member.to_string());
            return Ok(());
        }
        let Some((last, parent_rel)) = rel.split_last() else {
            return Err(refuse(
                member,
                "only a directory may stand for the target directory itself".into(),
            ));
        };
        let place = Place {
            member,
            root: &root,
            parent_rel,
            last: OsStr::from_bytes(last),
        };
        match kind {
            Kind::File => self.extract_file(&place, &mut entry, mode),
            Kind::Symlink => {
                let link = entry.link_name_bytes().unwrap_or_default().into_owned();
                self.extract_symlink(&place, &link)
            }
            Kind::HardLink => {
                if !(self.filter)(member) {
                    self.skipped += 1;
                    return Ok(());
                }
                let link = entry.link_name_bytes().unwrap_or_default().into_owned();
                self.extract_hard_link(&place, &link)
            }
            Kind::Dir | Kind::Ignored => Ok(()),
        }
    }

    /// A regular file, unless the filter skips it.
    fn extract_file<R: Read>(
        &mut self,
        place: &Place<'_>,
        entry: &mut tar::Entry<'_, R>,
        mode: u32,
    ) -> Result<(), ExtractError> {
        let member = place.member;
        if !(self.filter)(member) {
            self.skipped += 1;
            return Ok(());
        }
        let parent = self.parent(member, place.root, place.parent_rel, true)?;
        let path = parent.join(place.last);
        let size = entry.size();
        let written = self.regular_file(member, &path, entry, size, mode & 0o777)?;
        self.bytes += written;
        self.files.push(path);
        self.dirs.insert(parent);
        self.members.push(member.to_string());
        Ok(())
    }

    /// A symlink to `link`, which must be allowed, relative and stay inside its root (else it
    /// is refused, or skipped when symlinks are to be skipped).
    fn extract_symlink(&mut self, place: &Place<'_>, link: &[u8]) -> Result<(), ExtractError> {
        let member = place.member;
        let shown = String::from_utf8_lossy(link);
        let refusal = if !self.allow_symlinks {
            Some(format!(
                "it is a symlink (to {shown:?}) and symlinks are not allowed here"
            ))
        } else if link.is_empty() || link.starts_with(b"/") {
            Some(format!(
                "its symlink target {shown:?} is not a relative path"
            ))
        } else {
            None
        };
        if let Some(reason) = refusal {
            if self.skip_symlinks {
                self.skipped_symlinks += 1;
                return Ok(());
            }
            return Err(refuse(member, reason));
        }
        let parent = self.parent(member, place.root, place.parent_rel, true)?;
        // Where the link really sits decides what its ".." components reach.
        let depth = parent
            .strip_prefix(place.root)
            .map(|p| p.components().count())
            .unwrap_or(0);
        if !stays_inside(link, depth) {
            if self.skip_symlinks {
                self.skipped_symlinks += 1;
                return Ok(());
            }
            return Err(refuse(
                member,
                format!("its symlink target {shown:?} points outside the target"),
            ));
        }
        let path = parent.join(place.last);
        std::os::unix::fs::symlink(OsStr::from_bytes(link), &path)
            .map_err(|source| write_err(member, &path, source))?;
        self.dirs.insert(parent);
        self.members.push(member.to_string());
        Ok(())
    }

    /// A hard link to `link`, which must name a regular file already extracted.
    fn extract_hard_link(&mut self, place: &Place<'_>, link: &[u8]) -> Result<(), ExtractError> {
        let member = place.member;
        let shown = String::from_utf8_lossy(link);
        let link_comps = components(link)
            .map_err(|r| refuse(member, format!("its hard link target {shown:?}: {r}")))?;
        let (link_root, link_rel) = self.root_for(&link_comps);
        let link_root = link_root.to_path_buf();
        let Some((link_last, link_parent_rel)) = link_rel.split_last() else {
            return Err(refuse(
                member,
                format!("its hard link target {shown:?} is not a file"),
            ));
        };
        let source_parent = match self.parent(member, &link_root, link_parent_rel, false) {
            Err(ExtractError::Write { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(refuse(
                    member,
                    format!("its hard link target {shown:?} does not exist"),
                ));
            }
            other => other?,
        };
        let source = source_parent.join(OsStr::from_bytes(link_last));
        match fs::symlink_metadata(&source) {
            Ok(meta) if meta.is_file() => {}
            _ => {
                return Err(refuse(
                    member,
                    format!("its hard link target {shown:?} is not an extracted regular file"),
                ));
            }
        }
        let parent = self.parent(member, place.root, place.parent_rel, true)?;
        let path = parent.join(place.last);
        fs::hard_link(&source, &path).map_err(|e| write_err(member, &path, e))?;
        self.dirs.insert(parent);
        self.members.push(member.to_string());
        Ok(())
    }

    /// The root a member belongs to and its components relative to that root.
    fn root_for<'c>(&self, comps: &[&'c [u8]]) -> (&Path, Vec<&'c [u8]>) {
        for root in &self.redirects {
            let matches = comps.len() >= root.prefix.len()
                && root
                    .prefix
                    .iter()
                    .zip(comps)
                    .all(|(p, c)| p.as_slice() == *c);
            if matches {
                return (&root.dir, comps[root.prefix.len()..].to_vec());
            }
        }
        (&self.target, comps.to_vec())
    }

    /// Resolves the parent directory `rel` under `root`, checking every existing component and
    /// (if `create`) creating missing ones with mode 0700. Returns a path inside `root`.
    fn parent(
        &mut self,
        member: &str,
        root: &Path,
        rel: &[&[u8]],
        create: bool,
    ) -> Result<PathBuf, ExtractError> {
        let mut current = root.to_path_buf();
        for comp in rel {
            let next = current.join(OsStr::from_bytes(comp));
            if self.known_dirs.contains(&next) {
                current = next;
                continue;
            }
            match fs::symlink_metadata(&next) {
                Ok(meta) if meta.is_dir() => {
                    self.known_dirs.insert(next.clone());
                    current = next;
                }
                Ok(meta) if meta.file_type().is_symlink() => {
                    current = resolve_inside(member, &next, root)?;
                }
                Ok(_) => {
                    return Err(write_err(
                        member,
                        &next,
                        io::Error::new(
                            io::ErrorKind::NotADirectory,
                            "it exists and is not a directory",
                        ),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    if !create_dir(&next).map_err(|e| write_err(member, &next, e))? {
                        // Made meanwhile by another extraction into the same target: check it
                        // as an existing component.
                        let real = existing_component(member, &next, root)?;
                        if real == next {
                            self.known_dirs.insert(next.clone());
                        }
                        current = real;
                        continue;
                    }
                    self.dirs.insert(current);
                    self.dirs.insert(next.clone());
                    self.known_dirs.insert(next.clone());
                    current = next;
                }
                Err(e) => return Err(write_err(member, &next, e)),
            }
        }
        Ok(current)
    }

    fn directory(
        &mut self,
        member: &str,
        root: &Path,
        rel: &[&[u8]],
        mode: u32,
    ) -> Result<(), ExtractError> {
        let permissions = Permissions::from_mode(mode & 0o7777);
        let Some((last, parent_rel)) = rel.split_last() else {
            fs::set_permissions(root, permissions).map_err(|e| write_err(member, root, e))?;
            self.dirs.insert(root.to_path_buf());
            return Ok(());
        };
        let parent = self.parent(member, root, parent_rel, true)?;
        let path = parent.join(OsStr::from_bytes(last));
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            // A directory that is an existing symlink (a `pg_wal` moved elsewhere) is left as it
            // is; writing anything through it is still checked.
            Ok(meta) if meta.file_type().is_symlink() => return Ok(()),
            Ok(_) => {
                return Err(write_err(
                    member,
                    &path,
                    io::Error::new(
                        io::ErrorKind::NotADirectory,
                        "it exists and is not a directory",
                    ),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !create_dir(&path).map_err(|e| write_err(member, &path, e))? {
                    // Made meanwhile by another extraction into the same target.
                    match fs::symlink_metadata(&path) {
                        Ok(meta) if meta.is_dir() => {}
                        Ok(meta) if meta.file_type().is_symlink() => return Ok(()),
                        Ok(_) => {
                            return Err(write_err(
                                member,
                                &path,
                                io::Error::new(
                                    io::ErrorKind::NotADirectory,
                                    "it exists and is not a directory",
                                ),
                            ));
                        }
                        Err(e) => return Err(write_err(member, &path, e)),
                    }
                }
            }
            Err(e) => return Err(write_err(member, &path, e)),
        }
        fs::set_permissions(&path, permissions).map_err(|e| write_err(member, &path, e))?;
        self.known_dirs.insert(path.clone());
        self.dirs.insert(parent);
        self.dirs.insert(path);
        Ok(())
    }

    /// Writes one regular file; returns its size.
    fn regular_file(
        &mut self,
        member: &str,
        path: &Path,
        content: &mut impl Read,
        expected: u64,
        mode: u32,
    ) -> Result<u64, ExtractError> {
        let refuse_symlink = || ExtractError::Unsafe {
            member: member.to_string(),
            reason: format!(
                "{} is a symlink; refusing to write through it",
                path.display()
            ),
        };
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(refuse_symlink()),
            Ok(meta) if !meta.is_file() => {
                return Err(write_err(
                    member,
                    path,
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "it exists and is not a regular file",
                    ),
                ));
            }
            _ => {}
        }
        let mut file = match File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(file) => file,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(refuse_symlink()),
            Err(e) => return Err(write_err(member, path, e)),
        };
        let mut got = 0u64;
        loop {
            let n = match content.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ExtractError::Read {
                        place: format!("in member {member:?}"),
                        source,
                    });
                }
            };
            file.write_all(&self.buf[..n])
                .map_err(|e| write_err(member, path, e))?;
            got += n as u64;
        }
        if got < expected {
            return Err(ExtractError::Truncated {
                member: member.to_string(),
                expected,
                got,
            });
        }
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| write_err(member, path, e))?;
        Ok(got)
    }
}

/// Creates one directory with mode 0700: `Ok(true)` if it was made here, `Ok(false)` if
/// something already exists at `path` (another extraction into the same target may create the
/// same directories at the same time; the caller checks what is there).
fn create_dir(path: &Path) -> io::Result<bool> {
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// An existing parent component `path` under `root`, found after a lost race to create it:
/// a real directory is used as it is, a symlink only if it resolves to a directory inside
/// `root`, anything else is refused.
fn existing_component(member: &str, path: &Path, root: &Path) -> Result<PathBuf, ExtractError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(path.to_path_buf()),
        Ok(meta) if meta.file_type().is_symlink() => resolve_inside(member, path, root),
        Ok(_) => Err(write_err(
            member,
            path,
            io::Error::new(
                io::ErrorKind::NotADirectory,
                "it exists and is not a directory",
            ),
        )),
        Err(e) => Err(write_err(member, path, e)),
    }
}

/// Whether the relative link target `link`, followed from a directory `depth` levels below the
/// root, stays inside the root (judged on the text; every link this module creates passes).
fn stays_inside(link: &[u8], mut depth: usize) -> bool {
    for comp in link.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." if depth == 0 => return false,
            b".." => depth -= 1,
            _ => depth += 1,
        }
    }
    true
}

/// Canonicalises the symlink `link` and requires the result to be a directory inside `root`.
fn resolve_inside(member: &str, link: &Path, root: &Path) -> Result<PathBuf, ExtractError> {
    let refuse = |reason: String| ExtractError::Unsafe {
        member: member.to_string(),
        reason,
    };
    let real = fs::canonicalize(link).map_err(|e| {
        refuse(format!(
            "{} is a symlink that cannot be resolved ({e})",
            link.display()
        ))
    })?;
    if !real.starts_with(root) {
        return Err(refuse(format!(
            "{} is a symlink to {}, outside {}",
            link.display(),
            real.display(),
            root.display()
        )));
    }
    if !real.is_dir() {
        return Err(refuse(format!(
            "{} is a symlink to {}, which is not a directory",
            link.display(),
            real.display()
        )));
    }
    Ok(real)
}

/// The components of a member name: empty and `.` components dropped (so `/x`, `./x` and `x`
/// are the same), `..` refused.
fn components(name: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let mut out = Vec::new();
    for comp in name.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("its name has a `..` component"),
            _ => out.push(comp),
        }
    }
    Ok(out)
}

fn write_err(member: &str, path: &Path, source: io::Error) -> ExtractError {
    ExtractError::Write {
        member: member.to_string(),
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the rest of the stream, which must be zeros.
fn check_trailing_zeros(mut rest: impl Read, buf: &mut [u8]) -> Result<(), ExtractError> {
    let mut offset = 0u64;
    loop {
        let n = match rest.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(ExtractError::Read {
                    place: "after its end-of-archive block".into(),
                    source,
                });
            }
        };
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Err(ExtractError::TrailingData {
                offset: offset + i as u64,
            });
        }
        offset += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One raw USTAR member; `name` and `link` are stored as given, however hostile.
    fn member(name: &str, typeflag: u8, link: &str, data: &[u8]) -> Vec<u8> {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_mode(0o640);
        header.set_size(data.len() as u64);
        header.as_old_mut().linkflag = [typeflag];
        header.set_cksum();
        let mut out = header.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    fn all(_: &str) -> bool {
        true
    }

    #[test]
    fn names_normalise_to_components() {
        assert_eq!(
            components(b"/base/1/1259").unwrap(),
            [&b"base"[..], b"1", b"1259"]
        );
        assert_eq!(components(b"./base//1/").unwrap(), [&b"base"[..], b"1"]);
        assert!(components(b"/").unwrap().is_empty());
        assert!(components(b"./").unwrap().is_empty());
        assert!(components(b"a/../b").is_err());
        assert!(components(b"/../../etc/x").is_err());
        assert_eq!(components(b"..a/b..").unwrap(), [&b"..a"[..], b"b.."]);
    }

    #[test]
    fn leading_slash_dot_slash_and_plain_names_land_in_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let mut tar = Vec::new();
        tar.extend(member("/a", b'0', "", b"1"));
        tar.extend(member("./b", b'0', "", b"22"));
        tar.extend(member("c/d", b'0', "", b"333"));
        tar.extend(member("/", b'5', "", b""));
        let report = extract(tar.as_slice(), dir.path(), &all, &Default::default()).unwrap();
        let target = fs::canonicalize(dir.path()).unwrap();
        assert_eq!(fs::read(target.join("a")).unwrap(), b"1");
        assert_eq!(fs::read(target.join("b")).unwrap(), b"22");
        assert_eq!(fs::read(target.join("c/d")).unwrap(), b"333");
        assert_eq!(
            report.files,
            [target.join("a"), target.join("b"), target.join("c/d")]
        );
        assert_eq!(report.dirs, [target.clone(), target.join("c")]);
        assert_eq!(report.bytes, 6);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&target), 0o640);
        assert_eq!(mode(&target.join("a")), 0o640);
        assert_eq!(mode(&target.join("c")), 0o700);
    }

    #[test]
    fn redirects_send_a_prefix_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("data");
        let ts = dir.path().join("ts");
        let mut tar = Vec::new();
        tar.extend(member("/pg_tblspc/16400/PG_16/1/2", b'0', "", b"t"));
        tar.extend(member("/pg_tblspc/164000/x", b'0', "", b"n"));
        tar.extend(member("/pg_tblspc", b'5', "", b""));
        let opts = ExtractOptions {
            redirects: vec![Redirect {
                member_prefix: "pg_tblspc/16400".into(),
                dir: ts.clone(),
            }],
            ..Default::default()
        };
        extract(tar.as_slice(), &target, &all, &opts).unwrap();
        assert_eq!(fs::read(ts.join("PG_16/1/2")).unwrap(), b"t");
        assert_eq!(fs::read(target.join("pg_tblspc/164000/x")).unwrap(), b"n");
        assert!(!target.join("pg_tblspc/16400").exists());
    }

    #[test]
    fn trailing_zeros_are_fine_and_anything_else_is_not() {
        let mut buf = vec![0; 16];
        assert!(check_trailing_zeros(&[0u8; 100][..], &mut buf).is_ok());
        let mut data = vec![0u8; 100];
        data[37] = 1;
        match check_trailing_zeros(data.as_slice(), &mut buf) {
            Err(ExtractError::TrailingData { offset }) => assert_eq!(offset, 37),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn devices_and_fifos_are_refused_other_types_skipped_but_names_still_checked() {
        let dir = tempfile::tempdir().unwrap();
        for (name, flag) in [("fifo", b'6'), ("chr", b'3'), ("blk", b'4')] {
            let err = extract(
                member(name, flag, "", b"").as_slice(),
                dir.path(),
                &all,
                &Default::default(),
            )
            .unwrap_err();
            assert!(matches!(err, ExtractError::Unsafe { .. }), "{err}");
            assert!(err.to_string().contains(name), "{err}");
        }
        let tar = member("global", b'g', "", b"");
        let report = extract(tar.as_slice(), dir.path(), &all, &Default::default()).unwrap();
        assert!(report.files.is_empty());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        let tar = member("../fifo", b'6', "", b"");
        let err = extract(tar.as_slice(), dir.path(), &all, &Default::default()).unwrap_err();
        assert!(matches!(err, ExtractError::Unsafe { .. }), "{err}");
    }

    #[test]
    fn a_regular_file_cannot_replace_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let tar = member("/", b'0', "", b"x");
        let err = extract(tar.as_slice(), dir.path(), &all, &Default::default()).unwrap_err();
        assert!(matches!(err, ExtractError::Unsafe { .. }), "{err}");
    }

    #[test]
    fn old_style_directory_with_a_trailing_slash() {
        let dir = tempfile::tempdir().unwrap();
        let tar = member("olddir/", b'\0', "", b"");
        extract(tar.as_slice(), dir.path(), &all, &Default::default()).unwrap();
        assert!(dir.path().join("olddir").is_dir());
    }

    #[test]
    fn errors_are_one_line_and_name_the_member() {
        let dir = tempfile::tempdir().unwrap();
        let tar = member("/a/../../x", b'0', "", b"x");
        let err = extract(tar.as_slice(), dir.path(), &all, &Default::default()).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains('\n'));
        assert!(text.contains("\"/a/../../x\""), "{text}");
    }

    /// A header of type `typeflag` declaring `size` bytes, without content.
    fn bare_header(name: &str, typeflag: u8, size: u64) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_mode(0o600);
        header.set_size(size);
        header.as_old_mut().linkflag = [typeflag];
        header.set_cksum();
        header.as_bytes().to_vec()
    }

    /// A PAX extended header holding `records` (`key=value` pairs).
    fn pax(records: &[(&str, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (key, value) in records {
            let base = key.len() + value.len() + 3;
            let mut len = base + 1;
            while base + len.to_string().len() != len {
                len += 1;
            }
            body.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
        }
        let mut out = member("PaxHeader", b'x', "", &body);
        out.truncate(512);
        let mut header = tar::Header::from_byte_slice(&out).clone();
        header.set_size(body.len() as u64);
        header.set_cksum();
        let mut out = header.as_bytes().to_vec();
        out.extend_from_slice(&body);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    /// Fails any read past `limit` bytes: proof that a header was refused before its content.
    struct Capped<R> {
        inner: R,
        left: u64,
    }

    impl<R: Read> Read for Capped<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("read past the limit"));
            }
            let want = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            let n = self.inner.read(&mut buf[..want])?;
            self.left -= n as u64;
            Ok(n)
        }
    }

    fn huge_header_fails_without_reading_it(prefix: Vec<u8>, typeflag: u8) {
        let dir = tempfile::tempdir().unwrap();
        let mut stream = prefix;
        stream.extend(bare_header("x", typeflag, 2 << 30));
        let capped = Capped {
            inner: stream.as_slice().chain(io::repeat(b'a')),
            left: 4 << 20,
        };
        let started = std::time::Instant::now();
        let err = extract(capped, dir.path(), &all, &Default::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("1048576-byte limit"), "{text}");
        assert!(!text.contains('\n'), "{text}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_huge_gnu_long_name_or_pax_header_is_refused_before_it_is_read() {
        for flag in [b'L', b'K', b'x', b'g'] {
            huge_header_fails_without_reading_it(Vec::new(), flag);
            // After ordinary members, so the guard has to follow the stream to find it.
            let mut before = member("/a", b'0', "", &[7; 1000]);
            before.extend(member("/dir", b'5', "", b""));
            huge_header_fails_without_reading_it(before, flag);
        }
    }

    #[test]
    fn a_huge_header_size_in_base_256_is_refused_too() {
        // Bytes before the last eight of a base-256 size are ignored by the parser; the guard
        // must read the same 2 GiB.
        let mut header = bare_header("x", b'L', 0);
        header[124] = 0x80;
        header[125] = 0xff;
        header[128..136].copy_from_slice(&(2u64 << 30).to_be_bytes());
        let parsed = tar::Header::from_byte_slice(&header);
        assert_eq!(parsed.entry_size().unwrap(), 2 << 30);
        let mut header = parsed.clone();
        header.set_cksum();
        let dir = tempfile::tempdir().unwrap();
        let capped = Capped {
            inner: header.as_bytes().as_slice().chain(io::repeat(b'a')),
            left: 4 << 20,
        };
        let err = extract(capped, dir.path(), &all, &Default::default()).unwrap_err();
        assert!(err.to_string().contains("1048576-byte limit"), "{err}");
    }

    #[test]
    fn a_pax_size_record_is_followed_to_the_next_header() {
        // The member's own size field says 0; its PAX record says 1000 and wins.
        let mut stream = pax(&[("size", "1000"), ("path", "/sized")]);
        let mut file = member("/sized", b'0', "", &[]);
        file.extend_from_slice(&[b'z'; 1024]);
        stream.extend(file);
        huge_header_fails_without_reading_it(stream.clone(), b'L');
        stream.extend([0; 1024]);
        let dir = tempfile::tempdir().unwrap();
        extract(stream.as_slice(), dir.path(), &all, &Default::default()).unwrap();
        assert_eq!(fs::read(dir.path().join("sized")).unwrap(), [b'z'; 1000]);
    }

    #[test]
    fn long_names_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("/{}/{}", "d".repeat(150), "f".repeat(200));
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o600);
        builder
            .append_data(&mut header, long.trim_start_matches('/'), &b"abc"[..])
            .unwrap();
        let mut stream = builder.into_inner().unwrap();
        stream.truncate(stream.len() - 1024);
        let pax_name = format!("/{}/{}", "p".repeat(200), "x".repeat(200));
        stream.extend(pax(&[("path", &pax_name)]));
        stream.extend(member("ignored", b'0', "", b"pax"));
        stream.extend([0; 1024]);
        extract(stream.as_slice(), dir.path(), &all, &Default::default()).unwrap();
        assert_eq!(fs::read(dir.path().join(&long[1..])).unwrap(), b"abc");
        assert_eq!(fs::read(dir.path().join(&pax_name[1..])).unwrap(), b"pax");
    }

    #[test]
    fn parallel_extractions_into_one_target_share_directories() {
        const PARTS: usize = 8;
        let tars: Vec<Vec<u8>> = (0..PARTS)
            .map(|part| {
                let mut tar = Vec::new();
                for db in 0..6 {
                    tar.extend(member("/base", b'5', "", b""));
                    tar.extend(member(&format!("/base/{db}"), b'5', "", b""));
                    for n in 0..3 {
                        let name = format!("/base/{db}/deep/{part}_{n}");
                        tar.extend(member(&name, b'0', "", b"x"));
                    }
                }
                tar.extend([0; 1024]);
                tar
            })
            .collect();
        for _ in 0..30 {
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("t");
            fs::create_dir(&target).unwrap();
            let barrier = std::sync::Barrier::new(PARTS);
            std::thread::scope(|scope| {
                for tar in &tars {
                    let (target, barrier) = (&target, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        extract(tar.as_slice(), target, &all, &Default::default()).unwrap()
                    });
                }
            });
            for db in 0..6 {
                let files = fs::read_dir(target.join(format!("base/{db}/deep")))
                    .unwrap()
                    .count();
                assert_eq!(files, PARTS * 3);
            }
        }
    }

    #[test]
    fn a_directory_member_over_an_existing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("base"), b"file").unwrap();
        let err = extract(
            member("/base", b'5', "", b"").as_slice(),
            dir.path(),
            &all,
            &Default::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        let err = extract(
            member("/base/x", b'0', "", b"").as_slice(),
            dir.path(),
            &all,
            &Default::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
