//! Interop and safety of `walg::archive`: the tars walg writes are read by Python's `tarfile`
//! and GNU tar; tars written by `tarfile` (USTAR, PAX, GNU) and GNU tar extract with walg's
//! reader; a whole data directory survives walk → parts → extract; hostile tars fail with a
//! clear error and write nothing outside the target.
//!
//! Needs `python3` and GNU `tar` (`apt-get install -y python3 tar`). A missing tool fails the
//! test, naming the install command.

#![allow(clippy::unwrap_used)]

use crate::common::tar::{end, raw};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use walg::archive::{
    self, Entry, EntryKind, ExtractError, ExtractOptions, ExtractReport, Redirect, TarWriter,
};

const INSTALL: &str = "apt-get install -y python3 tar";

/// Runs a tool, failing the test with the install command if it is missing.
fn run(program: &str, args: &[&str]) -> std::process::Output {
    match Command::new(program).args(args).output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{program} {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out
        }
        Err(e) => panic!("cannot run `{program}` ({e}); install it: {INSTALL}"),
    }
}

fn python(script: &str, args: &[&str]) -> String {
    let mut all = vec!["-c", script];
    all.extend_from_slice(args);
    String::from_utf8(run("python3", &all).stdout).unwrap()
}

fn write(path: &Path, bytes: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir(path: &Path, mode: u32) {
    fs::create_dir_all(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The 200-byte member name whose last component (121 bytes) forces a PAX header.
fn long_member() -> String {
    format!("/deep/{}/{}", "d".repeat(72), "f".repeat(121))
}

/// A data directory with the cases that matter, and a tablespace next to it.
fn fake_pgdata(root: &Path) -> (PathBuf, PathBuf) {
    let pgdata = root.join("pgdata");
    let ts = root.join("ts1");
    mkdir(&pgdata, 0o700);
    write(&pgdata.join("PG_VERSION"), b"16\n", 0o600);
    write(&pgdata.join("base/1/1259"), &pattern(3 * 8192, 1), 0o600);
    write(&pgdata.join("base/1/1259_fsm"), &pattern(100, 2), 0o640);
    write(&pgdata.join("base/1/empty"), b"", 0o600);
    mkdir(&pgdata.join("base/5"), 0o750);
    write(&pgdata.join("global/1262"), &pattern(8192, 3), 0o600);
    write(&pgdata.join("global/pg_control"), &pattern(8192, 4), 0o600);
    write(&pgdata.join(&long_member()[1..]), b"long", 0o644);
    write(&pgdata.join("big"), &pattern(300_000, 5), 0o600);
    write(
        &pgdata.join("pg_wal/000000010000000000000001"),
        b"wal",
        0o600,
    );
    write(&pgdata.join("postmaster.pid"), b"123", 0o600);
    write(&pgdata.join("base/pgsql_tmp/tmp1"), b"tmp", 0o600);
    symlink("PG_VERSION", pgdata.join("link")).unwrap();
    write(
        &ts.join("PG_16_202307071/16384/16401"),
        &pattern(5000, 6),
        0o600,
    );
    mkdir(&pgdata.join("pg_tblspc"), 0o700);
    symlink(&ts, pgdata.join("pg_tblspc/16400")).unwrap();
    (pgdata, ts)
}

fn tar_of(entries: &[Entry], labels: bool) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    for entry in entries {
        w.append_entry(entry).unwrap();
    }
    if labels {
        w.append_label("backup_label", b"START WAL LOCATION: 0/2000028\n")
            .unwrap();
        w.append_label("tablespace_map", b"16400 /mnt/ts1\n")
            .unwrap();
    }
    w.finish().unwrap()
}

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn mtime_seconds(entry: &Entry) -> i64 {
    let d = entry.mtime.duration_since(std::time::UNIX_EPOCH).unwrap();
    d.as_secs() as i64 + i64::from(d.subsec_nanos() >= 500_000_000)
}

fn nothing_is_outside(root: &Path) {
    let mut names: Vec<String> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["canary", "target"],
        "something appeared next to the target"
    );
    assert_eq!(
        fs::read_dir(root.join("canary")).unwrap().count(),
        0,
        "something was written into the canary directory"
    );
}

const READ_WITH_TARFILE: &str = r#"
import hashlib, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], "r:") as t:
    for m in t:
        digest = None
        if m.isreg():
            digest = hashlib.sha256(t.extractfile(m).read()).hexdigest()
        out.append({"name": m.name, "type": m.type.decode(), "mode": m.mode, "size": m.size,
                    "uid": m.uid, "gid": m.gid, "mtime": int(m.mtime), "linkname": m.linkname,
                    "sha": digest, "pax": sorted(m.pax_headers)})
