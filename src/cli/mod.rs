//! The command line: arguments, settings resolution, logging, dispatch to `ops`, and exit
//! codes. The only layer that talks to the user.

pub mod exit;
pub mod http;
pub mod logging;
pub mod progress;
pub mod render;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Arg, ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::registry::{self, Kind};
use crate::config::{self, RawConfig, Settings};
use crate::ops::{self, Context};
use crate::storage;

/// `walg version <version>\t<revision>\t<build date>\tPostgreSQL`, WAL-G's shape. The revision
/// and date come from `WALG_GIT_REVISION` / `WALG_BUILD_DATE` at build time when set.
fn version() -> String {
    format!(
        "version {}\t{}\t{}\tPostgreSQL",
        env!("CARGO_PKG_VERSION"),
        option_env!("WALG_GIT_REVISION").unwrap_or("unknown"),
        option_env!("WALG_BUILD_DATE").unwrap_or("unknown"),
    )
}

/// A WAL-G-compatible backup and WAL archiving tool for PostgreSQL.
///
/// Settings come from hidden flags (`--walg-s3-prefix` ...), environment variables
/// (`WALG_S3_PREFIX` ...) and a JSON config file, in that order; see docs/settings.md.
#[derive(Debug, Parser)]
#[command(name = "walg", version = version(), about, long_about = None, propagate_version = true)]
struct Cli {
    /// JSON config file (default: $WALG_CONFIG_PATH, else $HOME/.walg.json)
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Accepted for WAL-G compatibility; has no effect
    #[arg(long, global = true, hide = true)]
    turbo: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::enum_variant_names)] // the command names are WAL-G's
