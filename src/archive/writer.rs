//! Tar members the way WAL-G writes them, headers built here byte by byte.
//!
//! Each member is a plain USTAR header (`ustar\0`, version `00`) when it fits; otherwise a PAX
//! extended header (`x`) comes first, carrying what does not fit: a name that cannot be split
//! into USTAR's 155-byte prefix and 100-byte name or is not ASCII, a link target over 100 bytes
//! or not ASCII, a size of 8 GiB or more, ids of 2^21 or more, an mtime before 1970 or after
//! 2242. No GNU extensions. Names keep WAL-G's leading `/`. Mode = permission bits, numeric
//! uid/gid and no user or group names, mtime rounded to the nearest second; typeflag `0`
//! (file), `5` (directory) or `2` (symlink). [`TarWriter::finish`] writes the two zero blocks
//! and does not pad to a 10240-byte record.
//!
//! File content is streamed through one buffer, never read whole, and always exactly the size
//! recorded by the walk: a file that shrank is padded with zeros, one that grew is cut.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::walk::{Entry, EntryKind};

/// The copy buffer of a writer.
pub const BUFFER_SIZE: usize = 128 * 1024;

const BLOCK: usize = 512;

/// Typeflags.
const REGULAR: u8 = b'0';
const SYMLINK: u8 = b'2';
const DIRECTORY: u8 = b'5';
const PAX: u8 = b'x';

/// Largest values of the octal fields (digits = field width − 1, then a NUL).
const MAX_OCTAL_7: u64 = (1 << 21) - 1;
const MAX_OCTAL_11: u64 = (1 << 33) - 1;

/// A tar stream being written to `W`.
pub struct TarWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    position: u64,
}

/// The header fields of one member.
struct Member<'a> {
    name: &'a [u8],
    typeflag: u8,
    size: u64,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    linkname: &'a [u8],
}

impl<W: Write> TarWriter<W> {
    /// A writer with a [`BUFFER_SIZE`] copy buffer.
    pub fn new(out: W) -> TarWriter<W> {
        TarWriter {
            out,
            buf: vec![0; BUFFER_SIZE],
            position: 0,
        }
    }

