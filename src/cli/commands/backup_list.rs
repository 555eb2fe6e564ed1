//! `backup-list [--json] [--pretty] [--detail]`.

use jiff::tz::TimeZone;

use crate::cli::args::BackupListArgs;
use crate::cli::render::{self, ListFormat, TimeZones};
use crate::cli::{exit, stdout};
use crate::ops::{self, Context};

pub(crate) async fn run(ctx: &Context, args: BackupListArgs) -> anyhow::Result<u8> {
    let format = ListFormat {
        json: args.json,
        pretty: args.pretty,
        detail: args.detail,
    };
    tracing::info!("List backups from storages: [{}]", render::STORAGE_NAME);
    let listing = ops::backup_list::run(ctx.storage.as_ref(), format.detail).await?;
    if listing.is_empty() && !format.json {
        tracing::info!("No backups found");
    }
    let zones = TimeZones::for_storage(ctx.settings.storage.as_ref(), TimeZone::system());
    let mut out = Vec::new();
    render::backup_list(&mut out, &listing, format, &zones)?;
    stdout::write_unless_closed(&out)?;
    Ok(exit::SUCCESS)
}
