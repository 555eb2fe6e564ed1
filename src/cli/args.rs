//! The command-line arguments: the clap structures of every command, and the words of
//! `delete` turned into a retention rule.
//!
//! The doc comments of the clap structures are the commands' `--help` text, written for the
//! terminal: `[FIND_FULL]` there is an optional word, not a link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use super::exit;
use crate::retention::{Anchor, GarbageScope, Modifier, Rule, TargetSelector};

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
pub(crate) struct Cli {
    /// JSON config file (default: $WALG_CONFIG_PATH, else $HOME/.walg.json)
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Accepted for WAL-G compatibility; has no effect
    #[arg(long, global = true, hide = true)]
    pub(crate) turbo: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::enum_variant_names)] // the command names are WAL-G's
pub(crate) enum Command {
    /// Archive one WAL file: archive_command = 'walg wal-push %p'
    ///
    /// Exits 0 only once the file is durably stored. A `.history` file that is already stored
    /// with different content is never overwritten (nor any file with
    /// WALG_PREVENT_WAL_OVERWRITE=true).
    WalPush(WalPushArgs),
    /// Restore one WAL file: restore_command = 'walg wal-fetch %f %p'
    ///
    /// Exit codes: 0 restored; 74 not in storage; 200 the archive could not be read (storage
    /// unreachable after retries, a corrupt object, a bad setting), which makes PostgreSQL
    /// stop recovery instead of ending it early.
    WalFetch(WalFetchArgs),
    /// Take a full base backup of a running cluster: backup-push $PGDATA
    ///
    /// Connects with the usual PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE (unix sockets
    /// included), checks that WAL archiving works, and writes the backup in WAL-G's layout. The
    /// backup exists once its sentinel is written, last, after its WAL is archived.
    BackupPush(BackupPushArgs),
    /// Restore a base backup into an empty directory: backup-fetch DIR LATEST
    ///
    /// With --write-recovery-conf, also writes recovery.signal and a restore_command that runs
    /// this walg with the same settings, and the optional recovery target, so that starting
    /// PostgreSQL is the only step left.
    BackupFetch(BackupFetchArgs),
    /// Make a backup permanent (retention never deletes it), or impermanent with -i
    ///
    /// Marking a delta backup permanent marks the backups it depends on too.
    BackupMark(BackupMarkArgs),
    /// Delete old backups and WAL: a dry run that lists what would go, unless --confirm
    ///
    /// retain [FULL|FIND_FULL] N [--after NAME|TIME], before [FIND_FULL] NAME|TIME,
    /// everything [FORCE], target [FIND_FULL] NAME | --target-user-data JSON,
    /// garbage [ARCHIVES|BACKUPS]. Never deletes WAL a kept or permanent backup needs; refuses
    /// to run while a backup-push writes to the same storage.
    Delete(DeleteArgs),
    /// Run backups on a schedule, as a sidecar: backup-push, then delete retain FULL N
    ///
    /// Each cycle runs backup-push and, only if it succeeded, `delete retain FULL N --confirm`.
    /// Cycles never overlap; a late cycle runs once. SIGTERM or SIGINT stops it (a backup in
    /// flight is abandoned: the server aborts it and no sentinel is written) with exit 0.
    Schedule(ScheduleArgs),
    /// List the backups in storage, oldest first
    ///
    /// A backup is listed once its stop sentinel exists, ordered by the sentinel's
    /// modification time (by start time with --detail). Output is the same as WAL-G's.
    BackupList(BackupListArgs),
    /// Download the segments after WAL_NAME into .wal-g/prefetch (started by wal-fetch)
    #[command(hide = true)]
    WalPrefetch(WalPrefetchArgs),
}

/// The arguments of `wal-push`.
#[derive(Debug, Args)]
pub(crate) struct WalPushArgs {
    /// Path of the WAL file, as PostgreSQL passes it (%p)
    pub(crate) wal_filepath: PathBuf,
}