    /// Bytes of tar stream written so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Writes the member for a walked entry.
    ///
    /// Returns `Some(content bytes written)` (always `entry.size` for files, 0 for directories
    /// and symlinks), or `None` when nothing was written: the entry is [`EntryKind::Other`], or
    /// the file no longer exists (PostgreSQL dropped the relation during the backup; WAL-G
    /// leaves such a file out as if it never existed, and so must the caller's file list).
    ///
    /// The file is opened without following a symlink. An error leaves the stream unusable.
    pub fn append_entry(&mut self, entry: &Entry) -> io::Result<Option<u64>> {
        let mut member = Member {
            name: entry.member.as_bytes(),
            typeflag: REGULAR,
            size: 0,
            mode: entry.mode,
            uid: u64::from(entry.uid),
            gid: u64::from(entry.gid),
            mtime: unix_seconds(entry.mtime),
            linkname: b"",
        };
        match &entry.kind {
            EntryKind::Dir => {
                member.typeflag = DIRECTORY;
                self.write_header(&member)?;
                Ok(Some(0))
            }
            EntryKind::Symlink { target } => {
                member.typeflag = SYMLINK;
                member.linkname = target.as_os_str().as_bytes();
                self.write_header(&member)?;
                Ok(Some(0))
            }
            EntryKind::Other => Ok(None),
            EntryKind::File => {
                let file = match File::options()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&entry.path)
                {
                    Ok(file) => file,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("{}: {e}", entry.path.display()),
                        ));
                    }
                };
                member.size = entry.size;
                self.write_header(&member)?;
                self.copy_content(file, entry.size).map_err(|e| {
                    io::Error::new(e.kind(), format!("{}: {e}", entry.path.display()))
                })?;
                Ok(Some(entry.size))
            }
        }
    }

    /// Writes a regular-file member with `entry`'s name and metadata but other content, exactly
    /// `size` bytes of `content` (zero-padded if it ends early): a delta increment, for one.
    pub fn append_data(&mut self, entry: &Entry, size: u64, content: impl Read) -> io::Result<()> {
        self.write_header(&Member {
            name: entry.member.as_bytes(),
            typeflag: REGULAR,
            size,
            mode: entry.mode,
            uid: u64::from(entry.uid),
            gid: u64::from(entry.gid),
            mtime: unix_seconds(entry.mtime),
            linkname: b"",
        })?;
        self.copy_content(content, size)
    }

    /// Writes `backup_label` or `tablespace_map` as WAL-G does: mode 0600, uid/gid 0, mtime 0.
    pub fn append_label(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.write_header(&Member {
            name: name.as_bytes(),
            typeflag: REGULAR,
            size: bytes.len() as u64,
            mode: 0o600,
            uid: 0,
            gid: 0,
            mtime: 0,
            linkname: b"",
        })?;
        self.copy_content(bytes, bytes.len() as u64)
    }

    /// Ends the archive with two zero blocks, flushes, and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.write(&[0; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    /// Copies exactly `size` bytes of `content` (cut if longer, zero-padded if shorter), then
    /// pads to a block boundary.
    fn copy_content(&mut self, mut content: impl Read, size: u64) -> io::Result<()> {
        let mut remaining = size;
        let mut ended = false;
        let mut buf = std::mem::take(&mut self.buf);
        let result = (|| {
            while remaining > 0 {
                let want = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let got = if ended {
                    0
                } else {
                    loop {
                        match content.read(&mut buf[..want]) {
                            Ok(n) => break n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(e),
                        }
                    }
                };
                let n = if got == 0 {
                    ended = true;
                    buf[..want].fill(0);
                    want
                } else {
                    got
                };
                self.write(&buf[..n])?;
                remaining -= n as u64;
            }
            let tail = (size % BLOCK as u64) as usize;
            if tail != 0 {
                self.write(&[0; BLOCK][..BLOCK - tail])?;
            }
            Ok(())
        })();
        self.buf = buf;
        result
    }

    fn write_header(&mut self, member: &Member<'_>) -> io::Result<()> {
        let blocks = header_blocks(member)?;
        self.write(&blocks)
    }
}

/// Seconds since the epoch, rounded to the nearest second (as Go's tar writer does).
fn unix_seconds(time: SystemTime) -> i64 {
    let round = |secs: u64, nanos: u32| -> i64 {
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        if nanos >= 500_000_000 {
            secs.saturating_add(1)
        } else {
            secs
        }
    };
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => round(after.as_secs(), after.subsec_nanos()),
        Err(before) => {
            let before = before.duration();
            round(before.as_secs(), before.subsec_nanos()).saturating_neg()
        }
    }
}

