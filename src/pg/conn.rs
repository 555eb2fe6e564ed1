//! A session with PostgreSQL: connecting with libpq's defaults (unix sockets in
//! `/var/run/postgresql` then `/tmp`, port 5432, the OS user, the password file) and reading the
//! server's facts. Connecting and every query have a deadline: nothing here waits forever.
//!
//! TCP connections use TLS as libpq's `sslmode` says (see [`super::tls`]); unix sockets never do.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::FromSql;
use tokio_postgres::{Client, NoTls, Row, Socket};

use super::pgpass::{self, PassfileKey};
use super::tls::{self, MakeRustls, SslMode, TlsFiles};
use super::version::{self, ServerVersion};
use super::{PgError, show_duration};
use crate::util::secret::Secret;

/// Socket directories tried, in order, when no host is given (Debian's, then upstream's).
pub const DEFAULT_SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/tmp"];

/// The port when none is given.
pub const DEFAULT_PORT: u16 = 5432;

/// How long connecting to one host may take when no `connect_timeout` is given.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a cancel request for a query past its deadline may take.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// TCP keepalive idle time: a dead peer is noticed while a backup session sits idle.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);

/// Where and as whom to connect: libpq's settings, resolved by `config` (this module reads no
/// environment). `None` fields take libpq's defaults.
#[derive(Debug, Clone, Default)]
pub struct ConnectSettings {
    /// `PGHOST`: host names, IP addresses or unix socket directories (a value starting with
    /// `/`), comma-separated, tried in order. `None`: the sockets in [`DEFAULT_SOCKET_DIRS`].
    pub host: Option<String>,
    /// `PGPORT`; default 5432.
    pub port: Option<u16>,
    /// `PGUSER`; default [`ConnectSettings::os_user`].
    pub user: Option<String>,
    /// The OS user name (`USER`, else `LOGNAME`): the user when `user` is unset.
    pub os_user: Option<String>,
    /// `PGPASSWORD`. When unset, the password file is consulted.
    pub password: Option<Secret>,
    /// The password file (`PGPASSFILE`, else `~/.pgpass`); `None`: no password file.
    pub passfile: Option<PathBuf>,
    /// `PGDATABASE`; default: the user name.
    pub database: Option<String>,
    /// `application_name` of the session (empty: none).
    pub application_name: String,
    /// Deadline for connecting to one host (`PGCONNECT_TIMEOUT`); `None` or zero: 10 s.
    pub connect_timeout: Option<Duration>,
    /// `PGSSLMODE`; default `prefer`.
    pub sslmode: Option<String>,
    /// `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY` and their defaults in `~/.postgresql`.
    pub tls: TlsFiles,
}

/// One place to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A unix socket directory.
    Socket(PathBuf),
    /// A host name or IP address.
    Tcp(String),
}

impl Target {
    fn describe(&self, port: u16) -> String {
        match self {
            Target::Socket(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
            Target::Tcp(host) if host.contains(':') => format!("[{host}]:{port}"),
            Target::Tcp(host) => format!("{host}:{port}"),
        }
    }

    /// The host name a password file line is matched against (libpq: `localhost` stands for
    /// the default socket directory).
    fn passfile_host(&self) -> String {
        match self {
            Target::Socket(dir) if DEFAULT_SOCKET_DIRS.iter().any(|d| Path::new(d) == dir) => {
                "localhost".to_string()
            }
            Target::Socket(dir) => dir.display().to_string(),
            Target::Tcp(host) => host.clone(),
        }
    }
}

/// The settings with every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    targets: Vec<Target>,
    port: u16,
    user: String,
    database: String,
    timeout: Duration,
    sslmode: SslMode,
}

