//! `wal-fetch WAL_NAME DESTINATION`: 0 when written, 74 when the segment is not in storage.

use crate::cli::args::WalFetchArgs;
use crate::cli::exit;
use crate::ops::wal_fetch::Fetched;
use crate::ops::{self, Context};

pub(crate) async fn run(ctx: &Context, args: WalFetchArgs) -> anyhow::Result<u8> {
    let WalFetchArgs {
        wal_name,
        destination_filename,
    } = args;
    match ops::wal_fetch::run(ctx, &wal_name, &destination_filename).await? {
        Fetched::Written { from, .. } => {
            tracing::debug!("'{wal_name}' restored from '{from}'");
            Ok(exit::SUCCESS)
        }
        Fetched::Missing => {
            tracing::info!("wal file '{wal_name}' is not in storage");
            Ok(exit::WAL_NOT_FOUND)
        }
    }
}
