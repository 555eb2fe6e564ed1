//! `walg wal-push` overwrite rules against a local folder, through the CLI (no PostgreSQL):
//! `.history` files are create-only; segments are too with `WALG_PREVENT_WAL_OVERWRITE=true`;
//! re-pushing identical content always succeeds; a refused overwrite leaves the stored object as
//! it was.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::common::pg::{describe_output, walg};
use crate::common::segments::{SEGMENT_SIZE, fake_segment};

/// A local storage folder plus a directory holding the files to push. The push directory has no
/// `archive_status/` subfolder, so walg uploads only the file it is given; `PGDATA` points at a
/// private directory so walg's "already uploaded" markers cannot come from another test.
struct Setup {
    storage: TempDir,
    push_dir: TempDir,
    pgdata: TempDir,
}

impl Setup {
    fn new() -> Setup {
        let pgdata = tempfile::tempdir().expect("temp dir");
        fs::create_dir(pgdata.path().join("pg_wal")).expect("mkdir pg_wal");
        Setup {
            storage: tempfile::tempdir().expect("temp dir"),
            push_dir: tempfile::tempdir().expect("temp dir"),
            pgdata,
        }
    }

    fn settings<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut env = vec![
            (
                "WALG_FILE_PREFIX",
                self.storage.path().to_str().expect("utf-8 path"),
            ),
            ("PGDATA", self.pgdata.path().to_str().expect("utf-8 path")),
        ];
        env.extend_from_slice(extra);
        env
    }

    fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.push_dir.path().join(name);
        fs::write(&path, contents).expect("write file to push");
        path
    }

    fn push(&self, path: &Path, extra: &[(&str, &str)]) -> std::process::Output {
        walg(
            &["wal-push", path.to_str().expect("utf-8 path")],
            &self.settings(extra),
        )
    }

    fn push_ok(&self, path: &Path, extra: &[(&str, &str)], what: &str) {
        let out = self.push(path, extra);
        assert!(out.status.success(), "{what}\n{}", describe_output(&out));
    }

    fn push_refused(&self, path: &Path, extra: &[(&str, &str)], what: &str) {
        let out = self.push(path, extra);
        assert!(
            !out.status.success() && out.status.code().is_some(),
            "{what}: expected a non-zero exit\n{}",
            describe_output(&out)
        );
    }

    /// The stored content of `name`, through `wal-fetch`.
    fn fetch(&self, name: &str) -> Vec<u8> {
        let dest_dir = tempfile::tempdir().expect("temp dir");
        let dest = dest_dir.path().join(name);
        let out = walg(
            &["wal-fetch", name, dest.to_str().expect("utf-8 path")],
            &self.settings(&[]),
        );
        assert!(
            out.status.success(),
            "wal-fetch {name}\n{}",
            describe_output(&out)
        );
        fs::read(&dest).expect("read fetched file")
    }

    fn object(&self, name: &str) -> PathBuf {
        self.storage.path().join("wal_005").join(name)
    }
}

#[test]
fn history_files_are_create_only() {
    let s = Setup::new();
    let original = b"1\t0/3000108\tno recovery target specified\n";
    let path = s.write("00000002.history", original);

    s.push_ok(&path, &[], "first push of a history file");
    assert!(
        s.object("00000002.history.lz4").is_file(),
        "expected wal_005/00000002.history.lz4"
    );
    s.push_ok(&path, &[], "re-push of an identical history file");

    fs::write(&path, b"1\t0/4000000\tbefore 2000-01-01 00:00:00+00\n").expect("rewrite");
    s.push_refused(&path, &[], "push of a different history file");
    s.push_refused(
        &path,
        &[("WALG_PREVENT_WAL_OVERWRITE", "false")],
        "history files are create-only whatever WALG_PREVENT_WAL_OVERWRITE says",
    );
    assert_eq!(s.fetch("00000002.history"), original);
}

#[test]
fn segment_overwrite_refused_when_prevented() {
    let s = Setup::new();
    let prevent = [("WALG_PREVENT_WAL_OVERWRITE", "true")];
    let name = "000000010000000000000003";
    let original = fake_segment(name, 3);
    let path = s.write(name, &original);

    s.push_ok(&path, &prevent, "first push of a segment");
    assert!(
        s.object(&format!("{name}.lz4")).is_file(),
        "expected wal_005/{name}.lz4"
    );
    s.push_ok(&path, &prevent, "re-push of an identical segment");

    let mut changed = original.clone();
    changed[SEGMENT_SIZE / 2] ^= 0xFF;
    fs::write(&path, &changed).expect("rewrite");
    s.push_refused(
        &path,
        &prevent,
        "overwrite of a segment with different content",
    );
    assert!(
        s.fetch(name) == original,
        "a refused overwrite changed the stored segment"
    );
}

#[test]
fn segment_overwrite_allowed_by_default() {
    let s = Setup::new();
    let name = "000000010000000000000004";
    let original = fake_segment(name, 4);
    let path = s.write(name, &original);
    s.push_ok(&path, &[], "first push of a segment");

    let changed = fake_segment(name, 5);
    fs::write(&path, &changed).expect("rewrite");
    s.push_ok(
        &path,
        &[],
        "without WALG_PREVENT_WAL_OVERWRITE a segment overwrite succeeds",
    );
    assert!(
        s.fetch(name) == changed,
        "the overwrite did not replace the stored segment"
    );
}
