//! gzip (read only, `.gz` objects): RFC 1952, several members allowed.

use std::io::{BufReader, Read};

use flate2::bufread::MultiGzDecoder;

/// Streaming decoder of one or more gzip members.
///
/// Memory: the 32 KiB deflate window, about 10 KiB of inflate state and an 8 KiB input buffer.
pub fn reader<R: Read>(inner: R) -> impl Read {
    MultiGzDecoder::new(BufReader::new(inner))
}
