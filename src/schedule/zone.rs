//! The time zone of a `TZ` value, as the C library reads it.

use jiff::tz::TimeZone;

use super::ScheduleError;

/// The time zone a `TZ` value names; the caller reads the environment.
///
/// * unset or empty: UTC (not the system's local zone: a schedule should not change with the
///   machine's settings);
/// * an IANA name, `Europe/Berlin`, optionally after a `:` (`:Europe/Berlin`), looked up in the
///   system's time zone database (`/usr/share/zoneinfo`, or `TZDIR`);
/// * an absolute path to a TZif file, `/usr/share/zoneinfo/Europe/Berlin` or
///   `:/etc/localtime`;
/// * a POSIX rule without `:`, `CET-1CEST,M3.5.0,M10.5.0/3`.
///
/// Anything else is an error naming the value.
pub fn timezone_from_tz(tz: Option<&str>) -> Result<TimeZone, ScheduleError> {
    let raw = tz.unwrap_or("");
    let invalid = |reason: String| ScheduleError::TimeZone {
        tz: raw.to_string(),
        reason,
    };
    let (colon, name) = match raw.strip_prefix(':') {
        Some(name) => (true, name),
        None => (false, raw),
    };
    if name.is_empty() {
        return Ok(TimeZone::UTC);
    }
    if name.starts_with('/') {
        let data = std::fs::read(name).map_err(|e| invalid(format!("cannot read {name}: {e}")))?;
        // A file of the database keeps its IANA name (for logs); another one is named by path.
        let label = name
            .rsplit_once("/zoneinfo/")
            .map_or(name, |(_, iana)| iana);
        return TimeZone::tzif(label, &data)
            .map_err(|e| invalid(format!("{name} is not a TZif time zone file: {e}")));
    }
    match TimeZone::get(name) {
        Ok(zone) => Ok(zone),
        Err(_) if !colon && name.contains(|c: char| c.is_ascii_digit()) => TimeZone::posix(name)
            .map_err(|e| invalid(format!("neither a time zone name nor a POSIX rule: {e}"))),
        Err(_) => Err(invalid(
            "no such time zone in the time zone database (/usr/share/zoneinfo)".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use jiff::civil::date;

    use super::*;

    /// The UTC offset, in hours, the zone has in January and in July 2026.
    fn offsets(zone: &TimeZone) -> (i32, i32) {
        let hours = |month| {
            let t: Timestamp = date(2026, month, 15)
                .at(12, 0, 0, 0)
                .to_zoned(TimeZone::UTC)
                .unwrap()
                .timestamp();
            zone.to_offset(t).seconds() / 3600
        };
        (hours(1), hours(7))
    }

    #[test]
    fn unset_or_empty_is_utc() {
        for tz in [None, Some(""), Some(":")] {
            assert_eq!(timezone_from_tz(tz).unwrap(), TimeZone::UTC, "{tz:?}");
        }
        assert_eq!(offsets(&timezone_from_tz(Some("UTC")).unwrap()), (0, 0));
    }

    #[test]
    fn iana_names_with_or_without_a_colon() {
        for tz in ["Europe/Berlin", ":Europe/Berlin"] {
            let zone = timezone_from_tz(Some(tz)).unwrap();
            assert_eq!(zone.iana_name(), Some("Europe/Berlin"), "{tz}");
            assert_eq!(offsets(&zone), (1, 2), "{tz}");
        }
        let zone = timezone_from_tz(Some("America/New_York")).unwrap();
        assert_eq!(offsets(&zone), (-5, -4));
    }

    #[test]
    fn a_path_to_a_tzif_file() {
        for tz in [
            "/usr/share/zoneinfo/Europe/Berlin",
            ":/usr/share/zoneinfo/Europe/Berlin",
        ] {
            let zone = timezone_from_tz(Some(tz)).unwrap();
            assert_eq!(zone.iana_name(), Some("Europe/Berlin"), "{tz}");
            assert_eq!(offsets(&zone), (1, 2), "{tz}");
        }
    }

    #[test]
    fn a_posix_rule() {
        let zone = timezone_from_tz(Some("CET-1CEST,M3.5.0,M10.5.0/3")).unwrap();
        assert_eq!(offsets(&zone), (1, 2));
    }

    #[test]
    fn invalid_values_are_errors_naming_them() {
        let err = |tz: &str| timezone_from_tz(Some(tz)).unwrap_err().to_string();
        assert_eq!(
            err("Nowhere/Atlantis"),
            "invalid time zone TZ=`Nowhere/Atlantis`: no such time zone in the time zone \
             database (/usr/share/zoneinfo)"
        );
        assert!(err(":Europe/Atlantis").starts_with("invalid time zone TZ=`:Europe/Atlantis`: "));
        assert!(err("/nonexistent/zoneinfo/Europe/Berlin").starts_with(
            "invalid time zone TZ=`/nonexistent/zoneinfo/Europe/Berlin`: cannot read"
        ));
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("not-a-zone");
        std::fs::write(&text, "Europe/Berlin\n").unwrap();
        let text = text.to_str().unwrap();
        assert!(err(text).starts_with(&format!(
            "invalid time zone TZ=`{text}`: {text} is not a TZif time zone file: "
        )));
        assert!(err("XYZ9ABC,M99").starts_with("invalid time zone TZ=`XYZ9ABC,M99`: neither"));
        for tz in ["Nowhere/Atlantis", text, "XYZ9ABC,M99"] {
            assert!(!err(tz).contains('\n'), "{tz}: one line");
        }
    }
}