print(json.dumps(out))
"#;

#[test]
fn python_tarfile_reads_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let (pgdata, _) = fake_pgdata(dir.path());
    let walk = archive::walk(&pgdata).unwrap();
    let tar = tar_of(&walk.entries, true);
    // No padding to a 10240-byte record: the end is exactly two zero blocks.
    assert_eq!(tar.len() % 512, 0);
    assert!(tar[tar.len() - 1024..].iter().all(|&b| b == 0));
    assert!(
        tar[tar.len() - 1536..tar.len() - 1024]
            .iter()
            .any(|&b| b != 0)
    );
    let path = dir.path().join("part_001.tar");
    fs::write(&path, &tar).unwrap();

    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&python(READ_WITH_TARFILE, &[path.to_str().unwrap()])).unwrap();
    assert_eq!(listed.len(), walk.entries.len() + 2);
    for (entry, got) in walk.entries.iter().zip(&listed) {
        // tarfile drops a directory's trailing slash, so "/" reads as "".
        let name = if entry.member == "/" {
            ""
        } else {
            &entry.member
        };
        assert_eq!(got["name"], name);
        let (typeflag, size, sha_, link) = match &entry.kind {
            EntryKind::File => (
                "0",
                entry.size,
                serde_json::Value::from(sha(&fs::read(&entry.path).unwrap())),
                String::new(),
            ),
            EntryKind::Dir => ("5", 0, serde_json::Value::Null, String::new()),
            EntryKind::Symlink { target } => (
                "2",
                0,
                serde_json::Value::Null,
                target.to_string_lossy().into_owned(),
            ),
            EntryKind::Other => unreachable!(),
        };
        assert_eq!(got["type"], typeflag, "{}", entry.member);
        assert_eq!(got["size"], size, "{}", entry.member);
        assert_eq!(got["sha"], sha_, "{}", entry.member);
        assert_eq!(got["linkname"], link.as_str(), "{}", entry.member);
        assert_eq!(got["mode"], entry.mode, "{}", entry.member);
        assert_eq!(got["uid"], entry.uid, "{}", entry.member);
        assert_eq!(got["gid"], entry.gid, "{}", entry.member);
        assert_eq!(got["mtime"], mtime_seconds(entry), "{}", entry.member);
        let pax: Vec<&str> = got["pax"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        if entry.member == long_member() {
            assert_eq!(entry.member.len(), 200);
            assert_eq!(pax, ["path"]);
        } else {
            assert!(pax.is_empty(), "{}: unexpected PAX {pax:?}", entry.member);
        }
    }
    let label = &listed[walk.entries.len()];
    assert_eq!(label["name"], "backup_label");
    assert_eq!(label["mode"], 0o600);
    assert_eq!(label["uid"], 0);
    assert_eq!(label["mtime"], 0);
    assert_eq!(listed[walk.entries.len() + 1]["name"], "tablespace_map");
}

