//! One function per command: each takes the parsed arguments and the context (storage and
//! resolved settings), calls `ops`, renders what it returns and chooses the exit code.

pub(super) mod backup_fetch;
pub(super) mod backup_list;
pub(super) mod backup_mark;
pub(super) mod backup_push;
pub(super) mod delete;
pub(super) mod schedule;
pub(super) mod wal_fetch;
pub(super) mod wal_prefetch;
pub(super) mod wal_push;
