//! Synthetic WAL segments: 16 MiB of WAL-like bytes behind the long page header PostgreSQL
//! writes at the start of a segment (walg checks that header when it restores a segment).

pub const SEGMENT_SIZE: usize = 16 * 1024 * 1024;

/// The bytes of segment `name` (24 hex digits); `seed` varies the content.
pub fn fake_segment(name: &str, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut data = Vec::with_capacity(SEGMENT_SIZE);
    while data.len() < SEGMENT_SIZE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(4) {
            data.extend_from_slice(&[(x >> 8) as u8; 64]);
        } else {
            data.extend_from_slice(&x.to_le_bytes());
        }
    }
    data.truncate(SEGMENT_SIZE);
    let timeline = u32::from_str_radix(&name[0..8], 16).expect("timeline");
    let log = u64::from_str_radix(&name[8..16], 16).expect("log");
    let seg = u64::from_str_radix(&name[16..24], 16).expect("segment");
    let start_lsn = (log * 256 + seg) * SEGMENT_SIZE as u64;
    data[0..2].copy_from_slice(&0xD110u16.to_le_bytes()); // PostgreSQL 15 page magic
    data[2..4].copy_from_slice(&2u16.to_le_bytes()); // XLP_LONG_HEADER
    data[4..8].copy_from_slice(&timeline.to_le_bytes());
    data[8..16].copy_from_slice(&start_lsn.to_le_bytes());
    data[16..32].fill(0);
    data[32..36].copy_from_slice(&(SEGMENT_SIZE as u32).to_le_bytes());
    data
}
