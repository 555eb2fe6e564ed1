//! Cron expressions of `walg schedule` (`WALG_BACKUP_SCHEDULE`): any text gives a schedule or a
//! one-line error; a schedule gives increasing runs in the future of any instant.
#![no_main]

use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use libfuzzer_sys::fuzz_target;
use walg::schedule::{Schedule, timezone_from_tz};

fn zones() -> &'static [TimeZone] {
    static ZONES: OnceLock<Vec<TimeZone>> = OnceLock::new();
    ZONES.get_or_init(|| {
        let mut zones = vec![TimeZone::UTC];
        for name in ["Europe/Berlin", "Australia/Lord_Howe", "America/St_Johns"] {
            if let Ok(tz) = timezone_from_tz(Some(name)) {
                zones.push(tz);
            }
        }
        zones
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let Ok(expression) = std::str::from_utf8(text) else {
        return;
    };
    let zones = zones();
    let tz = zones[usize::from(pick) % zones.len()].clone();
    let schedule = match Schedule::parse(expression, tz) {
        Ok(s) => s,
        Err(e) => {
            // The error quotes the expression, which comes from the user's own settings.
            if !expression.contains(['\n', '\r']) {
                assert!(!e.to_string().contains('\n'), "multi-line error: {e}");
            }
            return;
        }
    };
    for start in [0i64, 1_700_000_000, 4_102_444_800] {
        let t = Timestamp::from_second(start).expect("time");
        let mut last = t;
        for run in schedule.runs_after(t).take(3) {
            assert!(run > last, "run {run} is not after {last}");
            last = run;
        }
        let _ = schedule.period_estimate(t);
    }
});
