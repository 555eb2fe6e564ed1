//! Checks every page header of a WAL segment as its bytes stream by, so that a corrupt object
//! is refused before it reaches recovery. Pure: no I/O.
//!
//! What a genuine archived segment holds (PostgreSQL's xlog.c and xlogreader.c,
//! `XLogReaderValidatePageHeader`): PostgreSQL archives a segment only once it is complete, so
//! every page was written by the server, each beginning with a header:
//! - the page magic of the server version, the same on every page of the segment;
//! - info flags among `XLP_ALL_FLAGS`; the long header (`XLP_LONG_HEADER`) on page 0 and only
//!   there, with a system identifier, this segment size and a power-of-two page size;
//! - the timeline: at most the one in the file name (the first segment of a new timeline
//!   starts with pages copied from its parent), never decreasing from page to page;
//! - the page address: the segment's start LSN plus the page's offset;
//! - a remaining record length exactly when `XLP_FIRST_IS_CONTRECORD` is set.
//!
//! After the last written page there may be pages that are not part of the WAL, where
//! PostgreSQL's reader stops ("unexpected pageaddr", "invalid magic number"): zeros (the rest
//! of a segment after `pg_switch_wal()` is written as zeros since PostgreSQL 11) or, in a
//! segment copied out of `pg_wal` by hand, pages of the older segment the file was recycled
//! from (a smaller address at the same offset). Both are accepted; a page of this segment
//! after them cannot be genuine and is refused, as is any header that matches neither.
//!
//! Undetectable here: a change inside a record's payload, or in a header field PostgreSQL
//! writes but nothing here can predict (the system identifier, a remaining length); the
//! record CRC catches those when PostgreSQL replays the segment.

use super::wal::{MIN_PAGE_MAGIC, Segment};

const SHORT_HEADER_LEN: usize = 24;
const LONG_HEADER_LEN: usize = 40;
const XLP_FIRST_IS_CONTRECORD: u16 = 0x0001;
const XLP_LONG_HEADER: u16 = 0x0002;
/// Every flag any PostgreSQL version sets (`XLP_ALL_FLAGS`, with
/// `XLP_FIRST_IS_OVERWRITE_CONTRECORD` of 15 and the 2021 minor releases).
const XLP_ALL_FLAGS: u16 = 0x000F;
/// Largest page magic accepted: far above every released version (0xD118 for 18).
const MAX_PAGE_MAGIC: u16 = 0xD1FF;

/// Checks the pages of segment `name` fed in order; [`SegmentCheck::finish`] checks the size.
#[derive(Debug)]
pub struct SegmentCheck {
    name: String,
    /// Known once the long header of page 0 is read.
    layout: Option<Layout>,
    /// Bytes seen so far.
    offset: u64,
    /// The current page's header bytes, as far as they came.
    header: Vec<u8>,
    /// Highest timeline of a page so far.
    timeline: u32,
    /// Set at the first page that is not part of this segment's WAL.
    ended_at: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Layout {
    segment: Segment,
    page_size: u64,
    magic: u16,
}

impl SegmentCheck {
    pub fn new(name: &str) -> SegmentCheck {
        SegmentCheck {
            name: name.to_string(),
            layout: None,
            offset: 0,
            header: Vec::with_capacity(LONG_HEADER_LEN),
            timeline: 0,
            ended_at: None,
        }
    }