#[test]
fn gnu_tar_lists_and_extracts_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let (pgdata, _) = fake_pgdata(dir.path());
    let walk = archive::walk(&pgdata).unwrap();
    let path = dir.path().join("part.tar");
    fs::write(&path, tar_of(&walk.entries, false)).unwrap();

    let listing = run("tar", &["--numeric-owner", "-tvf", path.to_str().unwrap()]);
    let listing = String::from_utf8(listing.stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), walk.entries.len());
    for (entry, line) in walk.entries.iter().zip(&lines) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let perms = fields[0];
        let kind = match entry.kind {
            EntryKind::Dir => 'd',
            EntryKind::Symlink { .. } => 'l',
            _ => '-',
        };
        assert!(perms.starts_with(kind), "{line}");
        let rwx: String = (0..9)
            .map(|bit| {
                if entry.mode & (0o400 >> bit) != 0 {
                    ['r', 'w', 'x'][bit % 3]
                } else {
                    '-'
                }
            })
            .collect();
        assert_eq!(&perms[1..], rwx, "{line}");
        assert_eq!(fields[1], format!("{}/{}", entry.uid, entry.gid), "{line}");
        assert_eq!(fields[2], entry.size.to_string(), "{line}");
        assert_eq!(fields[5], entry.member, "{line}");
    }

    // GNU tar strips the leading "/" and extracts everything where it belongs (-p: modes as
    // stored, whatever the umask).
    let out = dir.path().join("gnu");
    fs::create_dir(&out).unwrap();
    run(
        "tar",
        &["-xpf", path.to_str().unwrap(), "-C", out.to_str().unwrap()],
    );
    for entry in &walk.entries {
        let restored = out.join(entry.member.trim_start_matches('/'));
        let meta = fs::symlink_metadata(&restored).unwrap();
        match &entry.kind {
            EntryKind::File => {
                assert_eq!(fs::read(&restored).unwrap(), fs::read(&entry.path).unwrap());
                assert_eq!(meta.mode() & 0o777, entry.mode & 0o777, "{}", entry.member);
            }
            EntryKind::Dir => assert!(meta.is_dir()),
            EntryKind::Symlink { target } => {
                assert_eq!(&fs::read_link(&restored).unwrap(), target)
            }
            EntryKind::Other => {}
        }
    }
}

#[test]
fn shrunk_and_grown_files_keep_their_walked_size() {
    let dir = tempfile::tempdir().unwrap();
    let pgdata = dir.path().join("pgdata");
    write(&pgdata.join("shrinks"), &pattern(10_000, 1), 0o600);
    write(&pgdata.join("grows"), &pattern(1000, 2), 0o600);
    let walk = archive::walk(&pgdata).unwrap();
    // Between the walk and the write, PostgreSQL truncates one relation and extends another.
    fs::write(pgdata.join("shrinks"), pattern(3000, 1)).unwrap();
    fs::write(pgdata.join("grows"), pattern(5000, 2)).unwrap();
    let path = dir.path().join("part.tar");
    fs::write(&path, tar_of(&walk.entries, false)).unwrap();

    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&python(READ_WITH_TARFILE, &[path.to_str().unwrap()])).unwrap();
    let by_name: BTreeMap<&str, &serde_json::Value> = listed
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    let mut shrunk = pattern(3000, 1);
    shrunk.resize(10_000, 0);
    assert_eq!(by_name["/shrinks"]["size"], 10_000);
    assert_eq!(by_name["/shrinks"]["sha"], sha(&shrunk).as_str());
    assert_eq!(by_name["/grows"]["size"], 1000);
    assert_eq!(by_name["/grows"]["sha"], sha(&pattern(1000, 2)).as_str());
}

