//! `wal-push WAL_FILEPATH`.

use crate::cli::args::WalPushArgs;
use crate::cli::exit;
use crate::ops::{self, Context};

pub(crate) async fn run(ctx: &Context, args: WalPushArgs) -> anyhow::Result<u8> {
    ops::wal_push::run(ctx, &args.wal_filepath).await?;
    Ok(exit::SUCCESS)
}