/// The arguments of `wal-fetch`.
#[derive(Debug, Args)]
pub(crate) struct WalFetchArgs {
    /// Name of the WAL file (%f)
    pub(crate) wal_name: String,
    /// Where to write it (%p)
    pub(crate) destination_filename: PathBuf,
}

/// The arguments of `backup-push`.
#[derive(Debug, Args)]
pub(crate) struct BackupPushArgs {
    /// The data directory (default: the server's)
    pub(crate) db_directory: Option<PathBuf>,
    /// Mark the backup permanent: retention never deletes it
    #[arg(short = 'p', long)]
    pub(crate) permanent: bool,
    /// Take a full backup (walg always does)
    #[arg(short = 'f', long)]
    pub(crate) full: bool,
    /// JSON stored with the backup (default: WALG_SENTINEL_USER_DATA)
    #[arg(long, value_name = "JSON")]
    pub(crate) add_user_data: Option<String>,
}

/// The arguments of `backup-fetch`.
#[derive(Debug, Args)]
pub(crate) struct BackupFetchArgs {
    /// Where to restore (created if missing; must be empty)
    pub(crate) destination_directory: PathBuf,
    /// A backup name from backup-list, or LATEST
    pub(crate) backup_name: String,
    /// Tablespace locations for the restore (WAL-G's restore spec JSON)
    #[arg(long, value_name = "FILE")]
    pub(crate) restore_spec: Option<PathBuf>,
    /// Write recovery.signal and restore_command = 'walg wal-fetch %f %p'
    #[arg(short = 'R', long)]
    pub(crate) write_recovery_conf: bool,
    /// Stop recovery at this time (recovery_target_time), e.g. '2026-11-24 10:00:00+00'
    #[arg(long, value_name = "TIME", requires = "write_recovery_conf")]
    pub(crate) target_time: Option<String>,
    /// Stop recovery at this LSN (recovery_target_lsn), e.g. 0/3000060
    #[arg(long, value_name = "LSN", requires = "write_recovery_conf")]
    pub(crate) target_lsn: Option<String>,
    /// Stop recovery at this restore point (recovery_target_name)
    #[arg(long, value_name = "NAME", requires = "write_recovery_conf")]
    pub(crate) target_name: Option<String>,
    /// What to do at the target: pause, promote or shutdown (recovery_target_action)
    #[arg(long, value_name = "ACTION", requires = "write_recovery_conf")]
    pub(crate) target_action: Option<String>,
    /// Timeline to recover along: latest, current or a number (recovery_target_timeline)
    #[arg(long, value_name = "TIMELINE", requires = "write_recovery_conf")]
    pub(crate) target_timeline: Option<String>,
}

/// The arguments of `backup-mark`.
#[derive(Debug, Args)]
pub(crate) struct BackupMarkArgs {
    /// The backup, as backup-list shows it
    pub(crate) backup_name: String,
    /// Make the backup impermanent instead
    #[arg(short = 'i', long)]
    pub(crate) impermanent: bool,
}

/// The arguments of `delete`.
#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    #[command(subcommand)]
    pub(crate) mode: DeleteMode,
    /// Delete for real (without it: a dry run)
    #[arg(long, global = true)]
    pub(crate) confirm: bool,
    /// Order backups by their start time in metadata.json
    #[arg(long, global = true)]
    pub(crate) use_sentinel_time: bool,
    /// Print the plan as JSON on standard output
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// The arguments of `schedule`.
#[derive(Debug, Args)]
pub(crate) struct ScheduleArgs {
    /// The data directory (default: the server's)
    pub(crate) db_directory: Option<PathBuf>,
    /// Cron expression, e.g. "0 0 * * *" or @daily (default: WALG_BACKUP_SCHEDULE); UTC
    /// unless TZ is set
    #[arg(long, value_name = "EXPR")]
    pub(crate) cron: Option<String>,
    /// Full backups to keep (default: WALG_BACKUP_RETAIN)
    #[arg(long, value_name = "N")]
    pub(crate) retain: Option<u32>,
    /// Serve /metrics and /healthz here, e.g. 0.0.0.0:9351 (default: WALG_METRICS_ADDR)
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) metrics_addr: Option<String>,
    /// Run one cycle now and exit with its result
    #[arg(long)]
    pub(crate) once: bool,
}

