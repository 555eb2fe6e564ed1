//! End to end: `walg backup-push` of a live PostgreSQL 15 cluster while pgbench writes,
//! `walg backup-fetch` into a new directory, recovery through `walg wal-fetch`, and checks that
//! the restored cluster holds exactly the data (pg_dumpall) and passes pg_amcheck. Local folder
//! and S3; point-in-time recovery; a failure in the middle of a backup; a cluster with data
//! checksums, whose restored copy passes `pg_checksums --check`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::env_of;
use crate::common::pg::{
    Cluster, ClusterOptions, Pgbench, describe_output, pg_tempdir, pg_tool, run_with_timeout,
    walg_as_pg, walg_as_pg_command, walg_command,
};
use crate::common::s3server::S3Server;

const TIMEOUT: Duration = Duration::from_secs(180);

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("backup-push did not end within {timeout:?} after S3 stopped");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A table with realistic, poorly compressible content: random text, uuids, jsonb, an index.
fn realistic_data(pg: &Cluster, rows: u32) {
    pg.psql(&format!(
        "create table docs(id bigserial primary key, uid uuid not null default gen_random_uuid(), \
         body text, meta jsonb); \
         insert into docs(body, meta) select \
           string_agg(md5(random()::text), ' '), \
           jsonb_build_object('n', g, 'tag', md5(g::text), 'score', random()) \
         from generate_series(1, {rows}) g, generate_series(1, 8) w group by g; \
         create index on docs(uid); create index on docs using gin(meta);"
    ));
}

/// Runs walg as the PostgreSQL user with `settings` and the cluster's connection.
fn walg(pg: &Cluster, settings: &[(String, String)], args: &[&str]) -> std::process::Output {
    let mut all = settings.to_vec();
    all.extend(pg.client_env());
    walg_as_pg(args, &env_of(&all), pg.root_dir())
}

/// Backup-fetch of LATEST with `--write-recovery-conf` into a new directory (named after
/// `prefix`), as a cluster not yet started.
fn fetch_latest_with_recovery(
    pg: &Cluster,
    settings: &[(String, String)],
    prefix: &str,
) -> Cluster {
    let root = pg_tempdir(prefix);
    let dest = root.path().join("data");
    let out = walg(
        pg,
        settings,
        &[
            "backup-fetch",
            dest.to_str().expect("utf-8"),
            "LATEST",
            "--write-recovery-conf",
        ],
    );
    assert!(
        out.status.success(),
        "backup-fetch\n{}",
        describe_output(&out)
    );
    assert!(dest.join("recovery.signal").is_file());
    Cluster::from_restored(root, ClusterOptions::default())
}

/// Backup while pgbench writes, more writes and a marker, restore, recover, compare.
fn round_trip(settings: Vec<(String, String)>) {
    let archive = walg_command(&env_of(&settings), "wal-push %p");
    let mut pg = Cluster::init(ClusterOptions::archiving(archive));
    pg.start();
    pg.pgbench_init(2);
    realistic_data(&pg, 5000);

    // step: backup-push while pgbench writes.
    let data_dir = pg.data_dir().to_str().expect("utf-8").to_string();
    let out = std::thread::scope(|s| {
        let load = s.spawn(|| pg.pgbench_run(Pgbench::Seconds(4)));
        let out = walg(&pg, &settings, &["backup-push", &data_dir]);
        load.join().expect("pgbench thread");
        out
    });
    assert!(
        out.status.success(),
        "backup-push\n{}\n{}",
        describe_output(&out),
        pg.log_tail()
    );
    let listed = walg(&pg, &settings, &["backup-list", "--json"]);
    assert!(listed.status.success(), "{}", describe_output(&listed));
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("backup-list json");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // step: more writes after the backup, and a marker row.
    pg.pgbench_run(Pgbench::Transactions(200));
    pg.psql("create table marker as select 'after the backup'::text as note");
    let last = pg.switch_wal();
    pg.wait_archived_through(&last, TIMEOUT);
    let before = pg.dumpall();
    pg.stop();

    // step: restore into a new directory with the recovery configuration, start, compare.
    let mut restored = fetch_latest_with_recovery(&pg, &settings, "walgrestore");
    restored.start();
    restored.wait_for_recovery_end(TIMEOUT);
    assert_eq!(restored.psql("select note from marker"), "after the backup");
    let after = restored.dumpall();
    if before != after {
        let dir = std::env::temp_dir();
        let _ = std::fs::write(dir.join("walg-dump-before.sql"), &before);
        let _ = std::fs::write(dir.join("walg-dump-after.sql"), &after);
        panic!(
            "pg_dumpall of the restored cluster differs from the original (both in {})",
            dir.display()
        );
    }
    let check = restored.amcheck();
    assert!(
        check.status.success(),
        "pg_amcheck\n{}",
        describe_output(&check)
    );
}

