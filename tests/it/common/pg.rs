//! A throwaway PostgreSQL cluster for end-to-end tests, and helpers to run the `walg` binary.
//!
//! How PostgreSQL is run:
//!
//! * Binaries come from `/usr/lib/postgresql/15/bin` (override with `WALG_TEST_PG_BINDIR`). When they
//!   are missing the test fails and names the package to install; it never skips. A cluster may
//!   run another major's server ([`ClusterOptions::server_bindir`]: `initdb`, `pg_ctl` and
//!   `postgres` from there); the client tools stay those of `WALG_TEST_PG_BINDIR`.
//! * PostgreSQL refuses to run as root. When the test process is root, every PostgreSQL tool
//!   (`initdb`, `pg_ctl`, `psql`, `pgbench`, `pg_basebackup`) runs as the `postgres` user through
//!   `runuser -u postgres --`, and every directory the server or its `archive_command` touches is
//!   created under `/tmp` and handed to that user. Otherwise the tools run as the current user.
//! * Each cluster lives in its own directory under `/tmp` (short, so the Unix socket path stays far
//!   below 107 bytes); that directory is also the socket directory. The server listens on a free TCP
//!   port on 127.0.0.1, picked per start (a start that loses a port race is retried on another
//!   port). Clients connect through the socket.
//! * Settings written by the harness go to `harness.conf` in the data directory, included at the end
//!   of `postgresql.conf`; a copy made with `pg_basebackup` gets its own `harness.conf` (port,
//!   socket directory, archiving). Recovery settings go to `postgresql.auto.conf`, which wins.
//! * **How settings reach walg.** PostgreSQL tools run with a cleared environment (`PATH`, `LC_ALL`,
//!   `TZ` only), so nothing from the test process leaks into `archive_command`/`restore_command`.
//!   Every walg setting is spelled out in the command string itself, built by [`walg_command`]:
//!   `env WALG_FILE_PREFIX=/tmp/x /tmp/walg-test-bin-0/…/walg wal-push %p`. PostgreSQL itself adds
//!   `PGDATA` and runs the command in the data directory.
//! * Speed: `initdb --no-sync -A trust`, `fsync = off`, small shared buffers.
//! * Every wait has a deadline and fails with a message that ends with the tail of the server log.
//!   Dropping a [`Cluster`] stops the server (`pg_ctl stop -m immediate`) and removes its
//!   directories; set `WALG_TEST_KEEP=1` to keep them for a post-mortem.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Default location of the PostgreSQL 15 binaries on Debian.
pub const DEFAULT_PG_BINDIR: &str = "/usr/lib/postgresql/15/bin";

/// The database superuser created by `initdb -U`; also the OS user the server runs as when root.
pub const PG_USER: &str = "postgres";

/// Deadline for single client commands (`psql`, `initdb`, ...).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Deadline for `pg_ctl start`/`stop` (recovery may take a while on a slow machine).
const PG_CTL_TIMEOUT_SECS: u64 = 180;

/// How many log lines to quote in failure messages.
const LOG_TAIL_LINES: usize = 60;

// ---------------------------------------------------------------------------------------------
// Environment facts
// ---------------------------------------------------------------------------------------------

/// True when the test process runs as root (then PostgreSQL runs as `postgres`).
pub fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .expect("stat /proc/self")
}

/// Directory holding `initdb`, `pg_ctl`, ...; fails the test with the install command if absent.
pub fn pg_bindir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("WALG_TEST_PG_BINDIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PG_BINDIR));
        for tool in [
            "initdb",
            "pg_ctl",
            "postgres",
            "psql",
            "pgbench",
            "pg_basebackup",
        ] {
            assert!(
                dir.join(tool).is_file(),
                "PostgreSQL 15 binaries not found: {} is missing. Install them with \
                 `apt-get install -y postgresql-15` (or point WALG_TEST_PG_BINDIR at a bin directory)",
                dir.join(tool).display()
            );
        }
        dir
    })
    .clone()
}

