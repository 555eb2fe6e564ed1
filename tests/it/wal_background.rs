//! wal-push's background uploads of other `.ready` files, and wal-fetch's prefetch, through the
//! CLI against a local folder (no PostgreSQL: the WAL directory is laid out by hand).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::common::pg::{describe_output, walg};
use crate::common::segments::fake_segment;

struct WalDir {
    _root: TempDir,
    store: PathBuf,
    pg_wal: PathBuf,
}

impl WalDir {
    /// A `pg_wal` with `archive_status`, holding `names` marked `.ready`.
    fn new(names: &[&str]) -> WalDir {
        let root = tempfile::tempdir().expect("temp dir");
        let pg_wal = root.path().join("pg_wal");
        fs::create_dir_all(pg_wal.join("archive_status")).expect("mkdir");
        for (i, name) in names.iter().enumerate() {
            let body = if name.len() == 24 {
                fake_segment(name, i as u64 + 1)
            } else {
                format!("{i}\t0/{i}000000\tno recovery target specified\n").into_bytes()
            };
            fs::write(pg_wal.join(name), body).expect("write wal");
            fs::write(
                pg_wal.join("archive_status").join(format!("{name}.ready")),
                "",
            )
            .expect("write .ready");
        }
        fs::create_dir(root.path().join("store")).expect("mkdir store");
        WalDir {
            store: root.path().join("store"),
            _root: root,
            pg_wal,
        }
    }

    fn push(&self, name: &str, extra: &[(&str, &str)]) {
        let mut env = vec![("WALG_FILE_PREFIX", self.store.to_str().expect("utf-8"))];
        env.extend_from_slice(extra);
        let path = self.pg_wal.join(name);
        let out = walg(&["wal-push", path.to_str().expect("utf-8")], &env);
        assert!(
            out.status.success(),
            "wal-push {name}\n{}",
            describe_output(&out)
        );
    }

