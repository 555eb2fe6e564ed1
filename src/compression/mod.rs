//! Compression: the closed set of WAL-G methods, their file extensions, streaming encoders and
//! decoders. Sync `Write`/`Read` adapters; callers run them on blocking threads.
//!
//! This file holds the public API and picks the codec; each format lives in its own file
//! (`lz4`, `lzma`, `zstd`, `brotli`, `gzip`), and `fuse` gives every decoder the same error
//! rules. All of them stream with bounded memory, stated on each encoder and decoder.

use std::io::{self, Read, Write};

pub mod brotli;
mod fuse;
pub mod gzip;
pub mod lz4;
pub mod lzma;
pub mod zstd;

/// A method `WALG_COMPRESSION_METHOD` can select for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Lz4,
    Lzma,
    Zstd,
    Brotli,
    None,
}

impl Method {
    /// Parses a `WALG_COMPRESSION_METHOD` value: exactly `lz4`, `lzma`, `zstd`, `brotli`, `none`.
    pub fn parse(value: &str) -> Option<Method> {
        match value {
            "lz4" => Some(Method::Lz4),
            "lzma" => Some(Method::Lzma),
            "zstd" => Some(Method::Zstd),
            "brotli" => Some(Method::Brotli),
            "none" => Some(Method::None),
            _ => None,
        }
    }

    /// The setting value naming this method.
    pub fn name(self) -> &'static str {
        match self {
            Method::Lz4 => "lz4",
            Method::Lzma => "lzma",
            Method::Zstd => "zstd",
            Method::Brotli => "brotli",
            Method::None => "none",
        }
    }

    /// The file extension objects get, without the dot; empty for `none`.
    pub fn extension(self) -> &'static str {
        self.decoder().extension()
    }

    /// The decoder that reads what this method writes.
    pub fn decoder(self) -> Decoder {
        match self {
            Method::Lz4 => Decoder::Lz4,
            Method::Lzma => Decoder::Lzma,
            Method::Zstd => Decoder::Zstd,
            Method::Brotli => Decoder::Brotli,
            Method::None => Decoder::None,
        }
    }
}

/// `WALG_ZSTD_LEVEL`: the named zstd levels WAL-G's encoder offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZstdLevel {
    Fastest,
    #[default]
    Default,
    Better,
    Best,
}

/// What the encoder needs to know: the method and its tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionSettings {
    pub method: Method,
    pub zstd_level: ZstdLevel,
}

/// A format this build can read. Chosen from an object's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decoder {
    Lz4,
    Lzma,
    Zstd,
    Brotli,
    Gzip,
    /// Stored as is.
    None,
}

impl Decoder {
    /// The extension, without the dot (`none` → empty).
    pub fn extension(self) -> &'static str {
        match self {
            Decoder::Lz4 => "lz4",
            Decoder::Lzma => "lzma",
            Decoder::Zstd => "zst",
            Decoder::Brotli => "br",
            Decoder::Gzip => "gz",
            Decoder::None => "",
        }
    }

    /// Chooses the decoder from the last extension of an object name, as WAL-G does for tar
    /// parts: `lz4`, `lzma`, `zst`, `br`, `gz`; `tar` or empty → stored as is. `None` for a
    /// format this build cannot read (`lzo`, unknown).
    pub fn from_extension(ext: &str) -> Option<Decoder> {
        match ext {
            "lz4" => Some(Decoder::Lz4),
            "lzma" => Some(Decoder::Lzma),
            "zst" => Some(Decoder::Zstd),
            "br" => Some(Decoder::Brotli),
            "gz" => Some(Decoder::Gzip),
            "" | "tar" => Some(Decoder::None),
            _ => None,
        }
    }
}

/// WAL-G's probe order for WAL objects (`wal-fetch`): lz4, lzma, gz, none (as `name.`), br,
/// zst. The bare name without any extension is tried after these by the caller.
pub const WAL_PROBE_ORDER: [Decoder; 6] = [
    Decoder::Lz4,
    Decoder::Lzma,
    Decoder::Gzip,
    Decoder::None,
    Decoder::Brotli,
    Decoder::Zstd,
];