    /// Feeds the next bytes of the segment.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() {
            let (page_size, header_len) = match self.layout {
                Some(layout) => (layout.page_size, SHORT_HEADER_LEN),
                None => (u64::MAX, LONG_HEADER_LEN),
            };
            let in_page = self.offset % page_size;
            let left_in_page = page_size - in_page;
            if let Some(layout) = self.layout
                && self.offset >= layout.segment.size
            {
                return Err(format!(
                    "longer than the segment size of {} bytes",
                    layout.segment.size
                ));
            }
            let take = if (in_page as usize) < header_len {
                let want = header_len - in_page as usize;
                let n = want.min(data.len());
                self.header.extend_from_slice(&data[..n]);
                if self.header.len() == header_len {
                    let page_start = self.offset + n as u64 - header_len as u64;
                    self.check_header(page_start)?;
                    self.header.clear();
                }
                n
            } else {
                usize::try_from(left_in_page)
                    .unwrap_or(usize::MAX)
                    .min(data.len())
            };
            self.offset += take as u64;
            data = &data[take..];
        }
        Ok(())
    }

    /// Checks that the whole segment was fed; returns it.
    pub fn finish(self) -> Result<Segment, String> {
        let Some(layout) = self.layout else {
            return Err(format!(
                "{} bytes, shorter than a WAL segment header",
                self.offset
            ));
        };
        if self.offset != layout.segment.size {
            return Err(format!(
                "{} bytes instead of {}",
                self.offset, layout.segment.size
            ));
        }
        Ok(layout.segment)
    }

    fn check_header(&mut self, page_start: u64) -> Result<(), String> {
        let h = &self.header;
        let magic = u16::from_le_bytes([h[0], h[1]]);
        let info = u16::from_le_bytes([h[2], h[3]]);
        let timeline = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let pageaddr = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
        let rem_len = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
        let Some(layout) = self.layout else {
            return self.check_first_page(magic, info, timeline, pageaddr, rem_len);
        };
        let at = |what: String| format!("page at offset {page_start}: {what}");
        let expected = layout.segment.start_lsn() + page_start;
        if pageaddr == expected && magic == layout.magic {
            if let Some(end) = self.ended_at {
                return Err(at(format!(
                    "a page of this segment after the end of its WAL at offset {end}"
                )));
            }
            self.check_flags(info, rem_len, false).map_err(at)?;
            if timeline < self.timeline || timeline > layout.segment.timeline {
                return Err(at(format!(
                    "timeline {timeline} after timeline {} in a segment of timeline {}",
                    self.timeline, layout.segment.timeline
                )));
            }
            self.timeline = timeline;
            return Ok(());
        }
        let zeros = h[..SHORT_HEADER_LEN].iter().all(|b| *b == 0);
        let older = (MIN_PAGE_MAGIC..=MAX_PAGE_MAGIC).contains(&magic)
            && info & !XLP_ALL_FLAGS == 0
            && pageaddr < layout.segment.start_lsn()
            && pageaddr % layout.segment.size == page_start;
        if zeros || older {
            self.ended_at.get_or_insert(page_start);
            return Ok(());
        }
        if magic != layout.magic {
            return Err(at(format!(
                "page magic {magic:#06X} is not the segment's {:#06X}",
                layout.magic
            )));
        }
        Err(at(format!(
            "page address {pageaddr:#X} is not this page's {expected:#X}"
        )))
    }

    fn check_flags(&self, info: u16, rem_len: u32, first: bool) -> Result<(), String> {
        if info & !XLP_ALL_FLAGS != 0 {
            return Err(format!("invalid info flags {info:#06X}"));
        }
        if (info & XLP_LONG_HEADER != 0) != first {
            return Err(if first {
                "the first page has no long header".to_string()
            } else {
                "a long header on a page other than the first".to_string()
            });
        }
        // PostgreSQL sets both together, and its reader refuses one without the other.
        if (rem_len != 0) != (info & XLP_FIRST_IS_CONTRECORD != 0) {
            return Err(format!(
                "remaining record length {rem_len} does not match info flags {info:#06X}"
            ));
        }
        Ok(())
    }

    fn check_first_page(
        &mut self,
        magic: u16,
        info: u16,
        timeline: u32,
        pageaddr: u64,
        rem_len: u32,
    ) -> Result<(), String> {
        let h = &self.header;
        let sysid = u64::from_le_bytes([h[24], h[25], h[26], h[27], h[28], h[29], h[30], h[31]]);
        let seg_size = u32::from_le_bytes([h[32], h[33], h[34], h[35]]);
        let page_size = u32::from_le_bytes([h[36], h[37], h[38], h[39]]);
        if !(MIN_PAGE_MAGIC..=MAX_PAGE_MAGIC).contains(&magic) {
            return Err(format!("page magic {magic:#06X} is not a WAL page"));
        }
        self.check_flags(info, rem_len, true)?;
        let segment = Segment::parse(&self.name, u64::from(seg_size)).ok_or_else(|| {
            format!(
                "segment size {seg_size} in the header is not valid for '{}'",
                self.name
            )
        })?;
        if !(1 << 20..=1 << 30).contains(&seg_size) {
            return Err(format!(
                "segment size {seg_size} in the header is not valid"
            ));
        }
        if !page_size.is_power_of_two() || !(1024..=65536).contains(&page_size) {
            return Err(format!("page size {page_size} in the header is not valid"));
        }
        if sysid == 0 {
            return Err("system identifier 0 in the header".to_string());
        }
        if pageaddr != segment.start_lsn() {
            return Err(format!(
                "page address {pageaddr:#X} is not this segment's {:#X}",
                segment.start_lsn()
            ));
        }
        if timeline == 0 || timeline > segment.timeline {
            return Err(format!(
                "page timeline {timeline} in a segment of timeline {}",
                segment.timeline
            ));
        }
        self.timeline = timeline;
        self.layout = Some(Layout {
            segment,
            page_size: u64::from(page_size),
            magic,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: u64 = 1 << 20;
    const PAGE: usize = 8192;
    const NAME: &str = "000000020000000000000003";

    fn header(page: usize, timeline: u32, start: u64) -> Vec<u8> {
        let first = page == 0;
        let mut h = vec![0u8; if first { 40 } else { 24 }];
        h[0..2].copy_from_slice(&0xD110u16.to_le_bytes());
        h[2..4].copy_from_slice(&(if first { 2u16 } else { 0 }).to_le_bytes());
        h[4..8].copy_from_slice(&timeline.to_le_bytes());
        h[8..16].copy_from_slice(&(start + (page * PAGE) as u64).to_le_bytes());
        if first {
            h[24..32].copy_from_slice(&7u64.to_le_bytes());
            h[32..36].copy_from_slice(&(SEG as u32).to_le_bytes());
            h[36..40].copy_from_slice(&(PAGE as u32).to_le_bytes());
        }
        h
    }

    /// A 1 MiB segment 3 of timeline 2: pages `0..written` of this segment (the first
    /// `copied` of them on timeline 1), then `tail`.
    fn segment(written: usize, copied: usize, tail: Tail) -> Vec<u8> {
        let start = 3 * SEG;
        let mut data = vec![0x5Au8; SEG as usize];
        for page in 0..SEG as usize / PAGE {
            let h = if page < written {
                header(page, if page < copied { 1 } else { 2 }, start)
            } else {
                match tail {
                    Tail::Zeros => vec![0u8; PAGE],
                    Tail::Older => header(page, 1, start - 2 * SEG),
                }
            };
            data[page * PAGE..page * PAGE + h.len()].copy_from_slice(&h);
        }
        data
    }

    #[derive(Clone, Copy)]
    enum Tail {
        Zeros,
        Older,
    }

    fn check(data: &[u8], chunk: usize) -> Result<Segment, String> {
        let mut c = SegmentCheck::new(NAME);
        for part in data.chunks(chunk) {
            c.feed(part)?;
        }
        c.finish()
    }

    #[test]
    fn genuine_segments_pass_in_any_chunking() {
        for data in [
            segment(128, 0, Tail::Zeros),
            segment(5, 2, Tail::Zeros),
            segment(40, 40, Tail::Older),
            segment(1, 1, Tail::Zeros),
        ] {
            for chunk in [1 << 20, 65536, 8191, 7, 1] {
                if chunk == 1 && data.len() > 1 << 20 {
                    continue;
                }
                assert!(check(&data, chunk).is_ok(), "{:?}", check(&data, chunk));
            }
        }
    }

    #[test]
    fn a_flip_in_any_page_header_field_is_refused() {
        let good = segment(100, 3, Tail::Zeros);
        // magic, info, timeline, page address (low and high bits), remaining length.
        for (page, byte, bit) in [
            (0, 0, 0),
            (0, 2, 4),
            (0, 4, 1),
            (0, 9, 0),
            (0, 33, 0),
            (5, 1, 6),
            (5, 2, 0),
            (5, 2, 1),
            (5, 3, 0),
            (5, 4, 2),
            (5, 9, 5),
            (5, 10, 4),
            (5, 14, 0),
            (5, 16, 0),
            (99, 0, 0),
            (99, 8, 7),
            (110, 0, 0),
            (110, 13, 0),
        ] {
            let mut bad = good.clone();
            bad[page * PAGE + byte] ^= 1 << bit;
            assert!(
                check(&bad, 65536).is_err(),
                "flip of bit {bit} of byte {byte} of page {page} passed"
            );
        }
    }

    #[test]
    fn wrong_sizes_and_misfiled_segments_are_refused() {
        let good = segment(128, 0, Tail::Zeros);
        assert!(check(&good[..good.len() - 1], 65536).is_err());
        assert!(check(&good[..100], 65536).is_err());
        let mut longer = good.clone();
        longer.push(0);
        assert!(check(&longer, 65536).is_err());
        let mut other = SegmentCheck::new("000000020000000000000004");
        assert!(other.feed(&good).is_err());
        let mut lower_timeline = SegmentCheck::new("000000010000000000000003");
        assert!(lower_timeline.feed(&good).is_err());
    }

    #[test]
    fn a_page_of_the_segment_after_its_end_is_refused() {
        let mut bad = segment(100, 0, Tail::Zeros);
        bad[50 * PAGE..50 * PAGE + 24].fill(0);
        assert!(check(&bad, 65536).is_err());
        // The same zeroed header on the last written page is an end of WAL, as PostgreSQL
        // reads it.
        let mut end = segment(100, 0, Tail::Zeros);
        end[99 * PAGE..99 * PAGE + 24].fill(0);
        assert!(check(&end, 65536).is_ok());
    }
}
