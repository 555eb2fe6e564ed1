//! The timing of `walg schedule`: cron expressions in a time zone, the next run after an
//! instant, and the state machine of the loop. Pure: no clock (`now` is always an argument), no
//! I/O but the time zone database that [`timezone_from_tz`] reads.
//!
//! * [`Schedule`]: a cron expression in a time zone. Standard 5-field cron (minute hour
//!   day-of-month month day-of-week), an optional leading seconds field (6 fields), names
//!   (`JAN`–`DEC`, `SUN`–`SAT`) and the macros `@yearly @annually @monthly @weekly @daily
//!   @midnight @hourly`. Parsed by the `croner` crate; day-of-month and day-of-week combine as
//!   in Vixie cron (OR when both are restricted, AND when either starts with `*`).
//! * [`Ticker`]: which run is due now, at most one however many ticks were missed, and how
//!   long to sleep before asking again.
//! * [`timezone_from_tz`]: the time zone of a `TZ` value (UTC when unset).
//!
//! Daylight saving time (croner's rules, which are Vixie cron's): a run whose wall clock time
//! does not exist (the hour skipped in spring) runs at the first instant after the gap, the same
//! day, when its second, minute and hour are single fixed values (`30 2 * * *` runs at 03:00
//! in `Europe/Berlin` on the day clocks go forward); runs of wildcard or stepped times inside
//! the gap are skipped. A fixed-time run in the hour repeated in autumn runs once, at the first
//! of the two instants; a wildcard or stepped one runs on both passes.

mod cron;
mod ticker;
mod zone;

pub use cron::Schedule;
pub use ticker::{Due, MAX_COUNTED_SKIPS, MAX_SLEEP, Ticker};
pub use zone::timezone_from_tz;

/// Why a schedule or a time zone was refused. Each message is one line naming the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error("invalid cron expression `{expression}`: {reason}")]
    Expression { expression: String, reason: String },
    /// The cron expression parses but no date matches it (`0 0 30 2 *`).
    #[error("cron expression `{expression}` never runs: no date matches it")]
    NeverRuns { expression: String },
    /// The `TZ` value names no time zone.
    #[error("invalid time zone TZ=`{tz}`: {reason}")]
    TimeZone { tz: String, reason: String },
}
