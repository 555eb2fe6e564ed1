#!/usr/bin/env bash
# Runs every test: formatting, lints, documentation, licences and sources, unit tests, storage
# conformance (memory, local folder, S3 on a loopback s3s-fs server), codec interop against the
# reference tools, end-to-end tests against a real PostgreSQL 15 and the version matrix on real
# servers 12 to 18 (tests/it/pg_versions.rs), the fault and crash harnesses, and a bounded run of
# every fuzz target. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
# Tests talk to loopback only: never let an AWS SDK look for a cloud metadata address.
export AWS_EC2_METADATA_DISABLED=true

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --document-private-items
# Licences, banned crates and sources; advisories need a network CI does not have (deny.toml).
cargo deny --offline check bans licenses sources
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast "$@"
else
  cargo test --locked --no-fail-fast "$@"
fi
# Every fuzz target for a bounded time (scripts/fuzz.sh --seconds 600 for a longer run).
scripts/fuzz.sh --seconds 15 --jobs 2
