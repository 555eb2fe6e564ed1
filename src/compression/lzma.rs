//! LZMA "alone" format (the `lzma` method), through liblzma: the 13-byte header
//! `5D 00 00 80 00 FF FF FF FF FF FF FF FF` (lc 3, lp 0, pb 2, 8 MiB dictionary, unknown size)
//! and data ended by an end-of-stream marker, as WAL-G's writer produces.

use std::io::{self, Read, Write};

use liblzma::read::XzDecoder;
use liblzma::stream::{LzmaOptions, Stream};
use liblzma::write::XzEncoder;

/// Dictionary size WAL-G writes.
const DICT_SIZE: u32 = 8 * 1024 * 1024;
/// Compression preset (xz's default level); only the dictionary size is changed.
const PRESET: u32 = 6;

fn lzma_err(e: liblzma::stream::Error) -> io::Error {
    io::Error::other(format!("lzma: {e}"))
}

/// Streaming encoder.
///
/// Memory: liblzma's preset-6 encoder with an 8 MiB dictionary (binary-tree match finder)
/// takes about 93 MiB (measured), plus a 32 KiB output buffer. This is the one method that
/// does not fit a small memory budget; it is what WAL-G's `lzma` writes.
pub struct LzmaWriter<W: Write> {
    inner: XzEncoder<W>,
}

impl<W: Write> LzmaWriter<W> {
    pub fn new(inner: W) -> io::Result<Self> {
        let mut options = LzmaOptions::new_preset(PRESET).map_err(lzma_err)?;
        options.dict_size(DICT_SIZE);
        let stream = Stream::new_lzma_encoder(&options).map_err(lzma_err)?;
        Ok(LzmaWriter {
            inner: XzEncoder::new_stream(inner, stream),
        })
    }

    /// Writes the end-of-stream marker and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        let mut inner = self.inner.finish()?;
        inner.flush()?;
        Ok(inner)
    }
}

impl<W: Write> Write for LzmaWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    /// The alone format has no sync flush: data still inside the encoder stays there until
    /// `finish`; only the inner writer is flushed.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.get_mut().flush()
    }
}

/// The most memory a decoder may take: room for a 64 MiB dictionary (`xz --format=lzma -9`)
/// and the decoder state. The header of an object names its dictionary size, up to 4 GiB;
/// a larger one than this is refused as corrupt ("memory limit reached") instead of being
/// allocated.
pub const DECODER_MEMORY_LIMIT: u64 = 65 * 1024 * 1024;

/// Streaming decoder of the alone format, with known or unknown size. Truncation is
/// `UnexpectedEof` ("premature eof"), corrupt data an error from liblzma.
///
/// Memory: the dictionary size the header names (8 MiB for WAL-G's files, at most 64 MiB:
/// [`DECODER_MEMORY_LIMIT`]) plus about 30 KiB of decoder state and a 32 KiB input buffer;
/// measured about 8.3 MiB for WAL-G's files.
pub fn reader<R: Read>(inner: R) -> io::Result<impl Read> {
    let stream = Stream::new_lzma_decoder(DECODER_MEMORY_LIMIT).map_err(lzma_err)?;
    Ok(XzDecoder::new_stream(inner, stream))
}
