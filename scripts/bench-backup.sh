#!/usr/bin/env bash
# Backup and restore benchmark: `walg backup-push` / `backup-fetch` against pgBackRest's full
# backup / restore and `pg_basebackup -Ft`, on the same throwaway PostgreSQL 15 cluster and data.
#
# Usage: scripts/bench-backup.sh [--scale N] [--realistic-mb N] [--reps N] [--rss-scales "A B"]
#                                [--quick] [--walg PATH] [--baseline PATH] [--verify-start] [--keep]
#
#   --scale N          pgbench scale of the first dataset (default 50, about 750 MiB)
#   --realistic-mb N   size of the second dataset, in MiB of database (default 700)
#   --reps N           repetitions per tool and dataset (default 3); the order of the tools
#                      alternates between repetitions; medians are reported
#   --rss-scales "A B" pgbench scales of the extra walg-only runs that show how peak memory
#                      follows the database size (default "10 100"; "" for none)
#   --quick            skip the extra walg-only runs (same as --rss-scales "")
#   --walg PATH        walg binary to use (default: `cargo build --release`, then target/release/walg)
#   --baseline PATH    a second walg binary (for example the last release, or main before a change)
#                      timed in the same repetitions, alternating with the others, so that a
#                      change is compared with its baseline on the same data and the same machine
#                      state; prints walg's time over the baseline's per operation
#   --verify-start     also start every restored cluster (recovering its WAL from walg's archive)
#                      and count the rows of the main table; not timed
#   --keep             keep the work directory (printed at the end) instead of deleting it
#
# Run as root on Debian 12 with PostgreSQL 15 (`apt-get install -y postgresql-15`). Installs
# pgbackrest and GNU time if missing. PostgreSQL and every tool run as `postgres`.
#
# What it does:
#  1. initdb a cluster in /tmp/walg-bkbench.XXXXXX (Unix socket only, fsync = off: only the
#     tools' own writes are durable), archiving through `walg wal-push` into a local folder;
#     creates the pgBackRest stanza `bench` (local repository, lz4, process-max=2, start-fast,
#     archive-check=n).
#  2. Datasets, one after the other, each in a database `bench` dropped afterwards:
#     - pgbench at --scale;
#     - "realistic": one table of random text (base64 and hex words), uuids (gen_random_uuid()), timestamps
#       and jsonb, a primary key and an index on the uuid, --realistic-mb MiB; compresses poorly.
#     Each is vacuumed (freeze) and checkpointed, and archiving has caught up, before timing.
#  3. Per repetition, in alternating order, each run timed on its own (wall seconds and peak
#     RSS from GNU time `%e %M`, with `sync` between runs):
#     - walg backup-push (WALG_FILE_PREFIX, default lz4) and backup-fetch LATEST into a new dir;
#     - pgbackrest --type=full backup and restore into a new dir (--pg1-path);
#     - pg_basebackup -Ft -X none -c fast (uncompressed tar; backup only).
#     Every restore must hold PG_VERSION, global/pg_control and the database files.
#  4. Prints per dataset the median seconds, throughput (database size = sum of
#     pg_database_size), median peak RSS and stored size per tool and operation, and the
#     targets: walg backup >= 5x pgBackRest's throughput and >= 2x pg_basebackup's, walg
#     restore >= 3x pgBackRest's, walg peak RSS <= 32 MiB; then walg's peak RSS at each of
#     --rss-scales.
set -euo pipefail

SCALE=50
REALISTIC_MB=700
REPS=3
RSS_SCALES="10 100"
WALG=""
BASELINE=""
KEEP=0
VERIFY_START=0
PGBIN=/usr/lib/postgresql/15/bin
MIB=1048576

die() {
    echo "bench-backup: $*" >&2
    exit 1
}

positive() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