/// The header block(s) of a member: an optional PAX header with its records, then the USTAR
/// header.
fn header_blocks(member: &Member<'_>) -> io::Result<Vec<u8>> {
    if member.name.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a tar member needs a name",
        ));
    }
    let fits_octal = |v: u64, max: u64| v <= max;
    let split = split_ustar_name(member.name);
    let linkname_fits = member.linkname.len() <= 100 && member.linkname.is_ascii();
    let mtime_fits = u64::try_from(member.mtime).is_ok_and(|t| fits_octal(t, MAX_OCTAL_11));
    let records = pax_records(member, split.is_some(), linkname_fits, mtime_fits);

    let mut out = Vec::with_capacity(BLOCK * 3);
    if !records.is_empty() {
        out.extend_from_slice(&pax_header(member.name, &records));
    }

    // What does not fit is zero (or truncated) here; the PAX record above overrides it.
    let truncated_name: Vec<u8>;
    let (name, prefix) = match split {
        Some(parts) => parts,
        None => {
            truncated_name = ascii_prefix(member.name, 100);
            (truncated_name.as_slice(), &b""[..])
        }
    };
    let truncated_link: Vec<u8>;
    let linkname = if linkname_fits {
        member.linkname
    } else {
        truncated_link = ascii_prefix(member.linkname, 100);
        &truncated_link
    };
    let fields = Member {
        name,
        typeflag: member.typeflag,
        size: if fits_octal(member.size, MAX_OCTAL_11) {
            member.size
        } else {
            0
        },
        mode: member.mode & 0o7777,
        uid: if fits_octal(member.uid, MAX_OCTAL_7) {
            member.uid
        } else {
            0
        },
        gid: if fits_octal(member.gid, MAX_OCTAL_7) {
            member.gid
        } else {
            0
        },
        mtime: if mtime_fits { member.mtime } else { 0 },
        linkname,
    };
    out.extend_from_slice(&ustar_block(&fields, (name, prefix)));
    Ok(out)
}

/// The PAX records a member needs for what its USTAR header cannot hold, sorted by key, as
/// Go writes them.
fn pax_records(
    member: &Member<'_>,
    name_fits: bool,
    linkname_fits: bool,
    mtime_fits: bool,
) -> Vec<(&'static str, Vec<u8>)> {
    let fits_octal = |v: u64, max: u64| v <= max;
    let mut records: Vec<(&str, Vec<u8>)> = Vec::new();
    if !fits_octal(member.gid, MAX_OCTAL_7) {
        records.push(("gid", member.gid.to_string().into_bytes()));
    }
    if !linkname_fits {
        records.push(("linkpath", member.linkname.to_vec()));
    }
    if !mtime_fits {
        records.push(("mtime", member.mtime.to_string().into_bytes()));
    }
    if !name_fits {
        records.push(("path", member.name.to_vec()));
    }
    if !fits_octal(member.size, MAX_OCTAL_11) {
        records.push(("size", member.size.to_string().into_bytes()));
    }
    if !fits_octal(member.uid, MAX_OCTAL_7) {
        records.push(("uid", member.uid.to_string().into_bytes()));
    }
    records
}

/// The PAX extended header of the member named `name`: its header block and its records,
/// padded to whole blocks.
fn pax_header(name: &[u8], records: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut data = Vec::new();
    for (key, value) in records {
        pax_record(&mut data, key, value);
    }
    let pax_name = pax_header_name(name);
    let mut out = ustar_block(
        &Member {
            name: &pax_name,
            typeflag: PAX,
            size: data.len() as u64,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            linkname: b"",
        },
        (&pax_name, b""),
    )
    .to_vec();
    let padded = data.len().div_ceil(BLOCK) * BLOCK;
    data.resize(padded, 0);
    out.extend_from_slice(&data);
    out
}

/// Splits a name into USTAR's (name, prefix) the way Go does, or `None` if it needs PAX: the
/// name must be ASCII, and either fit in 100 bytes or be split at a `/` (not the first byte)
/// into a prefix of at most 155 bytes and a non-empty rest of at most 100.
fn split_ustar_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if !name.is_ascii() || name.contains(&0) {
        return None;
    }
    if name.len() <= 100 {
        return Some((name, b""));
    }
    let mut limit = name.len().min(156);
    if name.len() <= 156 && name[limit - 1] == b'/' {
        limit -= 1;
    }
    let slash = name[..limit].iter().rposition(|&b| b == b'/')?;
    let rest = &name[slash + 1..];
    if slash == 0 || rest.is_empty() || rest.len() > 100 || slash > 155 {
        return None;
    }
    Some((rest, &name[..slash]))
}