impl ConnectSettings {
    fn plan(&self) -> Result<Plan, PgError> {
        let mut targets = Vec::new();
        let hosts = self.host.as_deref().unwrap_or("");
        for host in hosts.split(',').map(str::trim) {
            let more: Vec<Target> = if host.is_empty() {
                DEFAULT_SOCKET_DIRS
                    .iter()
                    .map(|d| Target::Socket(PathBuf::from(d)))
                    .collect()
            } else if host.starts_with('/') {
                vec![Target::Socket(PathBuf::from(host))]
            } else {
                vec![Target::Tcp(host.to_string())]
            };
            for target in more {
                if !targets.contains(&target) {
                    targets.push(target);
                }
            }
        }
        let sslmode = SslMode::parse(self.sslmode.as_deref(), self.tls.root_cert.as_deref())?;
        let user = self
            .user
            .as_deref()
            .or(self.os_user.as_deref())
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                PgError::Settings(
                    "no user name: set PGUSER (neither USER nor LOGNAME is set)".to_string(),
                )
            })?
            .to_string();
        let database = self
            .database
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| user.clone());
        let timeout = self
            .connect_timeout
            .filter(|t| !t.is_zero())
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        Ok(Plan {
            targets,
            port: self.port.unwrap_or(DEFAULT_PORT),
            user,
            database,
            timeout,
            sslmode,
        })
    }

    /// The password for `target`: the one given, else the password file's.
    fn password_for(&self, plan: &Plan, target: &Target) -> Option<Secret> {
        if let Some(password) = &self.password {
            return Some(password.clone());
        }
        let path = self.passfile.as_deref()?;
        let host = target.passfile_host();
        pgpass::read_password(
            path,
            &PassfileKey {
                host: &host,
                port: plan.port,
                database: &plan.database,
                user: &plan.user,
            },
        )
    }
}

/// Deadlines for the queries of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Ordinary queries.
    pub query: Duration,
    /// Starting a backup: includes a fast checkpoint, which may take minutes on a busy server.
    pub start_backup: Duration,
    /// Stopping a backup (it does not wait for archiving).
    pub stop_backup: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            query: Duration::from_secs(30),
            start_backup: Duration::from_secs(30 * 60),
            stop_backup: Duration::from_secs(5 * 60),
        }
    }
}

/// Archiving settings of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiverSettings {
    /// `off`, `on` or `always`.
    pub archive_mode: String,
    pub archive_command: String,
    /// `None` before PostgreSQL 15.
    pub archive_library: Option<String>,
}

impl ArchiverSettings {
    /// True when something archives: an `archive_command` or an `archive_library`.
    pub fn has_archiver(&self) -> bool {
        !self.archive_command.trim().is_empty()
            || self
                .archive_library
                .as_deref()
                .is_some_and(|l| !l.trim().is_empty())
    }
}

/// The row of `pg_stat_archiver`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiverStats {
    pub archived_count: u64,
    pub failed_count: u64,
    pub last_archived_wal: Option<String>,
    pub last_failed_wal: Option<String>,
    pub last_archived_time: Option<jiff::Timestamp>,
    pub last_failed_time: Option<jiff::Timestamp>,
}

impl ArchiverStats {
    /// True when the last archiving attempt failed: a failure newer than the last success, or
    /// failures and no success at all.
    pub fn failing(&self) -> bool {
        match (self.last_failed_time, self.last_archived_time) {
            (Some(failed), Some(archived)) => failed > archived,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// One line for messages: `last archived 0000…05 at …; last failed 0000…06 at …`.
    pub fn summary(&self) -> String {
        let part =
            |what: &str, wal: &Option<String>, time: &Option<jiff::Timestamp>| match (wal, time) {
                (Some(wal), Some(time)) => format!("last {what} {wal} at {time:.0}"),
                (Some(wal), None) => format!("last {what} {wal}"),
                _ => format!("nothing {what}"),
            };
        format!(
            "{} ({} in all); {} ({} in all)",
            part(
                "archived",
                &self.last_archived_wal,
                &self.last_archived_time
            ),
            self.archived_count,
            part("failed", &self.last_failed_wal, &self.last_failed_time),
            self.failed_count
        )
    }
}

/// An open session with a supported server (13 to 18).
///
/// The protocol runs in a task spawned on the tokio runtime; dropping the `PgConn` ends the
/// session (the server then aborts whatever the session had under way, such as a backup).
pub struct PgConn {
    client: Client,
    version: ServerVersion,
    target: String,
    deadlines: Deadlines,
    /// The TLS connector of the session, for cancel requests; `None`: a plain session.
    tls: Option<MakeRustls>,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("target", &self.target)
            .field("version", &self.version)
            .finish()
    }
}

impl PgConn {
    /// Connects to the first host that answers, each within the connect deadline, and checks
    /// that the server's version is supported.
    pub async fn connect(settings: &ConnectSettings) -> Result<PgConn, PgError> {
        let plan = settings.plan()?;
        let connector = if plan.sslmode != SslMode::Disable
            && plan.targets.iter().any(|t| matches!(t, Target::Tcp(_)))
        {
            Some(MakeRustls::new(tls::client_config(
                plan.sslmode,
                &settings.tls,
            )?))
        } else {
            None
        };
        let mut failures: Vec<(String, Failure)> = Vec::new();
        for target in &plan.targets {
            let shown = target.describe(plan.port);
            match connect_one(settings, &plan, target, connector.as_ref()).await {
                Ok((client, tls)) => {
                    const WHAT: &str = "read server_version_num";
                    let deadlines = Deadlines::default();
                    let row = within(
                        &client,
                        tls.as_ref(),
                        WHAT,
                        deadlines.query,
                        client.query_one(version::SERVER_VERSION_NUM_SQL, &[]),
                    )
                    .await?;
                    let num: i32 = column(&row, 0, WHAT)?;
                    let version = ServerVersion::from_num(u32::try_from(num).unwrap_or_default())?;
                    tracing::debug!(
                        "connected to postgresql {version} at {shown} as {}",
                        plan.user
                    );
                    return Ok(PgConn {
                        client,
                        version,
                        target: shown,
                        deadlines,
                        tls,
                    });
                }
                Err(failure) => failures.push((shown, failure)),
            }
        }
        Err(connect_error(&plan, failures))
    }

