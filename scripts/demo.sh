#!/usr/bin/env bash
# The main job, end to end, on the local-folder default:
#   1. a throwaway PostgreSQL 15 cluster archives its WAL through `walg wal-push`;
#   2. `walg backup-push` takes a base backup while pgbench writes; more writes and a marker
#      row follow; `walg backup-list` shows the backup;
#   3. `walg backup-fetch ... LATEST --write-recovery-conf` restores it into a new directory,
#      which starts with `restore_command = 'walg wal-fetch %f %p'`, replays the archived WAL,
#      and the demo checks that every row, the marker included, is there.
# Everything lives in a temp folder that is removed at the end (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

scripts/install-deps.sh
say "building walg (release)"
cargo build --release --locked --quiet
PGBIN=/usr/lib/postgresql/15/bin

work=$(mktemp -d /tmp/walg-demo.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/bin" "$work/storage" "$work/sock"
install -m 755 target/release/walg "$work/bin/walg"
WALG="$work/bin/walg"
STORE="$work/storage"

as_pg() { # run a PostgreSQL tool as the postgres user when we are root
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$work"; fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
PORT2=$(free_port)
PRIMARY="$work/primary"
RESTORED="$work/restored"

cleanup() {
  as_pg "$PGBIN/pg_ctl" -D "$PRIMARY" stop -m immediate >/dev/null 2>&1 || true
  as_pg "$PGBIN/pg_ctl" -D "$RESTORED" stop -m immediate >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

psql_at() { as_pg "$PGBIN/psql" -XAtq -h "$work/sock" -p "$1" -d postgres -c "$2"; }

say "creating a throwaway cluster archiving through walg into $STORE"
as_pg "$PGBIN/initdb" -D "$PRIMARY" -A trust --no-sync >/dev/null
cat >>"$PRIMARY/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$work/sock'
wal_level = replica
archive_mode = on
archive_command = 'WALG_FILE_PREFIX=$STORE $WALG wal-push %p'
max_wal_senders = 4
CONF
as_pg "$PGBIN/pg_ctl" -D "$PRIMARY" -l "$work/primary.log" -w start >/dev/null

say "writing with pgbench and switching WAL segments"
as_pg "$PGBIN/pgbench" -h "$work/sock" -p "$PORT" -i -s 5 -q postgres >/dev/null 2>&1
as_pg "$PGBIN/pgbench" -h "$work/sock" -p "$PORT" -T 3 -c 2 postgres >/dev/null 2>&1
for _ in 1 2 3; do psql_at "$PORT" "select pg_switch_wal()" >/dev/null; done

say "walg backup-push while pgbench writes"
as_pg "$PGBIN/pgbench" -h "$work/sock" -p "$PORT" -T 4 -c 2 postgres >/dev/null 2>&1 &
load=$!
as_pg env WALG_FILE_PREFIX="$STORE" PGHOST="$work/sock" PGPORT="$PORT" PGUSER=postgres \
  "$WALG" backup-push "$PRIMARY"
wait "$load"
as_pg env WALG_FILE_PREFIX="$STORE" "$WALG" backup-list

as_pg "$PGBIN/pgbench" -h "$work/sock" -p "$PORT" -T 3 -c 2 postgres >/dev/null 2>&1
psql_at "$PORT" "create table demo_marker(note text); insert into demo_marker values ('written after the base copy')"
psql_at "$PORT" "select pg_switch_wal()" >/dev/null
expected_rows=$(psql_at "$PORT" "select count(*) from pgbench_history")
last=$(psql_at "$PORT" "select pg_walfile_name(pg_current_wal_lsn())")

say "waiting until PostgreSQL reports the WAL archived"
for _ in $(seq 1 100); do
  done_wal=$(psql_at "$PORT" "select coalesce(last_archived_wal, '') from pg_stat_archiver")
  [[ "$done_wal" > "$last" || "$done_wal" == "$last" ]] && break
  psql_at "$PORT" "select pg_switch_wal()" >/dev/null
  sleep 0.2
done
psql_at "$PORT" "select 'pg_stat_archiver: archived_count=' || archived_count || ' failed_count=' || failed_count || ' last_archived_wal=' || last_archived_wal from pg_stat_archiver"
failed=$(psql_at "$PORT" "select failed_count from pg_stat_archiver")
[ "$failed" = 0 ] || { echo "archiving failed: see $work/primary.log"; exit 1; }
echo "storage now holds $(find "$STORE/wal_005" -type f | wc -l) WAL objects, $(du -sh "$STORE" | cut -f1)"

say "fetching the newest archived segment back and comparing it with pg_wal"
seg=$(cd "$STORE/wal_005" && ls | grep -E '^[0-9A-F]{24}\.lz4$' | sort | tail -1 | cut -c1-24)
as_pg env WALG_FILE_PREFIX="$STORE" "$WALG" wal-fetch "$seg" "$work/fetched-$seg"
if [ -f "$PRIMARY/pg_wal/$seg" ]; then
  cmp "$work/fetched-$seg" "$PRIMARY/pg_wal/$seg" && echo "$seg: byte-identical to PostgreSQL's copy"
else
  echo "$seg: fetched ($(stat -c %s "$work/fetched-$seg") bytes; PostgreSQL has recycled its copy)"
fi
set +e
as_pg env WALG_FILE_PREFIX="$STORE" "$WALG" wal-fetch 0000000100000000000000FE "$work/missing" 2>/dev/null
rc=$?
set -e
echo "a segment that was never archived: exit $rc (74 = not in storage)"

say "stopping the primary; restoring the latest backup into a new directory"
as_pg "$PGBIN/pg_ctl" -D "$PRIMARY" stop -m fast >/dev/null
as_pg env WALG_FILE_PREFIX="$STORE" "$WALG" backup-fetch "$RESTORED" LATEST --write-recovery-conf
echo "restore_command written by walg: $(grep restore_command "$RESTORED/postgresql.auto.conf")"
cat >>"$RESTORED/postgresql.conf" <<CONF
port = $PORT2
archive_mode = off
CONF
say "starting the restored cluster: it replays the archived WAL through walg wal-fetch"
as_pg "$PGBIN/pg_ctl" -D "$RESTORED" -l "$work/restored.log" -w -t 120 start >/dev/null
for _ in $(seq 1 300); do
  [ "$(psql_at "$PORT2" "select pg_is_in_recovery()" 2>/dev/null)" = f ] && break
  sleep 0.2
done

say "checking the restored cluster"
marker=$(psql_at "$PORT2" "select note from demo_marker")
rows=$(psql_at "$PORT2" "select count(*) from pgbench_history")
echo "marker row: '$marker'"
echo "pgbench_history rows: $rows restored, $expected_rows expected"
if [ "$marker" = "written after the base copy" ] && [ "$rows" = "$expected_rows" ]; then
  say "demo passed: every row archived by walg came back"
else
  echo "demo FAILED: see $work/restored.log"; KEEP=1; exit 1
fi
