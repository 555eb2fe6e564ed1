//! WAL file names (`TTTTTTTTXXXXXXXXYYYYYYYY`), segment arithmetic and page-header checks.
//! Pure: no I/O.

use std::fmt;

/// A WAL segment: timeline and segment number (LSN / segment size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Segment {
    pub timeline: u32,
    /// The segment number: start LSN divided by the segment size.
    pub number: u64,
    /// Segment size in bytes.
    pub size: u64,
}

/// The oldest PostgreSQL WAL page magic WAL-G accepts (9.x); every later version is larger.
pub const MIN_PAGE_MAGIC: u16 = 0xD061;

impl Segment {
    /// Parses a 24-hex-digit segment file name. `None` for anything else (history files,
    /// `.partial`, `.backup`, lower case).
    pub fn parse(name: &str, size: u64) -> Option<Segment> {
        if name.len() != 24
            || !name
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
        {
            return None;
        }
        if size == 0 || size > 1 << 32 || !size.is_power_of_two() {
            return None;
        }
        let timeline = u32::from_str_radix(&name[0..8], 16).ok()?;
        let log = u64::from_str_radix(&name[8..16], 16).ok()?;
        let seg = u64::from_str_radix(&name[16..24], 16).ok()?;
        let per_log = Self::per_log(size);
        if seg >= per_log {
            return None;
        }
        Some(Segment {
            timeline,
            number: log * per_log + seg,
            size,
        })
    }

    fn per_log(size: u64) -> u64 {
        0x1_0000_0000 / size
    }

    /// The next segment on the same timeline.
    pub fn next(self) -> Segment {
        Segment {
            number: self.number + 1,
            ..self
        }
    }

    /// The LSN of the segment's first byte.
    pub fn start_lsn(self) -> u64 {
        self.number * self.size
    }

    /// The file name.
    pub fn name(self) -> String {
        let per_log = Self::per_log(self.size);
        format!(
            "{:08X}{:08X}{:08X}",
            self.timeline,
            self.number / per_log,
            self.number % per_log
        )
    }

    /// Checks the first page header of a segment's bytes: a known page magic, this timeline
    /// or an earlier one, and this segment's address. Catches a file that holds another segment or garbage.
    pub fn check_first_page(self, head: &[u8]) -> Result<(), String> {
        if head.len() < 16 {
            return Err("shorter than a WAL page header".to_string());
        }
        let magic = u16::from_le_bytes([head[0], head[1]]);
        if magic < MIN_PAGE_MAGIC {
            return Err(format!("page magic {magic:#06X} is not a WAL page"));
        }
        let timeline = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let mut addr = [0u8; 8];
        addr.copy_from_slice(&head[8..16]);
        let pageaddr = u64::from_le_bytes(addr);
        if pageaddr != self.start_lsn() {
            return Err(format!(
                "page address {pageaddr:#X} is not this segment's {:#X}",
                self.start_lsn()
            ));
        }
        // The first segment of a new timeline starts with pages copied from its parent.
        if timeline == 0 || timeline > self.timeline {
            return Err(format!(
                "page timeline {timeline} in a segment of timeline {}",
                self.timeline
            ));
        }
        Ok(())
    }
}

/// Size of the long page header that starts every segment.
pub const LONG_HEADER_LEN: usize = 40;
const XLP_LONG_HEADER: u16 = 0x0002;

/// Reads the segment size recorded in a segment's first (long) page header, and checks that
/// the header belongs to the segment `name`. Returns the segment, sized from the header.
pub fn check_segment_header(name: &str, head: &[u8]) -> Result<Segment, String> {
    if head.len() < LONG_HEADER_LEN {
        return Err("shorter than a WAL segment header".to_string());
    }
    let info = u16::from_le_bytes([head[2], head[3]]);
    if info & XLP_LONG_HEADER == 0 {
        return Err("the first page has no long header".to_string());
    }
    let size = u64::from(u32::from_le_bytes([head[32], head[33], head[34], head[35]]));
    let segment = Segment::parse(name, size)
        .ok_or_else(|| format!("segment size {size} in the header is not valid for '{name}'"))?;
    segment.check_first_page(head)?;
    Ok(segment)
}

/// The checks a stored WAL file gets while it is restored, chosen by its name: every page
/// header of a segment, the lines of a history file; nothing for other files (`.partial`,
/// `.backup`), whose content PostgreSQL checks itself.
#[derive(Debug)]
pub enum WalCheck {
    Segment(super::wal_pages::SegmentCheck),
    History(super::history::HistoryCheck),
    Unchecked,
}