    /// The server's version.
    pub fn version(&self) -> ServerVersion {
        self.version
    }

    /// `server_version_num` (`150004` for 15.4).
    pub fn server_version_num(&self) -> u32 {
        self.version.num()
    }

    /// Where the session is connected: `host:port` or the socket path.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The deadlines in force.
    pub fn deadlines(&self) -> Deadlines {
        self.deadlines
    }

    /// Changes the deadlines of later queries.
    pub fn set_deadlines(&mut self, deadlines: Deadlines) {
        self.deadlines = deadlines;
    }

    /// True when the session has ended (the server closed it or the connection broke).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// A round trip: fails when the session is gone.
    pub async fn ping(&self) -> Result<(), PgError> {
        self.query_row("check the session", version::PING_SQL)
            .await
            .map(|_| ())
    }

    /// The cluster's system identifier (`pg_control_system()`).
    pub async fn system_identifier(&self) -> Result<u64, PgError> {
        const WHAT: &str = "read the system identifier";
        let row = self.query_row(WHAT, version::SYSTEM_IDENTIFIER_SQL).await?;
        let id: i64 = column(&row, 0, WHAT)?;
        Ok(id.cast_unsigned())
    }

    /// The server's data directory, with symbolic links resolved on this machine (so it can be
    /// compared with a local path). Fails when the directory is not visible here.
    pub async fn data_directory(&self) -> Result<PathBuf, PgError> {
        const WHAT: &str = "read the data directory";
        let row = self.query_row(WHAT, version::DATA_DIRECTORY_SQL).await?;
        let dir: String = column(&row, 0, WHAT)?;
        tokio::fs::canonicalize(&dir)
            .await
            .map_err(|e| PgError::Query {
                what: "resolve the data directory",
                message: format!("the server's data directory '{dir}' is not accessible here: {e}"),
            })
    }

    /// `pg_is_in_recovery()`: true on a standby.
    pub async fn in_recovery(&self) -> Result<bool, PgError> {
        const WHAT: &str = "ask whether the server is in recovery";
        let row = self.query_row(WHAT, version::IN_RECOVERY_SQL).await?;
        column(&row, 0, WHAT)
    }

    /// `pg_switch_wal()`: closes the current WAL segment (primary only).
    pub async fn switch_wal(&self) -> Result<(), PgError> {
        const WHAT: &str = "switch to a new WAL segment";
        self.query_row(WHAT, "SELECT pg_switch_wal()::text")
            .await
            .map(drop)
    }

    /// The timeline of the last checkpoint (`pg_control_checkpoint()`).
    pub async fn timeline(&self) -> Result<u32, PgError> {
        const WHAT: &str = "read the timeline";
        let row = self.query_row(WHAT, version::TIMELINE_SQL).await?;
        let timeline: i32 = column(&row, 0, WHAT)?;
        u32::try_from(timeline).map_err(|_| PgError::Query {
            what: WHAT,
            message: format!("the server reported timeline {timeline}"),
        })
    }

