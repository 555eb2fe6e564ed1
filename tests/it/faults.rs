//! Faults between walg and S3: a proxy (tests/it/common/faultproxy.rs) in front of a real s3s-fs
//! server answers 503, resets connections before or in the middle of an answer, stalls, or
//! trickles bodies, at a seeded rate or on every request. At a 10% rate every command must
//! succeed with the right data; with every request faulty each command must fail within its
//! deadline with one error line and its documented exit code (wal-fetch: 200, never 74).
//! A download broken mid-body resumes with a ranged GET; a stored object damaged on the
//! server's disk fails its CRC32C check.
//!
//! Needs s3s-fs and the PostgreSQL 15 binaries (`scripts/install-deps.sh` installs both).
//! Each test prints its measurements (runs, failures, slowest run) to stderr.
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use bytes::Bytes;
use walg::storage::s3::S3Storage;
use walg::storage::{Key, StorageExt};

use crate::common;
use crate::common::env_of;
use crate::common::faultproxy::{Fault, FaultProxy, Plan};
use crate::common::pg::{Cluster, ClusterOptions, describe_output, pg_tempdir, walg, walg_as_pg};
use crate::common::s3server::S3Server;
use crate::common::segments::fake_segment;

const PREFIX: &str = "pg/faults";
/// Per attempt; also the longest a body may stall.
const REQUEST_TIMEOUT_S: u64 = 1;
/// Retries of one request, and resumes of one download.
const RETRIES: u64 = 2;
const SEGMENTS: [&str; 4] = [
    "000000010000000000000010",
    "000000010000000000000011",
    "000000010000000000000012",
    "000000010000000000000013",
];

/// walg's settings for S3 at `endpoint` (the proxy or the server), with short deadlines.
fn settings(server: &S3Server, endpoint: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = server
        .walg_env(PREFIX)
        .into_iter()
        .filter(|(k, _)| k != "AWS_ENDPOINT")
        .collect();
    for (k, v) in [
        ("AWS_ENDPOINT", endpoint.to_string()),
        ("S3_MAX_RETRIES", RETRIES.to_string()),
        ("WALG_DOWNLOAD_FILE_RETRIES", RETRIES.to_string()),
        ("S3_REQUEST_TIMEOUT", format!("{REQUEST_TIMEOUT_S}s")),
        ("S3_CONNECT_TIMEOUT", "1s".to_string()),
        // No prefetch: one wal-fetch reads one object.
        ("WALG_DOWNLOAD_CONCURRENCY", "1".to_string()),
    ] {
        env.push((k.to_string(), v));
    }
    env
}

/// Runs, failures and the slowest run of one command under one condition.
#[derive(Default)]
struct Tally {
    runs: u32,
    failures: u32,
    slowest: Duration,
}

impl Tally {
    fn run(&mut self, f: impl FnOnce() -> Output) -> Output {
        let started = Instant::now();
        let out = f();
        self.runs += 1;
        self.failures += u32::from(!out.status.success());
        self.slowest = self.slowest.max(started.elapsed());
        out
    }

    fn report(&self, condition: &str, command: &str) {
        eprintln!(
            "[faults] {condition:<22} {command:<13} runs {:>2} failures {:>2} slowest {:.1}s",
            self.runs,
            self.failures,
            self.slowest.as_secs_f64()
        );
    }
}

fn write_segment(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, fake_segment(name, seed)).expect("writing a segment");
    path
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The one `ERROR:` line of a failed command (a `HINT:` line may follow).
fn assert_one_error_line(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors = stderr.lines().filter(|l| l.starts_with("ERROR:")).count();
    assert_eq!(
        errors,
        1,
        "{what}: one error line\n{}",
        describe_output(out)
    );
    assert!(
        !stderr.contains("panicked"),
        "{what}: a panic\n{}",
        describe_output(out)
    );
}

/// The longest a command may take with every request failing: each request's attempts and
/// backoffs, a few requests in a row, plus process start.
fn deadline() -> Duration {
    let per_request = (RETRIES + 1) * (REQUEST_TIMEOUT_S + 1) + RETRIES * 5;
    Duration::from_secs(3 * per_request + 10)
}

