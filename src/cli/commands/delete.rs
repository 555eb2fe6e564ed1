//! `delete MODE ... [--confirm] [--use-sentinel-time] [--json]`.

use crate::cli::args::DeleteArgs;
use crate::cli::{exit, render, stdout};
use crate::ops::{self, Context};
use crate::retention;

pub(crate) async fn run(ctx: &Context, args: DeleteArgs) -> anyhow::Result<u8> {
    let rule = args.mode.rule()?;
    let options = retention::Options {
        use_sentinel_time: args.use_sentinel_time,
    };
    let report =
        ops::delete::run(ctx, &rule, options, args.confirm, jiff::Timestamp::now()).await?;
    if args.json {
        stdout::write(render::json_line(&report)?.as_bytes())?;
    }
    Ok(exit::SUCCESS)
}
