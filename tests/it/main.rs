//! Every integration test of walg, in one test binary: each file of this folder is a module
//! (`architecture`, `crash`, `e2e_backup`, ...), and `common/` holds the helpers they share
//! (PostgreSQL clusters, the S3 server, the fault proxy, WAL segments, the crash harness).
//!
//! One binary is linked once instead of once per file. Run one module with
//! `cargo nextest run --test it crash::`, one test with
//! `cargo nextest run --test it e2e_backup::tablespace_restored_through_a_restore_spec`.
//! nextest runs every test in its own process; under `cargo test` the modules share one process,
//! so no test changes the environment or the working directory of the test process: settings
//! reach walg through the environment of the commands the tests start.

mod common;

mod architecture;
mod archive_interop;
mod cli;
mod cli_backup_list;
mod cli_backup_mark;
mod cli_delete;
mod cli_s3;
mod cli_wal;
mod compression_interop;
mod crash;
mod e2e_backup;
mod e2e_backup_compat;
mod e2e_delete;
mod e2e_schedule;
mod e2e_wal_local;
mod e2e_wal_s3;
mod faults;
mod fuzz_regressions;
mod pg_session;
mod pg_tls;
mod pg_versions;
mod restore_hostile;
mod s3_storage;
mod storage_conformance;
mod wal_background;
mod wal_local_faults;
