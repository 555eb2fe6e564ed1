//! A pass-through reader that follows the block structure of a tar stream and refuses extended
//! headers (GNU long name `L`, GNU long link `K`, PAX `x` and `g`) larger than
//! [`MAX_EXTENDED_HEADER`], before anyone reads their content.
//!
//! The `tar` crate reads a whole extended header into memory, however large its declared size:
//! a few compressed bytes declaring a 2 GiB long name would take gigabytes. Go's `archive/tar`
//! caps these headers at 1 MiB; so does walg. The guard sees every 512-byte header as it streams
//! by, computes where the next header starts exactly as the parser does (header size, or the
//! `size` record of a preceding PAX header, GNU sparse extension blocks), and fails the read
//! that would deliver the first byte of an oversized extended header. Its own memory is one
//! header block plus at most one capped PAX header.

use std::io::{self, Read};

/// The largest extended header accepted, in bytes (Go's `archive/tar` limit).
pub const MAX_EXTENDED_HEADER: u64 = 1 << 20;

const BLOCK: u64 = 512;

/// See the module documentation.
pub struct HeaderGuard<R> {
    inner: R,
    /// Bytes delivered so far.
    pos: u64,
    /// Where the next header block starts.
    next_header: u64,
    /// The header block being collected.
    header: Vec<u8>,
    /// GNU sparse extension blocks still to pass before the member's content.
    sparse_blocks_pending: bool,
    /// The content length (whole blocks) of the sparse member whose extension blocks pass.
    content_blocks_after_sparse: u64,
    /// Content of a PAX `x` header being collected (to learn the next member's size).
    pax: Option<PaxCapture>,
    /// The `size` record of the last PAX `x` header, for the member it describes.
    pax_size: Option<u64>,
    /// A zero block was seen: the archive ended, the rest is not headers.
    ended: bool,
}

struct PaxCapture {
    end: u64,
    data: Vec<u8>,
}

impl<R: Read> HeaderGuard<R> {
    /// Wraps a decompressed tar stream.
    pub fn new(inner: R) -> Self {
        HeaderGuard {
            inner,
            pos: 0,
            next_header: 0,
            header: Vec::with_capacity(BLOCK as usize),
            sparse_blocks_pending: false,
            content_blocks_after_sparse: 0,
            pax: None,
            pax_size: None,
            ended: false,
        }
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Looks at the bytes `data`, delivered at stream offset `start`.
    fn observe(&mut self, start: u64, data: &[u8]) -> io::Result<()> {
        let mut offset = start;
        let mut rest = data;
        while !rest.is_empty() && !self.ended {
            if let Some(pax) = &mut self.pax {
                let take = usize::try_from((pax.end - offset).min(rest.len() as u64))
                    .unwrap_or(rest.len());
                pax.data.extend_from_slice(&rest[..take]);
                if offset + take as u64 == pax.end {
                    let data = std::mem::take(&mut pax.data);
                    self.pax = None;
                    self.pax_size = pax_record(&data, b"size");
                }
            }
            if offset + (rest.len() as u64) <= self.next_header {
                return Ok(());
            }
            if offset < self.next_header {
                let skip = usize::try_from(self.next_header - offset).unwrap_or(rest.len());
                rest = &rest[skip..];
                offset = self.next_header;
                continue;
            }
            // `offset` is inside the header block at `next_header`.
            let want = BLOCK as usize - self.header.len();
            let take = want.min(rest.len());
            self.header.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            offset += take as u64;
            if self.header.len() == BLOCK as usize {
                let header = std::mem::take(&mut self.header);
                self.header.reserve(BLOCK as usize);
                self.parse(&header, offset)?;
            }
        }
        Ok(())
    }

    /// Handles one complete header block that ended at `end`.
    fn parse(&mut self, header: &[u8], end: u64) -> io::Result<()> {
        if self.sparse_blocks_pending {
            // A GNU sparse extension block: byte 504 says whether another follows.
            self.sparse_blocks_pending = header[504] != 0;
            self.next_header = if self.sparse_blocks_pending {
                end
            } else {
                end.checked_add(self.content_blocks_after_sparse)
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "tar size overflow")
                    })?
            };
            return Ok(());
        }
        if header.iter().all(|&b| b == 0) {
            self.ended = true;
            return Ok(());
        }
        let typeflag = header[156];
        let Some(declared) = numeric(&header[124..136]) else {
            // Not a header the parser accepts either; it reports the error.
            self.ended = true;
            return Ok(());
        };
        let extended = matches!(typeflag, b'L' | b'K' | b'x' | b'g');
        let size = if extended {
            if declared > MAX_EXTENDED_HEADER {
                let kind = match typeflag {
                    b'L' => "GNU long name",
                    b'K' => "GNU long link name",
                    b'x' => "PAX",
                    _ => "PAX global",
                };
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "a {kind} header declares {declared} bytes, more than the \
                         {MAX_EXTENDED_HEADER}-byte limit"
                    ),
                ));
            }
            declared
        } else {
            self.pax_size.take().unwrap_or(declared)
        };
        let blocks = size
            .checked_add(BLOCK - 1)
            .map(|s| s & !(BLOCK - 1))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "tar size overflow"))?;
        if typeflag == b'g' {
            // The parser hands a global header out as a member, which uses up a pending PAX
            // header.
            self.pax_size = None;
        }
        if typeflag == b'x' {
            self.pax = Some(PaxCapture {
                end: end + size,
                data: Vec::with_capacity(usize::try_from(size).unwrap_or(0)),
            });
            self.pax_size = None;
        }
        // GNU sparse: byte 482 says whether extension blocks follow the header.
        if typeflag == b'S' && header[482] != 0 {
            self.sparse_blocks_pending = true;
            self.content_blocks_after_sparse = blocks;
            self.next_header = end;
        } else {
            self.next_header = end
                .checked_add(blocks)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "tar size overflow"))?;
        }
        Ok(())
    }
}