fn local_settings(storage: &Path) -> Vec<(String, String)> {
    vec![(
        "WALG_FILE_PREFIX".to_string(),
        storage.display().to_string(),
    )]
}

#[test]
fn round_trip_local_folder() {
    let storage = pg_tempdir("walgbk");
    round_trip(local_settings(storage.path()));
}

#[test]
fn round_trip_s3() {
    let server = S3Server::start();
    // Credentials from a shared credentials file (a Kubernetes Secret mounted as a file): its
    // path, unlike the keys, goes into the restore_command that backup-fetch writes.
    let secrets = pg_tempdir("walgsecret");
    let settings = server.walg_env_with_credentials_file("pg/main", secrets.path());
    round_trip(settings);
}

#[test]
fn point_in_time_before_the_marker() {
    let storage = pg_tempdir("walgpitr");
    let settings = local_settings(storage.path());
    let mut pg = Cluster::init(ClusterOptions::archiving(walg_command(
        &env_of(&settings),
        "wal-push %p",
    )));
    pg.start();
    pg.pgbench_init(1);
    let data_dir = pg.data_dir().to_str().expect("utf-8").to_string();
    let out = walg(
        &pg,
        &settings,
        &[
            "backup-push",
            &data_dir,
            "--permanent",
            "--add-user-data",
            r#"{"reason":"test"}"#,
        ],
    );
    assert!(
        out.status.success(),
        "backup-push\n{}",
        describe_output(&out)
    );

    let listed = walg(&pg, &settings, &["backup-list", "--detail", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("backup-list json");
    assert_eq!(list[0]["is_permanent"], serde_json::json!(true), "{list}");
    assert_eq!(
        list[0]["user_data"],
        serde_json::json!({"reason": "test"}),
        "{list}"
    );

    pg.psql("create table early as select g from generate_series(1, 1000) g");
    std::thread::sleep(Duration::from_millis(1100));
    let target = pg.psql("select now()::text");
    std::thread::sleep(Duration::from_millis(1100));
    pg.psql("create table marker as select 'too late'::text as note");
    let last = pg.switch_wal();
    pg.wait_archived_through(&last, TIMEOUT);
    pg.stop();

    let root = pg_tempdir("walgpitrrs");
    let dest = root.path().join("data");
    let out = walg(
        &pg,
        &settings,
        &[
            "backup-fetch",
            dest.to_str().expect("utf-8"),
            "LATEST",
            "-R",
            "--target-time",
            &target,
            "--target-action",
            "promote",
        ],
    );
    assert!(
        out.status.success(),
        "backup-fetch\n{}",
        describe_output(&out)
    );
    let mut restored = Cluster::from_restored(root, ClusterOptions::default());
    restored.start();
    restored.wait_for_recovery_end(TIMEOUT);
    assert_eq!(restored.psql("select count(*) from early"), "1000");
    assert_eq!(
        restored.psql("select count(*) from pg_class where relname = 'marker'"),
        "0"
    );
}

#[test]
fn s3_killed_during_backup_push() {
    let mut server = S3Server::start();
    let mut settings = server.walg_env("pg/kill");
    settings.push(("S3_MAX_RETRIES".into(), "1".into()));
    settings.push(("S3_REQUEST_TIMEOUT".into(), "3s".into()));
    settings.push(("S3_CONNECT_TIMEOUT".into(), "1s".into()));
    settings.push(("S3_MAX_PART_SIZE".into(), "5242880".into()));
    // WAL goes to a local folder, so that archiving keeps working while S3 is down.
    let wal_store = pg_tempdir("walgkillwal");
    let wal_settings = local_settings(wal_store.path());
    let mut pg = Cluster::init(ClusterOptions::archiving(walg_command(
        &env_of(&wal_settings),
        "wal-push %p",
    )));
    pg.start();
    pg.pgbench_init(10);
    realistic_data(&pg, 20000);
    let data_dir = pg.data_dir().to_str().expect("utf-8").to_string();
    let backups = server
        .data_dir()
        .join(server.bucket())
        .join("pg/kill/basebackups_005");

    // step: stop S3 the moment the backup has started on the server, before any upload.
    let mut all = settings.clone();
    all.extend(pg.client_env());
    let mut child = walg_as_pg_command(&["backup-push", &data_dir], &env_of(&all), pg.root_dir())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start backup-push");
    let stderr = child.stderr.take().expect("stderr");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let started = Instant::now();
    let mut log = Vec::new();
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(60)) {
        let begun = line.contains("starting backup");
        log.push(line);
        if begun {
            break;
        }
    }
    server.stop();
    let status = wait_with_timeout(&mut child, Duration::from_secs(60));
    reader.join().expect("stderr reader");
    log.extend(lines_rx.try_iter());
    let out = std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: log.join("\n").into_bytes(),
    };
    assert!(
        !out.status.success(),
        "backup-push must fail when S3 goes away\n{}",
        describe_output(&out)
    );
    let out_first = out.clone();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "backup-push took {:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("ERROR:")).count(),
        1,
        "{stderr}"
    );

    // No sentinel, and the server-side backup is gone: the next backup-push succeeds.
    server.restart();
    let sentinels = std::fs::read_dir(&backups)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .ends_with("_backup_stop_sentinel.json")
                })
                .count()
        })
        .unwrap_or(0);
    assert_eq!(sentinels, 0, "a failed backup must leave no sentinel");
    let out = walg(&pg, &settings, &["backup-push", &data_dir]);
    assert!(
        out.status.success(),
        "the next backup-push\n{}\n{}\nfirst attempt:\n{}",
        describe_output(&out),
        pg.log_tail(),
        describe_output(&out_first)
    );
    assert!(
        pg.log_text()
            .contains("aborting backup due to backend exiting"),
        "the first backup was not aborted on the server\n{}\n{}",
        describe_output(&out_first),
        pg.log_text()
    );
}

