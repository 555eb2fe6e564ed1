//! Delta increments: the tar member content of a file a delta backup sends as changed pages
//! only (`IsIncremented` in `files_metadata.json`).
//!
//! Two formats are read, one is written:
//! * `wi1`, WAL-G's (written and read): `"wi1" 0x55 | u64 file size | u32 N | N × u32 block
//!   numbers | N pages`, little-endian. After applying, the file is at least the recorded size
//!   long; WAL-G may list pages appended after it took the size, which extend it further.
//! * PostgreSQL 17's native `INCREMENTAL` layout, which another WAL-G-compatible writer stores
//!   when its sentinel says `"IncrementFormat": "native"` (read only; the reader dispatches on
//!   the magic): `u32 0xd3ae1f0d | u32 N | u32 truncation length in blocks | N × u32 block
//!   numbers | zero padding to a page boundary when N > 0 | N pages`; after applying, the file
//!   is exactly the truncation length long.
//!
//! Pages are [`BLOCK_SIZE`] bytes. No relation segment file holds more than
//! [`MAX_SEGMENT_BLOCKS`] pages, which bounds every block number a reader accepts.

/// The page size increments are made of (PostgreSQL's default `BLCKSZ`; walg makes deltas only
/// of clusters built with it).
pub const BLOCK_SIZE: usize = 8192;

/// Pages in a 1 GiB relation segment file: PostgreSQL never makes a larger one, so a block
/// number at or past this is refused.
pub const MAX_SEGMENT_BLOCKS: u32 = 131_072;

/// The first four bytes of a `wi1` increment.
pub const WI1_MAGIC: [u8; 4] = [b'w', b'i', b'1', 0x55];

/// Length of the `wi1` header before the block numbers: magic, file size, count.
pub const WI1_HEADER_LEN: u64 = 16;

/// The magic number (a little-endian `u32`) of PostgreSQL's native incremental file.
pub const NATIVE_MAGIC: u32 = 0xd3ae_1f0d;

/// Length of the native header before the block numbers: magic, count, truncation length.
pub const NATIVE_HEADER_LEN: u64 = 12;

/// The length of a `wi1` member holding `blocks` pages.
pub fn wi1_len(blocks: usize) -> u64 {
    let n = blocks as u64;
    WI1_HEADER_LEN + 4 * n + n * BLOCK_SIZE as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wi1_member_is_its_header_block_numbers_and_pages() {
        assert_eq!(wi1_len(0), 16);
        assert_eq!(wi1_len(2), 16 + 8 + 2 * 8192);
    }
}
