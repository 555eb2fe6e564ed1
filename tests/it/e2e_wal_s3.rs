//! End to end: PostgreSQL 15 archives through `walg wal-push` into S3 (an s3s-fs server on
//! loopback that checks request signatures), recovers through `walg wal-fetch`, and rides out
//! an outage of the S3 server without losing a segment.
//!
//! Needs the PostgreSQL 15 binaries and s3s-fs (`scripts/install-deps.sh` installs both).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common;
use crate::common::pg::{
    Cluster, ClusterOptions, Pgbench, describe_output, is_segment_name, walg, walg_command,
};
use crate::common::s3server::S3Server;

const ARCHIVE_TIMEOUT: Duration = Duration::from_secs(120);
const PREFIX: &str = "pg/main";

/// walg's settings for this server, with small deadlines so an outage is noticed quickly.
fn settings(server: &S3Server) -> Vec<(String, String)> {
    let mut env = server.walg_env(PREFIX);
    env.push(("S3_MAX_RETRIES".into(), "2".into()));
    env.push(("S3_REQUEST_TIMEOUT".into(), "3s".into()));
    env.push(("S3_CONNECT_TIMEOUT".into(), "1s".into()));
    env
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Segment names stored under the prefix, read from the server's folder.
fn stored_segments(server: &S3Server) -> BTreeSet<String> {
    let dir = server
        .data_dir()
        .join(server.bucket())
        .join(PREFIX)
        .join("wal_005");
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".lz4"))
                        .map(str::to_string)
                })
                .filter(|n| is_segment_name(n))
                .collect()
        })
        .unwrap_or_default()
}

/// Every segment name from `first` to `last` on timeline 1 (16 MiB segments).
fn segment_range(first: &str, last: &str) -> Vec<String> {
    let number = |name: &str| {
        u64::from_str_radix(&name[8..16], 16).expect("log") * 256
            + u64::from_str_radix(&name[16..24], 16).expect("seg")
    };
    (number(first)..=number(last))
        .map(|n| format!("00000001{:08X}{:08X}", n / 256, n % 256))
        .collect()
}

fn fetch(env: &[(&str, &str)], name: &str, dest: &Path) -> std::process::Output {
    walg(&["wal-fetch", name, dest.to_str().expect("utf-8")], env)
}

#[test]
fn archive_to_s3_fetch_back_and_recover() {
    let server = S3Server::start();
    let env = settings(&server);
    let env = borrowed(&env);

    let mut opts = ClusterOptions::archiving(walg_command(&env, "wal-push %p"));
    opts.wal_keep_size_mb = 2048;
    let mut pg = Cluster::init(opts);
    pg.start();
    pg.pgbench_init(1);
    pg.pgbench_run(Pgbench::Transactions(200));
    let mut switched = Vec::new();
    for i in 0..3 {
        pg.psql(&format!(
            "create table filler_{i} as select g, md5(g::text) from generate_series(1, 20000) g"
        ));
        switched.push(pg.switch_wal());
    }
    let last = switched.last().expect("switched").clone();
    let stats = pg.wait_archived_through(&last, ARCHIVE_TIMEOUT);
    // The operator's check.
    assert_eq!(stats.failed_count, 0, "{stats:?}\n{}", pg.log_tail());
    assert!(stats.archived_count >= 3, "{stats:?}");

    // Every archived segment comes back byte for byte, through the S3 API.
    let stored = stored_segments(&server);
    assert!(
        switched.iter().all(|s| stored.contains(s)),
        "{switched:?} not all in {stored:?}"
    );
    let out_dir = common::pg::pg_tempdir("walgfetch");
    for name in &stored {
        let dest = out_dir.path().join(name);
        let out = fetch(&env, name, &dest);
        assert!(
            out.status.success(),
            "wal-fetch {name}\n{}",
            describe_output(&out)
        );
        let original = std::fs::read(pg.data_dir().join("pg_wal").join(name)).expect("pg_wal copy");
        assert!(
            std::fs::read(&dest).expect("fetched") == original,
            "{name} differs"
        );
    }
    let missing = out_dir.path().join("missing");
    let out = fetch(&env, "0000000100000000000000FE", &missing);
    assert_eq!(out.status.code(), Some(74), "{}", describe_output(&out));
    assert!(!missing.exists());

    // Recovery: a base copy without WAL, more writes and a marker, then replay from S3.
    let mut copy = pg.basebackup(ClusterOptions::default());
    pg.pgbench_run(Pgbench::Transactions(100));
    pg.psql("create table marker as select 'after the base copy'::text as note");
    let expected = pg.psql("select count(*) from pgbench_history");
    let last = pg.switch_wal();
    pg.wait_archived_through(&last, ARCHIVE_TIMEOUT);
    pg.stop();
    copy.start_recovery_with(&walg_command(&env, "wal-fetch %f %p"), None);
    copy.wait_for_recovery_end(ARCHIVE_TIMEOUT);
    assert_eq!(copy.psql("select note from marker"), "after the base copy");
    assert_eq!(copy.psql("select count(*) from pgbench_history"), expected);
}

