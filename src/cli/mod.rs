//! The command line: arguments, settings resolution, logging, a dispatch to one function per
//! command (`commands`, which call `ops` and render what it returns), and exit codes. The only
//! layer that talks to the user.

// The one layer that reads the environment, writes to the terminal and ends the process
// (clippy.toml forbids these functions everywhere else).
#![allow(clippy::disallowed_methods)]

mod args;
mod commands;
pub mod exit;
pub mod http;
pub mod logging;
pub mod progress;
pub mod render;
mod stdout;

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

/// The storage and settings every command gets.
async fn context(settings: Settings, flags: &BTreeMap<String, String>) -> anyhow::Result<Context> {
    let storage_settings = settings.storage.clone().ok_or_else(|| {
        ops::HintedError::new(
            "no storage is configured",
            "set WALG_S3_PREFIX (s3://bucket/path) or WALG_FILE_PREFIX (a local folder)",
        )
    })?;
    let storage = storage::from_settings(&storage_settings).await?;
    Ok(Context {
        storage,
        exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("walg")),
        child_args: child_args(&settings, flags),
        settings: Arc::new(settings),
    })
}

/// Runs the command's function (`commands::*`).
async fn dispatch(
    command: Command,
    settings: Settings,
    flags: &BTreeMap<String, String>,
    raw: &RawConfig,
) -> anyhow::Result<u8> {
    let ctx = context(settings, flags).await?;
    match command {
        Command::WalPush(args) => commands::wal_push::run(&ctx, args).await,
        Command::WalFetch(args) => commands::wal_fetch::run(&ctx, args).await,
        Command::BackupPush(args) => commands::backup_push::run(&ctx, args).await,
        Command::BackupFetch(args) => commands::backup_fetch::run(&ctx, args, raw).await,
        Command::Schedule(args) => commands::schedule::run(&ctx, args).await,
        Command::Delete(args) => commands::delete::run(&ctx, args).await,
        Command::BackupMark(args) => commands::backup_mark::run(&ctx, args).await,
        Command::BackupList(args) => commands::backup_list::run(&ctx, args).await,
        Command::WalPrefetch(args) => commands::wal_prefetch::run(&ctx, args).await,
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