/// Walk → parts → extract, tablespace through a redirect, pg_control last, then sync.
#[test]
fn round_trip_through_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (pgdata, ts) = fake_pgdata(dir.path());
    let walk = archive::walk(&pgdata).unwrap();
    assert_eq!(walk.tablespaces.len(), 1);
    let parts = archive::partition(walk.entries.clone(), 20_000);
    assert!(parts.len() >= 3, "{} parts", parts.len());

    let restore = dir.path().join("restore");
    let new_ts = dir.path().join("restored_ts");
    let opts = ExtractOptions {
        redirects: vec![Redirect {
            member_prefix: format!("/pg_tblspc/{}", walk.tablespaces[0].oid),
            dir: new_ts.clone(),
        }],
        skip_symlinks: true,
        ..Default::default()
    };
    let mut reports: Vec<ExtractReport> = Vec::new();
    for part in &parts {
        let tar = tar_of(part, false);
        reports.push(archive::extract(tar.as_slice(), &restore, &|_| true, &opts).unwrap());
    }
    let control = tar_of(
        std::slice::from_ref(walk.pg_control.as_ref().unwrap()),
        false,
    );
    reports.push(archive::extract(control.as_slice(), &restore, &|_| true, &opts).unwrap());

    for entry in walk.entries.iter().chain(walk.pg_control.as_ref()) {
        if matches!(entry.kind, EntryKind::Symlink { .. }) {
            continue;
        }
        let rel = entry.member.trim_start_matches('/');
        let restored = match rel.strip_prefix("pg_tblspc/16400/") {
            Some(rest) => new_ts.join(rest),
            None => restore.join(rel),
        };
        let meta =
            fs::symlink_metadata(&restored).unwrap_or_else(|e| panic!("{}: {e}", entry.member));
        match &entry.kind {
            EntryKind::File => {
                assert_eq!(fs::read(&restored).unwrap(), fs::read(&entry.path).unwrap());
                assert_eq!(meta.mode() & 0o7777, entry.mode, "{}", entry.member);
            }
            EntryKind::Dir => {
                assert!(meta.is_dir());
                assert_eq!(meta.mode() & 0o7777, entry.mode, "{}", entry.member);
            }
            _ => {}
        }
    }
    // Symlinks are not allowed here; the one in this PGDATA was skipped.
    assert!(fs::symlink_metadata(restore.join("link")).is_err());
    assert_eq!(reports.iter().map(|r| r.skipped_symlinks).sum::<u64>(), 1);
    // Excluded directories come back empty; excluded files do not come back.
    assert_eq!(fs::read_dir(restore.join("pg_wal")).unwrap().count(), 0);
    assert_eq!(
        fs::read_dir(restore.join("base/pgsql_tmp"))
            .unwrap()
            .count(),
        0
    );
    assert!(!restore.join("postmaster.pid").exists());
    assert!(!restore.join("pg_tblspc/16400").exists());
    assert_eq!(
        fs::read(new_ts.join("PG_16_202307071/16384/16401")).unwrap(),
        fs::read(ts.join("PG_16_202307071/16384/16401")).unwrap()
    );

    let mut to_sync: Vec<PathBuf> = Vec::new();
    for report in &reports {
        to_sync.extend(report.files.iter().cloned());
        to_sync.extend(report.dirs.iter().cloned());
    }
    let files: usize = reports.iter().map(|r| r.files.len()).sum();
    assert_eq!(
        files,
        walk.entries.iter().filter(|e| e.is_file()).count() + 1
    );
    archive::sync_all(&to_sync, 4).unwrap();
}

const WRITE_WITH_TARFILE: &str = r#"
import io, sys, tarfile
fmt = {"ustar": tarfile.USTAR_FORMAT, "pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT}[sys.argv[2]]
def data(n, seed):
    return bytes(((i * 31) + seed) % 256 for i in range(n))
with tarfile.open(sys.argv[1], "w", format=fmt) as t:
    def d(name, mode):
        ti = tarfile.TarInfo(name); ti.type = tarfile.DIRTYPE; ti.mode = mode; t.addfile(ti)
    def f(name, content, mode):
        ti = tarfile.TarInfo(name); ti.size = len(content); ti.mode = mode
        t.addfile(ti, io.BytesIO(content))
    d("/", 0o700)
    d("/base", 0o750)
    f("/base/1/1259", data(300000, 1), 0o600)
    f("./PG_VERSION", b"16\n", 0o640)
    f("global/1262", data(8192, 2), 0o600)
    f(sys.argv[3], b"long", 0o644)
    if fmt != tarfile.USTAR_FORMAT:
        f("donn\u00e9es/fichier", b"utf8", 0o600)
    ti = tarfile.TarInfo("/base/1/1259_link"); ti.type = tarfile.LNKTYPE
    ti.linkname = "/base/1/1259"; t.addfile(ti)
"#;

fn pattern_py(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed as usize) % 256) as u8)
        .collect()
}