#[test]
fn tablespace_restored_through_a_restore_spec() {
    let storage = pg_tempdir("walgts");
    let settings = local_settings(storage.path());
    let space = pg_tempdir("walgtsloc");
    let mut pg = Cluster::init(ClusterOptions::archiving(walg_command(
        &env_of(&settings),
        "wal-push %p",
    )));
    pg.start();
    pg.psql(&format!(
        "create tablespace extra location '{}'",
        space.path().display()
    ));
    pg.psql("create table in_space tablespace extra as select g, md5(g::text) as h from generate_series(1, 20000) g");
    let data_dir = pg.data_dir().to_str().expect("utf-8").to_string();
    let out = walg(&pg, &settings, &["backup-push", &data_dir]);
    assert!(
        out.status.success(),
        "backup-push\n{}",
        describe_output(&out)
    );
    pg.psql("create table after_backup as select 1");
    let last = pg.switch_wal();
    pg.wait_archived_through(&last, TIMEOUT);
    pg.stop();
    // The old location stays, with different data: its relation files emptied. A restored
    // cluster that followed the backup's tablespace_map back there would read no rows.
    let emptied = empty_files_under(space.path());
    assert!(emptied > 0, "no relation files under the old location");

    // Without a restore spec the original location is used: it is not empty, so walg refuses.
    let root = pg_tempdir("walgtsrs");
    let dest = root.path().join("data");
    let out = walg(
        &pg,
        &settings,
        &["backup-fetch", dest.to_str().expect("utf-8"), "LATEST"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not empty"),
        "{}",
        describe_output(&out)
    );

    // With a restore spec naming a new location it restores, and the table reads back.
    let new_space = pg_tempdir("walgtsnew");
    let oid = std::fs::read_dir(pg.data_dir().join("pg_tblspc"))
        .expect("pg_tblspc")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a tablespace");
    let spec = root.path().join("restore-spec.json");
    std::fs::write(
        &spec,
        format!(
            r#"{{"base_prefix": "{}", "tablespaces": ["{oid}"], "{oid}": {{"loc": "{}", "link": "pg_tblspc/{oid}"}}}}"#,
            dest.display(),
            new_space.path().display()
        ),
    )
    .expect("write spec");
    let _ = std::fs::remove_dir_all(&dest);
    let out = walg(
        &pg,
        &settings,
        &[
            "backup-fetch",
            dest.to_str().expect("utf-8"),
            "LATEST",
            "--restore-spec",
            spec.to_str().expect("utf-8"),
            "-R",
        ],
    );
    assert!(
        out.status.success(),
        "backup-fetch\n{}",
        describe_output(&out)
    );
    let link = std::fs::read_link(dest.join("pg_tblspc").join(&oid)).expect("tablespace link");
    assert_eq!(link, new_space.path());
    let mut restored = Cluster::from_restored(root, ClusterOptions::default());
    restored.start();
    restored.wait_for_recovery_end(TIMEOUT);
    assert_eq!(restored.psql("select count(*) from in_space"), "20000");
    // Recovery recreated the link from tablespace_map: it must still lead to the new location.
    let link = std::fs::read_link(dest.join("pg_tblspc").join(&oid)).expect("tablespace link");
    assert_eq!(link, new_space.path());
    assert_eq!(
        restored.psql(&format!("select pg_tablespace_location({oid})")),
        new_space.path().display().to_string()
    );
}

/// Truncates every regular file below `dir` to zero bytes; returns how many there were.
fn empty_files_under(dir: &Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(Result::ok)
    {
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).expect("lstat");
        if meta.is_dir() {
            count += empty_files_under(&path);
        } else if meta.is_file() {
            std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path)
                .expect("truncate");
            count += 1;
        }
    }
    count
}

