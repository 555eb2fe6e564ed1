//! Times as WAL-G's JSON documents hold them: Go's `time.Time` in RFC 3339 with nanoseconds
//! (`RFC3339Nano`: trailing zeros of the fraction dropped, `Z` for a zero offset), keeping the
//! offset a document was written with so that a read-modify-write leaves it unchanged. Pure.

use std::fmt;

use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp, civil};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant with the UTC offset it is shown in, as a Go `time.Time` round-trips through JSON.
///
/// The default is Go's zero time, `0001-01-01T00:00:00Z`, which is what Go leaves in a field
/// that a document does not have.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GoTime {
    timestamp: Timestamp,
    offset: Offset,
}

/// A time string Go would not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not an RFC 3339 time")]
pub struct TimeParseError {
    pub text: String,
}

/// Seconds from the Unix epoch to Go's zero time, 0001-01-01T00:00:00Z.
const GO_ZERO_SECONDS: i64 = -62_135_596_800;

impl GoTime {
    /// Go's zero time, `0001-01-01T00:00:00Z`.
    pub fn zero() -> GoTime {
        GoTime {
            timestamp: Timestamp::new(GO_ZERO_SECONDS, 0).unwrap_or(Timestamp::MIN),
            offset: Offset::UTC,
        }
    }

    /// `timestamp` shown in UTC (`…Z`).
    pub fn utc(timestamp: Timestamp) -> GoTime {
        GoTime {
            timestamp,
            offset: Offset::UTC,
        }
    }

    /// `timestamp` shown with a fixed offset.
    pub fn with_offset(timestamp: Timestamp, offset: Offset) -> GoTime {
        // Go writes offsets as hours and minutes only; keep what can be written.
        let seconds = offset.seconds() - offset.seconds() % 60;
        GoTime {
            timestamp,
            offset: Offset::from_seconds(seconds).unwrap_or(Offset::UTC),
        }
    }

    /// `timestamp` shown with the offset `zone` has at that instant: what Go writes for a
    /// time in its local zone (file modification times in `files_metadata.json`). Callers pass
    /// `TimeZone::system()` for the local zone.
    pub fn in_zone(timestamp: Timestamp, zone: &TimeZone) -> GoTime {
        GoTime::with_offset(timestamp, zone.to_offset(timestamp))
    }

    pub fn timestamp(self) -> Timestamp {
        self.timestamp
    }

    pub fn offset(self) -> Offset {
        self.offset
    }

    /// Go's `IsZero`: the instant is Go's zero time, whatever the offset.
    pub fn is_zero(self) -> bool {
        self.timestamp.as_second() == GO_ZERO_SECONDS && self.timestamp.subsec_nanosecond() == 0
    }

    /// Parses what Go's `time.Time` JSON decoding accepts: `YYYY-MM-DDTHH:MM:SS`, an optional
    /// fraction of any length (digits past nanoseconds are dropped), then `Z` or `±HH:MM`.
    pub fn parse(text: &str) -> Result<GoTime, TimeParseError> {
        parse(text).ok_or_else(|| TimeParseError {
            text: text.to_string(),
        })
    }

    /// Go's `RFC3339Nano`: `2024-05-01T10:00:00.123457Z`, `2020-08-21T19:09:52.966149937+05:00`.
    pub fn to_rfc3339_nano(self) -> String {
        self.format(true)
    }

    /// Go's `RFC3339` (whole seconds): `2025-12-20T02:00:19Z`.
    pub fn to_rfc3339(self) -> String {
        self.format(false)
    }

    /// The wall-clock date and time at this time's offset.
    pub fn civil(self) -> civil::DateTime {
        self.offset.to_datetime(self.timestamp)
    }

    fn format(self, with_fraction: bool) -> String {
        let dt = self.civil();
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        );
        let nanos = dt.subsec_nanosecond();
        if with_fraction && nanos != 0 {
            let digits = format!("{nanos:09}");
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        out.push_str(&format_offset(self.offset));
        out
    }
}

/// `Z` for a zero offset, else `±HH:MM`, as Go's `Z07:00`.
fn format_offset(offset: Offset) -> String {
    let seconds = offset.seconds();
    if seconds == 0 {
        return "Z".to_string();
    }
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

fn digits(bytes: &[u8]) -> Option<i32> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    bytes.iter().try_fold(0i32, |acc, b| {
        acc.checked_mul(10)?.checked_add(i32::from(b - b'0'))
    })
}

fn parse(text: &str) -> Option<GoTime> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = i16::try_from(digits(&b[0..4])?).ok()?;
    let month = i8::try_from(digits(&b[5..7])?).ok()?;
    let day = i8::try_from(digits(&b[8..10])?).ok()?;
    let hour = i8::try_from(digits(&b[11..13])?).ok()?;
    let minute = i8::try_from(digits(&b[14..16])?).ok()?;
    let second = i8::try_from(digits(&b[17..19])?).ok()?;
    let mut rest = &b[19..];
    let mut nanos = 0i32;
    if let Some((b'.' | b',', after)) = rest.split_first() {
        let len = after.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        let mut fraction = after[..len.min(9)].to_vec();
        fraction.resize(9, b'0');
        nanos = digits(&fraction)?;
        rest = &after[len..];
    }
    let offset_seconds = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = hours * 3600 + minutes * 60;
            if *sign == b'-' { -total } else { total }
        }
        _ => return None,
    };
    let offset = Offset::from_seconds(offset_seconds).ok()?;
    let dt = civil::DateTime::new(year, month, day, hour, minute, second, nanos).ok()?;
    let timestamp = offset.to_timestamp(dt).ok()?;
    Some(GoTime { timestamp, offset })
}