    fn stored(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.store.join("wal_005"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn marker(&self, name: &str) -> PathBuf {
        self.pg_wal.join("walg_data/walg_archive_status").join(name)
    }

    fn status(&self, file: &str) -> bool {
        self.pg_wal.join("archive_status").join(file).exists()
    }
}

const SEGS: [&str; 5] = [
    "000000010000000000000001",
    "000000010000000000000002",
    "000000010000000000000003",
    "000000010000000000000004",
    "000000010000000000000005",
];

#[test]
fn background_uploads_ready_files_and_marks_them() {
    let mut names = SEGS.to_vec();
    names.push("00000002.history");
    let w = WalDir::new(&names);
    w.push(SEGS[0], &[]);

    let mut expected: Vec<String> = names.iter().map(|n| format!("{n}.lz4")).collect();
    expected.sort();
    assert_eq!(
        w.stored(),
        expected,
        "every .ready file is uploaded by one wal-push"
    );
    // PostgreSQL still owns the status files: nothing is reported archived by walg.
    for name in &names {
        assert!(w.status(&format!("{name}.ready")), "{name}.ready must stay");
        assert!(!w.status(&format!("{name}.done")));
    }
    assert!(!w.marker(SEGS[0]).exists(), "the main file gets no marker");
    for name in &names[1..] {
        assert!(
            w.marker(name).exists(),
            "marker for background upload of {name}"
        );
    }

    // When PostgreSQL then asks for a file uploaded in the background, the marker answers:
    // nothing is uploaded again (the object we remove stays absent) and the marker goes.
    fs::remove_file(w.store.join(format!("wal_005/{}.lz4", SEGS[1]))).expect("remove object");
    w.push(SEGS[1], &[]);
    assert!(!w.marker(SEGS[1]).exists());
    assert!(!w.store.join(format!("wal_005/{}.lz4", SEGS[1])).exists());
}

#[test]
fn background_uploads_respect_limits_and_settings() {
    // TOTAL_BG_UPLOADED_LIMIT=3: at most two files besides the main one.
    let w = WalDir::new(&SEGS);
    w.push(SEGS[0], &[("TOTAL_BG_UPLOADED_LIMIT", "3")]);
    assert_eq!(w.stored().len(), 3, "{:?}", w.stored());

    // WALG_UPLOAD_CONCURRENCY=1: no background uploads at all.
    let w = WalDir::new(&SEGS);
    w.push(SEGS[0], &[("WALG_UPLOAD_CONCURRENCY", "1")]);
    assert_eq!(w.stored(), vec![format!("{}.lz4", SEGS[0])]);

    // PG_READY_RENAME=true: background uploads rename .ready to .done; the main file's is left
    // to PostgreSQL.
    let w = WalDir::new(&SEGS[..3]);
    w.push(SEGS[0], &[("PG_READY_RENAME", "true")]);
    assert!(w.status(&format!("{}.ready", SEGS[0])));
    for name in &SEGS[1..3] {
        assert!(
            w.status(&format!("{name}.done")) && !w.status(&format!("{name}.ready")),
            "{name}"
        );
    }
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn fetch(store: &Path, name: &str, dest: &Path, extra: &[(&str, &str)]) -> std::process::Output {
    let mut env = vec![("WALG_FILE_PREFIX", store.to_str().expect("utf-8"))];
    env.extend_from_slice(extra);
    walg(&["wal-fetch", name, dest.to_str().expect("utf-8")], &env)
}

#[test]
fn wal_fetch_prefetches_following_segments() {
    // Store segments 1..=5 (pushed from a folder without archive_status: no background).
    let src = tempfile::tempdir().expect("temp dir");
    let store = src.path().join("store");
    fs::create_dir(&store).expect("mkdir store");
    let mut originals = Vec::new();
    for (i, name) in SEGS.iter().enumerate() {
        let path = src.path().join(name);
        let body = fake_segment(name, 100 + i as u64);
        fs::write(&path, &body).expect("write");
        originals.push(body);
        let out = walg(
            &["wal-push", path.to_str().expect("utf-8")],
            &[("WALG_FILE_PREFIX", store.to_str().expect("utf-8"))],
        );
        assert!(out.status.success(), "{}", describe_output(&out));
    }

    let pg_wal = tempfile::tempdir().expect("temp dir");
    let dest = pg_wal.path().join("RECOVERYXLOG");
    let conc = [("WALG_DOWNLOAD_CONCURRENCY", "3")];
    let out = fetch(&store, SEGS[0], &dest, &conc);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert!(fs::read(&dest).expect("restored") == originals[0]);

    // The next three segments arrive complete in .wal-g/prefetch; none is left in running/.
    let prefetch = pg_wal.path().join(".wal-g/prefetch");
    wait_for("prefetched segments", Duration::from_secs(20), || {
        SEGS[1..4].iter().all(|n| prefetch.join(n).exists())
    });
    wait_for("prefetch to finish", Duration::from_secs(20), || {
        fs::read_dir(prefetch.join("running"))
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    });
    assert!(
        !prefetch.join(SEGS[4]).exists(),
        "only WALG_DOWNLOAD_CONCURRENCY segments are prefetched"
    );
    for (name, original) in SEGS[1..4].iter().zip(&originals[1..4]) {
        assert!(
            fs::read(prefetch.join(name)).expect("prefetched") == *original,
            "{name}"
        );
    }

    // The prefetched copy is used: it is restored even after the object is gone from storage.
    fs::remove_dir_all(&store).expect("remove storage");
    fs::create_dir(&store).expect("an empty storage folder");
    fs::remove_file(&dest).expect("PostgreSQL removes RECOVERYXLOG before each call");
    let out = fetch(&store, SEGS[1], &dest, &conc);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert!(fs::read(&dest).expect("restored") == originals[1]);
    assert!(!prefetch.join(SEGS[1]).exists(), "moved, not copied");

    // A damaged prefetched copy is discarded, never handed to recovery: with the storage gone
    // the answer is "not in storage".
    let damaged = prefetch.join(SEGS[2]);
    let mut bytes = fs::read(&damaged).expect("read");
    bytes.truncate(bytes.len() / 2);
    fs::write(&damaged, bytes).expect("truncate");
    fs::remove_file(&dest).expect("remove");
    let out = fetch(
        &store,
        SEGS[2],
        &dest,
        &[("WALG_DOWNLOAD_CONCURRENCY", "1")],
    );
    assert_eq!(out.status.code(), Some(74), "{}", describe_output(&out));
    assert!(!dest.exists());
    assert!(!damaged.exists(), "the damaged copy is removed");
}

#[test]
fn prefetch_is_off_with_download_concurrency_1() {
    let src = tempfile::tempdir().expect("temp dir");
    let store = src.path().join("store");
    fs::create_dir(&store).expect("mkdir store");
    for name in &SEGS[..2] {
        let path = src.path().join(name);
        fs::write(&path, fake_segment(name, 7)).expect("write");
        let out = walg(
            &["wal-push", path.to_str().expect("utf-8")],
            &[("WALG_FILE_PREFIX", store.to_str().expect("utf-8"))],
        );
        assert!(out.status.success(), "{}", describe_output(&out));
    }
    let pg_wal = tempfile::tempdir().expect("temp dir");
    let out = fetch(
        &store,
        SEGS[0],
        &pg_wal.path().join("RECOVERYXLOG"),
        &[("WALG_DOWNLOAD_CONCURRENCY", "1")],
    );
    assert!(out.status.success(), "{}", describe_output(&out));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!pg_wal.path().join(".wal-g").exists());
}