fn runuser_path() -> PathBuf {
    ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("runuser not found (package util-linux): needed to run PostgreSQL as postgres when root")
}

/// uid and gid of the `postgres` OS user (only asked when root).
fn postgres_ids() -> (u32, u32) {
    static IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *IDS.get_or_init(|| {
        let id = |flag: &str| -> u32 {
            let out = Command::new("id")
                .args([flag, PG_USER])
                .output()
                .expect("run id");
            assert!(
                out.status.success(),
                "the OS user `{PG_USER}` does not exist; install PostgreSQL with \
                 `apt-get install -y postgresql-15`: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("numeric id")
        };
        (id("-u"), id("-g"))
    })
}

/// Give `path` to the user PostgreSQL runs as (a no-op unless root).
pub fn hand_to_pg_user(path: &Path) {
    if is_root() {
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

/// A fresh directory under `/tmp`, mode 0755, owned by the PostgreSQL user: for storage folders,
/// restore targets and anything else `archive_command`/`restore_command` must write.
pub fn pg_tempdir(prefix: &str) -> TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(fs::Permissions::from_mode(0o755))
        .tempdir_in("/tmp")
        .expect("create temp dir under /tmp");
    hand_to_pg_user(dir.path());
    if keep_dirs() {
        dir.disable_cleanup(true);
    }
    dir
}

fn keep_dirs() -> bool {
    std::env::var_os("WALG_TEST_KEEP").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Write a file PostgreSQL must read or rewrite (owned by its user, mode 0600).
fn write_pg_file(path: &Path, contents: &str) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    hand_to_pg_user(path);
}

fn append_pg_file(path: &Path, extra: &str) {
    let mut text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(extra);
    write_pg_file(path, &text);
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

// ---------------------------------------------------------------------------------------------
// Running commands with a deadline
// ---------------------------------------------------------------------------------------------

/// Run `cmd` to completion, capturing its output; kill it and panic after `timeout`.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let description = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {description}: {e}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("wait for child") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                // SIGTERM first: runuser forwards it to the tool it started.
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                thread::sleep(Duration::from_secs(2));
                let _ = child.kill();
                let _ = child.wait();
                let stdout = out_reader.join().unwrap_or_default();
                let stderr = err_reader.join().unwrap_or_default();
                panic!(
                    "timed out after {timeout:?}: {description}\n--- stdout\n{}\n--- stderr\n{}",
                    String::from_utf8_lossy(&stdout),
                    String::from_utf8_lossy(&stderr)
                );
            }
            None => thread::sleep(Duration::from_millis(10)),
        }
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Render a command's result for failure messages.
pub fn describe_output(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A PostgreSQL tool as a command, run as the right user with a clean environment, in `cwd`.
pub fn pg_tool(tool: &str, cwd: &Path) -> Command {
    pg_tool_in(&pg_bindir(), tool, cwd)
}

/// [`pg_tool`] with the tool taken from `bindir`.
pub fn pg_tool_in(bindir: &Path, tool: &str, cwd: &Path) -> Command {
    let bin = bindir.join(tool);
    let mut cmd = if is_root() {
        let mut c = Command::new(runuser_path());
        c.args(["-u", PG_USER, "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        // The checkout may be unreadable to postgres (e.g. under /root): never run from there.
        .current_dir(cwd);
    if !is_root()
        && let Some(home) = std::env::var_os("HOME")
    {
        cmd.env("HOME", home);
    }
    cmd
}

// ---------------------------------------------------------------------------------------------
// The walg binary
// ---------------------------------------------------------------------------------------------

/// The walg binary at a place the PostgreSQL user can execute.
///
/// The build output may sit under a directory `postgres` cannot enter, so the binary is linked
/// (or copied, across file systems) into `/tmp/walg-test-bin-<uid>/<build id>/walg`, once per test
/// process; the build id (inode, size, mtime) makes concurrent test processes share one copy and
/// a rebuild get a new one. Copies of other builds older than a day are pruned.
pub fn walg_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(install_walg_bin).clone()
}

fn install_walg_bin() -> PathBuf {
    let src = PathBuf::from(env!("CARGO_BIN_EXE_walg"));
    let meta = fs::metadata(&src).unwrap_or_else(|e| panic!("stat {}: {e}", src.display()));
    let uid = fs::metadata("/proc/self").expect("stat /proc/self").uid();
    let base = PathBuf::from(format!("/tmp/walg-test-bin-{uid}"));
    fs::create_dir_all(&base).unwrap_or_else(|e| panic!("mkdir {}: {e}", base.display()));
    fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).expect("chmod bin base");
    let id = format!(
        "{:x}-{:x}-{:x}-{:x}",
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    );
    let dir = base.join(&id);
    let dest = dir.join("walg");
    if !dest.is_file() {
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod bin dir");
        let tmp = dir.join(format!("walg.tmp.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        if fs::hard_link(&src, &tmp).is_err() {
            fs::copy(&src, &tmp).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        }
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).expect("chmod walg");
        fs::rename(&tmp, &dest).unwrap_or_else(|e| panic!("rename {}: {e}", tmp.display()));
    }
    prune_old_bins(&base, &id);
    dest
}

fn prune_old_bins(base: &Path, keep: &str) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    let day = Duration::from_secs(24 * 3600);
    for entry in entries.flatten() {
        if entry.file_name() == OsStr::new(keep) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > day);
        if old {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Environment variables that would configure walg behind a test's back.
fn is_walg_setting(name: &str) -> bool {
    [
        "WALG_", "WALE_", "AWS_", "PG", "GOOGLE_", "AZURE_", "OSS_", "SWIFT_",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// Run walg as the current user with `envs` as its only walg settings (inherited `WALG_*`,
/// `AWS_*`, `PG*`, ... variables are removed). Deadline: two minutes.
pub fn walg(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(walg_bin());
    cmd.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_walg_setting) {
            cmd.env_remove(&name);
        }
    }
    cmd.envs(envs.iter().copied());
    run_with_timeout(cmd, COMMAND_TIMEOUT)
}

/// walg run as the PostgreSQL user (as a DBA or the server runs it) from `cwd`, with only the
/// given settings in its environment.
pub fn walg_as_pg(args: &[&str], envs: &[(&str, &str)], cwd: &Path) -> Output {
    run_with_timeout(
        walg_as_pg_command(args, envs, cwd),
        Duration::from_secs(600),
    )
}

/// The command [`walg_as_pg`] runs, for a caller that needs to watch it while it runs.
pub fn walg_as_pg_command(args: &[&str], envs: &[(&str, &str)], cwd: &Path) -> Command {
    let bin = walg_bin();
    let mut cmd = if is_root() {
        let mut c = Command::new(runuser_path());
        c.args(["-u", PG_USER, "--"]).arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LC_ALL", "C")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .current_dir(cwd)
        .args(args)
        .envs(envs.iter().copied());
    cmd
}

/// A shell command line running walg with explicit settings, for `archive_command` and
/// `restore_command`: `env K=V ... <walg> <args>`. `args` may use `%p`/`%f`.
///
/// Values must be plain (letters, digits, `/._-:=,%@+`); temp paths under `/tmp` are.
pub fn walg_command(envs: &[(&str, &str)], args: &str) -> String {
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-:=,%@+".contains(c))
    };
    let bin = walg_bin();
    let bin = bin.to_str().expect("utf-8 walg path");
    assert!(plain(bin), "walg path needs quoting: {bin}");
    let mut line = String::from("env");
    for (k, v) in envs {
        assert!(plain(k) && plain(v), "setting needs quoting: {k}={v}");
        let _ = write!(line, " {k}={v}");
    }
    let _ = write!(line, " {bin} {args}");
    line
}

// ---------------------------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------------------------

/// How to set up a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `archive_command`; `None` turns `archive_mode` off.
    pub archive_command: Option<String>,
    /// `wal_keep_size` in MiB: keeps finished segments in `pg_wal` after archiving (0, the
    /// server's default, writes no setting).
    pub wal_keep_size_mb: u32,
    /// Extra `postgresql.conf` lines, appended last.
    pub extra_conf: Vec<String>,
    /// Where `initdb`, `pg_ctl` and `postgres` come from; `None` is [`pg_bindir`].
    pub server_bindir: Option<PathBuf>,
    /// Extra `initdb` arguments, e.g. `--wal-segsize=64`.
    pub initdb_args: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            archive_command: None,
            wal_keep_size_mb: 64,
            extra_conf: Vec::new(),
            server_bindir: None,
            initdb_args: Vec::new(),
        }
    }
}

impl ClusterOptions {
    /// Archiving on, with `command` as `archive_command`.
    pub fn archiving(command: impl Into<String>) -> Self {
        ClusterOptions {
            archive_command: Some(command.into()),
            ..ClusterOptions::default()
        }
    }
}

/// Workload size for [`Cluster::pgbench_run`].
#[derive(Debug, Clone, Copy)]
pub enum Pgbench {
    Seconds(u32),
    /// Transactions per client (two clients).
    Transactions(u32),
}

/// Where archive recovery stops (always followed by promotion).
#[derive(Debug, Clone)]
pub enum RecoveryTarget {
    /// A restore point made with `pg_create_restore_point`.
    Name(String),
}

/// A row of `pg_stat_archiver`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiverStats {
    pub archived_count: u64,
    pub failed_count: u64,
    pub last_archived_wal: String,
    pub last_failed_wal: String,
}

