//! A cron expression in a time zone: parsing, and the next run after an instant.

use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::ScheduleError;

/// The macros and the 5-field expressions they stand for.
const MACROS: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// The fields of a 6-field expression; a 5-field one has all but the first.
const FIELDS: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
];

/// The values each field of [`FIELDS`] takes, for error messages.
const RANGES: [&str; 6] = [
    "0-59",
    "0-59",
    "0-23",
    "1-31",
    "1-12 or JAN-DEC",
    "0-7 or SUN-SAT",
];

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// How many gaps between upcoming runs [`Schedule::period_estimate`] looks at.
const PERIOD_GAPS: usize = 4;

/// A cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    cron: Cron,
    tz: TimeZone,
}

impl Schedule {
    /// Parses a cron expression whose fields are read on the wall clock of `tz`.
    ///
    /// Accepts 5 fields (minute hour day-of-month month day-of-week), 6 with a leading seconds
    /// field, or one of the macros `@yearly @annually @monthly @weekly @daily @midnight
    /// @hourly`. Fields take `*`, lists (`1,15`), ranges (`1-5`), steps (`*/15`, `0-30/10`)
    /// and, in the month and day-of-week fields, names (`JAN`, `MON`; any case). Day-of-week
    /// 0 and 7 are both Sunday. croner's extensions are accepted too (`L`, `W`, `#`, `?`).
    ///
    /// Day-of-month and day-of-week combine as in Vixie cron: when both are restricted a day
    /// matching either runs (`0 0 1 * MON`: the 1st and every Monday); when either starts with
    /// `*` a day must match both (`0 0 */2 * MON`: Mondays on odd days).
    ///
    /// An expression no date matches (`0 0 30 2 *`) is refused.
    pub fn parse(expression: &str, tz: TimeZone) -> Result<Schedule, ScheduleError> {
        let expression = expression.trim();
        let invalid = |reason: String| ScheduleError::Expression {
            expression: expression.to_string(),
            reason,
        };
        if expression.is_empty() {
            return Err(invalid("the expression is empty".to_string()));
        }
        let expanded = if expression.starts_with('@') {
            MACROS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(expression))
                .map(|(_, fields)| *fields)
                .ok_or_else(|| {
                    let known: Vec<&str> = MACROS.iter().map(|(name, _)| *name).collect();
                    invalid(format!("unknown macro; known: {}", known.join(" ")))
                })?
        } else {
            expression
        };

        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let names = match fields.len() {
            5 => &FIELDS[1..],
            6 => &FIELDS[..],
            n => {
                return Err(invalid(format!(
                    "{n} fields; expected 5 (minute hour day-of-month month day-of-week), \
                     6 with a leading seconds field, or a macro such as @daily"
                )));
            }
        };
        for (field, name) in fields.iter().zip(names) {
            check_names(field, name).map_err(invalid)?;
        }

        // Vixie cron: a day-of-month or day-of-week field starting with `*` makes the two an
        // AND; croner ORs unless the field is exactly `*`, so it is told.
        let day_of_month = fields[fields.len() - 3];
        let day_of_week = fields[fields.len() - 1];
        let starred = |field: &str| field.starts_with('*') || field.starts_with('?');
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .dom_and_dow(starred(day_of_month) || starred(day_of_week))
            .build();
        let cron = parser
            .parse(expanded)
            .map_err(|e| invalid(locate(&parser, &fields, names, &e)))?;

        let schedule = Schedule {
            expression: expression.to_string(),
            cron,
            tz,
        };
        // Any date-matching expression matches within 8 years of any instant (29 February
        // skips 2100), and croner searches up to the year 5000: `None` means never.
        if schedule.next_after(Timestamp::UNIX_EPOCH).is_none() {
            return Err(ScheduleError::NeverRuns {
                expression: schedule.expression,
            });
        }
        Ok(schedule)
    }

    /// The expression as given (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone whose wall clock the fields are read on.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The first run strictly after `t`, or `None` when there is none before the year 5000
    /// (the limit of croner's search).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let start = t.to_zoned(self.tz.clone());
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.timestamp()).filter(|next| *next > t)
    }

    /// The runs strictly after `t`, in order.
    pub fn runs_after(&self, t: Timestamp) -> impl Iterator<Item = Timestamp> + '_ {
        std::iter::successors(self.next_after(t), move |run| self.next_after(*run))
    }

    /// The time between runs, for health checks ("the last backup is older than two
    /// periods"): the longest gap between consecutive runs among the next few after `now`.
    /// The longest rather than the first, so that an uneven schedule (`0 0 * * MON,TUE`: one
    /// day, then six) is not judged by its shortest gap. [`Duration::MAX`] when fewer than two
    /// runs remain (only near the year 5000); multiply with `saturating_mul`.
    pub fn period_estimate(&self, now: Timestamp) -> Duration {
        let runs: Vec<Timestamp> = self.runs_after(now).take(PERIOD_GAPS + 1).collect();
        runs.windows(2)
            .map(|pair| pair[1].duration_since(pair[0]).unsigned_abs())
            .max()
            .unwrap_or(Duration::MAX)
    }
}

