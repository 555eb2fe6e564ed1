//! Synthetic WAL segments: 16 MiB of WAL-like bytes in 8 KiB pages, each behind the page header
//! PostgreSQL writes (the long one on page 0): walg checks every page header when it restores
//! a segment.

pub const SEGMENT_SIZE: usize = 16 * 1024 * 1024;
pub const PAGE_SIZE: usize = 8192;

/// The bytes of segment `name` (24 hex digits); `seed` varies the content.
pub fn fake_segment(name: &str, seed: u64) -> Vec<u8> {
    fake_segment_of_size(name, seed, SEGMENT_SIZE)
}

/// The bytes of segment `name` for a cluster with `size`-byte segments (a power of two from
/// 1 MiB to 1 GiB).
pub fn fake_segment_of_size(name: &str, seed: u64, size: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(4) {
            data.extend_from_slice(&[(x >> 8) as u8; 64]);
        } else {
            data.extend_from_slice(&x.to_le_bytes());
        }
    }
    data.truncate(size);
    let timeline = u32::from_str_radix(&name[0..8], 16).expect("timeline");
    let log = u64::from_str_radix(&name[8..16], 16).expect("log");
    let seg = u64::from_str_radix(&name[16..24], 16).expect("segment");
    let start_lsn = (log * (0x1_0000_0000 / size as u64) + seg) * size as u64;
    for (index, page) in data.chunks_mut(PAGE_SIZE).enumerate() {
        page[0..2].copy_from_slice(&0xD110u16.to_le_bytes()); // PostgreSQL 15 page magic
        page[2..4].copy_from_slice(&u16::from(index == 0).wrapping_mul(2).to_le_bytes()); // XLP_LONG_HEADER on page 0
        page[4..8].copy_from_slice(&timeline.to_le_bytes());
        page[8..16].copy_from_slice(&(start_lsn + (index * PAGE_SIZE) as u64).to_le_bytes());
        page[16..24].fill(0); // no continued record
    }
    data[24..32].copy_from_slice(&0x7357_0000_0000_0001u64.to_le_bytes()); // system identifier
    data[32..36].copy_from_slice(&(size as u32).to_le_bytes());
    data[36..40].copy_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
    data
}
