//! walg: a WAL-G-compatible backup and WAL archiving tool for PostgreSQL.
//!
//! Layers, top to bottom: `cli` (the only layer that talks to the user) → `ops` (one module per
//! command) → `retention` (the pure plan of `delete`) → `layout`, `pg`, `compression`, `storage`,
//! `archive` → `util`. `config` turns flags, environment and the config file into typed settings
//! once, at start-up. `schedule` (the pure timing of `walg schedule`) uses only `util`.

pub mod archive;
pub mod cli;
pub mod compression;
pub mod config;
pub mod layout;
pub mod ops;
pub mod pg;
pub mod retention;
pub mod schedule;
pub mod storage;
pub mod util;
