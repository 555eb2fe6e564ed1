//! Log sequence numbers in PostgreSQL's text form (`16/B374D848`).

/// Parses `X/Y` (each 1 to 8 hex digits, either case, zero padding allowed) into a 64-bit LSN.
pub fn lsn_from_text(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    let part = |s: &str| -> Option<u64> {
        if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(s, 16).ok()
    };
    Some((part(high)? << 32) | part(low)?)
}

/// Formats an LSN as PostgreSQL prints it: `16/B374D848` (upper case, no padding).
pub fn lsn_to_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(lsn_from_text("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(lsn_from_text("0/0"), Some(0));
        assert_eq!(lsn_from_text("0/3000028"), Some(0x300_0028));
        assert_eq!(lsn_from_text("0/03000028"), Some(0x300_0028));
        assert_eq!(lsn_from_text("ffffffff/ffffffff"), Some(u64::MAX));
        assert_eq!(lsn_to_text(0x16_B374_D848), "16/B374D848");
        assert_eq!(lsn_to_text(0x300_0028), "0/3000028");
        assert_eq!(lsn_to_text(u64::MAX), "FFFFFFFF/FFFFFFFF");
        for lsn in [0, 1, 0xFFFF_FFFF, 0x1_0000_0000, 0x1234_5678_9ABC_DEF0] {
            assert_eq!(lsn_from_text(&lsn_to_text(lsn)), Some(lsn));
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
            assert_eq!(lsn_from_text(bad), None, "{bad:?}");
        }
    }
}