/// The backup names a backup-push output reports as written.
fn written_name(out: &std::process::Output) -> Option<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr.lines().find_map(|l| {
        l.split_once("wrote backup with name ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .map(str::to_string)
    })
}

/// `X/Y`, as PostgreSQL writes an LSN.
fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[test]
fn two_backup_pushes_started_together_write_two_complete_backups() {
    let storage = pg_tempdir("walgpair");
    let mut settings = local_settings(storage.path());
    // Several data parts per backup, so that parts of two runs in one folder would show.
    settings.push(("WALG_TAR_SIZE_THRESHOLD".into(), "4194304".into()));
    let mut pg = Cluster::init(ClusterOptions::archiving(walg_command(
        &env_of(&settings),
        "wal-push %p",
    )));
    pg.start();
    pg.pgbench_init(2);
    let data_dir = pg.data_dir().to_str().expect("utf-8").to_string();

    // step: pairs of backup-pushes started at the same moment.
    let mut names = Vec::new();
    for round in 1..=4 {
        // Dirty buffers make the backup's start checkpoint take a while, so that both runs'
        // starts fall into one checkpoint and one WAL segment: one name for two runs.
        pg.psql("update pgbench_accounts set abalance = abalance + 1");
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| walg(&pg, &settings, &["backup-push", &data_dir]));
            let b = s.spawn(|| walg(&pg, &settings, &["backup-push", &data_dir]));
            (
                a.join().expect("first backup-push"),
                b.join().expect("second backup-push"),
            )
        });
        let switched = [&a, &b]
            .iter()
            .filter(|o| {
                String::from_utf8_lossy(&o.stderr).contains("switching to a new WAL segment")
            })
            .count();
        eprintln!("round {round}: {switched} of 2 runs gave up a name taken by the other");
        let mut succeeded = 0;
        for out in [&a, &b] {
            if out.status.success() {
                succeeded += 1;
                names.push(written_name(out).unwrap_or_else(|| {
                    panic!("round {round}: no name reported\n{}", describe_output(out))
                }));
            } else {
                // A run that gives up says why, in one error line.
                let stderr = String::from_utf8_lossy(&out.stderr);
                let errors: Vec<&str> =
                    stderr.lines().filter(|l| l.starts_with("ERROR:")).collect();
                assert_eq!(errors.len(), 1, "round {round}\n{stderr}");
                assert!(
                    errors[0].contains("no free backup name"),
                    "round {round}\n{stderr}"
                );
            }
        }
        assert!(
            succeeded >= 1,
            "round {round}: neither backup-push succeeded\n{}\n{}",
            describe_output(&a),
            describe_output(&b)
        );
    }
    let mut distinct = names.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        names.len(),
        "two runs reported one name: {names:?}"
    );
    let listed = walg(&pg, &settings, &["backup-list", "--json"]);
    assert!(listed.status.success(), "{}", describe_output(&listed));
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("backup-list json");
    assert_eq!(list.as_array().map(Vec::len), Some(names.len()), "{list}");

    // step: each backup's folder holds exactly its own parts, and each restores whole.
    let base = storage.path().join("basebackups_005");
    for name in &names {
        let folder = base.join(name);
        let files: serde_json::Value = serde_json::from_slice(
            &std::fs::read(folder.join("files_metadata.json")).expect("files_metadata.json"),
        )
        .expect("files_metadata json");
        let mut expected: Vec<String> = files["TarFileSets"]
            .as_object()
            .expect("TarFileSets")
            .keys()
            .cloned()
            .collect();
        expected.push("pg_control.tar.lz4".to_string());
        expected.sort();
        let mut stored: Vec<String> = std::fs::read_dir(folder.join("tar_partitions"))
            .expect("tar_partitions")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        stored.sort();
        assert_eq!(stored, expected, "parts of backup {name}");
        assert!(
            expected.len() > 3,
            "{name} has a single data part: {expected:?}"
        );
        let mut top: Vec<String> = std::fs::read_dir(&folder)
            .expect("backup folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert_eq!(
            top,
            ["files_metadata.json", "metadata.json", "tar_partitions"],
            "folder of backup {name}"
        );

        let sentinel: serde_json::Value = serde_json::from_slice(
            &std::fs::read(base.join(format!("{name}_backup_stop_sentinel.json")))
                .expect("sentinel"),
        )
        .expect("sentinel json");
        let start_lsn = sentinel["LSN"].as_u64().expect("LSN");
        let root = pg_tempdir("walgpairrestore");
        let dest = root.path().join("data");
        let out = walg(
            &pg,
            &settings,
            &["backup-fetch", dest.to_str().expect("utf-8"), name],
        );
        assert!(
            out.status.success(),
            "backup-fetch {name}\n{}",
            describe_output(&out)
        );
        let label = std::fs::read_to_string(dest.join("backup_label")).expect("backup_label");
        assert!(
            label.contains(&format!("START WAL LOCATION: {} ", lsn_text(start_lsn))),
            "backup {name} starts at {} but its label says\n{label}",
            lsn_text(start_lsn)
        );
        for member in files["Files"].as_object().expect("Files").keys() {
            let path = dest.join(member.trim_start_matches('/'));
            assert!(path.exists(), "backup {name} lacks {member}");
        }
    }
}