enum Command {
    /// Archive one WAL file: archive_command = 'walg wal-push %p'
    ///
    /// Exits 0 only once the file is durably stored. A `.history` file that is already stored
    /// with different content is never overwritten (nor any file with
    /// WALG_PREVENT_WAL_OVERWRITE=true).
    WalPush {
        /// Path of the WAL file, as PostgreSQL passes it (%p)
        wal_filepath: PathBuf,
    },
    /// Restore one WAL file: restore_command = 'walg wal-fetch %f %p'
    ///
    /// Exit codes: 0 restored; 74 not in storage; 200 the archive could not be read (storage
    /// unreachable after retries, a corrupt object, a bad setting), which makes PostgreSQL
    /// stop recovery instead of ending it early.
    WalFetch {
        /// Name of the WAL file (%f)
        wal_name: String,
        /// Where to write it (%p)
        destination_filename: PathBuf,
    },
    /// Take a full base backup of a running cluster: backup-push $PGDATA
    ///
    /// Connects with the usual PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE (unix sockets
    /// included), checks that WAL archiving works, and writes the backup in WAL-G's layout. The
    /// backup exists once its sentinel is written, last, after its WAL is archived.
    BackupPush {
        /// The data directory (default: the server's)
        db_directory: Option<PathBuf>,
        /// Mark the backup permanent: retention never deletes it
        #[arg(short = 'p', long)]
        permanent: bool,
        /// Take a full backup (walg always does)
        #[arg(short = 'f', long)]
        full: bool,
        /// JSON stored with the backup (default: WALG_SENTINEL_USER_DATA)
        #[arg(long, value_name = "JSON")]
        add_user_data: Option<String>,
    },
    /// Restore a base backup into an empty directory: backup-fetch DIR LATEST
    ///
    /// With --write-recovery-conf, also writes recovery.signal and a restore_command that runs
    /// this walg with the same settings, and the optional recovery target, so that starting
    /// PostgreSQL is the only step left.
    BackupFetch {
        /// Where to restore (created if missing; must be empty)
        destination_directory: PathBuf,
        /// A backup name from backup-list, or LATEST
        backup_name: String,
        /// Tablespace locations for the restore (WAL-G's restore spec JSON)
        #[arg(long, value_name = "FILE")]
        restore_spec: Option<PathBuf>,
        /// Write recovery.signal and restore_command = 'walg wal-fetch %f %p'
        #[arg(short = 'R', long)]
        write_recovery_conf: bool,
        /// Stop recovery at this time (recovery_target_time), e.g. '2026-11-24 10:00:00+00'
        #[arg(long, value_name = "TIME", requires = "write_recovery_conf")]
        target_time: Option<String>,
        /// Stop recovery at this LSN (recovery_target_lsn), e.g. 0/3000060
        #[arg(long, value_name = "LSN", requires = "write_recovery_conf")]
        target_lsn: Option<String>,
        /// Stop recovery at this restore point (recovery_target_name)
        #[arg(long, value_name = "NAME", requires = "write_recovery_conf")]
        target_name: Option<String>,
        /// What to do at the target: pause, promote or shutdown (recovery_target_action)
        #[arg(long, value_name = "ACTION", requires = "write_recovery_conf")]
        target_action: Option<String>,
        /// Timeline to recover along: latest, current or a number (recovery_target_timeline)
        #[arg(long, value_name = "TIMELINE", requires = "write_recovery_conf")]
        target_timeline: Option<String>,
    },
    /// Make a backup permanent (retention never deletes it), or impermanent with -i
    ///
    /// Marking a delta backup permanent marks the backups it depends on too.
    BackupMark {
        /// The backup, as backup-list shows it
        backup_name: String,
        /// Make the backup impermanent instead
        #[arg(short = 'i', long)]
        impermanent: bool,
    },
    /// Delete old backups and WAL: a dry run that lists what would go, unless --confirm
    ///
    /// retain [FULL|FIND_FULL] N [--after NAME|TIME], before [FIND_FULL] NAME|TIME,
    /// everything [FORCE], target [FIND_FULL] NAME | --target-user-data JSON,
    /// garbage [ARCHIVES|BACKUPS]. Never deletes WAL a kept or permanent backup needs; refuses
    /// to run while a backup-push writes to the same storage.
    Delete {
        #[command(subcommand)]
        mode: DeleteMode,
        /// Delete for real (without it: a dry run)
        #[arg(long, global = true)]
        confirm: bool,
        /// Order backups by their start time in metadata.json
        #[arg(long, global = true)]
        use_sentinel_time: bool,
        /// Print the plan as JSON on standard output
        #[arg(long, global = true)]
        json: bool,
    },
    /// Run backups on a schedule, as a sidecar: backup-push, then delete retain FULL N
    ///
    /// Each cycle runs backup-push and, only if it succeeded, `delete retain FULL N --confirm`.
    /// Cycles never overlap; a late cycle runs once. SIGTERM or SIGINT stops it (a backup in
    /// flight is abandoned: the server aborts it and no sentinel is written) with exit 0.
    Schedule {
        /// The data directory (default: the server's)
        db_directory: Option<PathBuf>,
        /// Cron expression, e.g. "0 0 * * *" or @daily (default: WALG_BACKUP_SCHEDULE); UTC
        /// unless TZ is set
        #[arg(long, value_name = "EXPR")]
        cron: Option<String>,
        /// Full backups to keep (default: WALG_BACKUP_RETAIN)
        #[arg(long, value_name = "N")]
        retain: Option<u32>,
        /// Serve /metrics and /healthz here, e.g. 0.0.0.0:9351 (default: WALG_METRICS_ADDR)
        #[arg(long, value_name = "HOST:PORT")]
        metrics_addr: Option<String>,
        /// Run one cycle now and exit with its result
        #[arg(long)]
        once: bool,
    },
    /// List the backups in storage, oldest first
    ///
    /// A backup is listed once its stop sentinel exists, ordered by the sentinel's
    /// modification time (by start time with --detail). Output is the same as WAL-G's.
    BackupList {
        /// A table with borders and numbered rows; with --json, indented JSON
        #[arg(long)]
        pretty: bool,
        /// JSON output
        #[arg(long)]
        json: bool,
        /// Add each backup's metadata: start and finish time, host, data directory, PostgreSQL
        /// version, LSNs, permanence
        #[arg(long)]
        detail: bool,
    },
    /// Download the segments after WAL_NAME into .wal-g/prefetch (started by wal-fetch)
    #[command(hide = true)]
    WalPrefetch {
        wal_name: String,
        prefetch_location: PathBuf,
    },
}