/// The arguments of `backup-list`.
#[derive(Debug, Args)]
pub(crate) struct BackupListArgs {
    /// A table with borders and numbered rows; with --json, indented JSON
    #[arg(long)]
    pub(crate) pretty: bool,
    /// JSON output
    #[arg(long)]
    pub(crate) json: bool,
    /// Add each backup's metadata: start and finish time, host, data directory, PostgreSQL
    /// version, LSNs, permanence
    #[arg(long)]
    pub(crate) detail: bool,
}

/// The arguments of `wal-prefetch`.
#[derive(Debug, Args)]
pub(crate) struct WalPrefetchArgs {
    pub(crate) wal_name: String,
    pub(crate) prefetch_location: PathBuf,
}

/// The modes of `delete`, with WAL-G's positional words.
#[derive(Debug, Subcommand)]
pub(crate) enum DeleteMode {
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
    pub(crate) fn rule(self) -> anyhow::Result<Rule> {
        match self {
            DeleteMode::Retain { words, after } => retain_rule(&words, after.as_deref()),
            DeleteMode::Before { words } => before_rule(&words),
            DeleteMode::Everything { force } => everything_rule(force.as_deref()),
            DeleteMode::Target {
                words,
                target_user_data,
            } => target_rule(&words, target_user_data.as_deref()),
            DeleteMode::Garbage {
                scope,
                without_backup_check,
            } => garbage_rule(scope.as_deref(), without_backup_check),
        }
    }
}

/// `retain [FULL|FIND_FULL] N [--after NAME|TIME]`.
fn retain_rule(words: &[String], after: Option<&str>) -> anyhow::Result<Rule> {
    let modifier = |word: &str| match word {
        "FULL" => Ok(Modifier::Full),
        "FIND_FULL" => Ok(Modifier::FindFull),
        other => Err(anyhow::anyhow!("expected FULL or FIND_FULL, not '{other}'")),
    };
    let (modifier, count) = match words {
        [count] => (Modifier::None, count),
        [word, count] => (modifier(word)?, count),
        _ => anyhow::bail!("delete retain takes [FULL|FIND_FULL] N"),
    };
    let count = count
        .parse()
        .map_err(|_| anyhow::anyhow!("delete retain: '{count}' is not a number of backups"))?;
    Ok(Rule::Retain {
        modifier,
        count,
        after: after.map(Anchor::parse),
    })
}

/// `before [FIND_FULL] NAME|TIME`.
fn before_rule(words: &[String]) -> anyhow::Result<Rule> {
    match words {
        [anchor] => Ok(Rule::Before {
            find_full: false,
            anchor: Anchor::parse(anchor),
        }),
        [word, anchor] if word == "FIND_FULL" => Ok(Rule::Before {
            find_full: true,
            anchor: Anchor::parse(anchor),
        }),
        _ => anyhow::bail!("delete before takes [FIND_FULL] NAME|TIME (FULL is not allowed)"),
    }
}

/// `everything [FORCE]`.
fn everything_rule(force: Option<&str>) -> anyhow::Result<Rule> {
    match force {
        None => Ok(Rule::Everything { force: false }),
        Some("FORCE") => Ok(Rule::Everything { force: true }),
        Some(other) => anyhow::bail!("delete everything takes FORCE, not '{other}'"),
    }
}

/// `target [FIND_FULL] NAME` or `target --target-user-data JSON`.
fn target_rule(words: &[String], user_data: Option<&str>) -> anyhow::Result<Rule> {
    let (find_full, name) = match words {
        [] => (false, None),
        [name] => (false, Some(name.clone())),
        [word, name] if word == "FIND_FULL" => (true, Some(name.clone())),
        _ => anyhow::bail!("delete target takes [FIND_FULL] NAME"),
    };
    let selector = match (name, user_data) {
        (Some(name), None) => TargetSelector::Name(name),
        (None, Some(json)) => TargetSelector::UserData(
            serde_json::from_str(json).context("--target-user-data is not valid JSON")?,
        ),
        _ => anyhow::bail!("delete target takes a backup name or --target-user-data, one of them"),
    };
    Ok(Rule::Target {
        find_full,
        selector,
    })
}