/// A PostgreSQL cluster in a temp directory; stopped and removed on drop.
pub struct Cluster {
    /// Holds `data/`, `server.log` and the Unix socket.
    root: TempDir,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    opts: ClusterOptions,
    running: bool,
}

impl Cluster {
    /// `initdb` a new cluster configured by `opts` (not started).
    pub fn init(opts: ClusterOptions) -> Cluster {
        let root = pg_tempdir("walgpg");
        let data = root.path().join("data");
        let out = run_with_timeout(
            {
                let mut c = server_tool(&opts, "initdb", root.path());
                c.arg("-D")
                    .arg(&data)
                    .args(["--no-sync", "-A", "trust", "-U", PG_USER])
                    .args(["-E", "UTF8", "--locale=C"])
                    .args(&opts.initdb_args);
                c
            },
            COMMAND_TIMEOUT,
        );
        assert!(
            out.status.success(),
            "initdb failed\n{}",
            describe_output(&out)
        );
        append_pg_file(
            &data.join("postgresql.conf"),
            "\n# Test harness settings (tests/it/common/pg.rs).\ninclude = 'harness.conf'\n",
        );
        Cluster::adopt(root, opts)
    }

    /// Wrap a data directory `root/data` that already includes `harness.conf`.
    fn adopt(root: TempDir, opts: ClusterOptions) -> Cluster {
        let data = root.path().join("data");
        let log = root.path().join("server.log");
        let cluster = Cluster {
            port: free_port(),
            data,
            log,
            root,
            opts,
            running: false,
        };
        cluster.write_harness_conf();
        cluster
    }