#[test]
fn tars_from_python_tarfile_extract() {
    for format in ["ustar", "pax", "gnu"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.tar");
        // USTAR can only hold long names that split at a slash.
        let long = if format == "ustar" {
            format!("long/{}/{}", "a".repeat(90), "b".repeat(60))
        } else {
            format!("long/{}/{}", "a".repeat(90), "b".repeat(120))
        };
        python(WRITE_WITH_TARFILE, &[path.to_str().unwrap(), format, &long]);
        let target = dir.path().join("target");
        let report = archive::extract(
            fs::File::open(&path).unwrap(),
            &target,
            &|_| true,
            &ExtractOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{format}: {e}"));
        let mode = |p: &str| fs::metadata(target.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode(""), 0o700, "{format}");
        assert_eq!(mode("base"), 0o750, "{format}");
        assert_eq!(
            fs::read(target.join("base/1/1259")).unwrap(),
            pattern_py(300_000, 1)
        );
        assert_eq!(mode("base/1/1259"), 0o600);
        assert_eq!(fs::read(target.join("PG_VERSION")).unwrap(), b"16\n");
        assert_eq!(mode("PG_VERSION"), 0o640);
        assert_eq!(
            fs::read(target.join("global/1262")).unwrap(),
            pattern_py(8192, 2)
        );
        assert_eq!(fs::read(target.join(&long)).unwrap(), b"long", "{format}");
        assert_eq!(mode(&long), 0o644);
        if format != "ustar" {
            assert_eq!(
                fs::read(target.join("données/fichier")).unwrap(),
                b"utf8",
                "{format}"
            );
        }
        let a = fs::metadata(target.join("base/1/1259")).unwrap();
        let b = fs::metadata(target.join("base/1/1259_link")).unwrap();
        assert_eq!(a.ino(), b.ino(), "{format}: hard link");
        assert_eq!(
            report.bytes,
            300_000 + 3 + 8192 + 4 + 4 * u64::from(format != "ustar")
        );
    }
}

#[test]
fn tars_from_gnu_tar_extract() {
    for format in ["gnu", "posix", "ustar"] {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        mkdir(&src, 0o700);
        write(&src.join("PG_VERSION"), b"16\n", 0o600);
        write(&src.join("base/1/1259"), &pattern(200_000, 9), 0o640);
        mkdir(&src.join("base/5"), 0o750);
        let long = if format == "ustar" {
            format!("long/{}/{}", "a".repeat(90), "b".repeat(60))
        } else {
            format!("long/{}/{}", "a".repeat(90), "b".repeat(150))
        };
        write(&src.join(&long), b"long", 0o644);
        fs::hard_link(src.join("PG_VERSION"), src.join("hardlink")).unwrap();
        let path = dir.path().join("t.tar");
        run(
            "tar",
            &[
                &format!("--format={format}"),
                "-cf",
                path.to_str().unwrap(),
                "-C",
                src.to_str().unwrap(),
                ".",
            ],
        );
        let target = dir.path().join("target");
        archive::extract(
            fs::File::open(&path).unwrap(),
            &target,
            &|_| true,
            &ExtractOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{format}: {e}"));
        for rel in [
            "",
            "PG_VERSION",
            "base",
            "base/1",
            "base/1/1259",
            "base/5",
            &long,
        ] {
            let a = fs::metadata(src.join(rel)).unwrap();
            let b = fs::metadata(target.join(rel)).unwrap();
            assert_eq!(a.mode(), b.mode(), "{format}: {rel}");
            if a.is_file() {
                assert_eq!(
                    fs::read(src.join(rel)).unwrap(),
                    fs::read(target.join(rel)).unwrap()
                );
            }
        }
        let a = fs::metadata(target.join("PG_VERSION")).unwrap();
        let b = fs::metadata(target.join("hardlink")).unwrap();
        assert_eq!(a.ino(), b.ino(), "{format}: hard link");
    }
}

#[test]
fn the_filter_skips_unlisted_files_but_creates_directories() {
    let dir = tempfile::tempdir().unwrap();
    let pgdata = dir.path().join("pgdata");
    write(&pgdata.join("base/1/listed"), b"a", 0o600);
    write(&pgdata.join("base/1/unlisted"), b"b", 0o600);
    write(&pgdata.join("global/unlisted"), b"c", 0o600);
    mkdir(&pgdata.join("empty"), 0o700);
    let walk = archive::walk(&pgdata).unwrap();
    let mut w = TarWriter::new(Vec::new());
    for entry in &walk.entries {
        w.append_entry(entry).unwrap();
    }
    w.append_label("backup_label", b"label").unwrap();
    let tar = w.finish().unwrap();
    let target = dir.path().join("target");
    let seen = std::cell::RefCell::new(Vec::new());
    let filter = |member: &str| {
        seen.borrow_mut().push(member.to_string());
        member == "/base/1/listed" || member == "backup_label"
    };
    let report =
        archive::extract(tar.as_slice(), &target, &filter, &ExtractOptions::default()).unwrap();
    assert_eq!(
        seen.into_inner(),
        [
            "/base/1/listed",
            "/base/1/unlisted",
            "/global/unlisted",
            "backup_label"
        ]
    );
    assert_eq!(report.skipped, 2);
    assert_eq!(fs::read(target.join("base/1/listed")).unwrap(), b"a");
    assert_eq!(fs::read(target.join("backup_label")).unwrap(), b"label");
    assert!(!target.join("base/1/unlisted").exists());
    assert!(!target.join("global/unlisted").exists());
    assert!(target.join("global").is_dir());
    assert!(target.join("empty").is_dir());
}

#[test]
fn a_stream_without_end_blocks_is_accepted_and_zero_padding_too() {
    let dir = tempfile::tempdir().unwrap();
    let pgdata = dir.path().join("pgdata");
    write(&pgdata.join("a"), b"abc", 0o600);
    let walk = archive::walk(&pgdata).unwrap();
    let tar = tar_of(&walk.entries, false);
    let opts = ExtractOptions::default();
    let unterminated = &tar[..tar.len() - 1024];
    archive::extract(unterminated, &dir.path().join("t1"), &|_| true, &opts).unwrap();
    assert_eq!(fs::read(dir.path().join("t1/a")).unwrap(), b"abc");
    let mut padded = tar.clone();
    padded.resize(10240, 0);
    archive::extract(padded.as_slice(), &dir.path().join("t2"), &|_| true, &opts).unwrap();
}

// ---- hostile input ----------------------------------------------------------------------

/// A root with an empty `canary` directory next to `target`.
fn sandbox() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("canary")).unwrap();
    fs::create_dir(dir.path().join("target")).unwrap();
    let target = dir.path().join("target");
    (dir, target)
}