impl<R: Read> Read for HeaderGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let start = self.pos;
        self.pos += n as u64;
        self.observe(start, &buf[..n])?;
        Ok(n)
    }
}

/// A tar numeric field, read exactly as the parser reads it: GNU base-256 (the last 8 bytes,
/// big-endian) when the high bit of the first byte is set, otherwise octal text up to the first
/// NUL, surrounding white space trimmed.
fn numeric(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let tail = &field[field.len().saturating_sub(8)..];
        return Some(tail.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)));
    }
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let text = std::str::from_utf8(&field[..end]).ok()?;
    u64::from_str_radix(text.trim(), 8).ok()
}

/// The numeric value of the record `key` in PAX extended header `data`, read exactly as the
/// parser reads it: `"<len> key=value"` lines split at `\n`, the first matching record wins,
/// and any malformed record before it means "none".
fn pax_record(data: &[u8], key: &[u8]) -> Option<u64> {
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            return None;
        }
        let space = line.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&line[..space]).ok()?.parse().ok()?;
        if line.len() + 1 != len {
            return None;
        }
        let record = &line[space + 1..];
        let eq = record.iter().position(|&b| b == b'=')?;
        if &record[..eq] == key {
            return std::str::from_utf8(&record[eq + 1..]).ok()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_as_the_parser_reads_them() {
        let mut field = [0u8; 12];
        field[..11].copy_from_slice(b"00000001750");
        assert_eq!(numeric(&field), Some(0o1750));
        assert_eq!(numeric(b"  17 \0\0\0\0\0\0\0"), Some(0o17));
        assert_eq!(numeric(b"12 34\0\0\0\0\0\0\0"), None);
        // Base-256: only the last 8 bytes count, whatever precedes them.
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[1] = 0xff;
        field[8..].copy_from_slice(&(2u32 << 30).to_be_bytes());
        assert_eq!(numeric(&field), Some(2 << 30));
    }

    #[test]
    fn pax_records_are_read_as_the_parser_reads_them() {
        assert_eq!(pax_record(b"11 size=42\n", b"size"), Some(42));
        assert_eq!(pax_record(b"12 path=abc\n11 size=42\n", b"size"), Some(42));
        assert_eq!(pax_record(b"11 size=42\n11 size=43\n", b"size"), Some(42));
        assert_eq!(pax_record(b"99 size=42\n", b"size"), None);
        assert_eq!(pax_record(b"12 path=abc\n", b"size"), None);
    }
}
