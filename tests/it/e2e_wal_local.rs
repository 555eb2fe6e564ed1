//! End to end: PostgreSQL 15 archives through `walg wal-push` into a local folder
//! (`WALG_FILE_PREFIX`) and recovers through `walg wal-fetch`; the page checks of `wal-fetch`
//! accept real segments (a new timeline's first segment, zero-padded tails) in every
//! compression and refuse them with a flipped page header.
//!
//! Needs the PostgreSQL 15 binaries (`apt-get install -y postgresql-15`); see `common/pg.rs` for how
//! the clusters are run.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::common::pg::{
    Cluster, ClusterOptions, Pgbench, RecoveryTarget, describe_output, is_segment_name, pg_tempdir,
    walg, walg_command,
};

const ARCHIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// The LZ4 frame magic number, as stored by the default compression (lz4).
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4D, 0x18];

/// Names (without extension) of the segment objects in `<prefix>/wal_005/`, checking that each is
/// stored as `<name>.lz4`. Temp files of an upload in progress are not objects and are skipped.
fn stored_segments(prefix: &Path) -> BTreeSet<String> {
    let dir = prefix.join("wal_005");
    let mut names = BTreeSet::new();
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display())) {
        let entry = entry.expect("dir entry");
        let file = entry.file_name().into_string().expect("utf-8 object name");
        if file.contains(".tmp.") {
            continue;
        }
        let stem = file.split('.').next().unwrap_or_default();
        if !is_segment_name(stem) || file.len() != 24 + ".lz4".len() {
            continue;
        }
        assert!(
            file.ends_with(".lz4"),
            "segment stored as {file}, expected <name>.lz4"
        );
        let head = fs::read(entry.path()).expect("read stored object");
        assert!(
            head.starts_with(&LZ4_MAGIC),
            "{file} does not start with an LZ4 frame"
        );
        names.insert(stem.to_string());
    }
    names
}

#[test]
fn archived_segments_fetch_back_byte_for_byte() {
    let storage = pg_tempdir("walgst");
    let prefix = storage.path().to_str().expect("utf-8 path");
    let settings = [("WALG_FILE_PREFIX", prefix)];

    // Keep finished segments in pg_wal after archiving, to compare against.
    let mut opts = ClusterOptions::archiving(walg_command(&settings, "wal-push %p"));
    opts.wal_keep_size_mb = 2048;
    let mut pg = Cluster::init(opts);
    pg.start();
    pg.pgbench_init(1);
    pg.pgbench_run(Pgbench::Transactions(300));

    let mut switched = Vec::new();
    for i in 0..4 {
        pg.psql(&format!(
            "create table filler_{i} as select g, md5(g::text) from generate_series(1, 20000) g"
        ));
        switched.push(pg.switch_wal());
    }
    let distinct: BTreeSet<&String> = switched.iter().collect();
    assert_eq!(
        distinct.len(),
        switched.len(),
        "each switch after writes completes a new segment: {switched:?}"
    );

    let last = switched.last().expect("switched at least once");
    pg.wait_archived_through(last, ARCHIVE_TIMEOUT);
    let stats = pg.wait_archived(switched.len() as u64, ARCHIVE_TIMEOUT);
    assert_eq!(
        stats.failed_count,
        0,
        "archive_command failed: {stats:?}\n{}",
        pg.log_tail()
    );

    let stored = stored_segments(storage.path());
    for name in &switched {
        assert!(
            stored.contains(name),
            "{name} archived by PostgreSQL but not in wal_005/: {stored:?}"
        );
    }
    assert!(
        stored.len() as u64 >= stats.archived_count,
        "{} segments stored, PostgreSQL archived {}",
        stored.len(),
        stats.archived_count
    );

    let fetched = pg_tempdir("walgfetch");
    for name in &stored {
        let dest = fetched.path().join(name);
        let out = walg(
            &["wal-fetch", name, dest.to_str().expect("utf-8 path")],
            &settings,
        );
        assert!(
            out.status.success(),
            "wal-fetch {name} failed\n{}",
            describe_output(&out)
        );
        let original = fs::read(pg.data_dir().join("pg_wal").join(name))
            .unwrap_or_else(|e| panic!("{name} no longer in pg_wal: {e}"));
        let restored = fs::read(&dest).expect("read fetched segment");
        assert_eq!(original.len(), 16 * 1024 * 1024, "{name} segment size");
        assert!(
            restored == original,
            "wal-fetch {name}: {} bytes differ from what PostgreSQL wrote",
            restored
                .iter()
                .zip(&original)
                .filter(|(a, b)| a != b)
                .count()
                + restored.len().abs_diff(original.len())
        );
    }

    // A segment that was never archived: "missing" (74), and nothing left at the destination.
    for missing in ["0000000100000000000000FF", "000000010000001000000000"] {
        let dest = fetched.path().join(missing);
        let out = walg(
            &["wal-fetch", missing, dest.to_str().expect("utf-8 path")],
            &settings,
        );
        assert_eq!(
            out.status.code(),
            Some(74),
            "wal-fetch of a missing segment must exit 74\n{}",
            describe_output(&out)
        );
        assert!(
            !dest.exists(),
            "wal-fetch of a missing segment left a file at {}",
            dest.display()
        );
    }

    pg.stop();
}

