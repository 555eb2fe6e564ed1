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
pub fn init(settings: &LogSettings) {
    let level = max_level(settings.level);
    let builder = tracing_subscriber::fmt()
        .event_format(WalgFormat)
        .with_max_level(level);
    let mut fallback = None;
    if let Some(path) = &settings.destination {
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => {
                let _ = builder.with_writer(Mutex::new(file)).try_init();
                return;
            }
            Err(e) => {
                fallback = Some(format!(
                    "cannot open log file '{}': {e}; logging to stderr",
                    path.display()
                ))
            }
        }
    }
    let _ = builder.with_writer(std::io::stderr).try_init();
    if let Some(message) = fallback {
        tracing::warn!("{message}");
    }
}