/// Rounds up to a whole microsecond, as WAL-G does with the times it stores in `metadata.json`
/// and the sentinel (`utility.CeilTimeUpToMicroseconds`).
pub fn ceil_to_micros(timestamp: Timestamp) -> Timestamp {
    let rem = timestamp.subsec_nanosecond().rem_euclid(1000);
    if rem == 0 {
        return timestamp;
    }
    timestamp
        .checked_add(SignedDuration::from_nanos(i64::from(1000 - rem)))
        .unwrap_or(timestamp)
}

impl Default for GoTime {
    fn default() -> Self {
        GoTime::zero()
    }
}

impl fmt::Display for GoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339_nano())
    }
}

impl fmt::Debug for GoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GoTime({})", self.to_rfc3339_nano())
    }
}

impl Serialize for GoTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339_nano())
    }
}

impl<'de> Deserialize<'de> for GoTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = GoTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<GoTime, E> {
                GoTime::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn formats_like_go_rfc3339nano() {
        let t = GoTime::utc(ts("2024-05-01T10:00:00.123457Z"));
        assert_eq!(t.to_string(), "2024-05-01T10:00:00.123457Z");
        assert_eq!(t.to_rfc3339(), "2024-05-01T10:00:00Z");
        assert_eq!(
            GoTime::utc(ts("2025-12-20T02:00:19.896Z")).to_string(),
            "2025-12-20T02:00:19.896Z"
        );
        assert_eq!(
            GoTime::utc(ts("2025-12-29T02:00:17.730Z")).to_string(),
            "2025-12-29T02:00:17.73Z"
        );
        assert_eq!(
            GoTime::utc(ts("2023-07-22T04:26:40Z")).to_string(),
            "2023-07-22T04:26:40Z"
        );
        let plus5 = Offset::from_seconds(5 * 3600).unwrap();
        assert_eq!(
            GoTime::with_offset(ts("2020-08-21T14:09:52.966149937Z"), plus5).to_string(),
            "2020-08-21T19:09:52.966149937+05:00"
        );
        let minus = Offset::from_seconds(-(3 * 3600 + 30 * 60)).unwrap();
        assert_eq!(
            GoTime::with_offset(ts("2020-01-01T00:00:00.1Z"), minus).to_string(),
            "2019-12-31T20:30:00.1-03:30"
        );
        assert_eq!(GoTime::zero().to_string(), "0001-01-01T00:00:00Z");
        assert!(GoTime::zero().is_zero());
        assert!(GoTime::default().is_zero());
        assert!(!GoTime::utc(Timestamp::UNIX_EPOCH).is_zero());
    }

    #[test]
    fn in_zone_uses_the_zone_offset() {
        let zone = TimeZone::fixed(Offset::from_seconds(2 * 3600).unwrap());
        let t = GoTime::in_zone(ts("2024-05-01T10:59:00.1Z"), &zone);
        assert_eq!(t.to_string(), "2024-05-01T12:59:00.1+02:00");
        assert_eq!(
            GoTime::in_zone(ts("2024-05-01T10:59:00Z"), &TimeZone::UTC).to_string(),
            "2024-05-01T10:59:00Z"
        );
    }

    #[test]
    fn parses_and_keeps_offset() {
        for text in [
            "2024-05-01T10:00:00.123457Z",
            "2020-08-21T19:09:52.966149937+05:00",
            "2024-04-01T09:00:00.123456789+02:00",
            "2024-05-01T12:58:59.99+02:00",
            "0001-01-01T00:00:00Z",
            "2019-12-31T20:30:00-03:30",
        ] {
            assert_eq!(GoTime::parse(text).unwrap().to_string(), text);
        }
        let t = GoTime::parse("2024-05-01T12:00:00.500000000+02:00").unwrap();
        assert_eq!(t.timestamp(), ts("2024-05-01T10:00:00.5Z"));
        assert_eq!(t.to_string(), "2024-05-01T12:00:00.5+02:00");
        // A zero offset written as +00:00 is written back as Z, as Go does.
        assert_eq!(
            GoTime::parse("2024-05-01T12:00:00+00:00")
                .unwrap()
                .to_string(),
            "2024-05-01T12:00:00Z"
        );
        // Digits past nanoseconds are dropped.
        assert_eq!(
            GoTime::parse("2024-05-01T12:00:00.1234567891Z")
                .unwrap()
                .to_string(),
            "2024-05-01T12:00:00.123456789Z"
        );
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01 12:00:00Z",
            "2024-05-01T12:00:00",
            "2024-13-01T12:00:00Z",
            "2024-02-30T12:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+0200",
            "2024-05-01T12:00:00+02:00x",
            "2024-05-01T25:00:00Z",
        ] {
            assert!(GoTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ceil_rounds_up_to_microseconds() {
        assert_eq!(
            ceil_to_micros(ts("2024-05-01T10:00:00.123456001Z")),
            ts("2024-05-01T10:00:00.123457Z")
        );
        assert_eq!(
            ceil_to_micros(ts("2024-05-01T10:00:00.123456Z")),
            ts("2024-05-01T10:00:00.123456Z")
        );
        assert_eq!(
            ceil_to_micros(ts("2024-05-01T10:00:00.999999999Z")),
            ts("2024-05-01T10:00:01Z")
        );
        assert_eq!(
            ceil_to_micros(ts("1969-12-31T23:59:59.9999995Z")),
            ts("1970-01-01T00:00:00Z")
        );
    }

    #[test]
    fn json_round_trip() {
        let t: GoTime = serde_json::from_str("\"2025-12-20T02:00:01.793015Z\"").unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2025-12-20T02:00:01.793015Z\""
        );
        assert!(serde_json::from_str::<GoTime>("\"yesterday\"").is_err());
        assert!(serde_json::from_str::<GoTime>("5").is_err());
    }
}