    /// The WAL segment size in bytes (`pg_control_init()`).
    pub async fn wal_segment_size(&self) -> Result<u64, PgError> {
        const WHAT: &str = "read the wal segment size";
        let row = self.query_row(WHAT, version::WAL_SEGMENT_SIZE_SQL).await?;
        let size: i32 = column(&row, 0, WHAT)?;
        u64::try_from(size).map_err(|_| PgError::Query {
            what: WHAT,
            message: format!("the server reported {size} bytes"),
        })
    }

    /// `archive_mode`, `archive_command` and `archive_library`.
    pub async fn archiver_settings(&self) -> Result<ArchiverSettings, PgError> {
        const WHAT: &str = "read the archiving settings";
        let row = self
            .query_row(WHAT, self.version.archiver_settings_sql())
            .await?;
        Ok(ArchiverSettings {
            archive_mode: column(&row, 0, WHAT)?,
            archive_command: column(&row, 1, WHAT)?,
            archive_library: column(&row, 2, WHAT)?,
        })
    }

    /// The row of `pg_stat_archiver`.
    pub async fn archiver_stats(&self) -> Result<ArchiverStats, PgError> {
        const WHAT: &str = "read pg_stat_archiver";
        let row = self.query_row(WHAT, version::ARCHIVER_STATS_SQL).await?;
        let count = |i: usize| -> Result<u64, PgError> {
            let n: i64 = column(&row, i, WHAT)?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        let time = |i: usize| -> Result<Option<jiff::Timestamp>, PgError> {
            let micros: Option<i64> = column(&row, i, WHAT)?;
            Ok(micros.and_then(|m| jiff::Timestamp::from_microsecond(m).ok()))
        };
        Ok(ArchiverStats {
            archived_count: count(0)?,
            failed_count: count(1)?,
            last_archived_wal: column(&row, 2, WHAT)?,
            last_failed_wal: column(&row, 3, WHAT)?,
            last_archived_time: time(4)?,
            last_failed_time: time(5)?,
        })
    }

    /// Runs `sql` (no parameters) under the query deadline; expects one row.
    pub(crate) async fn query_row(&self, what: &'static str, sql: &str) -> Result<Row, PgError> {
        self.query_row_with(what, sql, &[], self.deadlines.query)
            .await
    }

    /// Runs `sql` with `params` under `deadline`; expects one row.
    pub(crate) async fn query_row_with(
        &self,
        what: &'static str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        deadline: Duration,
    ) -> Result<Row, PgError> {
        self.within(what, deadline, self.client.query_one(sql, params))
            .await
    }

    /// Awaits `work` until `deadline`; past it, asks the server to cancel the query.
    async fn within<T>(
        &self,
        what: &'static str,
        deadline: Duration,
        work: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, PgError> {
        within(&self.client, self.tls.as_ref(), what, deadline, work).await
    }
}

/// Awaits `work` until `deadline`; past it, asks the server to cancel the query of `client`
/// (over TLS when the session uses `tls`).
async fn within<T>(
    client: &Client,
    tls: Option<&MakeRustls>,
    what: &'static str,
    deadline: Duration,
    work: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, PgError> {
    match tokio::time::timeout(deadline, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(PgError::Query {
            what,
            message: describe(&e),
        }),
        Err(_) => {
            let cancel = client.cancel_token();
            let sent = match tls {
                Some(tls) => {
                    tokio::time::timeout(CANCEL_TIMEOUT, cancel.cancel_query(tls.clone())).await
                }
                None => tokio::time::timeout(CANCEL_TIMEOUT, cancel.cancel_query(NoTls)).await,
            };
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!("cancelling the query failed: {}", describe(&e)),
                Err(_) => tracing::debug!("cancelling the query timed out"),
            }
            Err(PgError::Timeout {
                what,
                after: deadline,
            })
        }
    }
}

/// Reads column `index` of `row`.
pub(crate) fn column<'a, T: FromSql<'a>>(
    row: &'a Row,
    index: usize,
    what: &'static str,
) -> Result<T, PgError> {
    row.try_get(index).map_err(|e| PgError::Query {
        what,
        message: describe(&e),
    })
}

/// Why one host could not be reached.
struct Failure {
    message: String,
    /// Nothing listens there (no socket file, connection refused).
    nobody_there: bool,
    /// The server answered and refused the session (`sslmode=allow` then tries TLS,
    /// `prefer` tries without).
    refused: bool,
    /// TLS could not be set up (`sslmode=prefer` then tries without).
    tls: bool,
}

/// Opens a session with `target`: over TLS as `plan.sslmode` says for TCP hosts (with
/// `connector`, present unless the mode is `disable`), without it for unix sockets. Returns the
/// connector when the session uses TLS.
async fn connect_one(
    settings: &ConnectSettings,
    plan: &Plan,
    target: &Target,
    connector: Option<&MakeRustls>,
) -> Result<(Client, Option<MakeRustls>), Failure> {
    use tokio_postgres::config::SslMode as Wire;
    let mut config = tokio_postgres::Config::new();
    config
        .user(&plan.user)
        .dbname(&plan.database)
        .port(plan.port)
        .connect_timeout(plan.timeout)
        .keepalives_idle(KEEPALIVE_IDLE)
        .ssl_mode(Wire::Disable);
    if !settings.application_name.is_empty() {
        config.application_name(&settings.application_name);
    }
    match target {
        Target::Socket(dir) => config.host_path(dir),
        Target::Tcp(host) => config.host(host),
    };
    let password = settings.password_for(plan, target);
    if let Some(password) = &password {
        config.password(password.expose());
    }
    let attempt = Attempt {
        timeout: plan.timeout,
        mode: plan.sslmode,
        password: password.as_ref(),
    };
    let connector = match (target, connector) {
        (Target::Tcp(_), Some(connector)) => connector,
        _ => return attempt.run(&config, NoTls).await.map(|c| (c, None)),
    };
    match plan.sslmode {
        SslMode::Disable => attempt.run(&config, NoTls).await.map(|c| (c, None)),
        SslMode::Allow => match attempt.run(&config, NoTls).await {
            Err(failure) if failure.refused => {
                tracing::debug!("the server refused a session without tls: trying with tls");
                config.ssl_mode(Wire::Require);
                attempt
                    .run(&config, connector.clone())
                    .await
                    .map(|c| (c, Some(connector.clone())))
            }
            other => other.map(|c| (c, None)),
        },
        SslMode::Prefer => {
            config.ssl_mode(Wire::Prefer);
            match attempt.run(&config, connector.clone()).await {
                Ok(client) => Ok((client, Some(connector.clone()))),
                Err(failure) if failure.refused || failure.tls => {
                    tracing::debug!(
                        "no session with tls ({}): trying without tls",
                        failure.message
                    );
                    config.ssl_mode(Wire::Disable);
                    attempt.run(&config, NoTls).await.map(|c| (c, None))
                }
                Err(failure) => Err(failure),
            }
        }
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            config.ssl_mode(Wire::Require);
            attempt
                .run(&config, connector.clone())
                .await
                .map(|c| (c, Some(connector.clone())))
        }
    }
}

/// One connection attempt's fixed parts.
struct Attempt<'a> {
    timeout: Duration,
    mode: SslMode,
    password: Option<&'a Secret>,
}

impl Attempt<'_> {
    async fn run<T>(&self, config: &tokio_postgres::Config, tls: T) -> Result<Client, Failure>
    where
        T: MakeTlsConnect<Socket>,
        T::Stream: Send + 'static,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        match tokio::time::timeout(self.timeout, config.connect(tls)).await {
            Err(_) => Err(Failure {
                message: format!("no answer within {}", show_duration(&self.timeout)),
                nobody_there: false,
                refused: false,
                tls: false,
            }),
            Ok(Err(e)) => {
                let nobody_there = io_kind(&e).is_some_and(|kind| {
                    matches!(
                        kind,
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                    )
                });
                let message = describe(&e);
                let tls = tls_message(&e, self.mode);
                let is_tls = tls.is_some();
                let message = if message.contains("password missing") {
                    "the server asks for a password and none is set (PGPASSWORD or a password file)"
                        .to_string()
                } else {
                    tls.unwrap_or(message)
                };
                Err(Failure {
                    message: redact(message, self.password),
                    nobody_there,
                    refused: e.as_db_error().is_some(),
                    tls: is_tls,
                })
            }
            Ok(Ok((client, connection))) => {
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!("postgresql session ended: {}", describe(&e));
                    }
                });
                Ok(client)
            }
        }
    }
}