#[test]
fn wal_commands_succeed_at_a_ten_percent_fault_rate_and_fetch_identical_bytes() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(
        server.port(),
        Plan::Rate {
            percent: 10,
            seed: 0x5EED_0001,
            kinds: Fault::ALL.to_vec(),
        },
    );
    let env = settings(&server, &proxy.endpoint());
    let env = env_of(&env);
    let work = tempfile::tempdir().expect("temp dir");
    let (mut push, mut fetch, mut list, mut delete) = Default::default();
    let condition = "10% mixed";
    for round in 0..3u64 {
        for i in 0..4u64 {
            let name = &format!("0000000100000000000000{:02X}", 0x20 + round * 8 + i);
            let seed = round * 100 + i;
            let src = write_segment(work.path(), name, seed);
            let out = Tally::run(&mut push, || walg(&["wal-push", path_str(&src)], &env));
            assert!(
                out.status.success(),
                "wal-push {name}\n{}",
                describe_output(&out)
            );
            let dest = work.path().join(format!("fetched-{name}"));
            let out = Tally::run(&mut fetch, || {
                walg(&["wal-fetch", name, path_str(&dest)], &env)
            });
            assert!(
                out.status.success(),
                "wal-fetch {name}\n{}",
                describe_output(&out)
            );
            assert!(
                std::fs::read(&dest).expect("fetched segment") == fake_segment(name, seed),
                "wal-fetch {name}: the bytes differ from the pushed segment"
            );
            std::fs::remove_file(&src).expect("removing the segment");
        }
        let out = Tally::run(&mut list, || walg(&["backup-list"], &env));
        assert!(
            out.status.success(),
            "backup-list\n{}",
            describe_output(&out)
        );
        let out = Tally::run(&mut delete, || {
            walg(&["delete", "retain", "1", "--confirm"], &env)
        });
        assert!(out.status.success(), "delete\n{}", describe_output(&out));
    }
    push.report(condition, "wal-push");
    fetch.report(condition, "wal-fetch");
    list.report(condition, "backup-list");
    delete.report(condition, "delete");
    eprintln!(
        "[faults] {condition}: {} requests, {} faults",
        proxy.requests(),
        proxy.faults()
    );
    assert!(proxy.faults() > 0, "the plan injected no fault");
}

#[test]
fn a_download_broken_mid_body_resumes_with_a_ranged_get() {
    let server = S3Server::start();
    let direct = settings(&server, &server.endpoint());
    let work = tempfile::tempdir().expect("temp dir");
    let name = SEGMENTS[0];
    let src = write_segment(work.path(), name, 7);
    let out = walg(&["wal-push", path_str(&src)], &env_of(&direct));
    assert!(out.status.success(), "wal-push\n{}", describe_output(&out));

    for fault in [Fault::ResetMidBody, Fault::StallMidBody] {
        let proxy = FaultProxy::start(server.port(), Plan::Nth(0, fault));
        let env = settings(&server, &proxy.endpoint());
        let dest = work.path().join(format!("fetched-{fault:?}"));
        let out = walg(&["wal-fetch", name, path_str(&dest)], &env_of(&env));
        assert!(
            out.status.success(),
            "wal-fetch after {fault:?}\n{}\nrequests: {:?}",
            describe_output(&out),
            proxy.log()
        );
        assert!(
            std::fs::read(&dest).expect("fetched") == fake_segment(name, 7),
            "{fault:?}: the resumed download differs from the pushed segment"
        );
        let log = proxy.log();
        assert_eq!(log.len(), 2, "one GET and one resume: {log:?}");
        assert!(
            log[1].starts_with("GET ")
                && log[1].contains("range=bytes=")
                && !log[1].ends_with("=0-"),
            "the second request resumes from the byte reached: {log:?}"
        );
    }
}

#[test]
fn an_object_replaced_while_its_download_stalls_is_not_spliced() {
    let server = S3Server::start();
    let direct = settings(&server, &server.endpoint());
    let work = tempfile::tempdir().expect("temp dir");
    let name = SEGMENTS[2];
    let src = write_segment(work.path(), name, 5);
    let out = walg(&["wal-push", path_str(&src)], &env_of(&direct));
    assert!(out.status.success(), "wal-push\n{}", describe_output(&out));

    // The first answer stalls after half its body, for S3_REQUEST_TIMEOUT; meanwhile the
    // object is replaced by one of the same size, so only its ETag tells the resume that it
    // is another object.
    let stored = server
        .data_dir()
        .join(server.bucket())
        .join(PREFIX)
        .join("wal_005")
        .join(format!("{name}.lz4"));
    let size = std::fs::metadata(&stored).expect("the stored object").len();
    let other = Bytes::from(vec![0x5A; usize::try_from(size).expect("size")]);
    let proxy = FaultProxy::start(server.port(), Plan::Nth(0, Fault::StallMidBody));
    let env = settings(&server, &proxy.endpoint());
    let dest = work.path().join("fetched");
    let out = std::thread::scope(|s| {
        let fetch = s.spawn(|| walg(&["wal-fetch", name, path_str(&dest)], &env_of(&env)));
        let waited = Instant::now();
        while proxy.requests() == 0 && waited.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(300));
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let storage = S3Storage::new(&server.settings(PREFIX))
                .await
                .expect("building the s3 client");
            let key = Key::new(&format!("wal_005/{name}.lz4")).expect("key");
            storage
                .put_bytes(&key, other.clone())
                .await
                .expect("replacing the object");
        });
        fetch.join().expect("wal-fetch thread")
    });
    assert_eq!(
        out.status.code(),
        Some(200),
        "{}\nrequests: {:?}",
        describe_output(&out),
        proxy.log()
    );
    assert!(!dest.exists(), "nothing at the destination");
    assert_one_error_line(&out, "wal-fetch of a replaced object");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("changed while it was read") && stderr.contains("ETag"),
        "the error says the object changed\n{stderr}"
    );
}

