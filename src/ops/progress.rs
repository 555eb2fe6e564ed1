//! Progress of long work (backups, restores), reported by `ops` and shown by `cli`: a bar on a
//! terminal, plain log lines otherwise.

use std::fmt;

/// Receives progress. Implementations must be cheap: `add` is called for every chunk.
pub trait Progress: Send + Sync + fmt::Debug {
    /// Work named `what` starts; `total` bytes when known.
    fn begin(&self, what: &str, total: Option<u64>);
    /// `bytes` more are done.
    fn add(&self, bytes: u64);
    /// The work is over (successfully or not).
    fn end(&self);
}

/// Shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _what: &str, _total: Option<u64>) {}
    fn add(&self, _bytes: u64) {}
    fn end(&self) {}
}