#[test]
fn s3_outage_fails_fast_and_loses_nothing() {
    let mut server = S3Server::start();
    let env = settings(&server);
    let env = borrowed(&env);
    let mut opts = ClusterOptions::archiving(walg_command(&env, "wal-push %p"));
    opts.wal_keep_size_mb = 2048;
    opts.extra_conf.push("archive_timeout = 0".into());
    let mut pg = Cluster::init(opts);
    pg.start();
    pg.pgbench_init(1);
    let first = pg.switch_wal();
    pg.wait_archived_through(&first, ARCHIVE_TIMEOUT);

    // step: the server goes away.
    server.stop();

    // A wal-push against the dead server fails, within its deadline: 3 attempts of at most
    // 1 s connect + 3 s request, plus backoff below 0.4 s, plus start-up.
    let segment = pg.data_dir().join("pg_wal").join(&first);
    let started = Instant::now();
    let out = walg(&["wal-push", segment.to_str().expect("utf-8")], &env);
    let took = started.elapsed();
    assert!(
        !out.status.success(),
        "wal-push must fail while S3 is down\n{}",
        describe_output(&out)
    );
    assert!(
        took < Duration::from_secs(15),
        "wal-push took {took:?}: it must give up within its deadline"
    );
    // wal-fetch says "could not read the archive" (200), never "not there" (74).
    let scratch = common::pg::pg_tempdir("walgoutage");
    let dest = scratch.path().join("x");
    let out = fetch(&env, &first, &dest);
    assert_eq!(out.status.code(), Some(200), "{}", describe_output(&out));
    assert!(!dest.exists());

    // PostgreSQL keeps writing; its archive_command fails and will be retried.
    for i in 0..3 {
        pg.psql(&format!(
            "create table during_outage_{i} as select g from generate_series(1, 50000) g"
        ));
        pg.switch_wal();
    }
    let deadline = Instant::now() + ARCHIVE_TIMEOUT;
    while pg.archiver_stats().failed_count == 0 {
        assert!(
            Instant::now() < deadline,
            "archiving never failed during the outage"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // step: the server comes back; PostgreSQL's retries archive everything.
    server.restart();
    pg.psql("create table after_outage as select 1");
    let last = pg.switch_wal();
    let stats = pg.wait_archived_through(&last, Duration::from_secs(180));
    assert!(stats.failed_count >= 1, "{stats:?}");

    let stored = stored_segments(&server);
    let first_stored = stored.iter().next().expect("segments stored").clone();
    for name in segment_range(&first_stored, &last) {
        assert!(
            stored.contains(&name),
            "segment {name} is missing from storage after the outage"
        );
        let out = fetch(&env, &name, &scratch.path().join(&name));
        assert!(out.status.success(), "{name}: {}", describe_output(&out));
    }
}
