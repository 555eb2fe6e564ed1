//! Brotli (the `brotli` method), through the pure-Rust `brotli` crate: a raw stream at
//! quality 3 with a 4 MiB window (lgwin 22), as WAL-G's cbrotli writer produces.

use std::io::{self, Read, Write};

const QUALITY: u32 = 3;
const LGWIN: u32 = 22;
/// Size of the encoder's output and the decoder's input buffer.
const BUFFER_SIZE: usize = 32 * 1024;

/// Remembers the first error of the inner writer: the brotli crate drops the error of its
/// final write when it hands the writer back.
struct Latch<W> {
    inner: W,
    error: Option<io::Error>,
}

impl<W: Write> Write for Latch<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|e| self.note(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|e| self.note(e))
    }
}

impl<W> Latch<W> {
    fn note(&mut self, e: &io::Error) {
        if self.error.is_none() && e.kind() != io::ErrorKind::Interrupted {
            self.error = Some(io::Error::new(e.kind(), e.to_string()));
        }
    }
}

/// Streaming encoder.
///
/// Memory: a ring buffer growing to the 4 MiB window plus slack, the quality-3 hash table,
/// command and meta-block buffers, and a 32 KiB output buffer: measured peak about 9 MiB.
pub struct BrotliWriter<W: Write> {
    inner: ::brotli::CompressorWriter<Latch<W>>,
}

impl<W: Write> BrotliWriter<W> {
    pub fn new(inner: W) -> Self {
        let latch = Latch { inner, error: None };
        BrotliWriter {
            inner: ::brotli::CompressorWriter::new(latch, BUFFER_SIZE, QUALITY, LGWIN),
        }
    }

    /// Ends the stream and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        let mut latch = self.inner.into_inner();
        if let Some(e) = latch.error.take() {
            return Err(e);
        }
        latch.inner.flush()?;
        Ok(latch.inner)
    }
}

impl<W: Write> Write for BrotliWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    /// Flushes the encoder (the stream goes on) and the inner writer.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streaming decoder. A stream cut before its last meta-block is an error.
///
/// Memory: a ring buffer up to the stream's window (4 MiB for lgwin 22, 16 MiB at most for
/// standard brotli) plus a 32 KiB input buffer; measured about 4.5 MiB for lgwin-22 streams.
pub fn reader<R: Read>(inner: R) -> impl Read {
    ::brotli::Decompressor::new(inner, BUFFER_SIZE)
}