/// A streaming encoder over `W`. `finish` must be called: it writes the trailer, reports any
/// error and hands `W` back. Dropping the encoder without it leaves a truncated stream (lz4,
/// zstd) or ends the stream ignoring errors (lzma, brotli).
///
/// `flush` pushes out what the method can end early without ending the stream (an LZ4 block,
/// a zstd block, a brotli flush) and flushes `W`; LZMA-alone cannot, so there it only
/// flushes `W`.
pub struct Encoder<W: Write> {
    kind: EncoderKind<W>,
}

enum EncoderKind<W: Write> {
    Lz4(lz4::Lz4Writer<W>),
    Lzma(lzma::LzmaWriter<W>),
    Zstd(zstd::ZstdWriter<W>),
    /// Boxed: the brotli encoder state is some 5 KiB inline.
    Brotli(Box<brotli::BrotliWriter<W>>),
    None(W),
}

impl<W: Write> Encoder<W> {
    /// Writes the end of the stream and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self.kind {
            EncoderKind::Lz4(e) => e.finish(),
            EncoderKind::Lzma(e) => e.finish(),
            EncoderKind::Zstd(e) => e.finish(),
            EncoderKind::Brotli(e) => e.finish(),
            EncoderKind::None(mut w) => {
                w.flush()?;
                Ok(w)
            }
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.kind {
            EncoderKind::Lz4(e) => e.write(buf),
            EncoderKind::Lzma(e) => e.write(buf),
            EncoderKind::Zstd(e) => e.write(buf),
            EncoderKind::Brotli(e) => e.write(buf),
            EncoderKind::None(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.kind {
            EncoderKind::Lz4(e) => e.flush(),
            EncoderKind::Lzma(e) => e.flush(),
            EncoderKind::Zstd(e) => e.flush(),
            EncoderKind::Brotli(e) => e.flush(),
            EncoderKind::None(w) => w.flush(),
        }
    }
}

/// Starts an encoder writing into `inner`. Nothing is written before the first `write` or
/// `finish`. Memory per method: see [`lz4::Lz4Writer`] (about 0.6 MiB), [`zstd::ZstdWriter`]
/// (3.2 MiB at the default level, 25 MiB at `best`), [`brotli::BrotliWriter`] (about 9 MiB),
/// [`lzma::LzmaWriter`] (about 93 MiB).
pub fn encoder<W: Write + Send + 'static>(
    settings: CompressionSettings,
    inner: W,
) -> io::Result<Encoder<W>> {
    let kind = match settings.method {
        Method::Lz4 => EncoderKind::Lz4(lz4::Lz4Writer::new(inner)),
        Method::Lzma => EncoderKind::Lzma(lzma::LzmaWriter::new(inner)?),
        Method::Zstd => EncoderKind::Zstd(zstd::ZstdWriter::new(inner, settings.zstd_level)?),
        Method::Brotli => EncoderKind::Brotli(Box::new(brotli::BrotliWriter::new(inner))),
        Method::None => EncoderKind::None(inner),
    };
    Ok(Encoder { kind })
}

/// Wraps `inner` in the decoder. A truncated or corrupt stream is an `InvalidData` or
/// `UnexpectedEof` error, never a silent short read, and the error repeats on later reads;
/// errors of `inner` itself pass through unchanged. (`None` cannot tell a cut stream.)
pub fn decoder<R: Read + Send + 'static>(
    decoder: Decoder,
    inner: R,
) -> io::Result<Box<dyn Read + Send>> {
    Ok(match decoder {
        Decoder::Lz4 => Box::new(fuse::fuse("lz4", inner, |r| Ok(lz4::Lz4Reader::new(r)))?),
        Decoder::Lzma => Box::new(fuse::fuse("lzma", inner, lzma::reader)?),
        Decoder::Zstd => Box::new(fuse::fuse("zstd", inner, zstd::reader)?),
        Decoder::Brotli => Box::new(fuse::fuse("brotli", inner, |r| Ok(brotli::reader(r)))?),
        Decoder::Gzip => Box::new(fuse::fuse("gzip", inner, |r| Ok(gzip::reader(r)))?),
        Decoder::None => Box::new(inner),
    })
}
#[cfg(test)]
mod tests;
