//! PostgreSQL knowledge: WAL file names and segment arithmetic, and sessions with a server —
//! connecting, reading its facts, watching its archiver and running a non-exclusive base backup.
//!
//! Supported servers: PostgreSQL 13 to 18. Every version-specific SQL string is in [`version`].

pub mod backup_session;
pub mod conn;
pub mod datadir;
pub mod history;
pub mod lsn;
pub mod pgpass;
pub mod tls;
pub mod version;
pub mod wal;
pub mod wal_pages;

use std::time::Duration;

pub use backup_session::{BackupInProgress, BackupStart, BackupStop};
pub use conn::{ArchiverSettings, ArchiverStats, ConnectSettings, Deadlines, PgConn};
pub use lsn::Lsn;

/// What went wrong talking to PostgreSQL. Each message is one line, lower case, and never shows
/// a password.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The connection settings cannot be used (before anything is sent).
    #[error("invalid postgresql connection settings: {0}")]
    Settings(String),
    /// No session could be opened.
    #[error("could not connect to postgresql at {target}: {message}")]
    Connect { target: String, message: String },
    /// A query failed; `what` says what walg was doing ("start the backup").
    #[error("could not {what}: {message}")]
    Query { what: &'static str, message: String },
    /// The server's `server_version_num` is outside 13 to 18.
    #[error(
        "postgresql {} is not supported: walg supports postgresql {} to {}",
        version::version_text(*.0),
        version::MIN_MAJOR,
        version::MAX_MAJOR
    )]
    UnsupportedVersion(u32),
    /// A query did not answer within its deadline (it was cancelled).
    #[error("could not {what}: no answer from postgresql within {}", show_duration(.after))]
    Timeout { what: &'static str, after: Duration },
    /// WAL archiving is off, not configured or failing: a backup would never be usable.
    #[error("wal archiving does not work: {reason}")]
    ArchivingBroken { reason: String },
    /// A segment was not archived in time.
    #[error(
        "wal segment {segment} was not archived within {}; last archived: {}",
        show_duration(.waited),
        .last_archived.as_deref().unwrap_or("nothing yet")
    )]
    NotArchived {
        segment: String,
        waited: Duration,
        last_archived: Option<String>,
    },
}

/// `30s`, `1.5s`, `250ms`.
pub(crate) fn show_duration(d: &Duration) -> String {
    if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_lower_case_line() {
        let errors = [
            PgError::Timeout {
                what: "start the backup",
                after: Duration::from_secs(30),
            },
            PgError::NotArchived {
                segment: "000000010000000000000003".into(),
                waited: Duration::from_millis(1500),
                last_archived: None,
            },
            PgError::ArchivingBroken {
                reason: "archive_mode is off".into(),
            },
        ];
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "could not start the backup: no answer from postgresql within 30s",
                "wal segment 000000010000000000000003 was not archived within 1.5s; last archived: nothing yet",
                "wal archiving does not work: archive_mode is off",
            ]
        );
        assert_eq!(show_duration(&Duration::from_millis(250)), "250ms");
    }
}