fn hostile(tar: &[u8], target: &Path, opts: &ExtractOptions) -> ExtractError {
    let err = archive::extract(tar, target, &|_| true, opts).unwrap_err();
    let text = err.to_string();
    assert!(!text.contains('\n'), "not one line: {text}");
    nothing_is_outside(target.parent().unwrap());
    err
}

fn refused(err: &ExtractError, member: &str) {
    match err {
        ExtractError::Unsafe { member: m, .. } => assert_eq!(m, member, "{err}"),
        other => panic!("expected a refusal of {member}, got: {other}"),
    }
}

#[test]
fn hostile_dot_dot_names() {
    let (_dir, target) = sandbox();
    let opts = ExtractOptions::default();
    for name in ["../x", "/../../etc/x", "a/../../x", "/../canary/x", "./.."] {
        let err = hostile(&end(raw(name, b'0', "", b"evil")), &target, &opts);
        refused(&err, name);
        assert!(err.to_string().contains(".."), "{err}");
    }
    let err = hostile(&end(raw("../canary", b'5', "", b"")), &target, &opts);
    refused(&err, "../canary");
}

#[test]
fn hostile_symlink_members() {
    let (dir, target) = sandbox();
    let canary = dir.path().join("canary");
    // Refused outright by default, before anything is written through it.
    let mut tar = raw("/evil", b'2', "../canary", b"");
    tar.extend(raw("/evil/x", b'0', "", b"evil"));
    let tar = end(tar);
    let err = hostile(&tar, &target, &ExtractOptions::default());
    refused(&err, "/evil");
    assert!(err.to_string().contains("symlink"), "{err}");

    // Allowed symlinks must still stay inside.
    let allow = ExtractOptions {
        allow_symlinks: true,
        ..Default::default()
    };
    let err = hostile(&tar, &target, &allow);
    refused(&err, "/evil");
    let abs = end(raw("/abs", b'2', canary.to_str().unwrap(), b""));
    refused(&hostile(&abs, &target, &allow), "/abs");
    let deep = end(raw("/a/b/up", b'2', "../../..", b""));
    refused(&hostile(&deep, &target, &allow), "/a/b/up");

    // Through a link that resolves inside the target, writing is fine.
    let mut fine = raw("/sub", b'5', "", b"");
    fine.extend(raw("/lnk", b'2', "sub", b""));
    fine.extend(raw("/lnk/x", b'0', "", b"ok"));
    archive::extract(end(fine).as_slice(), &target, &|_| true, &allow).unwrap();
    assert_eq!(fs::read(target.join("sub/x")).unwrap(), b"ok");
    nothing_is_outside(dir.path());
}

#[test]
fn hostile_chained_symlinks_cannot_escape() {
    let (dir, target) = sandbox();
    let allow = ExtractOptions {
        allow_symlinks: true,
        ..Default::default()
    };
    // d/l points at the target root; a link made "inside d/l" really sits in the root, where
    // ".." escapes. The check uses the real location.
    let mut tar = raw("/d", b'5', "", b"");
    tar.extend(raw("/d/l", b'2', "..", b""));
    tar.extend(raw("/d/l/up", b'2', "..", b""));
    tar.extend(raw("/up/canary/x", b'0', "", b"evil"));
    let err = hostile(&end(tar), &target, &allow);
    refused(&err, "/d/l/up");
    nothing_is_outside(dir.path());
}

