//! Log sequence numbers: a position in the WAL, a 64-bit number that PostgreSQL shows as
//! `16/B374D848`. Documents that hold an LSN as a JSON number (WAL-G's sentinel and
//! `metadata.json`) keep it as that number; this type is its text form.

use std::fmt;
use std::str::FromStr;

/// An LSN. Shown as PostgreSQL prints it (`%X/%X`: upper case, no padding); serialized as
/// its number.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Parses `X/Y` (each 1 to 8 hex digits, either case, zero padding allowed).
    pub fn parse(text: &str) -> Option<Lsn> {
        let (high, low) = text.split_once('/')?;
        let part = |s: &str| -> Option<u64> {
            if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u64::from_str_radix(s, 16).ok()
        };
        Some(Lsn((part(high)? << 32) | part(low)?))
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// The error of parsing an LSN from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an LSN (expected X/Y, hexadecimal)")]
pub struct InvalidLsn(pub String);

impl FromStr for Lsn {
    type Err = InvalidLsn;

    fn from_str(text: &str) -> Result<Lsn, InvalidLsn> {
        Lsn::parse(text).ok_or_else(|| InvalidLsn(text.to_string()))
    }
}

impl From<u64> for Lsn {
    fn from(value: u64) -> Lsn {
        Lsn(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let parse = |text: &str| Lsn::parse(text).map(Lsn::get);
        assert_eq!(parse("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(parse("0/0"), Some(0));
        assert_eq!(parse("0/3000028"), Some(0x300_0028));
        assert_eq!(parse("0/03000028"), Some(0x300_0028));
        assert_eq!(parse("ffffffff/ffffffff"), Some(u64::MAX));
        assert_eq!(Lsn(0x16_B374_D848).to_string(), "16/B374D848");
        assert_eq!(Lsn(0x300_0028).to_string(), "0/3000028");
        assert_eq!(Lsn(u64::MAX).to_string(), "FFFFFFFF/FFFFFFFF");
        assert_eq!(Lsn(0).to_string(), "0/0");
        for lsn in [0, 1, 0xFFFF_FFFF, 0x1_0000_0000, 0x1234_5678_9ABC_DEF0] {
            assert_eq!(Lsn::parse(&Lsn(lsn).to_string()), Some(Lsn(lsn)));
            assert_eq!(Lsn(lsn).to_string().parse::<Lsn>(), Ok(Lsn(lsn)));
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "/",
            "0/",
            "/0",
            "16B374D848",
            "1/2/3",
            "123456789/0",
            "0/123456789",
            "g/0",
            "+1/0",
            " 0/1",
            "0/1 ",
        ] {
            assert_eq!(Lsn::parse(bad), None, "{bad:?}");
            assert_eq!(
                bad.parse::<Lsn>().unwrap_err().to_string(),
                format!("'{bad}' is not an LSN (expected X/Y, hexadecimal)")
            );
        }
    }

    #[test]
    fn serializes_as_its_number() {
        let lsn = Lsn(3_325_915_299_880);
        assert_eq!(serde_json::to_string(&lsn).unwrap(), "3325915299880");
        assert_eq!(serde_json::from_str::<Lsn>("3325915299880").unwrap(), lsn);
    }
}
