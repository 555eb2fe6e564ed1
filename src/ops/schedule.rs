//! `walg schedule`: backups on a cron schedule, as a long-running sidecar.
//!
//! Each cycle: `backup-push`, then, only if it succeeded, `delete retain FULL N --confirm`.
//! Cycles never overlap (one runs at a time); a cycle that is late runs once (see
//! [`crate::schedule::Ticker`]). After each cycle the number of backups and the archiver's
//! state are refreshed for the metrics. A shutdown request stops the wait at once and abandons
//! a cycle in flight: dropping it closes the backup's PostgreSQL session, which aborts the
//! backup on the server, and no sentinel is written.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::metrics::{ArchiveHealth, Metrics, RunResult};
use super::progress::Progress;
use super::{Context, backup_list, backup_push, delete};
use crate::pg::PgConn;
use crate::retention::{Modifier, Options, Rule};
use crate::schedule::{Schedule, Ticker};

/// What to run.
#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    pub backup: backup_push::BackupPushOptions,
    /// `delete retain FULL N` after each successful backup.
    pub retain: u32,
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleReport {
    pub cycles: u64,
    pub failures: u64,
}

/// Runs cycles on `schedule` until `shutdown` turns true.
pub async fn run(
    ctx: &Context,
    schedule: Schedule,
    opts: &ScheduleOptions,
    metrics: &Arc<Metrics>,
    progress: Arc<dyn Progress>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<ScheduleReport> {
    let now = jiff::Timestamp::now();
    let period = schedule.period_estimate(now);
    metrics.started(now, period);
    let mut ticker = Ticker::new(schedule, now);
    refresh(ctx, opts, metrics).await;
    if let Some(next) = ticker.next() {
        tracing::info!(
            "schedule '{}': next backup at {next}",
            ticker.schedule().expression()
        );
    }
    let mut report = ScheduleReport {
        cycles: 0,
        failures: 0,
    };
    loop {
        // step: wait for the next tick, or a shutdown.
        let due = loop {
            if *shutdown.borrow() {
                return Ok(report);
            }
            let now = jiff::Timestamp::now();
            if let Some(due) = ticker.due(now) {
                break due;
            }
            tokio::select! {
                () = tokio::time::sleep(ticker.sleep_for(now)) => {}
                _ = shutdown.changed() => {}
            }
        };
        if due.skipped > 0 {
            tracing::warn!(
                "backup cycle of {} is late; {} missed runs are not made up",
                due.scheduled,
                due.skipped
            );
        }
        // step: one cycle, abandoned on shutdown.
        tokio::select! {
            ok = cycle(ctx, opts, metrics, Arc::clone(&progress)) => {
                report.cycles += 1;
                if !ok {
                    report.failures += 1;
                }
            }
            _ = shutdown.changed() => {
                tracing::info!("stopping: the backup cycle in flight is abandoned (the server aborts the backup; no sentinel is written)");
                return Ok(report);
            }
        }
        if let Some(next) = ticker.next() {
            tracing::info!("next backup at {next}");
        }
    }
}

/// One cycle: backup, then retention if the backup succeeded. True when both succeeded.
pub async fn cycle(
    ctx: &Context,
    opts: &ScheduleOptions,
    metrics: &Metrics,
    progress: Arc<dyn Progress>,
) -> bool {
    let started = Instant::now();
    tracing::info!("backup cycle starting");
    let result = match backup_push::run(ctx, opts.backup.clone(), progress).await {
        Ok(backup) => {
            let rule = Rule::Retain {
                modifier: Modifier::Full,
                count: opts.retain,
                after: None,
            };
            match delete::run(ctx, &rule, Options::default(), true, jiff::Timestamp::now()).await {
                Ok(_) => RunResult::Success {
                    size_bytes: backup.uncompressed_size,
                },
                Err(e) => {
                    tracing::error!(
                        "backup '{}' succeeded, but retention failed: {e:#}",
                        backup.name
                    );
                    RunResult::Failure
                }
            }
        }
        Err(e) => {
            tracing::error!("backup failed; nothing was deleted: {e:#}");
            RunResult::Failure
        }
    };
    metrics.record_run(jiff::Timestamp::now(), started.elapsed(), result);
    refresh(ctx, opts, metrics).await;
    let ok = matches!(result, RunResult::Success { .. });
    tracing::info!(
        "backup cycle {} in {:.1}s",
        if ok { "succeeded" } else { "failed" },
        started.elapsed().as_secs_f64()
    );
    ok
}

/// Refreshes the backup count and the archiver's state (best effort, bounded).
async fn refresh(ctx: &Context, opts: &ScheduleOptions, metrics: &Metrics) {
    let deadline = Duration::from_secs(30);
    match tokio::time::timeout(deadline, backup_list::list(ctx.storage.as_ref())).await {
        Ok(Ok(backups)) => metrics.set_backups(backups.len() as u64),
        Ok(Err(e)) => tracing::warn!("could not count the backups: {e}"),
        Err(_) => tracing::warn!("could not count the backups within {deadline:?}"),
    }
    let archiver = async {
        let conn = PgConn::connect(&opts.backup.connect).await?;
        conn.archiver_stats().await
    };
    match tokio::time::timeout(deadline, archiver).await {
        Ok(Ok(stats)) => metrics.set_archive(ArchiveHealth {
            failed_count: stats.failed_count,
            last_archived: stats.last_archived_time,
            last_failed: stats.last_failed_time,
        }),
        Ok(Err(e)) => tracing::warn!("could not read pg_stat_archiver: {e}"),
        Err(_) => tracing::warn!("could not read pg_stat_archiver within {deadline:?}"),
    }
}
