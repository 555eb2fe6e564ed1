//! The state machine of the `walg schedule` loop: which run is due, and how long to sleep.

use std::time::Duration;

use jiff::Timestamp;

use super::Schedule;

/// The longest [`Ticker::sleep_for`] asks for, so that a jump of the clock (a machine waking
/// from suspend, a clock set by NTP) is noticed within this long.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// [`Due::skipped`] counts missed ticks up to this many; past it, the count stops (a schedule
/// every second on a machine asleep for a week would otherwise walk 600 000 ticks).
pub const MAX_COUNTED_SKIPS: u64 = 10_000;

/// A run that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The tick the run is for: the first one that passed since the last run.
    pub scheduled: Timestamp,
    /// How many later ticks had passed too and are folded into this one run (0 when the run
    /// is on time), at most [`MAX_COUNTED_SKIPS`].
    pub skipped: u64,
}

/// Which run of a [`Schedule`] is due, driven by the caller's clock.
///
/// The loop, with one run at a time (runs never overlap: that is the caller's part):
///
/// ```text
/// let mut ticker = Ticker::new(schedule, now());
/// loop {
///     if let Some(due) = ticker.due(now()) {
///         run(due);   // backup-push, then delete if it succeeded; returns when done
///         continue;   // ask again at once: the run may have outlasted a tick
///     }
///     sleep(ticker.sleep_for(now()));
/// }
/// ```
///
/// [`Ticker::due`] is called after a run finishes, so ticks passing during a long run, or while
/// the machine sleeps, lead to one immediate run, never a burst.
#[derive(Debug, Clone)]
pub struct Ticker {
    schedule: Schedule,
    next: Option<Timestamp>,
}

