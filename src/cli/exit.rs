//! Exit codes, decided in one place, and the final error message.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | failure (any command), including usage errors, as WAL-G |
//! | 74 | `wal-fetch`: the file is not in storage (WAL-G's `EX_IOERR`) |
//! | 200 | `wal-fetch`: the archive could not be read (storage unreachable after retries, a corrupt object, a missing storage or destination folder, a bad setting): above 125, so PostgreSQL stops recovery instead of taking it for the end of WAL |

use std::io::Write;
use std::process::ExitCode;

use crate::ops::HintedError;
use crate::storage::StorageError;

pub const SUCCESS: u8 = 0;
pub const FAILURE: u8 = 1;
pub const WAL_NOT_FOUND: u8 = 74;
pub const ARCHIVE_UNAVAILABLE: u8 = 200;

/// Prints an error as WAL-G does (`ERROR: <time> <message>`), the cause chain on the same
/// line, then a `HINT:` line when one is attached.
pub fn report(err: &anyhow::Error) {
    let hint = err
        .chain()
        .find_map(|e| e.downcast_ref::<HintedError>())
        .map(|h| h.hint.clone())
        .or_else(|| {
            err.chain()
                .find_map(|e| e.downcast_ref::<StorageError>())
                .and_then(storage_hint)
        });
    let message = one_line(&chain_message(err));
    let level = tracing::Level::ERROR;
    if super::logging::is_json() {
        match &hint {
            Some(hint) => tracing::error!(hint = %hint, "{message}"),
            None => tracing::error!("{message}"),
        }
        return;
    }
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "{}: {} {}",
        super::logging::prefix(level),
        super::logging::timestamp(),
        message
    );
    if let Some(hint) = hint {
        let _ = writeln!(stderr, "HINT: {hint}");
    }
}

/// The error and its causes joined by `: `, like `{err:#}`, but a cause whose text already ends
/// the previous one is left out: many errors show their source in their own message and also
/// return it from `source()`, which would print it twice.
fn chain_message(err: &anyhow::Error) -> String {
    let mut message = String::new();
    let mut previous = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if previous.is_empty() || !previous.ends_with(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
        previous = text;
    }
    message
}

/// The message on one line with no control characters: errors may quote bytes of a hostile
/// object (a tar header, a file name), which must not move the cursor, recolour or forge
/// log lines. Line breaks become spaces, other control characters `\u{..}` escapes.
fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

pub fn code(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// What to check when storage failed, for the failures whose cause is not obvious.
fn storage_hint(err: &StorageError) -> Option<String> {
    match err {
        StorageError::Refused { .. } => Some(
            "the storage refused the request: check the credentials (AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE), the bucket in \
             WALG_S3_PREFIX and AWS_REGION"
                .to_string(),
        ),
        StorageError::Unavailable { .. } => Some(
            "the storage did not answer within S3_REQUEST_TIMEOUT after S3_MAX_RETRIES retries: \
             check AWS_ENDPOINT and the network"
                .to_string(),
        ),
        StorageError::LocationMissing { .. } => Some(
            "walg never creates the storage folder itself: mount the volume it is on, fix \
             WALG_FILE_PREFIX (and WALG_STORAGE_PREFIX), or create it, writable by the user \
             PostgreSQL runs as"
                .to_string(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading '{path}': {source}")]
    struct Shows {
        path: String,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, "stream ends early");
        let err = anyhow::Error::new(Shows {
            path: "part_001.tar.lz4".into(),
            source: io,
        })
        .context("restoring 'part_001.tar.lz4'");
        assert_eq!(
            chain_message(&err),
            "restoring 'part_001.tar.lz4': reading 'part_001.tar.lz4': stream ends early"
        );
    }

    #[test]
    fn control_characters_from_an_object_never_reach_the_terminal() {
        let quoted = "numeric field was not a number: \u{1b}[31mred\u{7}\r\nERROR: forged";
        let line = one_line(quoted);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert_eq!(
            line,
            "numeric field was not a number: \\u{1b}[31mred\\u{7}  ERROR: forged"
        );
    }

    #[test]
    fn other_causes_are_all_printed() {
        let err = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(chain_message(&err), "outer: middle: inner");
        assert_eq!(chain_message(&anyhow::anyhow!("alone")), "alone");
    }
}
