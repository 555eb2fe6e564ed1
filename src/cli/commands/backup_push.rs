//! `backup-push [PGDATA] [--permanent] [--add-user-data JSON]`.

use std::sync::Arc;

use anyhow::Context as _;

use crate::cli::args::BackupPushArgs;
use crate::cli::{exit, progress};
use crate::ops::backup_push::BackupPushOptions;
use crate::ops::{self, Context};

pub(crate) async fn run(ctx: &Context, args: BackupPushArgs) -> anyhow::Result<u8> {
    let BackupPushArgs {
        db_directory,
        permanent,
        full: _,
        add_user_data,
    } = args;
    let user_data = add_user_data
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .context("--add-user-data is not valid JSON")?;
    let options = BackupPushOptions {
        pgdata: db_directory.or_else(|| ctx.settings.pg.data.clone()),
        connect: ctx.settings.pg.connect.clone(),
        permanent,
        user_data,
    };
    let report = ops::backup_push::run(ctx, options, Arc::from(progress::for_stderr())).await?;
    tracing::debug!("backup '{}': {} parts", report.name, report.parts);
    Ok(exit::SUCCESS)
}
