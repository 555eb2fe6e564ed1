//! The local folder and WAL restore under faults, through the CLI (no PostgreSQL): a storage
//! folder that does not exist, a destination folder that does not exist, temp files left by
//! killed writers (a killed writer is a process that held the file's lock and was killed with
//! SIGKILL), and a corpus of hostile WAL objects in every compression.

use std::fs::{self, File, TryLockError};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;
use walg::storage::fs_temp::temp_name;

use crate::common;
use crate::common::pg::{describe_output, walg};
use crate::common::segments::{PAGE_SIZE, fake_segment_of_size};

const SEG: &str = "000000010000000000000005";
/// Segments of 1 MiB (`initdb --wal-segsize=1`) keep the corpus quick.
const SEGMENT_SIZE: usize = 1024 * 1024;

fn fake_segment(name: &str, seed: u64) -> Vec<u8> {
    fake_segment_of_size(name, seed, SEGMENT_SIZE)
}
const METHODS: [(&str, &str); 5] = [
    ("lz4", ".lz4"),
    ("zstd", ".zst"),
    ("brotli", ".br"),
    ("lzma", ".lzma"),
    ("none", ""),
];

/// A storage folder, a folder of files to push and a `pg_wal` to restore into.
struct Setup {
    dir: TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["store", "src", "pg_wal"] {
            fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        Setup { dir }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn pg_wal(&self) -> PathBuf {
        self.dir.path().join("pg_wal")
    }

    fn env(&self, method: &str) -> Vec<(String, String)> {
        vec![
            (
                "WALG_FILE_PREFIX".into(),
                self.store().display().to_string(),
            ),
            ("WALG_COMPRESSION_METHOD".into(), method.into()),
            ("WALG_DOWNLOAD_CONCURRENCY".into(), "1".into()),
        ]
    }

    fn run(&self, args: &[&str], method: &str) -> Output {
        let env = self.env(method);
        walg(args, &common::env_of(&env))
    }

    /// Pushes `body` as WAL file `name` with `method`; returns the stored object's path.
    fn push(&self, name: &str, body: &[u8], method: &str) -> PathBuf {
        let path = self.dir.path().join("src").join(name);
        fs::write(&path, body).expect("write file to push");
        let out = self.run(&["wal-push", path.to_str().expect("utf-8")], method);
        assert!(
            out.status.success(),
            "wal-push {name}\n{}",
            describe_output(&out)
        );
        let ext = METHODS
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, e)| *e)
            .expect("a method");
        self.store().join("wal_005").join(format!("{name}{ext}"))
    }

    fn fetch(&self, name: &str) -> (Output, PathBuf) {
        let dest = self.pg_wal().join("RECOVERYXLOG");
        let out = self.run(&["wal-fetch", name, dest.to_str().expect("utf-8")], "lz4");
        (out, dest)
    }

    /// wal-fetch must exit 200 with one error line mentioning `expected`, and leave nothing
    /// in `pg_wal`.
    fn assert_refused(&self, name: &str, expected: &str, what: &str) {
        let (out, dest) = self.fetch(name);
        assert_eq!(
            out.status.code(),
            Some(200),
            "{what}\n{}",
            describe_output(&out)
        );
        assert!(!dest.exists(), "{what}: a file was left at the destination");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR:")).collect();
        assert_eq!(errors.len(), 1, "{what}: one error line\n{stderr}");
        assert!(
            errors[0].contains(expected),
            "{what}: expected '{expected}'\n{stderr}"
        );
        assert_eq!(
            fs::read_dir(self.pg_wal()).expect("list pg_wal").count(),
            0,
            "{what}: files left in pg_wal"
        );
    }
}

/// Page headers equal but for the two info flags PostgreSQL may set or clear on any page
/// (`XLP_BKP_REMOVABLE`, `XLP_FIRST_IS_OVERWRITE_CONTRECORD`): a flip of those is undetectable.
fn page_headers_equal(a: &[u8], b: &[u8]) -> bool {
    let header = |data: &[u8], page: usize| {
        let start = page * PAGE_SIZE;
        let mut h = data[start..start + if page == 0 { 40 } else { 24 }].to_vec();
        h[2] &= !0x0C;
        h
    };
    a.len() == b.len() && (0..a.len() / PAGE_SIZE).all(|page| header(a, page) == header(b, page))
}

