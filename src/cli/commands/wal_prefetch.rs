//! `wal-prefetch WAL_NAME LOCATION`, the hidden command wal-fetch starts.

use crate::cli::args::WalPrefetchArgs;
use crate::cli::exit;
use crate::ops::{self, Context};

pub(crate) async fn run(ctx: &Context, args: WalPrefetchArgs) -> anyhow::Result<u8> {
    let WalPrefetchArgs {
        wal_name,
        prefetch_location,
    } = args;
    let report = ops::wal_prefetch::run(ctx, &wal_name, &prefetch_location).await?;
    tracing::debug!("prefetched {} segments after '{wal_name}'", report.fetched);
    Ok(exit::SUCCESS)
}