#[test]
fn a_cluster_with_data_checksums_restores_with_checksums_intact() {
    let storage = pg_tempdir("walgsum");
    let settings = local_settings(storage.path());
    let mut pg = Cluster::init(ClusterOptions {
        initdb_args: vec!["--data-checksums".to_string()],
        ..ClusterOptions::archiving(walg_command(&env_of(&settings), "wal-push %p"))
    });
    pg.start();
    assert_eq!(pg.psql("show data_checksums"), "on");
    pg.pgbench_init(2);
    realistic_data(&pg, 2000);

    // step: backup-push while pgbench writes (pages change under the copy).
    let data_dir = pg.data_dir().to_str().expect("utf-8").to_string();
    let out = std::thread::scope(|s| {
        let load = s.spawn(|| pg.pgbench_run(Pgbench::Seconds(3)));
        let out = walg(&pg, &settings, &["backup-push", &data_dir]);
        load.join().expect("pgbench thread");
        out
    });
    assert!(
        out.status.success(),
        "backup-push\n{}\n{}",
        describe_output(&out),
        pg.log_tail()
    );
    let last = pg.switch_wal();
    pg.wait_archived_through(&last, TIMEOUT);
    pg.stop();

    // step: restore, recover, read every relation, stop cleanly.
    let mut restored = fetch_latest_with_recovery(&pg, &settings, "walgsumrestore");
    restored.start();
    restored.wait_for_recovery_end(TIMEOUT);
    assert_eq!(restored.psql("show data_checksums"), "on");
    let check = restored.amcheck();
    assert!(
        check.status.success(),
        "pg_amcheck\n{}",
        describe_output(&check)
    );
    assert_eq!(
        restored.psql("select coalesce(sum(checksum_failures), 0) from pg_stat_database"),
        "0",
        "reading the restored relations reported checksum failures"
    );
    restored.stop();

    // step: pg_checksums on the stopped, restored cluster.
    let mut cmd = pg_tool("pg_checksums", restored.root_dir());
    cmd.args(["--check", "-D"]).arg(restored.data_dir());
    let out = run_with_timeout(cmd, TIMEOUT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Bad checksums:  0"),
        "pg_checksums --check\n{}",
        describe_output(&out)
    );
}