/// The modes of `delete`, with WAL-G's positional words.
#[derive(Debug, Subcommand)]
enum DeleteMode {
    /// Keep the N newest backups ([FULL|FIND_FULL] N)
    Retain {
        #[arg(num_args = 1..=2, value_name = "[FULL|FIND_FULL] N")]
        words: Vec<String>,
        /// Also keep every backup from this one (a name prefix or an RFC 3339 time) on
        #[arg(short = 'a', long, value_name = "NAME|TIME")]
        after: Option<String>,
    },
    /// Delete the backups older than NAME or TIME ([FIND_FULL] NAME|TIME)
    Before {
        #[arg(num_args = 1..=2, value_name = "[FIND_FULL] NAME|TIME")]
        words: Vec<String>,
    },
    /// Delete every object of the storage (FORCE: permanent backups too)
    Everything {
        #[arg(value_name = "FORCE")]
        force: Option<String>,
    },
    /// Delete one backup and its dependent deltas ([FIND_FULL] NAME), never WAL
    Target {
        #[arg(num_args = 0..=2, value_name = "[FIND_FULL] NAME")]
        words: Vec<String>,
        /// Select the backup by its user data (JSON) instead of its name
        #[arg(long, value_name = "JSON")]
        target_user_data: Option<String>,
    },
    /// Delete incomplete backups and WAL older than every backup ([ARCHIVES|BACKUPS])
    Garbage {
        #[arg(value_name = "ARCHIVES|BACKUPS")]
        scope: Option<String>,
        /// With no complete backup, delete every non-permanent object the scope covers
        #[arg(long)]
        without_backup_check: bool,
    },
}

impl DeleteMode {
    /// The rule of the retention planner.
    fn rule(self) -> anyhow::Result<crate::retention::Rule> {
        use crate::retention::{Anchor, GarbageScope, Modifier, Rule, TargetSelector};
        let modifier = |word: &str| match word {
            "FULL" => Ok(Modifier::Full),
            "FIND_FULL" => Ok(Modifier::FindFull),
            other => Err(anyhow::anyhow!("expected FULL or FIND_FULL, not '{other}'")),
        };
        Ok(match self {
            DeleteMode::Retain { words, after } => {
                let (modifier, count) = match words.as_slice() {
                    [count] => (Modifier::None, count),
                    [word, count] => (modifier(word)?, count),
                    _ => anyhow::bail!("delete retain takes [FULL|FIND_FULL] N"),
                };
                let count = count.parse().map_err(|_| {
                    anyhow::anyhow!("delete retain: '{count}' is not a number of backups")
                })?;
                Rule::Retain {
                    modifier,
                    count,
                    after: after.as_deref().map(Anchor::parse),
                }
            }
            DeleteMode::Before { words } => match words.as_slice() {
                [anchor] => Rule::Before {
                    find_full: false,
                    anchor: Anchor::parse(anchor),
                },
                [word, anchor] if word == "FIND_FULL" => Rule::Before {
                    find_full: true,
                    anchor: Anchor::parse(anchor),
                },
                _ => {
                    anyhow::bail!("delete before takes [FIND_FULL] NAME|TIME (FULL is not allowed)")
                }
            },
            DeleteMode::Everything { force } => match force.as_deref() {
                None => Rule::Everything { force: false },
                Some("FORCE") => Rule::Everything { force: true },
                Some(other) => anyhow::bail!("delete everything takes FORCE, not '{other}'"),
            },
            DeleteMode::Target {
                words,
                target_user_data,
            } => {
                let (find_full, name) = match words.as_slice() {
                    [] => (false, None),
                    [name] => (false, Some(name.clone())),
                    [word, name] if word == "FIND_FULL" => (true, Some(name.clone())),
                    _ => anyhow::bail!("delete target takes [FIND_FULL] NAME"),
                };
                let selector = match (name, target_user_data) {
                    (Some(name), None) => TargetSelector::Name(name),
                    (None, Some(json)) => TargetSelector::UserData(
                        serde_json::from_str(&json)
                            .context("--target-user-data is not valid JSON")?,
                    ),
                    _ => anyhow::bail!(
                        "delete target takes a backup name or --target-user-data, one of them"
                    ),
                };
                Rule::Target {
                    find_full,
                    selector,
                }
            }
            DeleteMode::Garbage {
                scope,
                without_backup_check,
            } => Rule::Garbage {
                scope: match scope.as_deref() {
                    None => GarbageScope::All,
                    Some("ARCHIVES") => GarbageScope::Archives,
                    Some("BACKUPS") => GarbageScope::Backups,
                    Some(other) => {
                        anyhow::bail!("delete garbage takes ARCHIVES or BACKUPS, not '{other}'")
                    }
                },
                without_backup_check,
            },
        })
    }
}

