//! What `walg schedule` knows about its backups and the archiver, rendered as Prometheus text
//! for `/metrics`, and the health verdict for `/healthz`. Updated by the schedule loop, read by
//! the HTTP endpoint; `now` is always an argument.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// The state behind `/metrics` and `/healthz`.
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
}

#[derive(Debug, Default, Clone)]
struct State {
    started: Option<jiff::Timestamp>,
    last_success: Option<jiff::Timestamp>,
    last_duration: Option<Duration>,
    last_size_bytes: Option<u64>,
    runs_success: u64,
    runs_failure: u64,
    backups: Option<u64>,
    archive: Option<ArchiveHealth>,
    /// The schedule's period, for the health check.
    period: Option<Duration>,
}

/// The archiver, as `pg_stat_archiver` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveHealth {
    pub failed_count: u64,
    pub last_archived: Option<jiff::Timestamp>,
    pub last_failed: Option<jiff::Timestamp>,
}

impl ArchiveHealth {
    /// Failing: the last failure is newer than the last success.
    pub fn failing(&self) -> bool {
        match (self.last_failed, self.last_archived) {
            (Some(failed), Some(archived)) => failed > archived,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// The outcome of one cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    Success { size_bytes: u64 },
    Failure,
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }

    /// The schedule started at `now` with this period between runs.
    pub fn started(&self, now: jiff::Timestamp, period: Duration) {
        self.with(|s| {
            s.started = Some(now);
            s.period = Some(period);
        });
    }

    /// A cycle ended at `now` after `duration`.
    pub fn record_run(&self, now: jiff::Timestamp, duration: Duration, result: RunResult) {
        self.with(|s| {
            s.last_duration = Some(duration);
            match result {
                RunResult::Success { size_bytes } => {
                    s.runs_success += 1;
                    s.last_success = Some(now);
                    s.last_size_bytes = Some(size_bytes);
                }
                RunResult::Failure => s.runs_failure += 1,
            }
        });
    }

    /// Backups in storage.
    pub fn set_backups(&self, count: u64) {
        self.with(|s| s.backups = Some(count));
    }

    /// The archiver's state.
    pub fn set_archive(&self, archive: ArchiveHealth) {
        self.with(|s| s.archive = Some(archive));
    }

    /// Healthy, or why not: the last successful backup (or the start, before any) is older
    /// than two schedule periods, or archiving is failing.
    pub fn health(&self, now: jiff::Timestamp) -> Result<(), String> {
        let s = self.with(|s| s.clone());
        if let Some(archive) = s.archive
            && archive.failing()
        {
            return Err(format!(
                "wal archiving is failing ({} failures)",
                archive.failed_count
            ));
        }
        if let (Some(period), Some(since)) = (s.period, s.last_success.or(s.started)) {
            let age = now.duration_since(since).unsigned_abs();
            if age > period.saturating_mul(2) {
                return Err(match s.last_success {
                    Some(_) => format!(
                        "the last successful backup is {}s old, more than two schedule periods",
                        age.as_secs()
                    ),
                    None => format!(
                        "no successful backup in {}s, more than two schedule periods",
                        age.as_secs()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Prometheus text exposition.
    pub fn render(&self, now: jiff::Timestamp) -> String {
        let s = self.with(|s| s.clone());
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, value: Option<f64>| {
            if let Some(value) = value {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
                );
            }
        };
        gauge(
            "walg_backup_last_success_timestamp_seconds",
            "Unix time of the last successful backup cycle.",
            s.last_success.map(|t| t.as_second() as f64),
        );
        gauge(
            "walg_backup_last_duration_seconds",
            "Duration of the last backup cycle.",
            s.last_duration.map(|d| d.as_secs_f64()),
        );
        gauge(
            "walg_backup_last_size_bytes",
            "Uncompressed size of the last successful backup.",
            s.last_size_bytes.map(|b| b as f64),
        );
        gauge(
            "walg_backups",
            "Backups in storage.",
            s.backups.map(|b| b as f64),
        );
        gauge(
            "walg_archive_failed_count",
            "pg_stat_archiver.failed_count.",
            s.archive.map(|a| a.failed_count as f64),
        );
        gauge(
            "walg_archive_last_archived_age_seconds",
            "Seconds since pg_stat_archiver.last_archived_time.",
            s.archive
                .and_then(|a| a.last_archived)
                .map(|t| now.duration_since(t).as_secs_f64().max(0.0)),
        );
        gauge(
            "walg_healthy",
            "1 when /healthz reports healthy.",
            Some(if self.health(now).is_ok() { 1.0 } else { 0.0 }),
        );
        let _ = writeln!(
            out,
            "# HELP walg_backup_runs_total Backup cycles by result.\n# TYPE walg_backup_runs_total counter\n\
             walg_backup_runs_total{{result=\"success\"}} {}\nwalg_backup_runs_total{{result=\"failure\"}} {}",
            s.runs_success, s.runs_failure
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn renders_counters_and_gauges() {
        let m = Metrics::default();
        m.started(t(0), Duration::from_secs(60));
        m.record_run(
            t(10),
            Duration::from_secs(3),
            RunResult::Success { size_bytes: 1234 },
        );
        m.record_run(t(70), Duration::from_secs(1), RunResult::Failure);
        m.set_backups(2);
        m.set_archive(ArchiveHealth {
            failed_count: 0,
            last_archived: Some(t(65)),
            last_failed: None,
        });
        let text = m.render(t(75));
        assert!(
            text.contains("walg_backup_runs_total{result=\"success\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("walg_backup_runs_total{result=\"failure\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "walg_backup_last_success_timestamp_seconds {}\n",
                t(10).as_second()
            )),
            "{text}"
        );
        assert!(
            text.contains("walg_backup_last_duration_seconds 1\n"),
            "{text}"
        );
        assert!(
            text.contains("walg_backup_last_size_bytes 1234\n"),
            "{text}"
        );
        assert!(text.contains("walg_backups 2\n"), "{text}");
        assert!(
            text.contains("walg_archive_last_archived_age_seconds 10\n"),
            "{text}"
        );
        assert!(text.contains("walg_healthy 1\n"), "{text}");
    }

    #[test]
    fn health_needs_recent_backups_and_working_archiving() {
        let m = Metrics::default();
        m.started(t(0), Duration::from_secs(60));
        assert!(m.health(t(100)).is_ok(), "two periods have not passed yet");
        assert!(m.health(t(121)).is_err(), "no backup within two periods");
        m.record_run(
            t(121),
            Duration::from_secs(1),
            RunResult::Success { size_bytes: 1 },
        );
        assert!(m.health(t(200)).is_ok());
        assert!(m.health(t(242)).is_err());
        m.record_run(
            t(242),
            Duration::from_secs(1),
            RunResult::Success { size_bytes: 1 },
        );
        m.set_archive(ArchiveHealth {
            failed_count: 3,
            last_archived: Some(t(230)),
            last_failed: Some(t(240)),
        });
        let err = m.health(t(243)).unwrap_err();
        assert!(err.contains("archiving is failing"), "{err}");
        m.set_archive(ArchiveHealth {
            failed_count: 3,
            last_archived: Some(t(250)),
            last_failed: Some(t(240)),
        });
        assert!(m.health(t(251)).is_ok(), "archiving recovered");
    }
}