#[test]
fn a_missing_storage_folder_is_an_error_for_every_command_and_is_never_created() {
    let s = Setup::new();
    let missing = s.dir.path().join("unmounted").join("walg");
    let env = [("WALG_FILE_PREFIX", missing.to_str().expect("utf-8"))];
    let dest = s.pg_wal().join("RECOVERYXLOG");
    let segment = s.dir.path().join("src").join(SEG);
    fs::write(&segment, fake_segment(SEG, 1)).expect("write segment");
    let restore = s.dir.path().join("restore");
    let cases: [(&[&str], i32); 5] = [
        (&["wal-fetch", SEG, dest.to_str().expect("utf-8")], 200),
        (&["backup-list"], 1),
        (
            &["backup-fetch", restore.to_str().expect("utf-8"), "LATEST"],
            1,
        ),
        (&["delete", "garbage", "--confirm"], 1),
        (&["wal-push", segment.to_str().expect("utf-8")], 1),
    ];
    for (args, code) in cases {
        let out = walg(args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}\n{}",
            describe_output(&out)
        );
        assert!(
            stderr.contains(&format!(
                "storage folder '{}' does not exist",
                missing.display()
            )) && stderr.contains("HINT:"),
            "{args:?}\n{}",
            describe_output(&out)
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("No backups found"),
            "{args:?}: a missing folder read as an empty archive"
        );
        assert!(!missing.exists(), "{args:?} created the storage folder");
        assert!(
            !dest.exists() && !restore.exists(),
            "{args:?} wrote something"
        );
    }
    // Once the folder exists, an empty archive is an empty archive.
    fs::create_dir_all(&missing).expect("mkdir");
    let out = walg(&["wal-fetch", SEG, dest.to_str().expect("utf-8")], &env);
    assert_eq!(out.status.code(), Some(74), "{}", describe_output(&out));
}

#[test]
fn a_missing_destination_folder_is_blamed_not_the_stored_object() {
    let s = Setup::new();
    s.push(SEG, &fake_segment(SEG, 2), "lz4");
    let dest = s.dir.path().join("no").join("pg_wal").join("RECOVERYXLOG");
    let out = s.run(&["wal-fetch", SEG, dest.to_str().expect("utf-8")], "lz4");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(200), "{}", describe_output(&out));
    assert!(
        stderr.contains(&format!(
            "destination folder '{}' does not exist",
            dest.parent().expect("parent").display()
        )) && !stderr.contains("wal_005"),
        "{stderr}"
    );
    assert!(!dest.parent().expect("parent").exists());
}

/// A process holding an exclusive `flock` on `path`, as a writer does; killed with its
/// process group (`kill -9`) by [`Holder::kill`] or when dropped.
struct Holder(Option<Child>);