/// The name of a PAX header member: `<dir>/PaxHeaders.0/<file>`, relative, ASCII, ≤ 100 bytes.
fn pax_header_name(name: &[u8]) -> Vec<u8> {
    let trimmed = name.strip_suffix(b"/").unwrap_or(name);
    let (dir, file) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => (&b""[..], trimmed),
    };
    let dir = dir.strip_prefix(b"/").unwrap_or(dir);
    let mut out = Vec::new();
    out.extend_from_slice(dir);
    out.extend_from_slice(b"PaxHeaders.0/");
    out.extend_from_slice(file);
    ascii_prefix(&out, 100)
}

/// The first `max` bytes of `bytes`, non-ASCII bytes and NULs replaced by `_`.
fn ascii_prefix(bytes: &[u8], max: usize) -> Vec<u8> {
    bytes
        .iter()
        .take(max)
        .map(|&b| if b.is_ascii() && b != 0 { b } else { b'_' })
        .collect()
}

/// Appends one `"<len> <key>=<value>\n"` record, `<len>` counting the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = 1 + key.len() + 1 + value.len() + 1;
    let mut len = body + 1;
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// One USTAR header block. Every numeric value must already fit its field.
fn ustar_block(member: &Member<'_>, (name, prefix): (&[u8], &[u8])) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    block[..name.len()].copy_from_slice(name);
    octal(&mut block[100..108], u64::from(member.mode));
    octal(&mut block[108..116], member.uid);
    octal(&mut block[116..124], member.gid);
    octal(&mut block[124..136], member.size);
    octal(
        &mut block[136..148],
        u64::try_from(member.mtime).unwrap_or(0),
    );
    block[156] = member.typeflag;
    block[157..157 + member.linkname.len()].copy_from_slice(member.linkname);
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    octal(&mut block[329..337], 0);
    octal(&mut block[337..345], 0);
    block[345..345 + prefix.len()].copy_from_slice(prefix);
    block[148..156].fill(b' ');
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    octal(&mut block[148..155], sum);
    block[155] = b' ';
    block
}

