//! PGDATA to WAL-G tar parts and back, as a pure library: files in, tar bytes out, and the
//! reverse. No storage, no configuration, no PostgreSQL connection, no output.
//!
//! Backup: [`walk()`] lists PGDATA with WAL-G's order, exclusions, tablespaces and the held-back
//! `pg_control`; [`partition`] splits the entries into parts by WAL-G's size rule; a
//! [`TarWriter`] per part writes the members (and `backup_label` / `tablespace_map`).
//!
//! Restore: [`extract`] unpacks one decompressed tar stream into a directory, treating it as
//! untrusted, and reports what it wrote; [`sync_all`] then makes all of it durable.

pub mod guard;
pub mod increment;
pub mod reader;
pub mod sync;
pub mod walk;
pub mod writer;

pub use reader::{ExtractError, ExtractOptions, ExtractReport, Redirect, extract};
pub use sync::sync_all;
pub use walk::{
    EXCLUDED_NAMES, Entry, EntryKind, PG_CONTROL_MEMBER, TablespaceLocation, Walk, partition, walk,
};
pub use writer::TarWriter;