#[test]
fn a_segment_damaged_on_the_server_fails_its_checksum_and_wal_fetch_exits_200() {
    let server = S3Server::start();
    let env = settings(&server, &server.endpoint());
    let env = env_of(&env);
    let work = tempfile::tempdir().expect("temp dir");
    let name = SEGMENTS[1];
    let src = write_segment(work.path(), name, 11);
    let out = walg(&["wal-push", path_str(&src)], &env);
    assert!(out.status.success(), "wal-push\n{}", describe_output(&out));

    let stored = server
        .data_dir()
        .join(server.bucket())
        .join(PREFIX)
        .join("wal_005")
        .join(format!("{name}.lz4"));
    let mut bytes = std::fs::read(&stored).expect("the stored object");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&stored, &bytes).expect("damaging the stored object");

    let dest = work.path().join("fetched");
    let out = walg(&["wal-fetch", name, path_str(&dest)], &env);
    assert_eq!(out.status.code(), Some(200), "{}", describe_output(&out));
    assert!(!dest.exists(), "nothing at the destination");
    assert_one_error_line(&out, "wal-fetch of a damaged object");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CRC32C"),
        "the error names the checksum\n{stderr}"
    );
}

#[test]
fn with_every_request_faulty_each_wal_command_fails_in_time_with_its_exit_code() {
    let server = S3Server::start();
    let direct = settings(&server, &server.endpoint());
    let work = tempfile::tempdir().expect("temp dir");
    let stored = SEGMENTS[2];
    let src = write_segment(work.path(), stored, 3);
    let out = walg(&["wal-push", path_str(&src)], &env_of(&direct));
    assert!(out.status.success(), "wal-push\n{}", describe_output(&out));
    let fresh = write_segment(work.path(), SEGMENTS[3], 4);
    let limit = deadline();

    for fault in Fault::ALL {
        let proxy = FaultProxy::start(server.port(), Plan::Always(fault));
        let env = settings(&server, &proxy.endpoint());
        let env = env_of(&env);
        let condition = format!("100% {fault:?}");
        let slow_only = fault == Fault::SlowBody;
        let dest = work.path().join(format!("fetched-{fault:?}"));
        let commands: [(&str, Vec<&str>, i32); 4] = [
            ("wal-push", vec!["wal-push", path_str(&fresh)], 1),
            ("wal-fetch", vec!["wal-fetch", stored, path_str(&dest)], 200),
            ("backup-list", vec!["backup-list"], 1),
            ("delete", vec!["delete", "retain", "1", "--confirm"], 1),
        ];
        for (command, args, code) in commands {
            let mut tally = Tally::default();
            let out = tally.run(|| walg(&args, &env));
            tally.report(&condition, command);
            assert!(
                tally.slowest < limit,
                "{command} under {condition} took {:?} (limit {limit:?})",
                tally.slowest
            );
            if slow_only {
                // A slow answer that keeps coming is not a failure.
                assert!(
                    out.status.success(),
                    "{command} under {condition}\n{}",
                    describe_output(&out)
                );
                continue;
            }
            assert_eq!(
                out.status.code(),
                Some(code),
                "{command} under {condition}\n{}",
                describe_output(&out)
            );
            assert_one_error_line(&out, &format!("{command} under {condition}"));
            if command == "wal-fetch" {
                assert!(!dest.exists(), "wal-fetch under {condition} left a file");
            }
        }
    }
}

