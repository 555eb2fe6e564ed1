#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmarks need, idempotently: Debian packages
# (PostgreSQL 15, the reference codec tools, pgBackRest for benchmarks), Python's brotli
# binding (Google's reference brotli), the s3s-fs S3 server and cargo-deny. Safe to run again.
#   scripts/install-deps.sh            everything the tests need
#   scripts/install-deps.sh --bench    also pgBackRest and GNU time
set -euo pipefail

want_bench=0
[ "${1:-}" = "--bench" ] && want_bench=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

missing=()
need_pkg() { # need_pkg <package> <test command...>
  local pkg=$1; shift
  if ! "$@" >/dev/null 2>&1; then missing+=("$pkg"); fi
}

need_pkg postgresql-15 test -x /usr/lib/postgresql/15/bin/postgres
need_pkg lz4 command -v lz4
need_pkg zstd command -v zstd
need_pkg xz-utils command -v xz
need_pkg python3-pip command -v pip3
need_pkg procps command -v pgrep
if [ "$want_bench" -eq 1 ]; then
  need_pkg pgbackrest command -v pgbackrest
  need_pkg time test -x /usr/bin/time
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import brotli' >/dev/null 2>&1; then
  echo "installing Python brotli (Google's reference implementation)"
  python3 -m pip install -q brotli 2>/dev/null || python3 -m pip install -q --break-system-packages brotli
fi

S3S_FS_VERSION=0.14.1
if ! command -v s3s-fs >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
  echo "installing s3s-fs $S3S_FS_VERSION (the S3 server the tests run on loopback)"
  CARGO_TARGET_DIR="${TMPDIR:-/tmp}/s3s-fs-build" cargo install -q "s3s-fs@$S3S_FS_VERSION" --locked --features binary
fi

CARGO_DENY_VERSION=0.20.2
if ! command -v cargo-deny >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo-deny" ]; then
  echo "installing cargo-deny $CARGO_DENY_VERSION (licence, ban and source checks)"
  CARGO_TARGET_DIR="${TMPDIR:-/tmp}/cargo-deny-build" cargo install -q "cargo-deny@$CARGO_DENY_VERSION" --locked
fi

# cargo-fuzz, for scripts/fuzz.sh (the fuzz targets themselves build with the nightly toolchain).
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz 0.13.2 (scripts/fuzz.sh)"
  CARGO_TARGET_DIR="${TMPDIR:-/tmp}/cargo-fuzz-build" cargo install -q cargo-fuzz@0.13.2 --locked
fi
