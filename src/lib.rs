//! walg: a WAL-G-compatible backup and WAL archiving tool for PostgreSQL.
//!
//! Layers, top to bottom: `cli` (the only layer that talks to the user) → `ops` (one module per
//! command) → `layout`, `pg`, `compression`, `storage` → `util`. `config` turns flags, environment
//! and the config file into typed settings once, at start-up.

pub mod compression;
pub mod storage;
pub mod util;
