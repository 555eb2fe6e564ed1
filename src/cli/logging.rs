//! Log lines in WAL-G's format on standard error (or `WALG_LOG_DESTINATION`):
//! `INFO: 2006/01/02 15:04:05.000000 message`, with `WARNING:`, `ERROR:` and `DEBUG:`.
//!
//! Only walg's own events are shown, except at `WALG_LOG_LEVEL=DEVEL`, which adds the events
//! of the libraries (the AWS SDK, the HTTP stack) at their levels. Lines that would show
//! credentials (the SDK logs loaded credentials, with their key id, in fields such as `creds`
//! and inside other structures) are never shown, at any level. No colour codes.

use std::fmt;
use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

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

/// Drops every library line that would show credentials: the AWS SDK logs its `Credentials` (and
/// structures holding them) with `Debug`, which includes the access key id, inside messages
/// and fields of many shapes. The line is formatted first, then written only when clean.
struct Scrubbed<F>(F);

impl<S, N, F> FormatEvent<S, N> for Scrubbed<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        if !is_walg(event.metadata()) && shows_credentials(&line) {
            return Ok(());
        }
        writer.write_str(&line)
    }
}

/// True for text that may hold a key id or a secret as the SDK prints them.
fn shows_credentials(text: &str) -> bool {
    const MARKS: [&str; 6] = [
        "access_key_id",
        "secret_access_key",
        "session_token",
        "Credentials {",
        "AccessKeyId",
        "aws_access_key",
    ];
    MARKS.iter().any(|m| text.contains(m))
}

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
    let devel = settings.level == LogLevel::Devel;
    let filter = FilterFn::new(move |meta: &Metadata<'_>| {
        *meta.level() <= level && (devel || is_walg(meta)) && !carries_credentials(meta)
    });
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_ansi(false);
    // One branch per (format, destination): the layers' types differ.
    let _ = match (settings.json, file) {
        (true, Some(file)) => registry
            .with(
                layer
                    .json()
                    .flatten_event(true)
                    .map_event_format(Scrubbed)
                    .with_writer(Mutex::new(file)),
            )
            .try_init(),
        (true, None) => registry
            .with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        (false, Some(file)) => registry
            .with(layer.event_format(WalgFormat).with_writer(Mutex::new(file)))
            .try_init(),
        (false, None) => registry
            .with(
                layer
                    .event_format(Scrubbed(WalgFormat))
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    if let Some(message) = fallback {
        tracing::warn!("{message}");
    }
}

/// walg's own events (the library and the binary are both the crate `walg`).
fn is_walg(meta: &Metadata<'_>) -> bool {
    meta.target() == "walg" || meta.target().starts_with("walg::")
}

/// Field names under which libraries log credentials (the AWS SDK's `Credentials`, whose
/// `Debug` shows the access key id, and provider chains that hold them).
const CREDENTIAL_FIELDS: [&str; 7] = [
    "creds",
    "credentials",
    "chain",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "token",
];

/// True for a library event or span with a field that may hold credentials.
fn carries_credentials(meta: &Metadata<'_>) -> bool {
    !is_walg(meta)
        && meta
            .fields()
            .iter()
            .any(|f| CREDENTIAL_FIELDS.contains(&f.name()))
}
