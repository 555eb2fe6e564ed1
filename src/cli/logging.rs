//! Log lines in WAL-G's format on standard error (or `WALG_LOG_DESTINATION`):
//! `INFO: 2006/01/02 15:04:05.000000 message`, with `WARNING:`, `ERROR:` and `DEBUG:`.

use std::fmt;
use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogLevel, LogSettings};

/// The prefix WAL-G prints for a level.
pub fn prefix(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

/// The timestamp WAL-G prints: local time, microseconds.
pub fn timestamp() -> String {
    jiff::Zoned::now()
        .strftime("%Y/%m/%d %H:%M:%S%.6f")
        .to_string()
}

struct WalgFormat;

impl<S, N> FormatEvent<S, N> for WalgFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(
            writer,
            "{}: {} ",
            prefix(*event.metadata().level()),
            timestamp()
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

fn max_level(level: LogLevel) -> Level {
    match level {
        LogLevel::Error => Level::ERROR,
        LogLevel::Normal => Level::INFO,
        LogLevel::Devel => Level::DEBUG,
    }
}

/// Installs the global logger. A log file that cannot be opened falls back to standard error
/// and says so.
/// Set once logging is initialised with `WALG_LOG_FORMAT=json`.
static JSON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// True when log lines are JSON.
pub fn is_json() -> bool {
    JSON.get().copied().unwrap_or(false)
}

pub fn init(settings: &LogSettings) {
    let _ = JSON.set(settings.json);
    let level = max_level(settings.level);
    let mut fallback = None;
    let file = match &settings.destination {
        Some(path) => match OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => Some(file),
            Err(e) => {
                fallback = Some(format!(
                    "cannot open log file '{}': {e}; logging to stderr",
                    path.display()
                ));
                None
            }
        },
        None => None,
    };
    let builder = tracing_subscriber::fmt().with_max_level(level);
    // One branch per (format, destination): the builder's types differ.
    let _ = match (settings.json, file) {
        (true, Some(file)) => builder
            .json()
            .flatten_event(true)
            .with_writer(Mutex::new(file))
            .try_init(),
        (true, None) => builder
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .try_init(),
        (false, Some(file)) => builder
            .event_format(WalgFormat)
            .with_writer(Mutex::new(file))
            .try_init(),
        (false, None) => builder
            .event_format(WalgFormat)
            .with_writer(std::io::stderr)
            .try_init(),
    };
    if let Some(message) = fallback {
        tracing::warn!("{message}");
    }
}
