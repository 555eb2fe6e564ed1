//! Progress display: an indicatif bar with bytes, rate and ETA when standard error is a
//! terminal; otherwise an INFO line every [`LOG_EVERY`].

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ops::progress::Progress;

/// How often the plain display logs a line.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// The display for this process's standard error.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar::default())
    } else {
        Box::new(Lines::default())
    }
}

/// A progress bar.
#[derive(Debug, Default)]
pub struct Bar {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for Bar {
    fn begin(&self, what: &str, total: Option<u64>) {
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        };
        let template = if total.is_some() {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
        } else {
            "{msg} {bytes} {bytes_per_sec} {elapsed}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn add(&self, bytes: u64) {
        if let Ok(slot) = self.bar.lock()
            && let Some(bar) = slot.as_ref()
        {
            bar.inc(bytes);
        }
    }

    fn end(&self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }
}

/// Plain log lines, for logs and pipes.
#[derive(Debug, Default)]
pub struct Lines {
    state: Mutex<Option<LineState>>,
    done: AtomicU64,
}

#[derive(Debug)]
struct LineState {
    what: String,
    total: Option<u64>,
    started: Instant,
    last_line: Instant,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Lines {
    fn line(state: &LineState, done: u64) -> String {
        let secs = state.started.elapsed().as_secs_f64().max(0.001);
        let rate = mib(done) / secs;
        match state.total {
            Some(total) if total > 0 => {
                // Tar headers come on top of the content the total counts.
                let done = done.min(total);
                let left = total.saturating_sub(done);
                let eta = if rate > 0.0 { mib(left) / rate } else { 0.0 };
                format!(
                    "{}: {:.1} of {:.1} MiB ({:.0}%), {:.1} MiB/s, ETA {:.0}s",
                    state.what,
                    mib(done),
                    mib(total),
                    done as f64 * 100.0 / total as f64,
                    rate,
                    eta
                )
            }
            _ => format!("{}: {:.1} MiB, {:.1} MiB/s", state.what, mib(done), rate),
        }
    }
}

impl Progress for Lines {
    fn begin(&self, what: &str, total: Option<u64>) {
        self.done.store(0, Ordering::Relaxed);
        let now = Instant::now();
        if let Ok(mut slot) = self.state.lock() {
            *slot = Some(LineState {
                what: what.to_string(),
                total,
                started: now,
                last_line: now,
            });
        }
    }

    fn add(&self, bytes: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Ok(mut slot) = self.state.lock()
            && let Some(state) = slot.as_mut()
            && state.last_line.elapsed() >= LOG_EVERY
        {
            state.last_line = Instant::now();
            tracing::info!("{}", Self::line(state, done));
        }
    }

    fn end(&self) {
        if let Ok(mut slot) = self.state.lock()
            && let Some(state) = slot.take()
        {
            tracing::info!(
                "{} (done in {:.1}s)",
                Self::line(&state, self.done.load(Ordering::Relaxed)),
                state.started.elapsed().as_secs_f64()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_show_amount_rate_and_eta() {
        let state = LineState {
            what: "backup-push".into(),
            total: Some(200 * 1024 * 1024),
            started: Instant::now() - Duration::from_secs(10),
            last_line: Instant::now(),
        };
        let line = Lines::line(&state, 100 * 1024 * 1024);
        assert!(
            line.starts_with("backup-push: 100.0 of 200.0 MiB (50%), 10.0 MiB/s, ETA 10s"),
            "{line}"
        );
    }
}
