//! WAL segment checks of `wal-fetch` and `wal-prefetch`: a 24-character segment name and the
//! head of the segment's bytes. An accepted header must name exactly that segment, with a
//! valid segment size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walg::pg::wal::{Segment, check_segment_header};

fuzz_target!(|data: &[u8]| {
    if data.len() < 24 {
        return;
    }
    let (name, head) = data.split_at(24);
    let Ok(name) = std::str::from_utf8(name) else {
        return;
    };
    match check_segment_header(name, head) {
        Ok(segment) => {
            assert_eq!(
                segment.name(),
                name,
                "the header check accepted another segment"
            );
            assert!(segment.size.is_power_of_two() && segment.size <= 1 << 32);
            assert!(segment.check_first_page(head).is_ok());
            assert!(segment.next().check_first_page(head).is_err());
            assert_eq!(Segment::parse(name, segment.size), Some(segment));
        }
        // The error quotes the name, which PostgreSQL gives (`%f`), not storage.
        Err(e) => assert!(
            name.contains('\n') || !e.contains('\n'),
            "multi-line error: {e}"
        ),
    }
    for size in [1u64 << 20, 16 << 20, 1 << 30, 1 << 32, 3 << 20, 0, u64::MAX] {
        if let Some(segment) = Segment::parse(name, size) {
            assert_eq!(segment.name(), name);
            assert_eq!(segment.start_lsn() / size, segment.number);
            let _ = segment.check_first_page(head);
            let _ = segment.next().name();
        }
    }
});