    fn write_harness_conf(&self) {
        let socket_dir = self.root.path().display().to_string();
        let mut conf = format!(
            "# Written by the walg test harness; included from postgresql.conf.\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{socket_dir}'\n\
             fsync = off\n\
             shared_buffers = '32MB'\n\
             max_connections = 20\n\
             wal_level = replica\n\
             max_wal_senders = 4\n\
             max_wal_size = '1GB'\n\
             archive_timeout = 0\n\
             log_line_prefix = '%m [%p] '\n\
             log_checkpoints = off\n",
            port = self.port,
        );
        // 0 is the server's default: left out, so that a server older than 13 (which has
        // `wal_keep_segments` instead) starts too.
        if self.opts.wal_keep_size_mb > 0 {
            let _ = writeln!(conf, "wal_keep_size = '{}MB'", self.opts.wal_keep_size_mb);
        }
        match &self.opts.archive_command {
            Some(command) => {
                let _ = write!(
                    conf,
                    "archive_mode = on\narchive_command = {}\n",
                    conf_quote(command)
                );
            }
            None => conf.push_str("archive_mode = off\n"),
        }
        for line in &self.opts.extra_conf {
            conf.push_str(line);
            conf.push('\n');
        }
        write_pg_file(&self.data.join("harness.conf"), &conf);
    }