#[test]
fn base_backup_recovers_from_archive_via_wal_fetch() {
    let storage = pg_tempdir("walgst");
    let prefix = storage.path().to_str().expect("utf-8 path");
    let settings = [("WALG_FILE_PREFIX", prefix)];

    let mut primary = Cluster::init(ClusterOptions::archiving(walg_command(
        &settings,
        "wal-push %p",
    )));
    primary.start();
    primary.pgbench_init(1);
    primary.psql("create table marker (id int primary key, note text not null)");
    primary.psql("insert into marker values (1, 'before the base backup')");

    // No WAL in the copy: everything from the backup start on must come from the archive.
    let mut copy = primary.basebackup(ClusterOptions::default());
    assert!(
        fs::read_dir(copy.data_dir().join("pg_wal"))
            .expect("list pg_wal of the copy")
            .flatten()
            .all(|e| !is_segment_name(&e.file_name().to_string_lossy())),
        "pg_basebackup -X none copied WAL segments"
    );

    primary.pgbench_run(Pgbench::Transactions(200));
    primary.psql(
        "insert into marker select g, 'after the base backup' from generate_series(2, 5000) g",
    );
    let seg = primary.switch_wal();
    primary.pgbench_run(Pgbench::Transactions(100));
    primary.psql("insert into marker values (100000, 'the marker')");
    let expected = primary.psql(
        "select (select count(*) from marker) || ':' || \
                (select sum(abalance) from pgbench_accounts) || ':' || \
                (select count(*) from pgbench_history)",
    );
    let last = primary.switch_wal();
    assert!(last > seg, "second switch completed {last} after {seg}");
    let stats = primary.wait_archived_through(&last, ARCHIVE_TIMEOUT);
    assert_eq!(
        stats.failed_count,
        0,
        "archive_command failed: {stats:?}\n{}",
        primary.log_tail()
    );
    primary.stop();
    drop(primary);

    copy.start_recovery_with(&walg_command(&settings, "wal-fetch %f %p"), None);
    copy.wait_for_recovery_end(Duration::from_secs(180));

    assert_eq!(
        copy.psql("select note from marker where id = 100000"),
        "the marker",
        "marker row missing after recovery\n{}",
        copy.log_tail()
    );
    let got = copy.psql(
        "select (select count(*) from marker) || ':' || \
                (select sum(abalance) from pgbench_accounts) || ':' || \
                (select count(*) from pgbench_history)",
    );
    assert_eq!(
        got, expected,
        "row counts after recovery (marker:sum:history)"
    );
    let log = copy.log_text();
    for name in [&seg, &last] {
        assert!(
            log.contains(&format!("restored log file \"{name}\" from archive")),
            "{name} was not restored through restore_command\n{}",
            copy.log_tail()
        );
    }
    copy.stop();
}