impl WalCheck {
    pub fn for_name(name: &str) -> WalCheck {
        if name.len() == 24 && name.bytes().all(|c| c.is_ascii_hexdigit()) {
            return WalCheck::Segment(super::wal_pages::SegmentCheck::new(name));
        }
        match super::history::HistoryCheck::new(name) {
            Some(check) => WalCheck::History(check),
            None => WalCheck::Unchecked,
        }
    }

    /// What the file is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            WalCheck::Segment(_) => "segment",
            WalCheck::History(_) => "history file",
            WalCheck::Unchecked => "file",
        }
    }

    /// Feeds the next bytes of the file.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), String> {
        match self {
            WalCheck::Segment(check) => check.feed(data),
            WalCheck::History(check) => check.feed(data),
            WalCheck::Unchecked => Ok(()),
        }
    }

    /// Checks the end of the file.
    pub fn finish(self) -> Result<(), String> {
        match self {
            WalCheck::Segment(check) => check.finish().map(drop),
            WalCheck::History(check) => check.finish(),
            WalCheck::Unchecked => Ok(()),
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB16: u64 = 16 * 1024 * 1024;

    #[test]
    fn parse_format_round_trip() {
        let s = Segment::parse("0000000100000000000000FF", MIB16).unwrap();
        assert_eq!((s.timeline, s.number), (1, 255));
        assert_eq!(s.next().name(), "000000010000000100000000");
        assert_eq!(s.next().start_lsn(), 0x1_0000_0000);
        assert_eq!(
            Segment::parse("00000002000000A3000000C1", MIB16)
                .unwrap()
                .name(),
            "00000002000000A3000000C1"
        );
        // 1 GiB segments: 4 per log id.
        let big = Segment::parse("000000010000000000000003", 1 << 30).unwrap();
        assert_eq!(big.next().name(), "000000010000000100000000");
    }

    #[test]
    fn rejects_non_segments() {
        for name in [
            "00000002.history",
            "000000010000000000000001.partial",
            "00000001000000000000000g",
            "0000000100000000000001",
            "000000010000000000000100",
        ] {
            assert!(Segment::parse(name, MIB16).is_none(), "{name}");
        }
        assert!(Segment::parse("000000010000000000000001", 3).is_none());
    }

    fn long_header(segment: Segment) -> Vec<u8> {
        let mut head = vec![0u8; LONG_HEADER_LEN];
        head[0..2].copy_from_slice(&0xD110u16.to_le_bytes());
        head[2..4].copy_from_slice(&XLP_LONG_HEADER.to_le_bytes());
        head[4..8].copy_from_slice(&segment.timeline.to_le_bytes());
        head[8..16].copy_from_slice(&segment.start_lsn().to_le_bytes());
        head[32..36].copy_from_slice(&u32::try_from(segment.size).unwrap().to_le_bytes());
        head
    }

    #[test]
    fn segment_header_gives_size() {
        let s = Segment::parse("000000020000000100000003", 64 * 1024 * 1024).unwrap();
        let head = long_header(s);
        assert_eq!(
            check_segment_header("000000020000000100000003", &head),
            Ok(s)
        );
        assert!(check_segment_header("000000020000000100000004", &head).is_err());
        assert!(check_segment_header("000000010000000100000003", &head).is_err());
        let mut short = head.clone();
        short[2] = 0;
        assert!(check_segment_header("000000020000000100000003", &short).is_err());
    }

    #[test]
    fn first_page_check() {
        let s = Segment::parse("000000010000000000000003", MIB16).unwrap();
        let mut head = vec![0u8; 40];
        head[0..2].copy_from_slice(&0xD110u16.to_le_bytes());
        head[4..8].copy_from_slice(&1u32.to_le_bytes());
        head[8..16].copy_from_slice(&(3 * MIB16).to_le_bytes());
        assert!(s.check_first_page(&head).is_ok());
        assert!(s.next().check_first_page(&head).is_err());
        // A segment of timeline 2 may start with a page of timeline 1, never of timeline 3.
        let mut later = s;
        later.timeline = 2;
        assert!(later.check_first_page(&head).is_ok());
        head[4..8].copy_from_slice(&3u32.to_le_bytes());
        assert!(later.check_first_page(&head).is_err());
        head[4..8].copy_from_slice(&1u32.to_le_bytes());
        head[0] = 0;
        head[1] = 0;
        assert!(s.check_first_page(&head).is_err());
        assert!(s.check_first_page(&[0u8; 4]).is_err());
    }
}
