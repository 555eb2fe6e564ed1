//! Sessions with a real PostgreSQL 15 (`walg::pg`): connecting and reading the server's facts, a
//! non-exclusive backup from start to an archived stop, a failing archiver, an abandoned backup,
//! connection failures within their deadlines, and a wrong password that never shows.
//!
//! Needs the PostgreSQL 15 binaries (`apt-get install -y postgresql-15`); see `common/pg.rs` for
//! how the clusters are run. `archive_command` is a plain `cp`, so these tests do not depend on
//! walg's own archiving.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use walg::pg::backup_session::stop_segment_name;
use walg::pg::wal::Segment;
use walg::pg::{ConnectSettings, Lsn, PgConn, PgError};
use walg::util::secret::Secret;

use crate::common::pg::{
    Cluster, ClusterOptions, PG_USER, hand_to_pg_user, is_segment_name, pg_tempdir,
};

const MIB16: u64 = 16 * 1024 * 1024;

/// Settings for the cluster's unix socket, as the superuser, with trust authentication.
fn socket_settings(pg: &Cluster) -> ConnectSettings {
    ConnectSettings {
        host: Some(pg.root_dir().display().to_string()),
        port: Some(pg.port()),
        user: Some(PG_USER.to_string()),
        database: Some("postgres".to_string()),
        application_name: "walg-test".to_string(),
        ..ConnectSettings::default()
    }
}

/// A running cluster archiving with `cp` into a fresh directory.
fn archiving_cluster() -> (Cluster, TempDir) {
    let archive = pg_tempdir("walgarc");
    let command = format!("cp %p {}/%f", archive.path().display());
    let mut pg = Cluster::init(ClusterOptions::archiving(command));
    pg.start();
    (pg, archive)
}

async fn connect(settings: &ConnectSettings) -> PgConn {
    match PgConn::connect(settings).await {
        Ok(conn) => conn,
        Err(e) => panic!("connect: {e}"),
    }
}

