//! Zstandard (the `zstd` method), through libzstd: one standard frame with a content checksum
//! and no content size, at the level `WALG_ZSTD_LEVEL` names; reading takes any number of
//! concatenated frames.

use std::io::{self, Read, Write};

use super::ZstdLevel;

/// The libzstd level standing for a WAL-G (klauspost) named level.
pub fn level(level: ZstdLevel) -> i32 {
    match level {
        ZstdLevel::Fastest => 1,
        ZstdLevel::Default => 3,
        ZstdLevel::Better => 7,
        ZstdLevel::Best => 11,
    }
}

/// Streaming encoder. The window is libzstd's choice for the level: 512 KiB at level 1, 2 MiB
/// at levels 3 and 7, 4 MiB at level 11, all within the 8 MiB WAL-G's encoder allows itself.
/// (Setting `windowLog` would not cap it but force it, costing memory.)
///
/// Memory (libzstd, input of unknown size; measured peak, including the 128 KiB output
/// buffer): level 1 about 1.1 MiB, level 3 about 3.2 MiB, level 7 about 7.7 MiB, level 11
/// about 25 MiB (window plus match tables).
pub struct ZstdWriter<W: Write> {
    inner: ::zstd::stream::write::Encoder<'static, W>,
}

impl<W: Write> ZstdWriter<W> {
    pub fn new(inner: W, zstd_level: ZstdLevel) -> io::Result<Self> {
        let mut encoder = ::zstd::stream::write::Encoder::new(inner, level(zstd_level))?;
        encoder.include_checksum(true)?;
        encoder.include_contentsize(false)?;
        Ok(ZstdWriter { inner: encoder })
    }

    /// Ends the frame and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        let mut inner = self.inner.finish()?;
        inner.flush()?;
        Ok(inner)
    }
}

impl<W: Write> Write for ZstdWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    /// Ends the current block (the frame goes on) and flushes the inner writer.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streaming decoder of concatenated frames. A stream ending inside a frame, or holding no
/// frame at all, is `UnexpectedEof`; a corrupt frame or checksum mismatch an error.
///
/// Memory: the frame's window (2 MiB at level 3, 4 MiB at level 11, 8 MiB for `--long=23`;
/// libzstd refuses windows over 128 MiB) plus buffers; measured about 3 MiB for level-3
/// frames, 5 MiB for level-11 frames.
pub fn reader<R: Read>(inner: R) -> io::Result<impl Read> {
    ::zstd::stream::read::Decoder::new(inner)
}