while [[ $# -gt 0 ]]; do
    case "$1" in
    --scale)
        [[ $# -ge 2 ]] && positive "$2" || die "--scale needs a positive number"
        SCALE=$2
        shift 2
        ;;
    --realistic-mb)
        [[ $# -ge 2 ]] && positive "$2" || die "--realistic-mb needs a positive number"
        REALISTIC_MB=$2
        shift 2
        ;;
    --reps)
        [[ $# -ge 2 ]] && positive "$2" || die "--reps needs a positive number"
        REPS=$2
        shift 2
        ;;
    --rss-scales)
        [[ $# -ge 2 ]] || die "--rss-scales needs a list of scales, e.g. \"10 100\""
        for s in $2; do positive "$s" || die "--rss-scales: '$s' is not a positive number"; done
        RSS_SCALES=$2
        shift 2
        ;;
    --quick)
        RSS_SCALES=""
        shift
        ;;
    --walg)
        [[ $# -ge 2 ]] || die "--walg needs a path"
        WALG=$2
        shift 2
        ;;
    --baseline)
        [[ $# -ge 2 ]] || die "--baseline needs a path"
        BASELINE=$2
        shift 2
        ;;
    --verify-start)
        VERIFY_START=1
        shift
        ;;
    --keep)
        KEEP=1
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done

[[ $EUID -eq 0 ]] || die "run as root (PostgreSQL and the tools run as the postgres user)"
[[ -x "$PGBIN/initdb" ]] || die "PostgreSQL 15 not found in $PGBIN: apt-get install -y postgresql-15"
id postgres >/dev/null 2>&1 || die "no postgres user: apt-get install -y postgresql-15"

# --- tools --------------------------------------------------------------------------------------
if ! command -v pgbackrest >/dev/null; then
    echo "installing pgbackrest ..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y pgbackrest >/dev/null
fi
if [[ ! -x /usr/bin/time ]]; then
    echo "installing GNU time ..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y time >/dev/null
fi
if [[ -z "$WALG" ]]; then
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    command -v cargo >/dev/null || die "cargo not found; build walg yourself and pass --walg PATH"
    echo "building walg (cargo build --release) ..." >&2
    (cd "$repo" && cargo build --release --locked --quiet --bin walg)
    WALG=$repo/target/release/walg
fi
[[ -x "$WALG" ]] || die "walg binary not found or not executable: $WALG"
WALG=$(realpath "$WALG")
if [[ -n "$BASELINE" ]]; then
    [[ -x "$BASELINE" ]] || die "baseline binary not found or not executable: $BASELINE"
    BASELINE=$(realpath "$BASELINE")
fi
PGBR_VERSION=$(pgbackrest version | awk '{ print $2 }')

# --- work directory and cleanup -------------------------------------------------------------------
WORK=$(mktemp -d /tmp/walg-bkbench.XXXXXX)
chmod 755 "$WORK"
cd "$WORK" # the postgres user may not be allowed into the caller's directory
DATA=$WORK/data
PORT=$((20000 + RANDOM % 20000))
PORT2=$((PORT + 1))
RESULTS=$WORK/results
STORE=$WORK/walg-repo
PGBR_CONF=$WORK/pgbr/pgbackrest.conf
RESTORE=$WORK/restore

as_pg() { runuser -u postgres -- env -i PATH=/usr/bin:/bin LC_ALL=C HOME="$WORK/home" "$@"; }

cleanup() {
    for d in "$RESTORE" "$DATA"; do
        if [[ -f "$d/postmaster.pid" ]]; then
            as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
        fi
    done
    if [[ $KEEP -eq 1 ]]; then
        echo "work directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

mkdir -p "$WORK"/{home,logs,bin,walg-repo} "$WORK"/pgbr/{repo,log,lock,spool}
: >"$RESULTS"
cp "$WALG" "$WORK/bin/walg"
chmod 755 "$WORK/bin/walg"
if [[ -n "$BASELINE" ]]; then
    cp "$BASELINE" "$WORK/bin/walg-baseline"
    chmod 755 "$WORK/bin/walg-baseline"
fi
chown -R postgres:postgres "$WORK"

psql_() { as_pg "$PGBIN/psql" -XAtq -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U postgres -d postgres "$@"; }
bench_sql() { psql_ -d bench -c "$1"; }

# --- 1. cluster and pgBackRest stanza ------------------------------------------------------------
echo "creating a cluster in $DATA (port $PORT, socket in $WORK) ..." >&2
as_pg "$PGBIN/initdb" -D "$DATA" -A trust -U postgres -E UTF8 --locale=C >/dev/null
cat >>"$DATA/postgresql.conf" <<EOF

# bench-backup.sh
listen_addresses = ''
port = $PORT
unix_socket_directories = '$WORK'
fsync = off
shared_buffers = '256MB'
max_wal_size = '4GB'
checkpoint_timeout = '1h'
wal_level = replica
archive_mode = on
archive_command = 'WALG_FILE_PREFIX=$STORE $WORK/bin/walg wal-push %p'
archive_timeout = 0
EOF
as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w start >/dev/null

cat >"$PGBR_CONF" <<EOF
[global]
repo1-path=$WORK/pgbr/repo
compress-type=lz4
process-max=2
start-fast=y
archive-check=n
repo1-retention-full=9999999
log-level-console=warn
log-level-file=off
log-path=$WORK/pgbr/log
lock-path=$WORK/pgbr/lock
spool-path=$WORK/pgbr/spool

[bench]
pg1-path=$DATA
pg1-socket-path=$WORK
pg1-port=$PORT
EOF
chown postgres:postgres "$PGBR_CONF"
as_pg pgbackrest --config="$PGBR_CONF" --stanza=bench stanza-create >"$WORK/logs/stanza-create.log" 2>&1 ||
    die "pgbackrest stanza-create failed: $(cat "$WORK/logs/stanza-create.log")"

# --- helpers ---------------------------------------------------------------------------------------
# wait_archived: switches to a new WAL segment and waits until walg has archived everything.
wait_archived() {
    local want last failed deadline=$((SECONDS + 900))
    psql_ -c "checkpoint"
    want=$(psql_ -c "select pg_walfile_name(pg_switch_wal())")
    while :; do
        last=$(psql_ -c "select coalesce(last_archived_wal, '') from pg_stat_archiver")
        if [[ ! "${last:0:24}" < "$want" ]] && ! compgen -G "$DATA/pg_wal/archive_status/*.ready" >/dev/null; then
            break
        fi
        [[ $SECONDS -lt $deadline ]] || die "WAL archiving through walg is behind ($last, want $want); see $WORK/server.log"
        sleep 0.5
    done
    failed=$(psql_ -c "select failed_count from pg_stat_archiver")
    [[ "$failed" == 0 ]] || echo "warning: pg_stat_archiver.failed_count = $failed (see $WORK/server.log)" >&2
}

# settle: the dataset frozen and checkpointed, archiving caught up, dirty pages written back.
settle() {
    bench_sql "vacuum (freeze, analyze)"
    wait_archived
    sync
}

db_size() { psql_ -c "select sum(pg_database_size(oid)) from pg_database"; }

# timed <log> [VAR=value...] <command...>: runs the command as postgres under GNU time (through
# env, which execs it); prints "secs rss_kib cpu_secs rc" (CPU: user + system, children included).
timed() {
    local log=$1 rc
    shift
    set +e
    as_pg /usr/bin/time -f '%e %M %U %S' -o "$WORK/time.out" env "$@" >"$log" 2>&1
    rc=$?
    set -e
    tail -n 1 "$WORK/time.out" | awk -v rc="$rc" '{ printf "%s %s %.2f %s\n", $1, $2, $3 + $4, rc }'
}

# check_run <what> <rc> <log>: dies with the log's tail when the run failed.
check_run() {
    [[ "$2" == 0 ]] && return 0
    echo "--- $1 failed (exit $2); the end of $3:" >&2
    tail -n 30 "$3" >&2
    die "$1 failed"
}

# fresh_restore_dir: an empty, postgres-owned, mode 700 directory at $RESTORE.
fresh_restore_dir() {
    rm -rf "$RESTORE"
    install -d -m 700 -o postgres -g postgres "$RESTORE"
}

bytes_of() { du -sb "$@" | awk '{ s += $1 } END { print s + 0 }'; }

# verify_restore <what>: the restored directory looks like the cluster that was backed up.
verify_restore() {
    local what=$1 got
    [[ -f "$RESTORE/PG_VERSION" ]] || die "$what: no PG_VERSION in the restored directory"
    [[ -f "$RESTORE/global/pg_control" ]] || die "$what: no global/pg_control in the restored directory"
    [[ -f "$RESTORE/backup_label" ]] || die "$what: no backup_label in the restored directory"
    got=$(bytes_of "$RESTORE/base" "$RESTORE/global")
    # pg_database_size counts base/<oid>; global/ (shared catalogs) comes on top.
    ((got * 100 >= DB_BYTES * 95)) ||
        die "$what: the restored base/ and global/ hold $got bytes, the databases $DB_BYTES"
    if [[ $VERIFY_START -eq 1 ]]; then
        verify_start "$what"
    fi
}

# verify_start <what>: starts the restored cluster with WAL from walg's archive (pgBackRest's
# own archive is empty: archive-check=n), waits for the end of recovery, counts rows, stops it.
verify_start() {
    local what=$1 rows i
    cat >>"$RESTORE/postgresql.auto.conf" <<EOF
port = $PORT2
listen_addresses = ''
unix_socket_directories = '$WORK'
archive_mode = off
restore_command = 'WALG_FILE_PREFIX=$STORE $WORK/bin/walg wal-fetch %f %p'
EOF
    as_pg touch "$RESTORE/recovery.signal"
    as_pg "$PGBIN/pg_ctl" -D "$RESTORE" -l "$WORK/logs/restored.log" -w -t 600 start >/dev/null ||
        die "$what: the restored cluster did not start; see $WORK/logs/restored.log (--keep)"
    for ((i = 0; i < 600; i++)); do
        [[ "$(as_pg "$PGBIN/psql" -XAtq -h "$WORK" -p "$PORT2" -U postgres -d bench \
            -c "select pg_is_in_recovery()" 2>/dev/null)" == f ]] && break
        sleep 0.5
    done
    rows=$(as_pg "$PGBIN/psql" -XAtq -h "$WORK" -p "$PORT2" -U postgres -d bench -c "select count(*) from $MAIN_TABLE")
    as_pg "$PGBIN/pg_ctl" -D "$RESTORE" -m fast -w stop >/dev/null
    [[ "$rows" == "$MAIN_ROWS" ]] || die "$what: the started copy has $rows rows in $MAIN_TABLE, not $MAIN_ROWS"
    echo "  $what: started, recovered, $rows rows in $MAIN_TABLE" >&2
}

record() { echo "$DS $*" >>"$RESULTS"; } # record <tool> <op> <rep> <secs> <rss_kib> <stored> <cpu>

WALG_ENV=(WALG_FILE_PREFIX="$STORE" PGHOST="$WORK" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres)

# --- the runs --------------------------------------------------------------------------------------
# run_walg <rep> [tool]: backup-push and backup-fetch with $WORK/bin/<tool> (default walg).
run_walg() {
    local rep=$1 tool=${2:-walg} secs rss cpu rc log stored
    local bin=$WORK/bin/$tool
    log=$WORK/logs/$DS-$tool-backup-$rep.log
    read -r secs rss cpu rc < <(timed "$log" "${WALG_ENV[@]}" "$bin" backup-push "$DATA")
    check_run "$tool backup-push ($DS, rep $rep)" "$rc" "$log"
    compgen -G "$STORE/basebackups_005/*_backup_stop_sentinel.json" >/dev/null ||
        die "walg backup-push exited 0 but wrote no sentinel"
    stored=$(bytes_of "$STORE/basebackups_005")
    record "$tool" backup "$rep" "$secs" "$rss" "$stored" "$cpu"
    sync

    fresh_restore_dir
    log=$WORK/logs/$DS-$tool-restore-$rep.log
    read -r secs rss cpu rc < <(timed "$log" WALG_FILE_PREFIX="$STORE" "$bin" backup-fetch "$RESTORE" LATEST)
    check_run "$tool backup-fetch ($DS, rep $rep)" "$rc" "$log"
    record "$tool" restore "$rep" "$secs" "$rss" - "$cpu"
    verify_restore "$tool backup-fetch ($DS, rep $rep)"
    rm -rf "$RESTORE" "$STORE/basebackups_005"
    sync
}

run_baseline() { run_walg "$1" walg-baseline; }

run_pgbackrest() {
    local rep=$1 secs rss cpu rc log stored set
    log=$WORK/logs/$DS-pgbackrest-backup-$rep.log
    read -r secs rss cpu rc < <(timed "$log" pgbackrest --config="$PGBR_CONF" --stanza=bench --type=full backup)
    check_run "pgbackrest backup ($DS, rep $rep)" "$rc" "$log"
    set=$(find "$WORK/pgbr/repo/backup/bench" -mindepth 1 -maxdepth 1 -type d -name '*F' -printf '%f\n' | sort | tail -n 1)
    [[ -n "$set" ]] || die "pgbackrest backup exited 0 but no backup set is in the repository"
    stored=$(bytes_of "$WORK/pgbr/repo/backup/bench/$set")
    record pgbackrest backup "$rep" "$secs" "$rss" "$stored" "$cpu"
    # Expire the previous set (the newest full backup cannot be), so that the repository holds
    # one backup when the next one is timed.
    find "$WORK/pgbr/repo/backup/bench" -mindepth 1 -maxdepth 1 -type d -name '*F' -printf '%f\n' |
        while read -r old; do
            [[ "$old" == "$set" ]] && continue
            as_pg pgbackrest --config="$PGBR_CONF" --stanza=bench expire --set="$old" \
                >>"$WORK/logs/pgbackrest-expire.log" 2>&1 ||
                die "pgbackrest expire --set=$old failed: $(tail -n 5 "$WORK/logs/pgbackrest-expire.log")"
        done
    sync

    fresh_restore_dir
    log=$WORK/logs/$DS-pgbackrest-restore-$rep.log
    read -r secs rss cpu rc < <(timed "$log" pgbackrest --config="$PGBR_CONF" --stanza=bench --pg1-path="$RESTORE" restore)
    check_run "pgbackrest restore ($DS, rep $rep)" "$rc" "$log"
    record pgbackrest restore "$rep" "$secs" "$rss" - "$cpu"
    verify_restore "pgbackrest restore ($DS, rep $rep)"
    rm -rf "$RESTORE"
    sync
}

run_basebackup() {
    local rep=$1 secs rss cpu rc log stored
    rm -rf "$RESTORE"
    log=$WORK/logs/$DS-pg_basebackup-$rep.log
    read -r secs rss cpu rc < <(timed "$log" "$PGBIN/pg_basebackup" -h "$WORK" -p "$PORT" -U postgres \
        -Ft -X none -c fast -D "$RESTORE")
    check_run "pg_basebackup ($DS, rep $rep)" "$rc" "$log"
    [[ -s "$RESTORE/base.tar" ]] || die "pg_basebackup exited 0 but wrote no base.tar"
    stored=$(bytes_of "$RESTORE")
    record pg_basebackup backup "$rep" "$secs" "$rss" "$stored" "$cpu"
    rm -rf "$RESTORE"
    sync
}

# --- datasets --------------------------------------------------------------------------------------
drop_bench() { psql_ -c "set client_min_messages = warning" -c "drop database if exists bench"; }

load_pgbench() { # load_pgbench <scale>
    drop_bench
    psql_ -c "create database bench"
    echo "loading pgbench scale $1 ..." >&2
    as_pg "$PGBIN/pgbench" -i -q -s "$1" -h "$WORK" -p "$PORT" -U postgres bench >"$WORK/logs/pgbench-init-$1.log" 2>&1 ||
        die "pgbench -i failed: $(tail -n 5 "$WORK/logs/pgbench-init-$1.log")"
    MAIN_TABLE=pgbench_accounts
}

load_realistic() { # load_realistic <MiB>
    local target=$(($1 * MIB)) batch=$(($1 * 150)) size
    ((batch >= 2000)) || batch=2000
    drop_bench
    psql_ -c "create database bench"
    bench_sql "create table docs (
        id bigint generated always as identity primary key,
        uid uuid not null default gen_random_uuid(),
        created_at timestamptz not null,
        title text not null,
        body text not null,
        attrs jsonb not null)"
    bench_sql "create unique index docs_uid on docs (uid)"
    echo "loading the realistic dataset, $1 MiB ..." >&2
    while :; do
        size=$(psql_ -c "select pg_database_size('bench')")
        ((size < target)) || break
        # Row sizes vary (4 to 15 base64 words of body); all stays below the TOAST threshold,
        # so PostgreSQL stores it uncompressed.
        bench_sql "insert into docs (created_at, title, body, attrs)
            select now() - random() * interval '730 days',
                   md5(random()::text),
                   (select string_agg(encode(sha256((random()::text || w::text)::bytea), 'base64'), ' ')
                      from generate_series(1, 4 + (g % 12)) w),
                   jsonb_build_object(
                       'customer', (random() * 1000000)::int,
                       'score', random(),
                       'ref', gen_random_uuid(),
                       'status', (array['new', 'paid', 'shipped', 'returned'])[1 + (g % 4)],
                       'note', md5(random()::text),
                       'tags', jsonb_build_array(left(md5(random()::text), 8), left(md5(random()::text), 6)))
              from generate_series(1, $batch) g"
    done
    MAIN_TABLE=docs
}

# bench_dataset <name> <description>: the timed repetitions on the loaded dataset.
bench_dataset() {
    DS=$1
    settle
    DB_BYTES=$(db_size)
    MAIN_ROWS=$(bench_sql "select count(*) from $MAIN_TABLE")
    echo "$DS $DB_BYTES $2" >>"$WORK/datasets"
    echo "dataset $DS: $((DB_BYTES / MIB)) MiB in all databases; $REPS repetition(s) ..." >&2
    local rep tools tool
    for ((rep = 1; rep <= REPS; rep++)); do
        if ((rep % 2 == 1)); then tools="walg pgbackrest basebackup"; else tools="basebackup pgbackrest walg"; fi
        if [[ -n "$BASELINE" ]]; then
            if ((rep % 2 == 1)); then tools="$tools baseline"; else tools="baseline $tools"; fi
        fi
        for tool in $tools; do
            echo "  rep $rep: $tool" >&2
            "run_$tool" "$rep"
        done
    done
}

load_pgbench "$SCALE"
bench_dataset "pgbench-s$SCALE" "pgbench scale $SCALE"
load_realistic "$REALISTIC_MB"
bench_dataset "realistic-${REALISTIC_MB}mb" "random text, uuids, jsonb, two indexes"

for s in $RSS_SCALES; do
    load_pgbench "$s"
    DS=rss-s$s
    settle
    DB_BYTES=$(db_size)
    MAIN_ROWS=$(bench_sql "select count(*) from $MAIN_TABLE")
    echo "$DS $DB_BYTES pgbench scale $s, walg only" >>"$WORK/datasets"
    echo "dataset $DS: $((DB_BYTES / MIB)) MiB, walg only ..." >&2
    run_walg 1
done
drop_bench
archived=$(psql_ -c "select archived_count || ' archived, ' || failed_count || ' failed' from pg_stat_archiver")
as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null

# --- 4. report -------------------------------------------------------------------------------------
# Columns of $RESULTS: dataset tool operation rep secs rss_kib stored_bytes cpu_secs.
SECS=5 RSS=6 STORED=7 CPU=8
# med <dataset> <tool> <op> <column>: the median of a column.
med() {
    awk -v d="$1" -v t="$2" -v o="$3" -v c="$4" '$1 == d && $2 == t && $3 == o { print $c }' "$RESULTS" |
        sort -n | awk '{ v[NR] = $1 } END {
            if (NR == 0 || v[1] == "-") { print "-"; exit }
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# maxof <dataset> <tool> <column> [op]: the highest value of a column.
maxof() {
    awk -v d="$1" -v t="$2" -v c="$3" -v o="${4:-}" '$1 == d && $2 == t && (o == "" || $3 == o) && $c > m { m = $c }
        END { print m + 0 }' "$RESULTS"
}
calc() { awk "BEGIN { $1 }"; }
verdict() { calc "print ($1) ? \"PASS\" : \"MISS\""; }

tool_name() {
    case "$1" in
    walg) echo walg ;;
    walg-baseline) echo "walg (baseline)" ;;
    pgbackrest) echo "pgBackRest $PGBR_VERSION" ;;
    pg_basebackup) echo "pg_basebackup -Ft" ;;
    esac
}

printf '\nbackup/restore benchmark: walg %s, pgBackRest %s, PostgreSQL %s; %d CPUs; %d repetition(s), medians\n' \
    "$("$WORK/bin/walg" --version | awk '{ print $3 }')" "$PGBR_VERSION" \
    "$("$PGBIN/postgres" --version | awk '{ print $3 }')" "$(nproc)" "$REPS"

while read -r ds bytes desc; do
    [[ "$ds" == rss-* ]] && continue
    mib=$(calc "printf \"%.0f\", $bytes / $MIB")
    printf '\n== %s: %s; %s MiB of database (sum of pg_database_size)\n\n' "$ds" "$desc" "$mib"
    printf '%-20s %-8s %9s %9s %8s %14s %11s %7s\n' tool operation "median s" "MiB/s" "CPU s" "peak RSS MiB" \
        "stored MiB" ratio
    declare -A S=() R=()
    keys="walg:backup walg:restore pgbackrest:backup pgbackrest:restore pg_basebackup:backup"
    [[ -z "$BASELINE" ]] || keys="$keys walg-baseline:backup walg-baseline:restore"
    for key in $keys; do
        tool=${key%%:*} op=${key#*:}
        secs=$(med "$ds" "$tool" "$op" $SECS)
        rss=$(med "$ds" "$tool" "$op" $RSS)
        stored=$(med "$ds" "$tool" "$op" $STORED)
        cpu=$(med "$ds" "$tool" "$op" $CPU)
        S[$key]=$secs
        R[$key]=$rss
        if [[ "$stored" == - ]]; then
            stored_col=- ratio_col=-
        else
            stored_col=$(calc "printf \"%.1f\", $stored / $MIB")
            ratio_col=$(calc "printf \"%.2fx\", $bytes / $stored")
        fi
        printf '%-20s %-8s %9.2f %9.1f %8.2f %14.1f %11s %7s\n' "$(tool_name "$tool")" "$op" "$secs" \
            "$(calc "print ($secs > 0) ? $bytes / $MIB / $secs : 0")" "$cpu" "$(calc "print $rss / 1024")" \
            "$stored_col" "$ratio_col"
    done
    printf '\n(MiB/s = database size / median seconds; CPU s = user + system, all processes;\n'
    printf ' ratio = database size / stored size)\n\n'
    # Same database size for every tool: the throughput ratio is the inverse ratio of seconds.
    r1=$(calc "printf \"%.2f\", ${S[pgbackrest:backup]} / ${S[walg:backup]}")
    r2=$(calc "printf \"%.2f\", ${S[pg_basebackup:backup]} / ${S[walg:backup]}")
    r3=$(calc "printf \"%.2f\", ${S[pgbackrest:restore]} / ${S[walg:restore]}")
    rss_max=$(calc "printf \"%.1f\", $(maxof "$ds" walg $RSS) / 1024")
    printf 'walg backup throughput / pgBackRest backup     = %6sx   target >= 5    %s\n' "$r1" "$(verdict "$r1 >= 5")"
    printf 'walg backup throughput / pg_basebackup -Ft     = %6sx   target >= 2    %s\n' "$r2" "$(verdict "$r2 >= 2")"
    printf 'walg restore throughput / pgBackRest restore   = %6sx   target >= 3    %s\n' "$r3" "$(verdict "$r3 >= 3")"
    printf 'walg peak RSS (highest of all its runs)        = %6s MiB target <= 32 %s\n' "$rss_max" "$(verdict "$rss_max <= 32")"
    if [[ -n "$BASELINE" ]]; then
        # Below 1 is faster than the baseline; the pgBackRest ratios of both show the machine's drift.
        b1=$(calc "printf \"%.2f\", ${S[walg:backup]} / ${S[walg-baseline:backup]}")
        b2=$(calc "printf \"%.2f\", ${S[walg:restore]} / ${S[walg-baseline:restore]}")
        b3=$(calc "printf \"%.2f\", ${S[pgbackrest:backup]} / ${S[walg-baseline:backup]}")
        b4=$(calc "printf \"%.2f\", ${S[pgbackrest:restore]} / ${S[walg-baseline:restore]}")
        brss=$(calc "printf \"%.1f\", $(maxof "$ds" walg-baseline $RSS) / 1024")
        printf 'walg seconds / baseline seconds, backup        = %6s    (baseline vs pgBackRest: %sx)\n' "$b1" "$b3"
        printf 'walg seconds / baseline seconds, restore       = %6s    (baseline vs pgBackRest: %sx)\n' "$b2" "$b4"
        printf 'baseline peak RSS (highest of all its runs)    = %6s MiB\n' "$brss"
    fi
    unset S R
done <"$WORK/datasets"

if grep -q '^rss-' "$WORK/datasets"; then
    printf '\n== walg peak RSS against database size (one run each)\n\n'
    printf '%-24s %9s %10s %11s %16s %17s\n' dataset "DB MiB" "backup s" "restore s" \
        "backup RSS MiB" "restore RSS MiB"
    while read -r ds bytes desc; do
        printf '%-24s %9.0f %10.2f %11.2f %16.1f %17.1f\n' "$ds" "$(calc "print $bytes / $MIB")" \
            "$(med "$ds" walg backup $SECS)" "$(med "$ds" walg restore $SECS)" \
            "$(calc "print $(maxof "$ds" walg $RSS backup) / 1024")" \
            "$(calc "print $(maxof "$ds" walg $RSS restore) / 1024")"
    done <"$WORK/datasets"
    printf '\n(RSS: the highest of the runs; seconds: the median)\n'
fi

cat <<EOF

Notes:
- One cluster and the same data for every tool; runs alternate their order between repetitions,
  with \`sync\` between runs. The source files are read from the page cache (nothing drops it).
- Restores go into a new empty directory and are durable: walg and pgBackRest fsync what they
  write; pg_basebackup fsyncs its tar. Restored directories are checked (PG_VERSION,
  global/pg_control, backup_label, size of base/ and global/)$([[ $VERIFY_START -eq 1 ]] && echo "; each one was also started and recovered").
- walg's backup waits until its last WAL segment is archived (archive_command = walg wal-push,
  $archived over the whole run); pg_basebackup -X none waits the same way. pgBackRest runs
  with archive-check=n: it does not wait for WAL archiving and its own archive stays empty, so
  its backups are not restorable from its repository alone (they are with walg's WAL archive).
- Peak RSS is GNU time's %M: the largest single process, the tool's own and those it waited
  for (pgBackRest's process-max=2 workers included), not the sum over processes.
EOF