impl Command {
    /// The exit code for a failure of this command.
    fn failure_code(&self) -> u8 {
        match self {
            Command::WalFetch { .. } => exit::ARCHIVE_UNAVAILABLE,
            _ => exit::FAILURE,
        }
    }
}

/// Every spelling of every setting, as hidden global flags.
fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for def in registry::SETTINGS {
        for name in std::iter::once(def.name).chain(def.aliases.iter().copied()) {
            cmd = cmd.arg(
                Arg::new(name)
                    .long(registry::flag_name(name))
                    .global(true)
                    .hide(true)
                    .num_args(1)
                    .value_name("VALUE"),
            );
        }
    }
    cmd
}

/// The setting values given as flags, by setting name.
fn setting_flags(matches: &ArgMatches) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for def in registry::SETTINGS {
        for name in std::iter::once(def.name).chain(def.aliases.iter().copied()) {
            if let Some(value) = find_flag(matches, name) {
                out.insert(name.to_string(), value);
            }
        }
    }
    out
}

fn find_flag(matches: &ArgMatches, id: &str) -> Option<String> {
    if let Ok(Some(value)) = matches.try_get_one::<String>(id) {
        return Some(value.clone());
    }
    matches.subcommand().and_then(|(_, sub)| find_flag(sub, id))
}

/// Flags handed to a child process: the config file and the non-secret setting flags.
fn child_args(settings: &Settings, flags: &BTreeMap<String, String>) -> Vec<OsString> {
    let mut args = Vec::new();
    if let Some(file) = &settings.config_file {
        args.push(OsString::from("--config"));
        args.push(file.clone().into_os_string());
    }
    for (name, value) in flags {
        if registry::find(name).is_some_and(|d| d.kind != Kind::Secret) {
            args.push(OsString::from(format!("--{}", registry::flag_name(name))));
            args.push(OsString::from(value));
        }
    }
    args
}

/// Parses arguments, resolves settings, runs the command and returns its exit code.
pub fn main_entry() -> ExitCode {
    let matches = match command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => exit::SUCCESS,
                _ => exit::FAILURE,
            };
            return exit::code(code);
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return exit::code(exit::FAILURE);
        }
    };
    let failure = cli.command.failure_code();
    let flags = setting_flags(&matches);
    match run(cli, flags) {
        Ok(code) => exit::code(code),
        Err(e) => {
            exit::report(&e);
            exit::code(failure)
        }
    }
}

fn run(cli: Cli, flags: BTreeMap<String, String>) -> anyhow::Result<u8> {
    let env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let raw = RawConfig::load(flags.clone(), env, cli.config.clone())?;
    logging::init(&config::log_settings(&raw)?);
    for warning in &raw.warnings {
        tracing::warn!("{warning}");
    }
    for name in Settings::ignored_but_set(&raw) {
        tracing::warn!("{name} is set but has no effect in walg");
    }
    let settings = Settings::resolve(&raw)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(dispatch(cli.command, settings, &flags, &raw))
}

/// The arguments a `restore_command` needs to run walg with the settings of this run: the
/// config file, and every non-secret setting given as a flag or in the environment (the
/// server's environment may differ from a DBA's shell). Secrets are never written into
/// `postgresql.auto.conf`: a warning names the ones the server must get another way.
fn restore_args(raw: &RawConfig) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(file) = raw.file_path() {
        args.push("--config".to_string());
        args.push(file.display().to_string());
    }
    let mut secrets = Vec::new();
    for def in registry::SETTINGS {
        let Some(value) = raw.get(def) else { continue };
        if !matches!(value.source, config::Source::Flag | config::Source::Env) {
            continue;
        }
        if def.kind == Kind::Secret {
            secrets.push(value.name);
            continue;
        }
        args.push(format!("--{}", registry::flag_name(value.name)));
        args.push(value.value);
    }
    if !secrets.is_empty() {
        tracing::warn!(
            "restore_command will not contain {}: the PostgreSQL server needs them in its environment, a config file or a credentials file",
            secrets.join(", ")
        );
    }
    args
}

