//! Use cases: one module per command. Each returns a report; nothing here prints or reads the
//! environment.

pub mod backup_fetch;
pub mod backup_list;
pub mod backup_mark;
pub mod backup_push;
pub mod delete;
pub mod metrics;
pub mod progress;
pub mod recovery_conf;
pub mod schedule;
pub mod upload;
pub mod wal_fetch;
pub mod wal_object;
pub mod wal_prefetch;
pub mod wal_push;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Settings;
use crate::storage::Storage;

/// What every command gets: the storage, the settings, and how to start a copy of this
/// program with the same settings (for `wal-prefetch`).
#[derive(Debug, Clone)]
pub struct Context {
    pub storage: Arc<dyn Storage>,
    pub settings: Arc<Settings>,
    /// This executable.
    pub exe: PathBuf,
    /// Global arguments to hand to a child process (`--config`, setting flags).
    pub child_args: Vec<OsString>,
}

/// An error with a hint: how to fix it, printed as a `HINT:` line.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HintedError {
    pub message: String,
    pub hint: String,
}

impl HintedError {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        HintedError {
            message: message.into(),
            hint: hint.into(),
        }
    }
}