#[test]
fn real_segments_of_a_new_timeline_pass_the_page_checks_in_every_compression() {
    let store = pg_tempdir("walgst");
    let settings = [(
        "WALG_FILE_PREFIX",
        store.path().to_str().expect("utf-8 path"),
    )];
    let promoted_store = pg_tempdir("walgst2");
    let promoted_settings = [(
        "WALG_FILE_PREFIX",
        promoted_store.path().to_str().expect("utf-8 path"),
    )];

    let mut primary = Cluster::init(ClusterOptions::archiving(walg_command(
        &settings,
        "wal-push %p",
    )));
    primary.start();
    primary.pgbench_init(1);
    let mut copy_opts = ClusterOptions::archiving(walg_command(&promoted_settings, "wal-push %p"));
    copy_opts.wal_keep_size_mb = 256;
    let mut copy = primary.basebackup(copy_opts);
    primary.pgbench_run(Pgbench::Transactions(100));
    primary.psql("select pg_create_restore_point('walg_mid')");
    primary.pgbench_run(Pgbench::Transactions(100));
    let last = primary.switch_wal();
    let stats = primary.wait_archived_through(&last, ARCHIVE_TIMEOUT);
    assert_eq!(stats.failed_count, 0, "{}", primary.log_tail());
    primary.stop();
    drop(primary);

    // Recovery stops in the middle of a segment and promotes: the first segment of timeline 2
    // starts with the pages of timeline 1 copied up to that point.
    copy.start_recovery_with(
        &walg_command(&settings, "wal-fetch %f %p"),
        Some(RecoveryTarget::Name("walg_mid".to_string())),
    );
    copy.wait_for_recovery_end(Duration::from_secs(180));
    copy.psql("create table after_promotion as select g from generate_series(1, 1000) g");
    let first = copy.switch_wal();
    assert!(first.starts_with("00000002"), "not on timeline 2: {first}");
    let stats = copy.wait_archived_through(&first, ARCHIVE_TIMEOUT);
    assert_eq!(stats.failed_count, 0, "{}", copy.log_tail());
    let original = fs::read(copy.data_dir().join("pg_wal").join(&first))
        .unwrap_or_else(|e| panic!("{first} not in pg_wal: {e}"));
    assert_eq!(
        u32::from_le_bytes([original[4], original[5], original[6], original[7]]),
        1,
        "{first} does not start with a page of timeline 1"
    );

    let work = pg_tempdir("walgfetch");
    let dest = work.path().join(&first);
    let out = walg(
        &["wal-fetch", &first, dest.to_str().expect("utf-8 path")],
        &promoted_settings,
    );
    assert!(
        out.status.success(),
        "wal-fetch {first}\n{}",
        describe_output(&out)
    );
    assert!(
        fs::read(&dest).expect("fetched") == original,
        "{first} differs"
    );
    fs::remove_file(&dest).expect("rm");

    let src = work.path().join("src");
    fs::create_dir(&src).expect("mkdir");
    let pushed = src.join(&first);
    for method in ["lz4", "zstd", "brotli", "lzma", "none"] {
        for flip in [None, Some(9), Some(8192 * 1000 + 1)] {
            let method_store = tempfile::tempdir().expect("temp dir");
            let env = [
                (
                    "WALG_FILE_PREFIX",
                    method_store.path().to_str().expect("utf-8"),
                ),
                ("WALG_COMPRESSION_METHOD", method),
                ("WALG_DOWNLOAD_CONCURRENCY", "1"),
            ];
            let mut body = original.clone();
            if let Some(at) = flip {
                body[at] ^= 0x10;
            }
            fs::write(&pushed, &body).expect("write");
            let out = walg(&["wal-push", pushed.to_str().expect("utf-8")], &env);
            assert!(out.status.success(), "{method}\n{}", describe_output(&out));
            let out = walg(&["wal-fetch", &first, dest.to_str().expect("utf-8")], &env);
            match flip {
                None => {
                    assert!(out.status.success(), "{method}\n{}", describe_output(&out));
                    assert!(fs::read(&dest).expect("fetched") == original, "{method}");
                    fs::remove_file(&dest).expect("rm");
                }
                Some(at) => {
                    assert_eq!(
                        out.status.code(),
                        Some(200),
                        "{method}: byte {at} flipped\n{}",
                        describe_output(&out)
                    );
                    assert!(!dest.exists(), "{method}: byte {at} flipped, file left");
                }
            }
        }
    }
    copy.stop();
}
