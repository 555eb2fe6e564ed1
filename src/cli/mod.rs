//! The command line: arguments, settings resolution, logging, dispatch to `ops`, and exit
//! codes. The only layer that talks to the user.

// The one layer that reads the environment, writes to the terminal and ends the process
// (clippy.toml forbids these functions everywhere else).
#![allow(clippy::disallowed_methods)]

mod args;
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
use clap::{Arg, ArgMatches, CommandFactory, FromArgMatches};

use args::{Cli, Command};

use crate::config::registry::{self, Kind};
use crate::config::{self, RawConfig, Settings};
use crate::ops::{self, Context};
use crate::storage;

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
