#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/seeds/<target>/ from real objects: a throwaway
# PostgreSQL 15 cluster with a tablespace archives its WAL through `walg wal-push`, then
# `walg backup-push` takes one backup per compression method into a local folder. The seeds
# are cut from what walg wrote (sentinels, metadata.json, files_metadata.json, the tablespace
# spec, the small tar parts in each compression, the first member blocks of a data part, real
# WAL page headers, the stored keys, the config files the commands ran with), plus the WAL-G
# examples of the format specification and `gzip` output of the same tars. Run as root (the
# server runs as postgres through runuser) or as the postgres user.
#   fuzz/seeds/generate.sh        rewrites fuzz/seeds/*/ (only the generated files)
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS=$PWD/fuzz/seeds
PGBIN=/usr/lib/postgresql/15/bin

cargo build --locked --quiet --bin walg
work=$(mktemp -d /tmp/walg-seeds.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/bin" "$work/sock" "$work/ts1"
install -m 755 target/debug/walg "$work/bin/walg"
WALG="$work/bin/walg"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$work"; fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATA="$work/data"
cleanup() {
  as_pg "$PGBIN/pg_ctl" -D "$DATA" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql() { as_pg "$PGBIN/psql" -XAtq -h "$work/sock" -p "$PORT" -d postgres -c "$1"; }

config() { # config <method>: the config file the commands of one store run with
  cat >"$work/walg-$1.json" <<JSON
{
  "WALG_FILE_PREFIX": "$work/store-$1",
  "WALG_COMPRESSION_METHOD": "$1",
  "PGHOST": "$work/sock",
  "PGPORT": "$PORT",
  "PGUSER": "postgres",
  "WALG_UPLOAD_CONCURRENCY": "2",
  "WALG_SENTINEL_USER_DATA": "{\"seed\": \"$1\", \"n\": [1, 2.5, null]}"
}
JSON
  chmod 644 "$work/walg-$1.json"
}
for m in lz4 zstd brotli lzma none; do config "$m"; done

as_pg "$PGBIN/initdb" -D "$DATA" -A trust --no-sync >/dev/null
cat >>"$DATA/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$work/sock'
wal_level = replica
archive_mode = on
archive_command = '$WALG --config $work/walg-lz4.json wal-push %p'
fsync = off
CONF
as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$work/pg.log" -w start >/dev/null
psql "create tablespace ts1 location '$work/ts1'"
psql "create table t (id int, note text) tablespace ts1; insert into t select g, 'row ' || g from generate_series(1, 1000) g"
psql "create table u (id int primary key); insert into u select generate_series(1, 100)"
psql "select pg_switch_wal()" >/dev/null
for m in lz4 zstd brotli lzma none; do
  as_pg "$WALG" --config "$work/walg-$m.json" backup-push "$DATA" 2>/dev/null
done
psql "checkpoint" >/dev/null
OID=$(psql "select oid from pg_tablespace where spcname = 'ts1'")

# Only files this script writes are replaced; hand-written seeds stay.
out() { mkdir -p "$SEEDS/$1"; echo "$SEEDS/$1/$2"; }
ext_of() { case $1 in lz4) echo lz4;; zstd) echo zst;; brotli) echo br;; lzma) echo lzma;; none) echo "";; esac; }
dot() { [ -n "$1" ] && echo ".$1" || true; }

for m in lz4 zstd brotli lzma none; do
  store="$work/store-$m/basebackups_005"
  sentinel=$(ls "$store"/*_backup_stop_sentinel.json | head -1)
  name=$(basename "$sentinel" _backup_stop_sentinel.json)
  parts="$store/$name/tar_partitions"
  cp "$sentinel" "$(out sentinel "walg-$m.json")"
  cp "$store/$name/metadata.json" "$(out metadata "walg-$m.json")"
  [ "$m" = lz4 ] && cp "$store/$name/files_metadata.json" "$(out files_metadata walg.json)"
  [ "$m" = none ] && nparts=$parts
  python3 - "$sentinel" "$(out tablespace_spec "walg-$m.json")" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))["Spec"]
open(sys.argv[2], "w").write(json.dumps(spec))
PY
  e=$(ext_of "$m")
  if [ -n "$e" ]; then
    cp "$parts/pg_control.tar.$e" "$(out "decompress_$m" pg_control.tar."$e")"
    cp "$parts/backup_label.tar.$e" "$(out "decompress_$m" backup_label.tar."$e")"
  fi
  (cd "$work/store-$m" && find . -type f | sed 's|^\./||' | sort) >"$(out names_keys "keys-$m.txt")"
  sed "s|$work|/var/lib/walg|g" "$work/walg-$m.json" >"$(out config_file "walg-$m.json")"
done

# Tar: the small parts whole, and the first members of the data part and of the tablespace
# part (cut at a member boundary, then the two end-of-archive blocks), each behind a flag byte
# (see tar_extract.rs): 0x00 plain, 0x07 symlinks allowed and the tablespace redirect on.
python3 - "$nparts" "$SEEDS/tar_extract" "$OID" <<'PY'
import os, sys
src, dst, oid = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(dst, exist_ok=True)
def members(data):
    """(name, bytes) of each member: header, any extended headers before it, content."""
    off, start = 0, 0
    while off + 512 <= len(data):
        h = data[off:off + 512]
        if h == bytes(512):
            return
        size = int(h[124:136].rstrip(b"\0 ").decode() or "0", 8)
        off += 512 + (size + 511) // 512 * 512
        if h[156:157] in (b"L", b"K", b"x"):
            continue
        yield h[:100].rstrip(b"\0").decode(errors="replace"), data[start:off]
        start = off
def cut(data, want, limit):
    """The members `want` accepts, as long as they fit in `limit` bytes, and the end blocks."""
    out = b""
    for name, body in members(data):
        if want(name) and len(out) + len(body) <= limit:
            out += body
    return out + bytes(1024)
def write(name, flag, body):
    open(os.path.join(dst, name), "wb").write(bytes([flag]) + body)
for f in sorted(os.listdir(src)):
    data = open(os.path.join(src, f), "rb").read()
    if f.startswith(("pg_control", "backup_label")):
        write(f, 0, data)
        continue
    ts = lambda n: n.lstrip("/").startswith("pg_tblspc/" + oid)
    if any(ts(n) for n, _ in members(data)):
        write("tablespace-" + f, 7, cut(data, ts, 16 * 1024))
    write("first-members-" + f, 0, cut(data, lambda n: not ts(n), 16 * 1024))
PY
for f in pg_control.tar backup_label.tar; do
  gzip -9 -c "$nparts/$f" >"$(out decompress_gzip "$f.gz")"
done
cat "$(out decompress_gzip pg_control.tar.gz)" "$(out decompress_gzip backup_label.tar.gz)" \
  >"$(out decompress_gzip two-members.gz)"

# WAL: the segment name, then the first 512 bytes of the segment (long page header and the
# start of the first records), for the archived segments and the current one.
for seg in $(ls "$DATA/pg_wal" | grep -E '^[0-9A-F]{24}$' | sort | head -4); do
  { printf '%s' "$seg"; head -c 512 "$DATA/pg_wal/$seg"; } >"$(out wal_header "$seg")"
done
# Paths of this throwaway cluster read as a fixed one, so that regenerated seeds differ only
# where the backup does.
grep -rlF "$work" "$SEEDS" | xargs -r sed -i "s|$work|/var/lib/walg|g"
echo "tablespace OID $OID (tar_extract.rs redirects pg_tblspc/16384)"
echo "seeds in $SEEDS: $(du -sh "$SEEDS" | cut -f1)"
