//! `backup-mark NAME [--impermanent]`.

use crate::cli::args::BackupMarkArgs;
use crate::cli::exit;
use crate::ops::{self, Context};

pub(crate) async fn run(ctx: &Context, args: BackupMarkArgs) -> anyhow::Result<u8> {
    ops::backup_mark::run(ctx, &args.backup_name, !args.impermanent).await?;
    Ok(exit::SUCCESS)
}