/// Polls `check` every 100 ms until it is true; panics after `timeout` with `what`.
fn wait_until(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_and_a_backup_from_start_to_archived_stop() {
    let (pg, archive) = archiving_cluster();
    let conn = connect(&socket_settings(&pg)).await;

    // The server's facts agree with what psql says.
    assert_eq!(conn.version().major(), 15);
    let num: u32 = pg.psql("show server_version_num").parse().unwrap();
    assert_eq!(conn.server_version_num(), num);
    let sysid: u64 = pg
        .psql("select system_identifier from pg_control_system()")
        .parse()
        .unwrap();
    assert_eq!(conn.system_identifier().await.unwrap(), sysid);
    assert_eq!(
        conn.data_directory().await.unwrap(),
        fs::canonicalize(pg.data_dir()).unwrap()
    );
    assert!(!conn.in_recovery().await.unwrap());
    assert_eq!(conn.timeline().await.unwrap(), 1);
    assert_eq!(conn.wal_segment_size().await.unwrap(), MIB16);
    let archiving = conn.archiver_settings().await.unwrap();
    assert_eq!(archiving.archive_mode, "on");
    assert!(archiving.archive_command.starts_with("cp %p "));
    assert_eq!(archiving.archive_library.as_deref(), Some(""));
    conn.ping().await.unwrap();
    conn.check_archiving().await.unwrap();

    // Start, write, stop.
    pg.psql("create table t as select g from generate_series(1, 10000) g");
    let backup = conn.start_backup("walg test backup").await.unwrap();
    let start = backup.start().clone();
    assert_eq!(start.label, "walg test backup");
    assert_eq!(start.timeline, 1);
    assert!(!start.in_recovery);
    let start_file = start.wal_file.clone().unwrap();
    assert!(is_segment_name(&start_file), "{start_file}");
    assert_eq!(
        Segment::parse(&start_file, MIB16).unwrap().number,
        start.lsn / MIB16
    );
    assert_eq!(
        pg.psql("select count(*) from pg_stat_activity where application_name = 'walg-test'"),
        "1"
    );
    backup.conn().ping().await.unwrap();
    pg.psql("insert into t select g from generate_series(1, 10000) g");
    let (conn, stop) = backup.stop().await.unwrap();

    assert!(
        stop.label_file.contains(&format!(
            "START WAL LOCATION: {} (file {start_file})",
            Lsn(start.lsn)
        )),
        "{}",
        stop.label_file
    );
    assert!(stop.label_file.contains("LABEL: walg test backup"));
    assert!(stop.label_file.contains("BACKUP METHOD: streamed"));
    assert_eq!(stop.spcmap_file, "");
    assert!(
        start.lsn < stop.stop_lsn,
        "start {} stop {}",
        Lsn(start.lsn),
        Lsn(stop.stop_lsn)
    );
    let stop_file = stop.stop_wal_file.clone().unwrap();
    assert_eq!(
        stop_segment_name(1, stop.stop_lsn, MIB16).as_deref(),
        Some(stop_file.as_str())
    );

    // The stop switched WAL: the last segment the backup needs gets archived.
    let polls = AtomicUsize::new(0);
    let stats = conn
        .wait_archived(&stop_file, Duration::from_secs(120), |_, _| {
            polls.fetch_add(1, Ordering::Relaxed);
        })
        .await
        .unwrap();
    assert!(stats.archived_count >= 1);
    assert!(
        archive.path().join(&stop_file).is_file(),
        "{stop_file} not in the archive"
    );
    conn.check_archiving().await.unwrap();

    // A segment that will not exist for a long time: the wait ends at its bound.
    let far = Segment::parse(&stop_file, MIB16)
        .unwrap()
        .next()
        .next()
        .next()
        .name();
    let t0 = Instant::now();
    let err = conn
        .wait_archived(&far, Duration::from_secs(2), |_, _| {
            polls.fetch_add(1, Ordering::Relaxed);
        })
        .await
        .unwrap_err();
    let waited = t0.elapsed();
    assert!(
        matches!(err, PgError::NotArchived { ref segment, .. } if *segment == far),
        "{err}"
    );
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&far) && message.contains("within 2s"),
        "{message}"
    );
    assert!(polls.load(Ordering::Relaxed) >= 5, "progress is reported");

    // Not a segment name.
    let err = conn
        .wait_archived("00000001.history", Duration::from_secs(1), |_, _| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a wal segment name"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_backup_in_progress_aborts_it() {
    let (pg, _archive) = archiving_cluster();
    let mut abandoned = socket_settings(&pg);
    abandoned.application_name = "walg-abandoned".to_string();
    let backup = connect(&abandoned)
        .await
        .start_backup("abandoned")
        .await
        .unwrap();
    let sessions =
        "select count(*) from pg_stat_activity where application_name = 'walg-abandoned'";
    assert_eq!(pg.psql(sessions), "1");

    drop(backup);

    // The session ends and the server aborts its backup.
    wait_until(Duration::from_secs(30), "the session to end", || {
        pg.psql(sessions) == "0"
    });
    wait_until(
        Duration::from_secs(30),
        "the abort in the server log",
        || {
            pg.log_text()
                .contains("aborting backup due to backend exiting before pg_backup_stop was called")
        },
    );

    // Another session backs up from start to stop.
    let other = connect(&socket_settings(&pg)).await;
    let backup = other.start_backup("second").await.unwrap();
    let (_other, stop) = backup.stop().await.unwrap();
    assert!(stop.label_file.contains("LABEL: second"));

    // And no session has a backup left to stop.
    let err = pg
        .try_psql("select * from pg_backup_stop(false)")
        .unwrap_err();
    assert!(err.contains("backup is not in progress"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_archiver_is_reported_fast() {
    let mut pg = Cluster::init(ClusterOptions::archiving("false"));
    pg.start();
    let conn = connect(&socket_settings(&pg)).await;
    pg.psql("create table t as select g from generate_series(1, 10000) g");
    let segment = pg.switch_wal();
    wait_until(
        Duration::from_secs(60),
        "a failed archiving attempt",
        || pg.archiver_stats().failed_count > 0,
    );

    let t0 = Instant::now();
    let err = conn.check_archiving().await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(5));
    let message = err.to_string();
    assert!(
        matches!(err, PgError::ArchivingBroken { .. })
            && message.contains("the archiver is failing")
            && message.contains(&segment),
        "{message}"
    );

    // Waiting for the failing segment gives up long before its bound.
    let t0 = Instant::now();
    let err = conn
        .wait_archived(&segment, Duration::from_secs(120), |_, _| {})
        .await
        .unwrap_err();
    let waited = t0.elapsed();
    assert!(
        matches!(err, PgError::ArchivingBroken { .. }),
        "{err} after {waited:?}"
    );
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    assert!(err.to_string().contains(&segment), "{err}");

    // With a short bound the wait ends within it, whichever comes first.
    let t0 = Instant::now();
    let err = conn
        .wait_archived(&segment, Duration::from_secs(1), |_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PgError::NotArchived { .. } | PgError::ArchivingBroken { .. }
        ),
        "{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_work_and_never_show() {
    const RIGHT: &str = "walg-Right-Pw-4242";
    const WRONG: &str = "walg-Wrong-Pw-7777";
    let mut pg = Cluster::init(ClusterOptions::default());
    pg.start();

    // Archiving is off on this cluster: no backup could ever be used.
    let conn = connect(&socket_settings(&pg)).await;
    let err = conn.check_archiving().await.unwrap_err();
    assert!(
        matches!(err, PgError::ArchivingBroken { .. })
            && err.to_string().contains("archive_mode is off"),
        "{err}"
    );
    drop(conn);

    // TCP connections need a password from now on.
    pg.psql(&format!("alter user {PG_USER} password '{RIGHT}'"));
    let hba = pg.data_dir().join("pg_hba.conf");
    fs::write(
        &hba,
        "local all all trust\n\
         host all all 127.0.0.1/32 scram-sha-256\n\
         host all all ::1/128 scram-sha-256\n",
    )
    .unwrap();
    hand_to_pg_user(&hba);
    pg.psql("select pg_reload_conf()");

    let tcp = ConnectSettings {
        host: Some("127.0.0.1".to_string()),
        port: Some(pg.port()),
        user: Some(PG_USER.to_string()),
        database: Some("postgres".to_string()),
        ..ConnectSettings::default()
    };
    let wrong = ConnectSettings {
        password: Some(Secret::new(WRONG)),
        ..tcp.clone()
    };
    // The reload takes effect asynchronously.
    let deadline = Instant::now() + Duration::from_secs(30);
    let err = loop {
        match PgConn::connect(&wrong).await {
            Err(e) => break e,
            Ok(_) => {
                assert!(Instant::now() < deadline, "pg_hba.conf was not reloaded");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, PgError::Connect { .. }), "{shown}");
    assert!(
        shown.contains("password authentication failed for user \"postgres\""),
        "{shown}"
    );
    assert!(
        !shown.contains(WRONG) && !shown.contains(RIGHT),
        "a password shows: {shown}"
    );
    assert!(!format!("{wrong:?}").contains(WRONG));

    // No password at all.
    let err = PgConn::connect(&tcp).await.unwrap_err().to_string();
    assert!(err.contains("asks for a password and none is set"), "{err}");

    // The right one, given or from a password file.
    let right = ConnectSettings {
        password: Some(Secret::new(RIGHT)),
        ..tcp.clone()
    };
    connect(&right).await.ping().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let passfile: PathBuf = dir.path().join("pgpass");
    fs::write(
        &passfile,
        format!(
            "# test\n127.0.0.1:{}:postgres:{PG_USER}:{RIGHT}\n",
            pg.port()
        ),
    )
    .unwrap();
    fs::set_permissions(&passfile, fs::Permissions::from_mode(0o600)).unwrap();
    let from_file = ConnectSettings {
        passfile: Some(passfile.clone()),
        ..tcp.clone()
    };
    connect(&from_file).await.ping().await.unwrap();
    // A password file others may read is ignored, as libpq does.
    fs::set_permissions(&passfile, fs::Permissions::from_mode(0o644)).unwrap();
    let err = PgConn::connect(&from_file).await.unwrap_err().to_string();
    assert!(err.contains("asks for a password"), "{err}");
}

#[tokio::test]
async fn connecting_where_nothing_answers_fails_within_the_deadline() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tcp = ConnectSettings {
        host: Some("127.0.0.1".to_string()),
        port: Some(port),
        user: Some(PG_USER.to_string()),
        connect_timeout: Some(Duration::from_secs(2)),
        ..ConnectSettings::default()
    };
    let t0 = Instant::now();
    let err = PgConn::connect(&tcp).await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "could not connect to postgresql at 127.0.0.1:{port} as user postgres: "
        )) && message.contains("refused")
            && message.contains("is the server running"),
        "{message}"
    );
    assert!(!message.contains('\n'));

    // A socket directory without a server.
    let empty = tempfile::tempdir().unwrap();
    let socket = ConnectSettings {
        host: Some(empty.path().display().to_string()),
        ..tcp.clone()
    };
    let message = PgConn::connect(&socket).await.unwrap_err().to_string();
    assert!(
        message.contains(&format!("{}/.s.PGSQL.{port}", empty.path().display()))
            && message.contains("is the server running"),
        "{message}"
    );

    // A server that accepts the connection and never answers: the deadline holds.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stalled = ConnectSettings {
        port: Some(silent.local_addr().unwrap().port()),
        connect_timeout: Some(Duration::from_secs(1)),
        ..tcp
    };
    let t0 = Instant::now();
    let message = PgConn::connect(&stalled).await.unwrap_err().to_string();
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert!(message.contains("no answer within 1s"), "{message}");
}