/// A file-by-file comparison of two restored data directories.
fn assert_same_tree(expected: &Path, actual: &Path) {
    let files = |root: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut out: Vec<_> = walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let rel = e
                    .path()
                    .strip_prefix(root)
                    .expect("below root")
                    .to_path_buf();
                (
                    rel,
                    std::fs::read(e.path()).expect("reading a restored file"),
                )
            })
            .collect();
        out.sort();
        out
    };
    let (a, b) = (files(expected), files(actual));
    assert_eq!(
        a.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        b.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        "the same files"
    );
    for ((path, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{} differs", path.display());
    }
}

#[test]
fn backups_survive_a_ten_percent_fault_rate_and_fail_in_time_when_every_request_fails() {
    let server = S3Server::start();
    let with_small_parts = |mut env: Vec<(String, String)>| {
        // Many tar parts: many objects to push and fetch through the faults.
        env.push(("WALG_TAR_SIZE_THRESHOLD".into(), (4 << 20).to_string()));
        env
    };
    let settings = |server: &S3Server, endpoint: &str| with_small_parts(settings(server, endpoint));
    let direct = settings(&server, &server.endpoint());
    // WAL goes straight to S3: the faults are for the commands under test.
    let archive = common::pg::walg_command(&env_of(&direct), "wal-push %p");
    let mut pg = Cluster::init(ClusterOptions::archiving(archive));
    pg.start();
    pg.pgbench_init(2);
    let data_dir = path_str(pg.data_dir()).to_string();
    let run = |env: &[(String, String)], args: &[&str]| {
        let mut all = env.to_vec();
        all.extend(pg.client_env());
        walg_as_pg(args, &env_of(&all), pg.root_dir())
    };
    let condition = "10% mixed";
    let (mut push, mut fetch) = (Tally::default(), Tally::default());
    for seed in 0..3u64 {
        let proxy = FaultProxy::start(
            server.port(),
            Plan::Rate {
                percent: 10,
                seed: 0xBAC0_0000 + seed,
                kinds: Fault::ALL.to_vec(),
            },
        );
        let env = settings(&server, &proxy.endpoint());
        let out = push.run(|| run(&env, &["backup-push", &data_dir]));
        assert!(
            out.status.success(),
            "backup-push (seed {seed})\n{}",
            describe_output(&out)
        );
        eprintln!(
            "[faults] backup-push seed {seed}: {} requests, {} faults",
            proxy.requests(),
            proxy.faults()
        );
    }
    // The reference: a restore of the latest backup without faults.
    let root = pg_tempdir("walgfaultref");
    let reference = root.path().join("data");
    let out = run(&direct, &["backup-fetch", path_str(&reference), "LATEST"]);
    assert!(
        out.status.success(),
        "backup-fetch\n{}",
        describe_output(&out)
    );
    for seed in 0..8u64 {
        let proxy = FaultProxy::start(
            server.port(),
            Plan::Rate {
                percent: 10,
                seed: 0xFE7C_0000 + seed,
                kinds: Fault::ALL.to_vec(),
            },
        );
        let env = settings(&server, &proxy.endpoint());
        let dest = root.path().join(format!("restored-{seed}"));
        let out = fetch.run(|| run(&env, &["backup-fetch", path_str(&dest), "LATEST"]));
        assert!(
            out.status.success(),
            "backup-fetch (seed {seed})\n{}",
            describe_output(&out)
        );
        assert_same_tree(&reference, &dest);
        eprintln!(
            "[faults] backup-fetch seed {seed}: {} requests, {} faults",
            proxy.requests(),
            proxy.faults()
        );
    }
    push.report(condition, "backup-push");
    fetch.report(condition, "backup-fetch");

    let limit = deadline();
    for fault in Fault::ALL.into_iter().filter(|f| *f != Fault::SlowBody) {
        let proxy = FaultProxy::start(server.port(), Plan::Always(fault));
        let env = settings(&server, &proxy.endpoint());
        let condition = format!("100% {fault:?}");
        let dest = root.path().join(format!("failed-{fault:?}"));
        let runs: [(&str, Vec<&str>); 2] = [
            ("backup-push", vec!["backup-push", &data_dir]),
            (
                "backup-fetch",
                vec!["backup-fetch", path_str(&dest), "LATEST"],
            ),
        ];
        for (command, args) in runs {
            let mut tally = Tally::default();
            let out = tally.run(|| run(&env, &args));
            tally.report(&condition, command);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{command} under {condition}\n{}",
                describe_output(&out)
            );
            assert_one_error_line(&out, &format!("{command} under {condition}"));
            assert!(
                tally.slowest < limit,
                "{command} under {condition} took {:?} (limit {limit:?})",
                tally.slowest
            );
        }
        assert!(
            !dest.join("global/pg_control").exists(),
            "backup-fetch under {condition} wrote pg_control"
        );
    }
    pg.stop();
}
