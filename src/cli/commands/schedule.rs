//! `schedule [PGDATA] [--cron EXPR] [--retain N] [--metrics-addr HOST:PORT] [--once]`: a cycle
//! now with `--once`, else cycles on the cron schedule, serving metrics, until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::args::ScheduleArgs;
use crate::cli::{exit, http, progress};
use crate::config::ScheduleSettings;
use crate::ops::backup_push::BackupPushOptions;
use crate::ops::metrics::Metrics;
use crate::ops::schedule::ScheduleOptions;
use crate::ops::{self, Context, HintedError};
use crate::schedule::{Schedule, timezone_from_tz};

pub(crate) async fn run(ctx: &Context, args: ScheduleArgs) -> anyhow::Result<u8> {
    let ScheduleArgs {
        db_directory,
        cron,
        retain,
        metrics_addr,
        once,
    } = args;
    let options = cycle_options(ctx, db_directory, retain)?;
    let metrics = Arc::new(Metrics::default());
    if once {
        let ok =
            ops::schedule::cycle(ctx, &options, &metrics, Arc::from(progress::for_stderr())).await;
        return Ok(if ok { exit::SUCCESS } else { exit::FAILURE });
    }
    let schedule = schedule(cron, &ctx.settings.schedule)?;
    let (stop, stopped) = watch::channel(false);
    let addr = metrics_addr.or_else(|| ctx.settings.schedule.metrics_addr.clone());
    let server = serve_metrics(addr, &metrics, &stopped).await?;
    let signals = tokio::spawn(wait_for_signal(stop));
    let report = ops::schedule::run(
        ctx,
        schedule,
        &options,
        &metrics,
        Arc::from(progress::for_stderr()),
        stopped,
    )
    .await?;
    signals.abort();
    if let Some(server) = server {
        server.abort();
    }
    tracing::info!(
        "schedule stopped after {} cycles ({} failed)",
        report.cycles,
        report.failures
    );
    Ok(exit::SUCCESS)
}

/// What each cycle does: a backup-push of the data directory, then `delete retain FULL N`.
fn cycle_options(
    ctx: &Context,
    db_directory: Option<PathBuf>,
    retain: Option<u32>,
) -> anyhow::Result<ScheduleOptions> {
    let retain = retain.or(ctx.settings.schedule.retain).ok_or_else(|| {
        HintedError::new(
            "walg schedule needs the number of full backups to keep",
            "give --retain N or set WALG_BACKUP_RETAIN",
        )
    })?;
    Ok(ScheduleOptions {
        backup: BackupPushOptions {
            pgdata: db_directory.or_else(|| ctx.settings.pg.data.clone()),
            connect: ctx.settings.pg.connect.clone(),
            permanent: false,
            user_data: None,
        },
        retain,
    })
}

/// The cron schedule from `--cron` or `WALG_BACKUP_SCHEDULE`, in the zone of `TZ`.
fn schedule(cron: Option<String>, settings: &ScheduleSettings) -> anyhow::Result<Schedule> {
    let expression = cron.or_else(|| settings.cron.clone()).ok_or_else(|| {
        HintedError::new(
            "walg schedule needs a schedule",
            "give --cron EXPR or set WALG_BACKUP_SCHEDULE, e.g. \"0 0 * * *\"",
        )
    })?;
    let zone = timezone_from_tz(settings.tz.as_deref())?;
    Ok(Schedule::parse(&expression, zone)?)
}

/// Starts serving `/metrics` and `/healthz` on `addr`, when one is given.
async fn serve_metrics(
    addr: Option<String>,
    metrics: &Arc<Metrics>,
    stopped: &watch::Receiver<bool>,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("listening on '{addr}' for metrics"))?;
    tracing::info!("serving /metrics and /healthz on {addr}");
    Ok(Some(tokio::spawn(http::serve(
        listener,
        Arc::clone(metrics),
        stopped.clone(),
    ))))
}

/// Turns the first SIGTERM or SIGINT into a shutdown request.
async fn wait_for_signal(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot watch SIGTERM/SIGINT");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
    let _ = stop.send(true);
}
