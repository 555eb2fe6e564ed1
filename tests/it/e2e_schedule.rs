//! End to end: `walg schedule` against a real archiving cluster with local-folder storage.
//! A schedule every few seconds with `--retain 1` runs at least two cycles, leaves exactly one
//! backup, reports two successful runs on /metrics, and stops on SIGTERM with exit 0. With
//! PostgreSQL stopped, cycles fail, nothing is deleted, the failure counter rises, /healthz
//! reports unhealthy, and `--once` exits non-zero.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use crate::common::env_of;
use crate::common::pg::{
    Cluster, ClusterOptions, describe_output, pg_tempdir, walg_as_pg, walg_as_pg_command,
    walg_command,
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `GET path` on 127.0.0.1:port: (status line, body), or None while nothing listens.
fn get(port: u16, path: &str) -> Option<(String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM to walg, then its exit status. When the tests run as root, `child` is `runuser`
/// (which would re-raise a signal sent to it on itself): walg is its child process.
fn terminate(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let mut pid = child.id().to_string();
    if common::pg::is_root() {
        let out = std::process::Command::new("pgrep")
            .args(["-P", &pid])
            .output()
            .expect("pgrep");
        pid = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .expect("walg under runuser")
            .trim()
            .to_string();
    }
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            panic!("walg schedule did not stop within {within:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Setup {
    pg: Cluster,
    settings: Vec<(String, String)>,
    _storage: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let storage = pg_tempdir("walgsched");
        let settings = vec![(
            "WALG_FILE_PREFIX".to_string(),
            storage.path().display().to_string(),
        )];
        let mut pg = Cluster::init(ClusterOptions::archiving(walg_command(
            &env_of(&settings),
            "wal-push %p",
        )));
        pg.start();
        pg.pgbench_init(1);
        Setup {
            pg,
            settings,
            _storage: storage,
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut all = self.settings.clone();
        all.extend(self.pg.client_env());
        all
    }

    fn spawn_schedule(&self, port: u16, cron: &str) -> Child {
        let data = self.pg.data_dir().to_str().expect("utf-8").to_string();
        let port = format!("127.0.0.1:{port}");
        let env = self.env();
        walg_as_pg_command(
            &[
                "schedule",
                &data,
                "--cron",
                cron,
                "--retain",
                "1",
                "--metrics-addr",
                &port,
            ],
            &env_of(&env),
            self.pg.root_dir(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start walg schedule")
    }

    fn backups(&self) -> usize {
        let env = self.env();
        let out = walg_as_pg(
            &["backup-list", "--json"],
            &env_of(&env),
            self.pg.root_dir(),
        );
        assert!(out.status.success(), "{}", describe_output(&out));
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        list.as_array().map_or(0, Vec::len)
    }
}

#[test]
fn two_cycles_retain_one_metrics_and_sigterm() {
    let s = Setup::new();
    let port = free_port();
    // Every 4 seconds (the leading field is seconds).
    let mut child = s.spawn_schedule(port, "*/4 * * * * *");
    let mut body = String::new();
    wait_until(
        "two successful cycles on /metrics",
        Duration::from_secs(120),
        || {
            if let Some((_, text)) = get(port, "/metrics") {
                body = text;
            }
            metric(&body, "walg_backup_runs_total{result=\"success\"}").is_some_and(|n| n >= 2.0)
        },
    );
    let (status, _) = get(port, "/healthz").expect("healthz");
    assert!(status.contains("200"), "{status}");
    assert!(
        metric(&body, "walg_backup_last_success_timestamp_seconds").is_some(),
        "{body}"
    );
    assert!(
        metric(&body, "walg_backup_last_size_bytes").is_some_and(|b| b > 0.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, "walg_archive_failed_count"),
        Some(0.0),
        "{body}"
    );

    let exit = terminate(&mut child, Duration::from_secs(10));
    assert_eq!(
        exit.code(),
        Some(0),
        "SIGTERM must end walg schedule with exit 0"
    );
    assert_eq!(s.backups(), 1, "--retain 1 leaves exactly one backup");
}

#[test]
fn failing_cycles_delete_nothing_and_report_unhealthy() {
    let mut s = Setup::new();
    // One good backup first.
    let env = s.env();
    let data = s.pg.data_dir().to_str().expect("utf-8").to_string();
    let out = walg_as_pg(
        &["schedule", &data, "--retain", "1", "--once"],
        &env_of(&env),
        s.pg.root_dir(),
    );
    assert!(out.status.success(), "{}", describe_output(&out));
    assert_eq!(s.backups(), 1);

    // PostgreSQL goes away: --once fails, nothing is deleted.
    s.pg.stop();
    let out = walg_as_pg(
        &["schedule", &data, "--retain", "1", "--once"],
        &env_of(&env),
        s.pg.root_dir(),
    );
    assert!(
        !out.status.success(),
        "--once must fail without PostgreSQL\n{}",
        describe_output(&out)
    );
    assert_eq!(s.backups(), 1, "a failed cycle deletes nothing");

    // The running schedule counts failures and turns unhealthy after two periods without success.
    let port = free_port();
    let mut child = s.spawn_schedule(port, "*/2 * * * * *");
    let mut body = String::new();
    wait_until("failed cycles on /metrics", Duration::from_secs(60), || {
        if let Some((_, text)) = get(port, "/metrics") {
            body = text;
        }
        metric(&body, "walg_backup_runs_total{result=\"failure\"}").is_some_and(|n| n >= 1.0)
    });
    wait_until(
        "/healthz to report unhealthy",
        Duration::from_secs(30),
        || get(port, "/healthz").is_some_and(|(status, _)| status.contains("503")),
    );
    assert_eq!(s.backups(), 1, "failed cycles delete nothing");
    let exit = terminate(&mut child, Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn sigterm_during_a_backup_abandons_it_cleanly() {
    use std::io::{BufRead, BufReader};
    let s = Setup::new();
    s.pg.pgbench_init(20);
    let data = s.pg.data_dir().to_str().expect("utf-8").to_string();
    let env = s.env();
    let mut child = walg_as_pg_command(
        &["schedule", &data, "--cron", "* * * * * *", "--retain", "1"],
        &env_of(&env),
        s.pg.root_dir(),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start walg schedule");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // step: SIGTERM as soon as the backup has started on the server.
    let mut log = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        let begun = line.contains("starting backup");
        log.push(line);
        if begun {
            break;
        }
    }
    assert!(
        log.iter().any(|l| l.contains("starting backup")),
        "no backup started:\n{}",
        log.join("\n")
    );
    let exit = terminate(&mut child, Duration::from_secs(10));
    reader.join().expect("reader");
    log.extend(rx.try_iter());
    assert_eq!(exit.code(), Some(0), "{}", log.join("\n"));
    assert!(
        log.iter().any(|l| l.contains("abandoned")),
        "{}",
        log.join("\n")
    );
    assert_eq!(s.backups(), 0, "an abandoned backup has no sentinel");
    // The server ends the backup with the session.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s
        .pg
        .log_text()
        .contains("aborting backup due to backend exiting")
    {
        assert!(
            Instant::now() < deadline,
            "the backup was not aborted on the server\n{}",
            s.pg.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