impl Holder {
    fn kill(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.0.take() {
            let status = Command::new("kill")
                .args(["-9", "--", &format!("-{}", child.id())])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -9 failed");
            child.wait().expect("wait");
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.kill_now();
        } else if let Some(mut child) = self.0.take() {
            let _ = Command::new("kill")
                .args(["-9", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
    }
}

fn hold_lock(path: &Path) -> Holder {
    let child = Command::new("flock")
        .args(["-x", "-o"])
        .arg(path)
        .args(["sleep", "120"])
        .process_group(0)
        .spawn()
        .expect("run flock(1)");
    let holder = Holder(Some(child));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let file = File::open(path).expect("open locked file");
        if matches!(file.try_lock(), Err(TryLockError::WouldBlock)) {
            return holder;
        }
        assert!(Instant::now() < deadline, "flock(1) did not take the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temp file of a writer that was killed with SIGKILL while writing.
fn killed_writers_file(path: &Path) {
    fs::write(path, b"partial").expect("write temp");
    hold_lock(path).kill();
}

#[test]
fn temp_files_of_killed_writers_are_removed_by_the_next_run_and_delete_live_ones_never() {
    let s = Setup::new();
    let wal = s.store().join("wal_005");
    fs::create_dir_all(&wal).expect("mkdir");
    let live = wal.join(temp_name("000000010000000000000007.lz4"));
    fs::write(&live, b"being written").expect("write");
    let holder = hold_lock(&live);
    let dead = wal.join(temp_name("000000010000000000000006.lz4"));
    killed_writers_file(&dead);
    // WAL-G never locks: its temp files are dead only when unmodified for an hour.
    let walg_young = wal.join("000000010000000000000008.lz4.tmp.20261203T000000Z-0123456789abcdef");
    let walg_old = wal.join("000000010000000000000009.lz4.tmp.20261203T000000Z-fedcba9876543210");
    fs::write(&walg_young, b"x").expect("write");
    fs::write(&walg_old, b"x").expect("write");
    File::options()
        .write(true)
        .open(&walg_old)
        .and_then(|f| f.set_modified(SystemTime::now() - Duration::from_secs(7200)))
        .expect("age the file");

    s.push(SEG, &fake_segment(SEG, 3), "lz4");
    assert!(
        !dead.exists(),
        "the next wal-push left a killed upload's temp file"
    );
    assert!(
        !walg_old.exists(),
        "the next wal-push left an hour-old WAL-G temp file"
    );
    assert!(live.exists(), "wal-push removed a live upload's temp file");
    assert!(
        walg_young.exists(),
        "wal-push removed a young WAL-G temp file"
    );

    // A killed backup-push's part, in an incomplete backup folder.
    let folder = s
        .store()
        .join("basebackups_005/base_000000010000000000000004");
    fs::create_dir_all(folder.join("tar_partitions")).expect("mkdir");
    let part = folder
        .join("tar_partitions")
        .join(temp_name("part_001.tar.lz4"));
    killed_writers_file(&part);
    let key = part
        .strip_prefix(s.store())
        .expect("below the store")
        .display()
        .to_string();

    let out = s.run(&["delete", "garbage"], "lz4");
    assert!(out.status.success(), "{}", describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&key),
        "the dry run does not list {key}\n{}",
        describe_output(&out)
    );
    assert!(part.exists(), "the dry run removed a file");

    let out = s.run(&["delete", "garbage", "--confirm"], "lz4");
    assert!(out.status.success(), "{}", describe_output(&out));
    assert!(!part.exists(), "delete garbage --confirm left {key}");
    assert!(!folder.exists(), "the emptied backup folder was left");
    assert!(live.exists(), "delete removed a live upload's temp file");
    assert!(
        walg_young.exists(),
        "delete removed a young WAL-G temp file"
    );

    holder.kill();
    let out = s.run(&["delete", "garbage", "--confirm"], "lz4");
    assert!(out.status.success(), "{}", describe_output(&out));
    assert!(
        !live.exists(),
        "the upload was killed: its temp file must go"
    );
}

#[test]
fn wal_fetch_removes_what_killed_fetches_left_in_its_folder() {
    let s = Setup::new();
    let original = fake_segment(SEG, 4);
    s.push(SEG, &original, "lz4");
    let dead = s.pg_wal().join(temp_name("RECOVERYXLOG"));
    killed_writers_file(&dead);
    let live = s.pg_wal().join(temp_name("RECOVERYXLOG"));
    fs::write(&live, b"x").expect("write");
    let holder = hold_lock(&live);
    let running = s.pg_wal().join(".wal-g/prefetch/running");
    fs::create_dir_all(&running).expect("mkdir");
    let dead_prefetch = running.join("000000010000000000000006");
    killed_writers_file(&dead_prefetch);

    let (out, dest) = s.fetch(SEG);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert!(fs::read(&dest).expect("fetched") == original);
    assert!(
        !dead.exists(),
        "a killed wal-fetch's temp file is left in pg_wal"
    );
    assert!(
        !dead_prefetch.exists(),
        "a killed prefetch's download is left"
    );
    assert!(live.exists(), "a live wal-fetch's temp file was removed");
    holder.kill();
}

#[test]
fn page_header_corruption_is_refused_in_every_compression() {
    let original = fake_segment(SEG, 5);
    // (page, byte, bit): magic, info, timeline, page address, remaining length, size fields.
    let flips = [
        (0, 1, 0),
        (0, 9, 2),
        (0, 34, 4),
        (1, 8, 5),
        (70, 0, 3),
        (64, 3, 1),
        (100, 5, 0),
        (127, 12, 7),
        (127, 16, 0),
    ];
    for (i, (method, _)) in METHODS.iter().enumerate() {
        // Every flip without compression; two of them in each compression.
        let chosen: Vec<_> = if *method == "none" {
            flips.to_vec()
        } else {
            vec![
                flips[(2 * i) % flips.len()],
                flips[(2 * i + 5) % flips.len()],
            ]
        };
        for (page, byte, bit) in chosen {
            let s = Setup::new();
            let mut bad = original.clone();
            bad[page * PAGE_SIZE + byte] ^= 1 << bit;
            s.push(SEG, &bad, method);
            s.assert_refused(
                SEG,
                "is corrupt",
                &format!("{method}: bit {bit} of byte {byte} of page {page}"),
            );
        }
    }
}

#[test]
fn truncated_flipped_and_misfiled_objects_are_refused_in_every_compression() {
    let original = fake_segment(SEG, 6);
    for (method, _) in METHODS {
        let s = Setup::new();
        let object = s.push(SEG, &original, method);
        let stored = fs::read(&object).expect("read object");
        for len in [stored.len() - 1, stored.len() / 2, 100] {
            fs::write(&object, &stored[..len]).expect("truncate");
            s.assert_refused(SEG, SEG, &format!("{method}: truncated to {len} bytes"));
        }
        // Flips in the stored bytes. lz4 and zstd carry a checksum; brotli, lzma and plain
        // objects do not, so a flip inside a record's payload is undetectable there — but
        // never one that reaches a page header.
        for k in 1..8 {
            let at = stored.len() * k / 8 + k;
            let mut bad = stored.clone();
            bad[at] ^= 1 << (k % 8);
            fs::write(&object, &bad).expect("write flipped");
            let (out, dest) = s.fetch(SEG);
            let what = format!("{method}: byte {at} of {} flipped", stored.len());
            if out.status.success() {
                assert!(
                    matches!(method, "brotli" | "lzma" | "none"),
                    "{what}: restored despite a checksum\n{}",
                    describe_output(&out)
                );
                let restored = fs::read(&dest).expect("restored");
                assert!(
                    page_headers_equal(&restored, &original),
                    "{what}: restored with a corrupt page header"
                );
                fs::remove_file(&dest).expect("rm");
            } else {
                assert_eq!(
                    out.status.code(),
                    Some(200),
                    "{what}\n{}",
                    describe_output(&out)
                );
                assert!(!dest.exists(), "{what}: a file was left");
            }
        }
        fs::write(&object, &stored).expect("restore object");

        // The object for one name holding another segment.
        let other = "000000010000000000000006";
        s.push(other, &original, method);
        s.assert_refused(other, "is corrupt", &format!("{method}: misfiled segment"));
        let shorter = &original[..SEGMENT_SIZE / 2];
        s.push("000000010000000000000007", shorter, method);
        s.assert_refused(
            "000000010000000000000007",
            "is corrupt",
            &format!("{method}: half a segment"),
        );
    }
}

#[test]
fn a_history_object_that_is_not_a_history_file_is_refused_in_every_compression() {
    let history = "00000002.history";
    for (method, _) in METHODS {
        for (body, what) in [
            (fake_segment(SEG, 7)[..4096].to_vec(), "binary"),
            (
                b"1\t0/3000000\tno recovery target specified".to_vec(),
                "truncated",
            ),
            (
                b"1\t0/3000000\tno recovery\0target\n".to_vec(),
                "a NUL byte",
            ),
            (b"2\t0/3000000\tnot a parent\n".to_vec(), "not a parent"),
        ] {
            let s = Setup::new();
            s.push(history, &body, method);
            s.assert_refused(history, "history file", &format!("{method}: {what}"));
        }
        let s = Setup::new();
        let good = b"1\t0/3000000\tno recovery target specified\n";
        s.push(history, good, method);
        let (out, dest) = s.fetch(history);
        assert!(out.status.success(), "{}", describe_output(&out));
        assert_eq!(fs::read(&dest).expect("restored"), good);
        // A `.partial` or `.backup` file is not checked: PostgreSQL reads those itself.
        fs::remove_file(&dest).expect("rm");
        let partial = "000000010000000000000005.partial";
        s.push(partial, b"not a segment", method);
        let (out, dest) = s.fetch(partial);
        assert!(out.status.success(), "{}", describe_output(&out));
        assert_eq!(fs::read(&dest).expect("restored"), b"not a segment");
    }
}
