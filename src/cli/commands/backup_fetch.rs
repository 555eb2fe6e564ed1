//! `backup-fetch DESTINATION NAME [--restore-spec FILE] [--write-recovery-conf [--target-*]]`.

use std::sync::Arc;

use crate::cli::args::BackupFetchArgs;
use crate::cli::{exit, progress};
use crate::config::registry::{self, Kind};
use crate::config::{self, RawConfig};
use crate::ops::backup_fetch::BackupFetchOptions;
use crate::ops::recovery_conf::{self, RecoveryTarget};
use crate::ops::{self, Context};

pub(crate) async fn run(
    ctx: &Context,
    args: BackupFetchArgs,
    raw: &RawConfig,
) -> anyhow::Result<u8> {
    let BackupFetchArgs {
        destination_directory,
        backup_name,
        restore_spec,
        write_recovery_conf,
        target_time,
        target_lsn,
        target_name,
        target_action,
        target_timeline,
    } = args;
    let recovery = write_recovery_conf.then(|| {
        let command = recovery_conf::restore_command(&ctx.exe, &restore_args(raw));
        let target = RecoveryTarget {
            time: target_time,
            lsn: target_lsn,
            name: target_name,
            action: target_action,
            timeline: target_timeline,
        };
        (command, target)
    });
    let options = BackupFetchOptions {
        destination: destination_directory,
        name: backup_name,
        restore_spec,
        recovery,
    };
    ops::backup_fetch::run(ctx, options, Arc::from(progress::for_stderr())).await?;
    Ok(exit::SUCCESS)
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