/// A message naming `mode` and the failing check when TLS could not be set up, else `None`.
fn tls_message(e: &tokio_postgres::Error, mode: SslMode) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        // An I/O error shows the error it wraps, but does not give it as its source.
        let wrapped = cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(rustls_error) = wrapped.or_else(|| cause.downcast_ref::<rustls::Error>()) {
            return Some(match rustls_error {
                // The certificate checks say what failed and name the mode.
                rustls::Error::General(message) => message.clone(),
                other => format!("sslmode={mode}: the tls handshake failed: {other}"),
            });
        }
        source = cause.source();
    }
    if describe(e).contains("server does not support TLS") {
        return Some(format!("the server does not support TLS (sslmode={mode})"));
    }
    None
}

fn connect_error(plan: &Plan, failures: Vec<(String, Failure)>) -> PgError {
    let target = failures
        .iter()
        .map(|(t, _)| t.as_str())
        .collect::<Vec<_>>()
        .join(" or ");
    let first = failures.first().map(|(_, f)| f.message.as_str());
    let mut message = if failures
        .iter()
        .all(|(_, f)| Some(f.message.as_str()) == first)
    {
        first.unwrap_or("no host to connect to").to_string()
    } else {
        failures
            .iter()
            .map(|(t, f)| format!("{t}: {}", f.message))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !failures.is_empty() && failures.iter().all(|(_, f)| f.nobody_there) {
        message.push_str(" (is the server running, and are PGHOST and PGPORT right?)");
    }
    PgError::Connect {
        target: format!("{target} as user {}", plan.user),
        message,
    }
}

/// The kind of the I/O error behind `e`, if any.
fn io_kind(e: &tokio_postgres::Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
}

/// One lower-case line for a client error: the server's message, or the chain of causes.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    let text = if let Some(db) = e.as_db_error() {
        let mut text = db.message().to_string();
        if let Some(detail) = db.detail() {
            text.push_str(" (");
            text.push_str(detail);
            text.push(')');
        }
        text
    } else {
        let mut parts = vec![e.to_string()];
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            parts.push(cause.to_string());
            source = cause.source();
        }
        // "error connecting to server: connection refused": the cause says it all.
        if parts.len() > 1 && parts[0] == "error connecting to server" {
            parts.remove(0);
        }
        parts.join(": ")
    };
    one_line(&text)
}

