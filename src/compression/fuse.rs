//! Uniform decoder errors: whatever a codec reports about its stream becomes `InvalidData`
//! (or stays `UnexpectedEof`), errors of the underlying reader pass through unchanged, and
//! the first error repeats on every later read instead of some codecs' `Ok(0)`, which would
//! look like a clean end of stream to a caller that retries.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The compressed input as a decoder sees it: notes when reading from it failed, so that such
/// an error is not mistaken for a corrupt stream.
pub struct Source<R> {
    inner: R,
    failed: Arc<AtomicBool>,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        if let Err(e) = &result
            && e.kind() != io::ErrorKind::Interrupted
        {
            self.failed.store(true, Ordering::Relaxed);
        }
        result
    }
}

/// A decoder with the error rules of this module.
pub struct Fused<D> {
    decoder: D,
    name: &'static str,
    source_failed: Arc<AtomicBool>,
    failed: Option<(io::ErrorKind, String)>,
}

/// Builds the decoder `make` returns over `inner`, wrapped in [`Fused`]. `name` prefixes
/// messages of codec errors.
pub fn fuse<R, D, F>(name: &'static str, inner: R, make: F) -> io::Result<Fused<D>>
where
    R: Read,
    D: Read,
    F: FnOnce(Source<R>) -> io::Result<D>,
{
    let source_failed = Arc::new(AtomicBool::new(false));
    let source = Source {
        inner,
        failed: Arc::clone(&source_failed),
    };
    Ok(Fused {
        decoder: make(source)?,
        name,
        source_failed,
        failed: None,
    })
}

impl<D: Read> Read for Fused<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, msg)) = &self.failed {
            return Err(io::Error::new(*kind, msg.clone()));
        }
        match self.decoder.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let e = if self.source_failed.load(Ordering::Relaxed) {
                    e
                } else {
                    codec_error(self.name, e)
                };
                self.failed = Some((e.kind(), e.to_string()));
                Err(e)
            }
            ok => ok,
        }
    }
}

/// A codec's complaint about its input: `UnexpectedEof` stays, anything else is `InvalidData`.
fn codec_error(name: &str, e: io::Error) -> io::Error {
    let kind = match e.kind() {
        io::ErrorKind::UnexpectedEof => io::ErrorKind::UnexpectedEof,
        _ => io::ErrorKind::InvalidData,
    };
    let msg = e.to_string();
    if msg.starts_with(name) {
        io::Error::new(kind, msg)
    } else {
        io::Error::new(kind, format!("{name}: {msg}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails once with `kind`, then reports end of stream.
    struct FailOnce(Option<io::ErrorKind>);

    impl Read for FailOnce {
        fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
            match self.0.take() {
                Some(kind) => Err(io::Error::new(kind, "cut")),
                None => Ok(0),
            }
        }
    }

    #[test]
    fn a_codec_error_is_invalid_data_and_repeats() {
        let mut r = fuse("test", io::empty(), |_source| {
            Ok(FailOnce(Some(io::ErrorKind::Other)))
        })
        .expect("builds");
        let mut buf = [0u8; 4];
        for _ in 0..3 {
            let err = r.read(&mut buf).expect_err("must keep failing");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert_eq!(err.to_string(), "test: cut");
        }
    }

    #[test]
    fn a_source_error_passes_through() {
        let mut buf = [0u8; 4];
        let inner = FailOnce(Some(io::ErrorKind::ConnectionReset));
        let mut r = fuse("test", inner, Ok).expect("builds");
        let err = r.read(&mut buf).expect_err("fails");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        let err = r.read(&mut buf).expect_err("keeps failing");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }
}