/// Says which field croner refused, and why: croner's own messages name no field.
fn locate(
    parser: &CronParser,
    fields: &[&str],
    names: &[&str],
    error: &croner::errors::CronError,
) -> String {
    let reason = error
        .to_string()
        .trim_end_matches('.')
        .trim_start_matches("Component error: ")
        .replace("CronPattern", "the expression");
    for (field, name) in fields.iter().zip(names) {
        // The field alone, every other one `*`.
        let alone: Vec<&str> = names
            .iter()
            .map(|other| if other == name { *field } else { "*" })
            .collect();
        if let Err(e) = parser.parse(&alone.join(" ")) {
            let range = FIELDS
                .iter()
                .position(|known| known == name)
                .map_or("", |i| RANGES[i]);
            let reason = e
                .to_string()
                .trim_end_matches('.')
                .trim_start_matches("Component error: ")
                .to_lowercase();
            return format!("{name} field `{field}`: {reason} (it takes {range})");
        }
    }
    reason
}

/// Refuses a name that the field does not take: croner replaces names anywhere in the
/// expression, so `MON` in the month field would silently mean January.
fn check_names(field: &str, name: &str) -> Result<(), String> {
    let allowed: &[&str] = match name {
        "month" => &MONTHS,
        "day-of-week" => &WEEKDAYS,
        _ => &[],
    };
    // croner's `L` (last) and `W` (nearest weekday) markers.
    let markers: &[&str] = match name {
        "day-of-month" => &["L", "W", "LW"],
        "day-of-week" => &["L"],
        _ => &[],
    };
    if field.split(',').any(str::is_empty) {
        return Err(format!("{name} field `{field}`: an empty list item"));
    }
    for word in field
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|word| !word.is_empty())
    {
        let upper = word.to_ascii_uppercase();
        if !allowed.contains(&upper.as_str()) && !markers.contains(&upper.as_str()) {
            return Err(if allowed.is_empty() {
                format!("`{word}` in the {name} field, which takes numbers only")
            } else {
                format!(
                    "unknown name `{word}` in the {name} field; names are {}",
                    allowed.join(" ")
                )
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use jiff::civil::DateTime;

    use super::*;

    fn utc(expr: &str) -> Schedule {
        Schedule::parse(expr, TimeZone::UTC).unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// The next `n` runs after `from`, as RFC 3339 UTC strings.
    fn runs(schedule: &Schedule, from: &str, n: usize) -> Vec<String> {
        schedule
            .runs_after(at(from))
            .take(n)
            .map(|t| t.to_string())
            .collect()
    }

    /// The next `n` runs after `from`, as wall clock times in the schedule's zone.
    fn local_runs(schedule: &Schedule, from: &str, n: usize) -> Vec<String> {
        schedule
            .runs_after(at(from))
            .take(n)
            .map(|t| {
                let zoned = t.to_zoned(schedule.time_zone().clone());
                format!("{} {}", zoned.datetime(), zoned.offset())
            })
            .collect()
    }

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    #[test]
    fn five_fields() {
        let s = utc("30 4 * * *");
        assert_eq!(
            runs(&s, "2026-01-01T00:00:00Z", 2),
            ["2026-01-01T04:30:00Z", "2026-01-02T04:30:00Z"]
        );
    }

    #[test]
    fn six_fields_have_a_leading_seconds_field() {
        let s = utc("*/20 * * * * *");
        assert_eq!(
            runs(&s, "2026-01-01T00:00:00Z", 4),
            [
                "2026-01-01T00:00:20Z",
                "2026-01-01T00:00:40Z",
                "2026-01-01T00:01:00Z",
                "2026-01-01T00:01:20Z"
            ]
        );
        let s = utc("15 30 4 * * *");
        assert_eq!(
            runs(&s, "2026-01-01T00:00:00Z", 1),
            ["2026-01-01T04:30:15Z"]
        );
    }

    #[test]
    fn next_after_is_strictly_after() {
        let s = utc("0 * * * *");
        assert_eq!(
            s.next_after(at("2026-01-01T05:00:00Z")),
            Some(at("2026-01-01T06:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-01-01T04:59:59.999Z")),
            Some(at("2026-01-01T05:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-01-01T05:00:00.001Z")),
            Some(at("2026-01-01T06:00:00Z"))
        );
    }

    #[test]
    fn macros() {
        let from = "2026-05-13T10:20:30Z"; // a Wednesday
        for (expr, next) in [
            ("@yearly", "2027-01-01T00:00:00Z"),
            ("@annually", "2027-01-01T00:00:00Z"),
            ("@monthly", "2026-06-01T00:00:00Z"),
            ("@weekly", "2026-05-17T00:00:00Z"),
            ("@daily", "2026-05-14T00:00:00Z"),
            ("@midnight", "2026-05-14T00:00:00Z"),
            ("@hourly", "2026-05-13T11:00:00Z"),
            ("@DAILY", "2026-05-14T00:00:00Z"),
        ] {
            assert_eq!(runs(&utc(expr), from, 1), [next], "{expr}");
        }
    }

    #[test]
    fn lists_ranges_steps_and_names() {
        let from = "2026-05-13T00:00:00Z"; // a Wednesday
        assert_eq!(
            runs(&utc("0 6,18 * * *"), from, 3),
            [
                "2026-05-13T06:00:00Z",
                "2026-05-13T18:00:00Z",
                "2026-05-14T06:00:00Z"
            ]
        );
        assert_eq!(
            runs(&utc("0 22 * * 1-5"), "2026-05-15T23:00:00Z", 2),
            ["2026-05-18T22:00:00Z", "2026-05-19T22:00:00Z"]
        );
        assert_eq!(
            runs(&utc("*/15 9 * * *"), from, 5),
            [
                "2026-05-13T09:00:00Z",
                "2026-05-13T09:15:00Z",
                "2026-05-13T09:30:00Z",
                "2026-05-13T09:45:00Z",
                "2026-05-14T09:00:00Z"
            ]
        );
        assert_eq!(
            runs(&utc("10-40/15 9 * * *"), from, 3),
            [
                "2026-05-13T09:10:00Z",
                "2026-05-13T09:25:00Z",
                "2026-05-13T09:40:00Z"
            ]
        );
        assert_eq!(
            runs(&utc("0 3 * * sat,SUN"), from, 2),
            ["2026-05-16T03:00:00Z", "2026-05-17T03:00:00Z"]
        );
        assert_eq!(
            runs(&utc("0 3 * * 7"), from, 1),
            ["2026-05-17T03:00:00Z"],
            "7 is Sunday"
        );
        assert_eq!(
            runs(&utc("0 0 1 jan,Jul *"), from, 2),
            ["2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"]
        );
        assert_eq!(
            runs(&utc("0 0 1 MAR-MAY *"), "2026-03-02T00:00:00Z", 3),
            [
                "2026-04-01T00:00:00Z",
                "2026-05-01T00:00:00Z",
                "2027-03-01T00:00:00Z"
            ]
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_combine_as_in_vixie_cron() {
        // Both restricted: either.
        assert_eq!(
            runs(&utc("0 0 1 * MON"), "2026-05-28T00:00:00Z", 3),
            [
                "2026-06-01T00:00:00Z", // a Monday and the 1st
                "2026-06-08T00:00:00Z",
                "2026-06-15T00:00:00Z"
            ]
        );
        assert_eq!(
            runs(&utc("0 0 13 * FRI"), "2026-05-10T00:00:00Z", 3),
            [
                "2026-05-13T00:00:00Z",
                "2026-05-15T00:00:00Z",
                "2026-05-22T00:00:00Z"
            ]
        );
        // Day-of-month starting with `*`: both.
        assert_eq!(
            runs(&utc("0 0 */2 * MON"), "2026-06-01T00:00:00Z", 2),
            ["2026-06-15T00:00:00Z", "2026-06-29T00:00:00Z"],
            "Mondays on odd days"
        );
    }

    #[test]
    fn day_31_skips_months_without_one() {
        assert_eq!(
            runs(&utc("0 0 31 * *"), "2026-01-31T00:00:00Z", 4),
            [
                "2026-03-31T00:00:00Z",
                "2026-05-31T00:00:00Z",
                "2026-07-31T00:00:00Z",
                "2026-08-31T00:00:00Z"
            ]
        );
    }

    #[test]
    fn february_29_waits_for_a_leap_year() {
        assert_eq!(
            runs(&utc("0 0 29 2 *"), "2026-01-01T00:00:00Z", 2),
            ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]
        );
        // 2100 is not a leap year.
        assert_eq!(
            runs(&utc("0 0 29 2 *"), "2096-03-01T00:00:00Z", 1),
            ["2104-02-29T00:00:00Z"]
        );
    }

    #[test]
    fn fields_are_read_on_the_wall_clock_of_the_time_zone() {
        let s = Schedule::parse("0 3 * * *", berlin()).unwrap();
        assert_eq!(
            runs(&s, "2026-01-10T00:00:00Z", 1),
            ["2026-01-10T02:00:00Z"],
            "03:00 CET"
        );
        assert_eq!(
            runs(&s, "2026-07-10T00:00:00Z", 1),
            ["2026-07-10T01:00:00Z"],
            "03:00 CEST"
        );
    }

    /// Berlin goes from 02:00 CET to 03:00 CEST on 29 March 2026: 02:30 does not exist.
    #[test]
    fn a_fixed_time_in_the_spring_gap_runs_right_after_it() {
        let s = Schedule::parse("30 2 * * *", berlin()).unwrap();
        assert_eq!(
            local_runs(&s, "2026-03-27T12:00:00Z", 4),
            [
                "2026-03-28T02:30:00 +01",
                "2026-03-29T03:00:00 +02", // the first instant after the gap, the same day
                "2026-03-30T02:30:00 +02",
                "2026-03-31T02:30:00 +02"
            ]
        );
        // Asked from inside the skipped hour's neighbourhood, still once that day.
        assert_eq!(
            local_runs(&s, "2026-03-29T00:59:59Z", 2),
            ["2026-03-29T03:00:00 +02", "2026-03-30T02:30:00 +02"]
        );
        assert_eq!(
            runs(&s, "2026-03-29T01:00:00Z", 1),
            ["2026-03-30T00:30:00Z"],
            "strictly after the shifted run"
        );
    }

    #[test]
    fn wildcard_times_in_the_spring_gap_are_skipped() {
        let s = Schedule::parse("30 * * * *", berlin()).unwrap();
        assert_eq!(
            local_runs(&s, "2026-03-28T23:45:00Z", 3),
            [
                "2026-03-29T01:30:00 +01",
                "2026-03-29T03:30:00 +02",
                "2026-03-29T04:30:00 +02"
            ]
        );
    }

    /// Berlin goes from 03:00 CEST back to 02:00 CET on 25 October 2026: 02:00–02:59 happens
    /// twice.
    #[test]
    fn a_fixed_time_in_the_autumn_overlap_runs_once() {
        let s = Schedule::parse("30 2 * * *", berlin()).unwrap();
        assert_eq!(
            local_runs(&s, "2026-10-23T12:00:00Z", 3),
            [
                "2026-10-24T02:30:00 +02",
                "2026-10-25T02:30:00 +02", // the first pass only
                "2026-10-26T02:30:00 +01"
            ]
        );
        // Asked during the second pass (02:10 CET), after the first-pass run: not again.
        assert_eq!(
            local_runs(&s, "2026-10-25T01:10:00Z", 1),
            ["2026-10-26T02:30:00 +01"]
        );
        let s = Schedule::parse("30 1 * * *", berlin()).unwrap();
        assert_eq!(
            local_runs(&s, "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T01:30:00 +02", "2026-10-26T01:30:00 +01"]
        );
        // New York repeats 01:00–01:59 on 1 November 2026.
        let s = Schedule::parse("30 1 * * *", TimeZone::get("America/New_York").unwrap()).unwrap();
        assert_eq!(
            local_runs(&s, "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T01:30:00 -04", "2026-11-02T01:30:00 -05"]
        );
    }

    #[test]
    fn wildcard_times_in_the_autumn_overlap_run_on_both_passes() {
        let s = Schedule::parse("*/30 2 * * *", berlin()).unwrap();
        assert_eq!(
            local_runs(&s, "2026-10-24T23:00:00Z", 5),
            [
                "2026-10-25T02:00:00 +02",
                "2026-10-25T02:30:00 +02",
                "2026-10-25T02:00:00 +01",
                "2026-10-25T02:30:00 +01",
                "2026-10-26T02:00:00 +01"
            ]
        );
    }

    #[test]
    fn period_estimate_is_the_longest_upcoming_gap() {
        let hour = Duration::from_secs(3600);
        let now = at("2026-05-13T10:20:30Z");
        assert_eq!(utc("@hourly").period_estimate(now), hour);
        assert_eq!(utc("@daily").period_estimate(now), 24 * hour);
        assert_eq!(
            utc("*/10 * * * * *").period_estimate(now),
            Duration::from_secs(10)
        );
        assert_eq!(
            utc("0 0 * * MON,TUE").period_estimate(now),
            6 * 24 * hour,
            "not the one-day gap"
        );
        // A daily run across the spring change: one day is 23 hours long.
        let s = Schedule::parse("0 12 * * *", berlin()).unwrap();
        assert_eq!(s.period_estimate(at("2026-03-28T13:00:00Z")), 24 * hour);
        let s = Schedule::parse("0 0 * * *", berlin()).unwrap();
        assert_eq!(s.period_estimate(at("2026-10-23T12:00:00Z")), 25 * hour);
    }

    #[test]
    fn errors_name_the_expression_and_the_fault() {
        let err = |expr: &str| {
            Schedule::parse(expr, TimeZone::UTC)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(""),
            "invalid cron expression ``: the expression is empty"
        );
        assert_eq!(
            err("0 0 * *"),
            "invalid cron expression `0 0 * *`: 4 fields; expected 5 (minute hour day-of-month \
             month day-of-week), 6 with a leading seconds field, or a macro such as @daily"
        );
        assert!(err("0 0 0 0 * * *").contains("7 fields"));
        assert_eq!(
            err("@reboot"),
            "invalid cron expression `@reboot`: unknown macro; known: @yearly @annually \
             @monthly @weekly @daily @midnight @hourly"
        );
        assert_eq!(
            err("0 0 * MON *"),
            "invalid cron expression `0 0 * MON *`: unknown name `MON` in the month field; \
             names are JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC"
        );
        assert!(err("0 0 * * MONDAY").contains("unknown name `MONDAY` in the day-of-week field"));
        assert!(err("0 x * * *").contains("`x` in the hour field, which takes numbers only"));
        assert_eq!(
            err("60 * * * *"),
            "invalid cron expression `60 * * * *`: minute field `60`: number out of bounds \
             (it takes 0-59)"
        );
        assert_eq!(
            err("0 0 24 * * *"),
            "invalid cron expression `0 0 24 * * *`: hour field `24`: number out of bounds \
             (it takes 0-23)"
        );
        assert!(err("61 0 0 * * *").contains(": second field `61`: "));
        assert!(err("0 0 32 * *").contains(": day-of-month field `32`: "));
        assert!(err("0 0 1 13 *").contains(": month field `13`: "));
        assert!(err("0 0 * * 8").contains(": day-of-week field `8`: "));
        assert!(err("*/0 * * * *").contains(": minute field `*/0`: step cannot be zero"));
        assert!(err("5-1 * * * *").contains(": minute field `5-1`: "));
        assert!(err("1,,2 * * * *").contains(": minute field `1,,2`: an empty list item"));
        for expr in ["", "0 0 32 * *", "*/0 * * * *", "0 0 1 13 *"] {
            assert!(!err(expr).contains('\n'), "{expr}: one line");
        }
    }

    #[test]
    fn an_expression_no_date_matches_is_refused() {
        for expr in ["0 0 30 2 *", "0 0 31 4,6,9,11 *"] {
            assert_eq!(
                Schedule::parse(expr, TimeZone::UTC).unwrap_err(),
                ScheduleError::NeverRuns {
                    expression: expr.to_string()
                }
            );
        }
    }

    #[test]
    fn the_expression_is_kept_trimmed() {
        let s = Schedule::parse("  @daily ", TimeZone::UTC).unwrap();
        assert_eq!(s.expression(), "@daily");
        let midnight: Timestamp = DateTime::constant(2026, 1, 2, 0, 0, 0, 0)
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp();
        assert_eq!(s.next_after(at("2026-01-01T12:00:00Z")), Some(midnight));
    }
}