#[test]
fn hostile_preexisting_symlinks_in_the_target() {
    let (dir, target) = sandbox();
    let canary = dir.path().join("canary");
    let opts = ExtractOptions::default();
    // A directory that is a symlink to outside: the directory member leaves it alone, a file
    // under it is refused.
    symlink(&canary, target.join("pg_wal")).unwrap();
    let mut tar = raw("/pg_wal", b'5', "", b"");
    tar.extend(raw("/pg_wal/000000010000000000000001", b'0', "", b"evil"));
    let err = hostile(&end(tar), &target, &opts);
    refused(&err, "/pg_wal/000000010000000000000001");
    assert!(err.to_string().contains("outside"), "{err}");
    // Deeper: a subdirectory under it.
    let err = hostile(
        &end(raw("/pg_wal/archive_status", b'5', "", b"")),
        &target,
        &opts,
    );
    refused(&err, "/pg_wal/archive_status");

    // A file that is a symlink to outside is not written through.
    symlink(canary.join("pwned"), target.join("PG_VERSION")).unwrap();
    let err = hostile(&end(raw("/PG_VERSION", b'0', "", b"16")), &target, &opts);
    refused(&err, "/PG_VERSION");
    // Not even when it points inside.
    fs::write(target.join("inside"), b"keep").unwrap();
    symlink("inside", target.join("lnk")).unwrap();
    let err = hostile(&end(raw("/lnk", b'0', "", b"new")), &target, &opts);
    refused(&err, "/lnk");
    assert_eq!(fs::read(target.join("inside")).unwrap(), b"keep");
}

#[test]
fn hostile_hard_links() {
    let (dir, target) = sandbox();
    fs::write(dir.path().join("canary/secret"), b"secret").unwrap();
    let opts = ExtractOptions::default();
    let err = archive::extract(
        end(raw("/h", b'1', "../canary/secret", b"")).as_slice(),
        &target,
        &|_| true,
        &opts,
    )
    .unwrap_err();
    refused(&err, "/h");
    // Through a symlink to outside.
    symlink(dir.path().join("canary"), target.join("out")).unwrap();
    let err = archive::extract(
        end(raw("/h", b'1', "/out/secret", b"")).as_slice(),
        &target,
        &|_| true,
        &opts,
    )
    .unwrap_err();
    refused(&err, "/h");
    // To a symlink.
    symlink(dir.path().join("canary/secret"), target.join("ls")).unwrap();
    let err = archive::extract(
        end(raw("/h", b'1', "/ls", b"")).as_slice(),
        &target,
        &|_| true,
        &opts,
    )
    .unwrap_err();
    refused(&err, "/h");
    // To nothing.
    let err = archive::extract(
        end(raw("/h", b'1', "/base/missing", b"")).as_slice(),
        &target,
        &|_| true,
        &opts,
    )
    .unwrap_err();
    refused(&err, "/h");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!target.join("h").exists());
    assert!(!target.join("base").exists());
    assert_eq!(fs::read_dir(dir.path().join("canary")).unwrap().count(), 1);
}

#[test]
fn truncated_streams_fail() {
    let dir = tempfile::tempdir().unwrap();
    let pgdata = dir.path().join("pgdata");
    write(&pgdata.join("base/1/1259"), &pattern(5000, 1), 0o600);
    write(&pgdata.join("base/1/1260"), &pattern(100, 1), 0o600);
    let walk = archive::walk(&pgdata).unwrap();
    let tar = tar_of(&walk.entries, false);
    let opts = ExtractOptions::default();
    // Header blocks: "/", "/base", "/base/1", then "/base/1/1259" at 1536, its data from 2048.
    let cut_in_data = &tar[..2048 + 3000];
    match archive::extract(cut_in_data, &dir.path().join("t1"), &|_| true, &opts) {
        Err(ExtractError::Truncated {
            member,
            expected,
            got,
        }) => {
            assert_eq!(member, "/base/1/1259");
            assert_eq!((expected, got), (5000, 3000));
        }
        other => panic!("{other:?}"),
    }
    let cut_in_header = &tar[..1536 + 100];
    let err =
        archive::extract(cut_in_header, &dir.path().join("t2"), &|_| true, &opts).unwrap_err();
    assert!(matches!(err, ExtractError::Read { .. }), "{err}");
    assert!(
        err.to_string().contains("after member \"/base/1\""),
        "{err}"
    );
    // A skipped (filtered out) member that is cut short fails too.
    let err = archive::extract(cut_in_data, &dir.path().join("t3"), &|_| false, &opts).unwrap_err();
    assert!(matches!(err, ExtractError::Read { .. }), "{err}");
    // Cut in the padding after the last member's data.
    let last_data_end = tar.len() - 1024 - 512 + 100;
    let err = archive::extract(
        &tar[..last_data_end],
        &dir.path().join("t4"),
        &|_| true,
        &opts,
    )
    .unwrap_err();
    assert!(!err.to_string().is_empty());
}