/// Turns the first SIGTERM or SIGINT into a shutdown request.
async fn wait_for_signal(stop: tokio::sync::watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot watch SIGTERM/SIGINT");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
    let _ = stop.send(true);
}

/// The PostgreSQL connection from the resolved settings.
fn connect_settings(pg: &config::PgSettings) -> crate::pg::ConnectSettings {
    crate::pg::ConnectSettings {
        host: pg.host.clone(),
        port: pg.port,
        user: pg.user.clone(),
        os_user: pg.os_user.clone(),
        password: pg.password.clone(),
        passfile: pg.passfile.clone(),
        database: pg.database.clone(),
        application_name: pg.application_name.clone(),
        connect_timeout: pg.connect_timeout,
        sslmode: pg.sslmode.clone(),
    }
}

async fn dispatch(
    command: Command,
    settings: Settings,
    flags: &BTreeMap<String, String>,
    raw: &RawConfig,
) -> anyhow::Result<u8> {
    let storage_settings = settings.storage.clone().ok_or_else(|| {
        ops::HintedError::new(
            "no storage is configured",
            "set WALG_S3_PREFIX (s3://bucket/path) or WALG_FILE_PREFIX (a local folder)",
        )
    })?;
    let storage = storage::from_settings(&storage_settings).await?;
    let ctx = Context {
        storage,
        exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("walg")),
        child_args: child_args(&settings, flags),
        settings: Arc::new(settings),
    };
    match command {
        Command::WalPush { wal_filepath } => {
            ops::wal_push::run(&ctx, &wal_filepath).await?;
            Ok(exit::SUCCESS)
        }
        Command::WalFetch {
            wal_name,
            destination_filename,
        } => match ops::wal_fetch::run(&ctx, &wal_name, &destination_filename).await? {
            ops::wal_fetch::Fetched::Written { from, .. } => {
                tracing::debug!("'{wal_name}' restored from '{from}'");
                Ok(exit::SUCCESS)
            }
            ops::wal_fetch::Fetched::Missing => {
                tracing::info!("wal file '{wal_name}' is not in storage");
                Ok(exit::WAL_NOT_FOUND)
            }
        },
        Command::BackupPush {
            db_directory,
            permanent,
            full: _,
            add_user_data,
        } => {
            let user_data = add_user_data
                .map(|text| serde_json::from_str(&text))
                .transpose()
                .context("--add-user-data is not valid JSON")?;
            let options = ops::backup_push::BackupPushOptions {
                pgdata: db_directory.or_else(|| ctx.settings.pg.data.clone()),
                connect: connect_settings(&ctx.settings.pg),
                permanent,
                user_data,
            };
            let report =
                ops::backup_push::run(&ctx, options, Arc::from(progress::for_stderr())).await?;
            tracing::debug!("backup '{}': {} parts", report.name, report.parts);
            Ok(exit::SUCCESS)
        }
        Command::BackupFetch {
            destination_directory,
            backup_name,
            restore_spec,
            write_recovery_conf,
            target_time,
            target_lsn,
            target_name,
            target_action,
            target_timeline,
        } => {
            let recovery = write_recovery_conf.then(|| {
                let command = ops::recovery_conf::restore_command(&ctx.exe, &restore_args(raw));
                let target = ops::recovery_conf::RecoveryTarget {
                    time: target_time,
                    lsn: target_lsn,
                    name: target_name,
                    action: target_action,
                    timeline: target_timeline,
                };
                (command, target)
            });
            let options = ops::backup_fetch::BackupFetchOptions {
                destination: destination_directory,
                name: backup_name,
                restore_spec,
                recovery,
            };
            ops::backup_fetch::run(&ctx, options, Arc::from(progress::for_stderr())).await?;
            Ok(exit::SUCCESS)
        }
        Command::Schedule {
            db_directory,
            cron,
            retain,
            metrics_addr,
            once,
        } => {
            let retain = retain.or(ctx.settings.schedule.retain).ok_or_else(|| {
                ops::HintedError::new(
                    "walg schedule needs the number of full backups to keep",
                    "give --retain N or set WALG_BACKUP_RETAIN",
                )
            })?;
            let options = ops::schedule::ScheduleOptions {
                backup: ops::backup_push::BackupPushOptions {
                    pgdata: db_directory.or_else(|| ctx.settings.pg.data.clone()),
                    connect: connect_settings(&ctx.settings.pg),
                    permanent: false,
                    user_data: None,
                },
                retain,
            };
            let metrics = Arc::new(ops::metrics::Metrics::default());
            if once {
                let ok = ops::schedule::cycle(
                    &ctx,
                    &options,
                    &metrics,
                    Arc::from(progress::for_stderr()),
                )
                .await;
                return Ok(if ok { exit::SUCCESS } else { exit::FAILURE });
            }
            let expression = cron
                .or_else(|| ctx.settings.schedule.cron.clone())
                .ok_or_else(|| {
                    ops::HintedError::new(
                        "walg schedule needs a schedule",
                        "give --cron EXPR or set WALG_BACKUP_SCHEDULE, e.g. \"0 0 * * *\"",
                    )
                })?;
            let zone = crate::schedule::timezone_from_tz(ctx.settings.schedule.tz.as_deref())?;
            let schedule = crate::schedule::Schedule::parse(&expression, zone)?;
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let mut server = None;
            if let Some(addr) = metrics_addr.or_else(|| ctx.settings.schedule.metrics_addr.clone())
            {
                let listener = tokio::net::TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("listening on '{addr}' for metrics"))?;
                tracing::info!("serving /metrics and /healthz on {addr}");
                server = Some(tokio::spawn(http::serve(
                    listener,
                    Arc::clone(&metrics),
                    stopped.clone(),
                )));
            }
            let signals = tokio::spawn(wait_for_signal(stop));
            let report = ops::schedule::run(
                &ctx,
                schedule,
                &options,
                &metrics,
                Arc::from(progress::for_stderr()),
                stopped,
            )
            .await?;
            signals.abort();
            if let Some(server) = server {
                server.abort();
            }
            tracing::info!(
                "schedule stopped after {} cycles ({} failed)",
                report.cycles,
                report.failures
            );
            Ok(exit::SUCCESS)
        }
        Command::Delete {
            mode,
            confirm,
            use_sentinel_time,
            json,
        } => {
            let rule = mode.rule()?;
            let options = crate::retention::Options { use_sentinel_time };
            let report =
                ops::delete::run(&ctx, &rule, options, confirm, jiff::Timestamp::now()).await?;
            if json {
                render::json_line(&report)?;
            }
            Ok(exit::SUCCESS)
        }
        Command::BackupMark {
            backup_name,
            impermanent,
        } => {
            ops::backup_mark::run(&ctx, &backup_name, !impermanent).await?;
            Ok(exit::SUCCESS)
        }
        Command::BackupList {
            pretty,
            json,
            detail,
        } => {
            let format = render::ListFormat {
                json,
                pretty,
                detail,
            };
            render::backup_list(&ctx, format).await?;
            Ok(exit::SUCCESS)
        }
        Command::WalPrefetch {
            wal_name,
            prefetch_location,
        } => {
            let report = ops::wal_prefetch::run(&ctx, &wal_name, &prefetch_location).await?;
            tracing::debug!("prefetched {} segments after '{wal_name}'", report.fetched);
            Ok(exit::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        command().debug_assert();
    }

    #[test]
    fn hidden_setting_flags_are_read() {
        let matches = command()
            .try_get_matches_from([
                "walg",
                "--walg-s3-prefix",
                "s3://b/p",
                "wal-push",
                "--wale-file-prefix",
                "/x",
                "f",
            ])
            .unwrap();
        let flags = setting_flags(&matches);
        assert_eq!(
            flags.get("WALG_S3_PREFIX").map(String::as_str),
            Some("s3://b/p")
        );
        assert_eq!(
            flags.get("WALE_FILE_PREFIX").map(String::as_str),
            Some("/x")
        );
    }
}