/// Zero-padded octal digits filling all but the last byte of `field`, then a NUL.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let digits = format!("{value:0width$o}");
    let digits = digits.as_bytes();
    let start = digits.len().saturating_sub(width);
    field[..width].copy_from_slice(&digits[start..]);
    field[width] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn entry(member: &str, kind: EntryKind, size: u64, path: PathBuf) -> Entry {
        Entry {
            member: member.into(),
            path,
            kind,
            size,
            mode: 0o640,
            uid: 26,
            gid: 27,
            mtime: UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 600_000_000),
        }
    }

    fn read_back(bytes: &[u8]) -> Vec<(String, u8, u64, Vec<u8>)> {
        let mut archive = tar::Archive::new(bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
                let kind = e.header().entry_type().as_byte();
                let size = e.size();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (name, kind, size, data)
            })
            .collect()
    }

    #[test]
    fn plain_ustar_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        let mut w = TarWriter::new(Vec::new());
        assert_eq!(
            w.append_entry(&entry("/base/1/1259", EntryKind::File, 5, path))
                .unwrap(),
            Some(5)
        );
        let out = w.finish().unwrap();
        assert_eq!(out.len(), 512 + 512 + 1024);
        let h = &out[..512];
        assert_eq!(&h[..13], b"/base/1/1259\0");
        assert_eq!(&h[100..108], b"0000640\0");
        assert_eq!(&h[108..116], b"0000032\0");
        assert_eq!(&h[116..124], b"0000033\0");
        assert_eq!(&h[124..136], b"00000000005\0");
        // 1_700_000_000.6 s rounds up.
        assert_eq!(
            &h[136..148],
            format!("{:011o}\0", 1_700_000_001u64).as_bytes()
        );
        assert_eq!(h[156], b'0');
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert_eq!(&out[512..517], b"hello");
        assert!(out[517..].iter().all(|&b| b == 0));
        let header = tar::Header::from_byte_slice(h);
        assert_eq!(header.cksum().unwrap(), {
            let mut copy = h.to_vec();
            copy[148..156].fill(b' ');
            copy.iter().map(|&b| u32::from(b)).sum::<u32>()
        });
    }

    #[test]
    fn long_names_split_or_go_to_pax() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        // 150 bytes: splits into prefix + name, no PAX.
        let split = format!("/{}/{}", "a".repeat(80), "b".repeat(68));
        // 200 bytes with the last component over 100: PAX.
        let long = format!("/{}/{}", "c".repeat(90), "d".repeat(108));
        // 101 bytes whose only slash is the leading one: Go cannot split it either.
        let unsplittable = format!("/{}", "e".repeat(100));
        let mut w = TarWriter::new(Vec::new());
        for name in [&split, &long, &unsplittable] {
            w.append_entry(&entry(name, EntryKind::File, 1, path.clone()))
                .unwrap();
        }
        let out = w.finish().unwrap();
        // split: 1 header + 1 data; long and unsplittable: PAX header + records + header + data.
        assert_eq!(out.len(), 512 * (2 + 4 + 4) + 1024);
        assert_eq!(out[156], b'0');
        assert_eq!(out[1024 + 156], b'x');
        assert_eq!(out[6 * 512 + 156], b'x');
        let back = read_back(&out);
        let names: Vec<&str> = back.iter().map(|b| b.0.as_str()).collect();
        assert_eq!(
            names,
            [split.as_str(), long.as_str(), unsplittable.as_str()]
        );
    }

    #[test]
    fn big_values_go_to_pax() {
        let member = Member {
            name: b"/big",
            typeflag: REGULAR,
            size: 8 << 30,
            mode: 0o600,
            uid: 1 << 21,
            gid: 5,
            mtime: -1,
            linkname: b"",
        };
        let blocks = header_blocks(&member).unwrap();
        assert_eq!(blocks.len(), 3 * 512);
        let records = String::from_utf8_lossy(&blocks[512..1024]);
        let records = records.trim_end_matches('\0');
        assert_eq!(records, "12 mtime=-1\n19 size=8589934592\n15 uid=2097152\n");
        // Just below the limits: plain USTAR.
        let member = Member {
            size: (8 << 30) - 1,
            uid: (1 << 21) - 1,
            mtime: 0,
            ..member
        };
        assert_eq!(header_blocks(&member).unwrap().len(), 512);
    }

    #[test]
    fn pax_record_lengths() {
        for value_len in 0..300 {
            let mut out = Vec::new();
            pax_record(&mut out, "path", &vec![b'a'; value_len]);
            let text = String::from_utf8(out.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), out.len());
        }
    }

    #[test]
    fn shrunk_file_is_zero_padded_and_grown_file_cut() {
        let dir = tempfile::tempdir().unwrap();
        let shrunk = dir.path().join("shrunk");
        let grown = dir.path().join("grown");
        std::fs::write(&shrunk, b"abc").unwrap();
        std::fs::write(&grown, vec![b'g'; 2000]).unwrap();
        let mut w = TarWriter::new(Vec::new());
        assert_eq!(
            w.append_entry(&entry("/shrunk", EntryKind::File, 10, shrunk))
                .unwrap(),
            Some(10)
        );
        assert_eq!(
            w.append_entry(&entry("/grown", EntryKind::File, 1000, grown))
                .unwrap(),
            Some(1000)
        );
        let back = read_back(&w.finish().unwrap());
        assert_eq!(back[0].3, b"abc\0\0\0\0\0\0\0");
        assert_eq!(back[1].3, vec![b'g'; 1000]);
    }

    #[test]
    fn streams_files_larger_than_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let content: Vec<u8> = (0..BUFFER_SIZE * 3 + 77).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let mut w = TarWriter::new(Vec::new());
        w.append_entry(&entry("/big", EntryKind::File, content.len() as u64, path))
            .unwrap();
        let position = w.position();
        let out = w.finish().unwrap();
        assert_eq!(position as usize + 1024, out.len());
        assert_eq!(read_back(&out)[0].3, content);
    }

    #[test]
    fn vanished_file_and_other_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = TarWriter::new(Vec::new());
        let gone = entry("/gone", EntryKind::File, 5, dir.path().join("gone"));
        assert_eq!(w.append_entry(&gone).unwrap(), None);
        let fifo = entry("/fifo", EntryKind::Other, 0, dir.path().join("fifo"));
        assert_eq!(w.append_entry(&fifo).unwrap(), None);
        assert_eq!(w.position(), 0);
    }

    #[test]
    fn a_file_that_became_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), dir.path().join("f")).unwrap();
        let mut w = TarWriter::new(Vec::new());
        let e = entry("/f", EntryKind::File, 6, dir.path().join("f"));
        assert!(w.append_entry(&e).is_err());
        assert_eq!(w.position(), 0);
    }

    #[test]
    fn dirs_symlinks_and_labels() {
        let mut w = TarWriter::new(Vec::new());
        w.append_entry(&entry("/", EntryKind::Dir, 0, PathBuf::from("/x")))
            .unwrap();
        let long_target = format!("../{}", "t".repeat(120));
        w.append_entry(&entry(
            "/link",
            EntryKind::Symlink {
                target: PathBuf::from(&long_target),
            },
            0,
            PathBuf::from("/x"),
        ))
        .unwrap();
        w.append_label("backup_label", b"START WAL LOCATION: 0/2000028\n")
            .unwrap();
        w.append_label("tablespace_map", b"").unwrap();
        let out = w.finish().unwrap();
        let mut archive = tar::Archive::new(out.as_slice());
        let mut it = archive.entries().unwrap();
        let root = it.next().unwrap().unwrap();
        assert_eq!(&*root.path_bytes(), b"/");
        assert_eq!(root.header().entry_type(), tar::EntryType::Directory);
        let link = it.next().unwrap().unwrap();
        assert_eq!(link.header().entry_type(), tar::EntryType::Symlink);
        assert_eq!(&*link.link_name_bytes().unwrap(), long_target.as_bytes());
        let label = it.next().unwrap().unwrap();
        assert_eq!(&*label.path_bytes(), b"backup_label");
        assert_eq!(label.header().mode().unwrap(), 0o600);
        assert_eq!(label.header().uid().unwrap(), 0);
        assert_eq!(label.header().mtime().unwrap(), 0);
        let map = it.next().unwrap().unwrap();
        assert_eq!(&*map.path_bytes(), b"tablespace_map");
        assert_eq!(map.size(), 0);
        assert!(it.next().is_none());
    }

    #[test]
    fn ustar_split_matches_go() {
        assert_eq!(split_ustar_name(b"/a"), Some((&b"/a"[..], &b""[..])));
        let name = format!("{}/{}", "p".repeat(155), "n".repeat(100));
        let (n, p) = split_ustar_name(name.as_bytes()).unwrap();
        assert_eq!((n.len(), p.len()), (100, 155));
        let name = format!("{}/{}", "p".repeat(156), "n".repeat(10));
        assert_eq!(split_ustar_name(name.as_bytes()), None);
        let name = format!("{}/{}", "p".repeat(10), "n".repeat(101));
        assert_eq!(split_ustar_name(name.as_bytes()), None);
        assert_eq!(split_ustar_name("/é".as_bytes()), None);
    }

    #[test]
    fn rounding_of_mtime() {
        let t = |s: u64, n: u32| unix_seconds(UNIX_EPOCH + std::time::Duration::new(s, n));
        assert_eq!(t(10, 499_999_999), 10);
        assert_eq!(t(10, 500_000_000), 11);
        assert_eq!(
            unix_seconds(UNIX_EPOCH - std::time::Duration::from_secs(5)),
            -5
        );
    }
}