#[test]
fn garbage_after_the_end_fails() {
    let dir = tempfile::tempdir().unwrap();
    let pgdata = dir.path().join("pgdata");
    write(&pgdata.join("a"), b"abc", 0o600);
    let walk = archive::walk(&pgdata).unwrap();
    let mut tar = tar_of(&walk.entries, false);
    tar.extend_from_slice(b"garbage");
    let err = archive::extract(
        tar.as_slice(),
        &dir.path().join("t"),
        &|_| true,
        &ExtractOptions::default(),
    )
    .unwrap_err();
    match err {
        ExtractError::TrailingData { offset } => assert_eq!(offset, 512),
        other => panic!("{other:?}"),
    }
    // Garbage where a header should be: a checksum error.
    let mut tar = tar_of(&walk.entries, false);
    let len = tar.len();
    tar[len - 1024..len - 1024 + 7].copy_from_slice(b"garbage");
    let err = archive::extract(
        tar.as_slice(),
        &dir.path().join("t2"),
        &|_| true,
        &ExtractOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("after member \"/a\""), "{err}");
}

#[test]
fn a_bigger_stream_reads_in_pieces() {
    // The reader must not depend on reads returning whole blocks.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(7);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (pgdata, _) = fake_pgdata(dir.path());
    let walk = archive::walk(&pgdata).unwrap();
    let tar = tar_of(&walk.entries, true);
    let target = dir.path().join("t");
    let opts = ExtractOptions {
        allow_symlinks: true,
        ..Default::default()
    };
    let report = archive::extract(Trickle(&tar), &target, &|_| true, &opts).unwrap();
    assert_eq!(
        report.files.len(),
        walk.entries.iter().filter(|e| e.is_file()).count() + 2
    );
    for entry in walk.entries.iter().filter(|e| e.is_file()) {
        assert_eq!(
            fs::read(target.join(entry.member.trim_start_matches('/'))).unwrap(),
            fs::read(&entry.path).unwrap()
        );
    }
    assert_eq!(
        fs::read_link(target.join("link")).unwrap(),
        Path::new("PG_VERSION")
    );
}

#[test]
fn symlink_policies() {
    let (dir, target) = sandbox();
    let mut tar = raw("/inside", b'2', "PG_VERSION", b"");
    tar.extend(raw("/abs", b'2', "/etc/passwd", b""));
    tar.extend(raw("/up", b'2', "../canary", b""));
    tar.extend(raw("/PG_VERSION", b'0', "", b"16"));
    let tar = end(tar);
    // Skip all.
    let skip = ExtractOptions {
        skip_symlinks: true,
        ..Default::default()
    };
    let report = archive::extract(tar.as_slice(), &target.join("a"), &|_| true, &skip).unwrap();
    assert_eq!(report.skipped_symlinks, 3);
    assert_eq!(fs::read_dir(target.join("a")).unwrap().count(), 1);
    // Create the safe one, skip the others.
    let both = ExtractOptions {
        allow_symlinks: true,
        skip_symlinks: true,
        ..Default::default()
    };
    let report = archive::extract(tar.as_slice(), &target.join("b"), &|_| true, &both).unwrap();
    assert_eq!(report.skipped_symlinks, 2);
    assert_eq!(
        fs::read_link(target.join("b/inside")).unwrap(),
        Path::new("PG_VERSION")
    );
    assert!(fs::symlink_metadata(target.join("b/abs")).is_err());
    nothing_is_outside(dir.path());
}