/// `garbage [ARCHIVES|BACKUPS] [--without-backup-check]`.
fn garbage_rule(scope: Option<&str>, without_backup_check: bool) -> anyhow::Result<Rule> {
    let scope = match scope {
        None => GarbageScope::All,
        Some("ARCHIVES") => GarbageScope::Archives,
        Some("BACKUPS") => GarbageScope::Backups,
        Some(other) => anyhow::bail!("delete garbage takes ARCHIVES or BACKUPS, not '{other}'"),
    };
    Ok(Rule::Garbage {
        scope,
        without_backup_check,
    })
}

impl Command {
    /// The exit code for a failure of this command.
    pub(crate) fn failure_code(&self) -> u8 {
        match self {
            Command::WalFetch(_) => exit::ARCHIVE_UNAVAILABLE,
            _ => exit::FAILURE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(words: &[&str]) -> anyhow::Result<Rule> {
        let args = ["walg", "delete"].iter().chain(words);
        let cli = Cli::try_parse_from(args).unwrap();
        let Command::Delete(delete) = cli.command else {
            panic!("not delete");
        };
        delete.mode.rule()
    }

    #[test]
    fn every_delete_mode_becomes_its_rule() {
        let name = |n: &str| Anchor::Name(n.to_string());
        let cases = [
            (
                vec!["retain", "FIND_FULL", "3", "--after", "base_1"],
                Rule::Retain {
                    modifier: Modifier::FindFull,
                    count: 3,
                    after: Some(name("base_1")),
                },
            ),
            (
                vec!["retain", "2"],
                Rule::Retain {
                    modifier: Modifier::None,
                    count: 2,
                    after: None,
                },
            ),
            (
                vec!["before", "FIND_FULL", "base_2"],
                Rule::Before {
                    find_full: true,
                    anchor: name("base_2"),
                },
            ),
            (
                vec!["everything", "FORCE"],
                Rule::Everything { force: true },
            ),
            (
                vec!["target", "--target-user-data", r#"{"a":1}"#],
                Rule::Target {
                    find_full: false,
                    selector: TargetSelector::UserData(serde_json::json!({"a": 1})),
                },
            ),
            (
                vec!["garbage", "ARCHIVES", "--without-backup-check"],
                Rule::Garbage {
                    scope: GarbageScope::Archives,
                    without_backup_check: true,
                },
            ),
        ];
        for (words, expected) in cases {
            assert_eq!(rule(&words).unwrap(), expected, "{words:?}");
        }
    }

    #[test]
    fn wrong_delete_words_are_refused_naming_what_the_mode_takes() {
        let cases = [
            (
                vec!["retain", "FULLY", "3"],
                "expected FULL or FIND_FULL, not 'FULLY'",
            ),
            (
                vec!["retain", "x"],
                "delete retain: 'x' is not a number of backups",
            ),
            (
                vec!["before", "FULL", "base_1"],
                "delete before takes [FIND_FULL] NAME|TIME (FULL is not allowed)",
            ),
            (
                vec!["everything", "ALL"],
                "delete everything takes FORCE, not 'ALL'",
            ),
            (
                vec!["target", "FULL", "base_1"],
                "delete target takes [FIND_FULL] NAME",
            ),
            (
                vec!["target"],
                "delete target takes a backup name or --target-user-data, one of them",
            ),
            (
                vec!["target", "--target-user-data", "{"],
                "--target-user-data is not valid JSON",
            ),
            (
                vec!["garbage", "WAL"],
                "delete garbage takes ARCHIVES or BACKUPS, not 'WAL'",
            ),
        ];
        for (words, expected) in cases {
            let err = rule(&words).unwrap_err();
            assert_eq!(err.to_string(), expected, "{words:?}");
        }
    }
}