/// Joins lines with `; ` and lower-cases the first letter.
pub(crate) fn one_line(text: &str) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    // "Connection refused" → "connection refused"; "FATAL" and "SQL" stay as they are.
    let mut chars = joined.chars();
    match (chars.next(), chars.clone().next()) {
        (Some(first), Some(second)) if second.is_uppercase() => {
            std::iter::once(first).chain(chars).collect()
        }
        (Some(first), _) => first.to_lowercase().chain(chars).collect(),
        (None, _) => joined,
    }
}

/// Replaces the password, should a message ever contain it.
fn redact(message: String, password: Option<&Secret>) -> String {
    match password.map(Secret::expose) {
        Some(p) if !p.is_empty() && message.contains(p) => message.replace(p, "[redacted]"),
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ConnectSettings {
        ConnectSettings {
            os_user: Some("alice".to_string()),
            ..ConnectSettings::default()
        }
    }

    #[test]
    fn defaults_are_libpqs() {
        let plan = settings().plan().unwrap();
        assert_eq!(
            plan.targets,
            [
                Target::Socket(PathBuf::from("/var/run/postgresql")),
                Target::Socket(PathBuf::from("/tmp"))
            ]
        );
        assert_eq!(plan.port, 5432);
        assert_eq!(
            (plan.user.as_str(), plan.database.as_str()),
            ("alice", "alice")
        );
        assert_eq!(plan.timeout, Duration::from_secs(10));
        assert_eq!(
            plan.targets[0].describe(plan.port),
            "/var/run/postgresql/.s.PGSQL.5432"
        );
        assert_eq!(plan.targets[1].passfile_host(), "localhost");
    }

    #[test]
    fn explicit_settings_win() {
        let s = ConnectSettings {
            host: Some("db.example, /sockets,::1".to_string()),
            port: Some(6543),
            user: Some("bob".to_string()),
            database: Some("sales".to_string()),
            connect_timeout: Some(Duration::from_secs(3)),
            sslmode: Some("prefer".to_string()),
            ..settings()
        };
        let plan = s.plan().unwrap();
        assert_eq!(
            plan.targets,
            [
                Target::Tcp("db.example".to_string()),
                Target::Socket(PathBuf::from("/sockets")),
                Target::Tcp("::1".to_string())
            ]
        );
        assert_eq!(plan.targets[0].describe(6543), "db.example:6543");
        assert_eq!(plan.targets[1].passfile_host(), "/sockets");
        assert_eq!(plan.targets[2].describe(6543), "[::1]:6543");
        assert_eq!(
            (plan.user.as_str(), plan.database.as_str()),
            ("bob", "sales")
        );
        assert_eq!(plan.timeout, Duration::from_secs(3));
        // Zero means the default: walg never waits forever.
        let s = ConnectSettings {
            connect_timeout: Some(Duration::ZERO),
            ..settings()
        };
        assert_eq!(s.plan().unwrap().timeout, DEFAULT_CONNECT_TIMEOUT);
    }

    #[test]
    fn no_user_is_an_error() {
        let err = ConnectSettings::default().plan().unwrap_err().to_string();
        assert!(err.contains("set PGUSER"), "{err}");
    }

    #[test]
    fn tls_modes() {
        for mode in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            let tcp = ConnectSettings {
                host: Some("db.example".to_string()),
                sslmode: Some(mode.to_string()),
                ..settings()
            };
            assert_eq!(tcp.plan().unwrap().sslmode.to_string(), mode);
        }
        assert_eq!(settings().plan().unwrap().sslmode, SslMode::Prefer);
        let bad = ConnectSettings {
            sslmode: Some("sometimes".to_string()),
            ..settings()
        };
        assert!(bad.plan().unwrap_err().to_string().contains("sometimes"));
    }

    #[test]
    fn sockets_never_use_tls() {
        // Without root certificates verify-full could not build a connector: through a unix
        // socket none is built, so the settings are accepted.
        let socket = ConnectSettings {
            host: Some("/nonexistent-socket-dir".to_string()),
            sslmode: Some("verify-full".to_string()),
            ..settings()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = runtime
            .block_on(PgConn::connect(&socket))
            .unwrap_err()
            .to_string();
        assert!(err.contains("could not connect"), "{err}");
        assert!(!err.contains("root certificate"), "{err}");
    }

    #[test]
    fn password_from_settings_then_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "localhost:5432:alice:alice:from-file\n/sockets:5432:*:*:socket-pw\n",
        )
        .unwrap();
        std::fs::set_permissions(
            &file,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
        )
        .unwrap();
        let s = ConnectSettings {
            passfile: Some(file),
            ..settings()
        };
        let plan = s.plan().unwrap();
        let pw = s.password_for(&plan, &plan.targets[0]).unwrap();
        assert_eq!(pw.expose(), "from-file");
        let pw = s
            .password_for(&plan, &Target::Socket(PathBuf::from("/sockets")))
            .unwrap();
        assert_eq!(pw.expose(), "socket-pw");
        assert!(
            s.password_for(&plan, &Target::Tcp("db".to_string()))
                .is_none()
        );
        let given = ConnectSettings {
            password: Some(Secret::new("given")),
            ..s
        };
        assert_eq!(
            given
                .password_for(&plan, &plan.targets[0])
                .unwrap()
                .expose(),
            "given"
        );
        assert!(!format!("{given:?}").contains("given\""));
    }

    #[test]
    fn messages_are_one_line_without_the_password() {
        assert_eq!(
            one_line("FATAL: bad\nDETAIL: more\n"),
            "FATAL: bad; DETAIL: more"
        );
        assert_eq!(one_line("Connection refused"), "connection refused");
        let pw = Secret::new("hunter2");
        assert_eq!(
            redact("failed for hunter2".to_string(), Some(&pw)),
            "failed for [redacted]"
        );
    }

    #[test]
    fn archiver_failing() {
        let t = |s: i64| Some(jiff::Timestamp::from_second(s).unwrap());
        let mut stats = ArchiverStats {
            archived_count: 3,
            failed_count: 0,
            last_archived_wal: Some("000000010000000000000003".to_string()),
            last_failed_wal: None,
            last_archived_time: t(100),
            last_failed_time: None,
        };
        assert!(!stats.failing());
        stats.failed_count = 1;
        stats.last_failed_wal = Some("000000010000000000000004".to_string());
        stats.last_failed_time = t(50);
        assert!(!stats.failing(), "an old failure, a success since");
        stats.last_failed_time = t(150);
        assert!(stats.failing());
        stats.last_archived_time = None;
        assert!(stats.failing(), "failures and never a success");
        assert!(
            stats
                .summary()
                .contains("last failed 000000010000000000000004")
        );
    }
}