impl Ticker {
    /// A ticker whose first run is the first tick strictly after `now`: starting never runs a
    /// backup at once.
    pub fn new(schedule: Schedule, now: Timestamp) -> Ticker {
        let next = schedule.next_after(now);
        Ticker { schedule, next }
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The next tick, or `None` when the schedule has no more (only near the year 5000).
    pub fn next(&self) -> Option<Timestamp> {
        self.next
    }

    /// The run due at `now`, if any: at most one however many ticks have passed, with the
    /// number of the others in [`Due::skipped`]. The next tick becomes the first strictly after
    /// `now`.
    ///
    /// A clock set back keeps the plan (a tick that already ran is not run again) unless the
    /// next tick is then more than two schedule periods away: then the next tick becomes the
    /// first after `now`, so a clock that was far ahead does not stop backups.
    pub fn due(&mut self, now: Timestamp) -> Option<Due> {
        let Some(next) = self.next else {
            self.next = self.schedule.next_after(now);
            return None;
        };
        if now < next {
            if let Some(replanned) = self.schedule.next_after(now)
                && replanned < next
            {
                let limit = self.schedule.period_estimate(now).saturating_mul(2);
                if next.duration_since(now).unsigned_abs() > limit {
                    self.next = Some(replanned);
                }
            }
            return None;
        }
        let skipped = self
            .schedule
            .runs_after(next)
            .take_while(|tick| *tick <= now)
            .take(usize::try_from(MAX_COUNTED_SKIPS).unwrap_or(usize::MAX))
            .count();
        self.next = self.schedule.next_after(now);
        Some(Due {
            scheduled: next,
            skipped: u64::try_from(skipped).unwrap_or(MAX_COUNTED_SKIPS),
        })
    }

    /// How long to sleep before calling [`Ticker::due`] again: until the next tick, at most
    /// [`MAX_SLEEP`]; zero when a run is due.
    pub fn sleep_for(&self, now: Timestamp) -> Duration {
        match self.next {
            Some(next) if next <= now => Duration::ZERO,
            Some(next) => next.duration_since(now).unsigned_abs().min(MAX_SLEEP),
            None => MAX_SLEEP,
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::ToSpan;
    use jiff::tz::TimeZone;

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ticker(expr: &str, now: &str) -> Ticker {
        Ticker::new(Schedule::parse(expr, TimeZone::UTC).unwrap(), at(now))
    }

    #[test]
    fn the_first_run_is_the_first_tick_after_start() {
        let mut t = ticker("0 * * * *", "2026-01-01T10:00:00Z");
        assert_eq!(
            t.next(),
            Some(at("2026-01-01T11:00:00Z")),
            "not the tick at start"
        );
        for now in [
            "2026-01-01T10:00:00Z",
            "2026-01-01T10:30:00Z",
            "2026-01-01T10:59:59.999Z",
        ] {
            assert_eq!(t.due(at(now)), None, "{now}");
        }
        assert_eq!(
            t.due(at("2026-01-01T11:00:00Z")),
            Some(Due {
                scheduled: at("2026-01-01T11:00:00Z"),
                skipped: 0
            })
        );
        assert_eq!(t.next(), Some(at("2026-01-01T12:00:00Z")));
        assert_eq!(t.due(at("2026-01-01T11:00:00Z")), None, "once per tick");
    }

    #[test]
    fn a_late_wake_up_runs_once() {
        let mut t = ticker("*/10 * * * *", "2026-01-01T10:01:00Z");
        assert_eq!(t.next(), Some(at("2026-01-01T10:10:00Z")));
        // Asleep from 10:05 to 10:57: ticks 10:10, 10:20, 10:30, 10:40, 10:50 missed.
        assert_eq!(t.due(at("2026-01-01T10:05:00Z")), None);
        let due = t.due(at("2026-01-01T10:57:00Z"));
        assert_eq!(
            due,
            Some(Due {
                scheduled: at("2026-01-01T10:10:00Z"),
                skipped: 4
            })
        );
        assert_eq!(t.next(), Some(at("2026-01-01T11:00:00Z")), "in the future");
        assert_eq!(t.due(at("2026-01-01T10:57:01Z")), None, "no burst");
        assert_eq!(t.due(at("2026-01-01T10:59:59Z")), None);
        assert_eq!(
            t.due(at("2026-01-01T11:00:00Z")).map(|d| d.skipped),
            Some(0)
        );
    }

    #[test]
    fn a_run_outlasting_ticks_leads_to_one_immediate_run() {
        let mut t = ticker("0 * * * *", "2026-01-01T09:30:00Z");
        let start = at("2026-01-01T10:00:00Z");
        assert!(t.due(start).is_some());
        // The run takes 3.5 hours: 11:00, 12:00, 13:00 pass meanwhile.
        let end = at("2026-01-01T13:30:00Z");
        assert_eq!(
            t.due(end),
            Some(Due {
                scheduled: at("2026-01-01T11:00:00Z"),
                skipped: 2
            })
        );
        assert_eq!(t.due(end), None);
        assert_eq!(t.next(), Some(at("2026-01-01T14:00:00Z")));
    }

    #[test]
    fn a_tick_at_exactly_now_is_consumed() {
        let mut t = ticker("0 * * * *", "2026-01-01T09:30:00Z");
        let due = t.due(at("2026-01-01T11:00:00Z")).unwrap();
        assert_eq!(due.scheduled, at("2026-01-01T10:00:00Z"));
        assert_eq!(due.skipped, 1, "11:00 is folded in");
        assert_eq!(t.next(), Some(at("2026-01-01T12:00:00Z")));
    }

    #[test]
    fn the_skip_count_stops_at_its_bound() {
        let mut t = ticker("* * * * * *", "2026-01-01T00:00:00Z");
        let due = t.due(at("2026-01-08T00:00:00Z")).unwrap();
        assert_eq!(due.scheduled, at("2026-01-01T00:00:01Z"));
        assert_eq!(due.skipped, MAX_COUNTED_SKIPS);
        assert_eq!(t.next(), Some(at("2026-01-08T00:00:01Z")));
    }

    #[test]
    fn sleep_for_is_bounded() {
        let t = ticker("@daily", "2026-01-01T10:00:00Z");
        assert_eq!(t.sleep_for(at("2026-01-01T10:00:00Z")), MAX_SLEEP);
        assert_eq!(
            t.sleep_for(at("2026-01-01T23:59:30Z")),
            Duration::from_secs(30)
        );
        assert_eq!(
            t.sleep_for(at("2026-01-01T23:59:59.750Z")),
            Duration::from_millis(250)
        );
        assert_eq!(t.sleep_for(at("2026-01-02T00:00:00Z")), Duration::ZERO);
        assert_eq!(t.sleep_for(at("2026-01-05T00:00:00Z")), Duration::ZERO);
        // Every second: never more than the gap to the next tick.
        let t = ticker("* * * * * *", "2026-01-01T10:00:00Z");
        assert_eq!(
            t.sleep_for(at("2026-01-01T10:00:00Z")),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn a_loop_on_a_simulated_clock_runs_each_tick_once() {
        // Every 10 minutes for a day, with 25-second wake-ups and runs of 3 minutes.
        let mut now = at("2026-01-01T00:00:05Z");
        let end = at("2026-01-02T00:00:05Z");
        let mut t = ticker("*/10 * * * *", "2026-01-01T00:00:05Z");
        let mut runs = Vec::new();
        while now < end {
            if let Some(due) = t.due(now) {
                assert_eq!(due.skipped, 0);
                runs.push(due.scheduled);
                now = now.checked_add(3.minutes()).unwrap();
                continue;
            }
            let sleep = t.sleep_for(now);
            assert!(sleep > Duration::ZERO && sleep <= MAX_SLEEP);
            now = now.checked_add(sleep.min(Duration::from_secs(25))).unwrap();
        }
        assert_eq!(runs.len(), 144);
        assert_eq!(runs[0], at("2026-01-01T00:10:00Z"));
        assert_eq!(runs[143], at("2026-01-02T00:00:00Z"));
    }

    #[test]
    fn a_clock_set_back_a_little_keeps_the_plan() {
        let mut t = ticker("0 * * * *", "2026-01-01T09:30:00Z");
        assert!(t.due(at("2026-01-01T10:00:10Z")).is_some());
        // NTP steps the clock back 5 minutes: 10:00 is not run again.
        assert_eq!(t.due(at("2026-01-01T09:55:10Z")), None);
        assert_eq!(t.next(), Some(at("2026-01-01T11:00:00Z")));
    }

    #[test]
    fn a_clock_set_back_far_replans() {
        // Started with a clock a year ahead; then the clock is corrected.
        let mut t = ticker("@daily", "2027-01-01T10:00:00Z");
        assert_eq!(t.next(), Some(at("2027-01-02T00:00:00Z")));
        assert_eq!(t.due(at("2026-01-01T10:00:00Z")), None);
        assert_eq!(t.next(), Some(at("2026-01-02T00:00:00Z")));
        assert!(t.due(at("2026-01-02T00:00:00Z")).is_some());
    }

    #[test]
    fn a_daily_run_across_daylight_saving_changes_runs_once_a_day() {
        let zone = TimeZone::get("Europe/Berlin").unwrap();
        for (expr, start, days) in [
            ("30 2 * * *", "2026-03-27T12:00:00Z", 4),
            ("30 2 * * *", "2026-10-23T12:00:00Z", 4),
            ("30 1 * * *", "2026-10-23T12:00:00Z", 4),
        ] {
            let mut t = Ticker::new(Schedule::parse(expr, zone.clone()).unwrap(), at(start));
            let mut now = at(start);
            let mut runs = Vec::new();
            while runs.len() < days + 1 {
                if let Some(due) = t.due(now) {
                    runs.push(due.scheduled.to_zoned(zone.clone()).date());
                }
                now = now
                    .checked_add(t.sleep_for(now).max(Duration::from_secs(1)))
                    .unwrap();
            }
            let mut unique = runs.clone();
            unique.dedup();
            assert_eq!(unique, runs, "{expr} from {start}: one run a day");
        }
    }
}