    /// A cluster from a data directory restored into `root/data` (by `walg backup-fetch`); its
    /// `postgresql.conf` already includes `harness.conf`, which gets a new port and `opts`.
    pub fn from_restored(root: TempDir, opts: ClusterOptions) -> Cluster {
        assert!(
            root.path().join("data/PG_VERSION").is_file(),
            "no restored data directory in {}",
            root.path().display()
        );
        Cluster::adopt(root, opts)
    }

    /// libpq settings reaching this cluster (socket, port, superuser), for walg backup-push.
    pub fn client_env(&self) -> Vec<(String, String)> {
        vec![
            ("PGHOST".to_string(), self.root.path().display().to_string()),
            ("PGPORT".to_string(), self.port.to_string()),
            ("PGUSER".to_string(), PG_USER.to_string()),
            ("PGDATABASE".to_string(), "postgres".to_string()),
        ]
    }

    /// `pg_dumpall` of the whole cluster.
    pub fn dumpall(&self) -> String {
        let out = run_with_timeout(self.client("pg_dumpall"), Duration::from_secs(300));
        assert!(
            out.status.success(),
            "pg_dumpall failed\n{}",
            describe_output(&out)
        );
        // pg_dump marks its output with a random `\restrict` key per run: not data.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `pg_amcheck` of every database (installing amcheck where missing).
    pub fn amcheck(&self) -> Output {
        let mut cmd = self.client("pg_amcheck");
        cmd.args(["--all", "--install-missing", "--heapallindexed"]);
        run_with_timeout(cmd, Duration::from_secs(300))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The temp directory holding the data directory, the log and the socket.
    pub fn root_dir(&self) -> &Path {
        self.root.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The whole server log.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the server log.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "--- last {} lines of {}\n{}",
            lines.len() - start,
            self.log.display(),
            lines[start..].join("\n")
        )
    }

    /// Start the server and wait until it accepts connections (or, in archive recovery, until
    /// it is consistent). Retries on another port if the chosen one was taken meanwhile.
    pub fn start(&mut self) {
        assert!(!self.running, "cluster already running");
        for attempt in 0..5 {
            let log_len = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
            let out = self.pg_ctl(&["start", "-w"]);
            if out.status.success() {
                self.running = true;
                return;
            }
            let new_log = fs::read(&self.log)
                .map(|b| String::from_utf8_lossy(&b[log_len as usize..]).into_owned())
                .unwrap_or_default();
            let port_taken = new_log.contains("could not bind")
                || new_log.contains("could not create any TCP/IP sockets");
            if port_taken && attempt < 4 {
                self.port = free_port();
                self.write_harness_conf();
                continue;
            }
            panic!(
                "pg_ctl start failed\n{}\n{}",
                describe_output(&out),
                self.log_tail()
            );
        }
    }

    /// Fast shutdown; waits until the server is gone.
    pub fn stop(&mut self) {
        let out = self.pg_ctl(&["stop", "-m", "fast", "-w"]);
        assert!(
            out.status.success(),
            "pg_ctl stop failed\n{}\n{}",
            describe_output(&out),
            self.log_tail()
        );
        self.running = false;
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        let mut cmd = server_tool(&self.opts, "pg_ctl", self.root.path());
        cmd.arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-t", &PG_CTL_TIMEOUT_SECS.to_string()])
            .args(args);
        run_with_timeout(cmd, Duration::from_secs(PG_CTL_TIMEOUT_SECS + 30))
    }

    /// A client tool with the connection options of this cluster (socket, port, superuser).
    fn client(&self, tool: &str) -> Command {
        let mut cmd = pg_tool(tool, self.root.path());
        cmd.arg("-h")
            .arg(self.root.path())
            .args(["-p", &self.port.to_string(), "-U", PG_USER]);
        cmd
    }

    /// Run SQL through `psql -XAtq`; the output without its trailing newline, or the error.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let mut cmd = self.client("psql");
        cmd.args([
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "postgres",
            "-c",
            sql,
        ]);
        let out = run_with_timeout(cmd, COMMAND_TIMEOUT);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout)
                .trim_end_matches('\n')
                .to_string())
        } else {
            Err(describe_output(&out))
        }
    }

    /// Run SQL through `psql -XAtq`; panics (with the server log) on error.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("psql failed: {sql}\n{e}\n{}", self.log_tail()))
    }

    /// `pgbench -i -s <scale>`.
    pub fn pgbench_init(&self, scale: u32) {
        let mut cmd = self.client("pgbench");
        cmd.args(["-i", "-q", "-s", &scale.to_string(), "postgres"]);
        let out = run_with_timeout(cmd, Duration::from_secs(600));
        assert!(
            out.status.success(),
            "pgbench -i failed\n{}\n{}",
            describe_output(&out),
            self.log_tail()
        );
    }

    /// A TPC-B-like pgbench run with two clients.
    pub fn pgbench_run(&self, load: Pgbench) {
        let mut cmd = self.client("pgbench");
        cmd.args(["-n", "-c", "2", "-j", "1"]);
        let timeout = match load {
            Pgbench::Seconds(s) => {
                cmd.args(["-T", &s.to_string()]);
                Duration::from_secs(u64::from(s) + 120)
            }
            Pgbench::Transactions(t) => {
                cmd.args(["-t", &t.to_string()]);
                Duration::from_secs(600)
            }
        };
        cmd.arg("postgres");
        let out = run_with_timeout(cmd, timeout);
        assert!(
            out.status.success(),
            "pgbench failed\n{}\n{}",
            describe_output(&out),
            self.log_tail()
        );
    }

    /// Finish the current WAL segment and return its name.
    ///
    /// `pg_walfile_name(pg_switch_wal())` names the segment the switch just completed. If there was
    /// no WAL since the previous switch, the switch is a no-op and the name is that of the last
    /// completed segment; either way the returned segment is complete and due for archiving.
    pub fn switch_wal(&self) -> String {
        let name = self.psql("select pg_walfile_name(pg_switch_wal())");
        assert!(is_segment_name(&name), "unexpected segment name {name:?}");
        name
    }

    /// The current row of `pg_stat_archiver`.
    pub fn archiver_stats(&self) -> ArchiverStats {
        let row = self.psql(
            "select archived_count, failed_count, coalesce(last_archived_wal, ''), \
             coalesce(last_failed_wal, '') from pg_stat_archiver",
        );
        let f: Vec<&str> = row.split('|').collect();
        assert_eq!(f.len(), 4, "unexpected pg_stat_archiver row {row:?}");
        ArchiverStats {
            archived_count: f[0].parse().expect("archived_count"),
            failed_count: f[1].parse().expect("failed_count"),
            last_archived_wal: f[2].to_string(),
            last_failed_wal: f[3].to_string(),
        }
    }

    /// Poll `pg_stat_archiver` until `archived_count >= count`.
    pub fn wait_archived(&self, count: u64, timeout: Duration) -> ArchiverStats {
        self.wait_archiver(timeout, &format!("archived_count >= {count}"), |s| {
            s.archived_count >= count
        })
    }

    /// Poll `pg_stat_archiver` until segment `name` (or a later one on its timeline) is archived.
    pub fn wait_archived_through(&self, name: &str, timeout: Duration) -> ArchiverStats {
        assert!(is_segment_name(name), "not a segment name: {name:?}");
        self.wait_archiver(timeout, &format!("{name} archived"), |s| {
            is_segment_name(&s.last_archived_wal)
                && s.last_archived_wal[..8] == name[..8]
                && s.last_archived_wal.as_str() >= name
        })
    }

    fn wait_archiver(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&ArchiverStats) -> bool,
    ) -> ArchiverStats {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.archiver_stats();
            if done(&stats) {
                return stats;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; pg_stat_archiver: {stats:?}\n{}",
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `pg_basebackup -X none -c fast` into a new (stopped) cluster configured by `opts`.
    ///
    /// `-X none` puts no WAL into the copy: starting it needs the WAL from the backup's start to
    /// its end from the archive, which is what a restore test exercises. `pg_basebackup` itself
    /// waits until that WAL is archived, so archiving must work while it runs.
    pub fn basebackup(&self, opts: ClusterOptions) -> Cluster {
        let root = pg_tempdir("walgpg");
        let dest = root.path().join("data");
        self.basebackup_to(&dest);
        Cluster::adopt(root, opts)
    }

    /// `pg_basebackup -D dest -X none -c fast` (dest must not exist, its parent must be writable
    /// by the PostgreSQL user).
    pub fn basebackup_to(&self, dest: &Path) {
        self.basebackup_with(dest, &[]);
    }

    /// [`Cluster::basebackup_to`] with `extra` options, e.g. `-Ft` for `base.tar` and
    /// `backup_manifest` in `dest` instead of a data directory.
    pub fn basebackup_with(&self, dest: &Path, extra: &[&str]) {
        let mut cmd = self.client("pg_basebackup");
        cmd.arg("-D")
            .arg(dest)
            .args(["-X", "none", "-c", "fast", "--no-sync"])
            .args(extra);
        let out = run_with_timeout(cmd, Duration::from_secs(600));
        assert!(
            out.status.success(),
            "pg_basebackup failed\n{}\n{}",
            describe_output(&out),
            self.log_tail()
        );
    }

    /// Write `recovery.signal` and the recovery settings into `postgresql.auto.conf`, then start.
    /// With a target, recovery stops there and promotes; without, it replays the whole archive
    /// (until `restore_command` reports a file missing) and promotes.
    pub fn start_recovery_with(&mut self, restore_command: &str, target: Option<RecoveryTarget>) {
        write_pg_file(&self.data.join("recovery.signal"), "");
        let mut conf = format!(
            "# Archive recovery, written by the walg test harness.\nrestore_command = {}\n",
            conf_quote(restore_command)
        );
        if let Some(target) = target {
            let (name, value) = match target {
                RecoveryTarget::Name(v) => ("recovery_target_name", v),
            };
            let _ = writeln!(conf, "{name} = {}", conf_quote(&value));
            conf.push_str("recovery_target_action = 'promote'\n");
        }
        append_pg_file(&self.data.join("postgresql.auto.conf"), &conf);
        self.start();
    }

    /// Poll `pg_is_in_recovery()` until it is false.
    pub fn wait_for_recovery_end(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let state = match self.try_psql("select pg_is_in_recovery()") {
                Ok(v) if v == "f" => return,
                Ok(v) => format!("pg_is_in_recovery() = {v}"),
                Err(e) => format!("last error: {e}"),
            };
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for recovery to end; {state}\n{}",
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running || self.data.join("postmaster.pid").exists() {
            let mut cmd = server_tool(&self.opts, "pg_ctl", self.root.path());
            cmd.arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "-t", "60", "stop"]);
            // Best effort: a failure here must not turn into a double panic.
            let _ = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .stdin(Stdio::null())
                .status();
            self.running = false;
        }
        if keep_dirs() {
            self.root.disable_cleanup(true);
        }
    }
}

/// A server tool (`initdb`, `pg_ctl`) of the major version `opts` asks for.
fn server_tool(opts: &ClusterOptions, tool: &str, cwd: &Path) -> Command {
    match &opts.server_bindir {
        Some(dir) => pg_tool_in(dir, tool, cwd),
        None => pg_tool(tool, cwd),
    }
}

/// A string literal for `postgresql.conf`.
fn conf_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// True for a 24-hex-digit WAL segment name (upper case, as PostgreSQL writes them).
pub fn is_segment_name(name: &str) -> bool {
    name.len() == 24
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}
