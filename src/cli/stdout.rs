//! Standard output: the only place that writes to it. What is written comes from `render`.

use std::io::{self, Write};

use anyhow::Context as _;

/// Writes `bytes` to stdout. A closed pipe (`walg backup-list | head`) is not an error.
pub(crate) fn write_unless_closed(bytes: &[u8]) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut lock = stdout.lock();
    match lock.write_all(bytes).and_then(|()| lock.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to standard output"),
    }
}

/// Writes `bytes` to stdout; any failure, a closed pipe included, is an error.
pub(crate) fn write(bytes: &[u8]) -> anyhow::Result<()> {
    let mut lock = io::stdout().lock();
    lock.write_all(bytes)?;
    Ok(())
}
