#!/usr/bin/env bash
# wal-push benchmark: `walg wal-push` against pgBackRest's synchronous `archive-push`, on the same
# real 16 MiB WAL segments of a throwaway PostgreSQL 15 cluster.
#
# Usage: scripts/bench-wal-push.sh [--segments N] [--walg PATH] [--only walg|pgbackrest] [--keep]
#
#   --segments N   segments to time per tool (default 40; one more is generated as a warm-up)
#   --walg PATH    walg binary to use (default: `cargo build --release`, then target/release/walg)
#   --only TOOL    time only one of the tools
#   --keep         keep the work directory (printed at the end) instead of deleting it
#
# Run as root on Debian 12 with PostgreSQL 15 (`apt-get install -y postgresql-15`). Installs
# pgbackrest and GNU time if missing. PostgreSQL, pgBackRest and walg all run as `postgres`.
#
# What it does:
#  1. initdb a cluster in /tmp/walg-bench.XXXXXX (Unix socket only, in that directory), with
#     archive_command = 'cp %p <staging>/%f'; pgbench plus random-text inserts until N+1 segments
#     are archived into the staging folder. Segments end by filling up, not by pg_switch_wal, so
#     none has a zero-padded tail that would flatter the compression.
#  2. Creates a pgBackRest stanza `bench` (local repo, lz4, archive-async=n), then stops the cluster.
#  3. Copies the segments into a folder WITHOUT an `archive_status/` subfolder, so walg uploads only
#     the file it is given (no background upload of `.ready` files).
#  4. For each segment, in one run, one `walg wal-push <seg>` (WALG_FILE_PREFIX=<own folder>,
#     default lz4) and one `pgbackrest --stanza=bench archive-push <seg>`, alternating which goes
#     first; each call is timed on its own (wall ms, bash $EPOCHREALTIME) with its peak RSS
#     (GNU time %M). Every segment is read once beforehand so both tools read from the page cache.
#  5. Prints p50/p95/mean ms and peak RSS per tool, stored bytes per tool, and the targets:
#     walg p50 <= 1/4 of pgBackRest's p50, walg peak RSS <= 16 MiB.
set -euo pipefail

SEGMENTS=40
WALG=""
ONLY=""
KEEP=0
PGBIN=/usr/lib/postgresql/15/bin
SEG_BYTES=$((16 * 1024 * 1024))

die() {
    echo "bench-wal-push: $*" >&2
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
    --segments)
        [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || die "--segments needs a positive number"
        SEGMENTS=$2
        shift 2
        ;;
    --walg)
        [[ $# -ge 2 ]] || die "--walg needs a path"
        WALG=$2
        shift 2
        ;;
    --only)
        [[ $# -ge 2 && ("$2" == walg || "$2" == pgbackrest) ]] || die "--only walg|pgbackrest"
        ONLY=$2
        shift 2
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

run_walg=1
run_pgbr=1
[[ "$ONLY" == pgbackrest ]] && run_walg=0
[[ "$ONLY" == walg ]] && run_pgbr=0

[[ $EUID -eq 0 ]] || die "run as root (PostgreSQL and the tools run as the postgres user)"
[[ -x "$PGBIN/initdb" ]] || die "PostgreSQL 15 not found in $PGBIN: apt-get install -y postgresql-15"
id postgres >/dev/null 2>&1 || die "no postgres user: apt-get install -y postgresql-15"

# --- tools --------------------------------------------------------------------------------------
if [[ $run_pgbr -eq 1 ]] && ! command -v pgbackrest >/dev/null; then
    echo "installing pgbackrest ..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y pgbackrest >/dev/null
fi
if [[ ! -x /usr/bin/time ]]; then
    echo "installing GNU time ..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y time >/dev/null
fi
if [[ $run_walg -eq 1 && -z "$WALG" ]]; then
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    command -v cargo >/dev/null || die "cargo not found; build walg yourself and pass --walg PATH"
    echo "building walg (cargo build --release) ..." >&2
    (cd "$repo" && cargo build --release --quiet --bin walg)
    WALG=$repo/target/release/walg
fi
if [[ $run_walg -eq 1 ]]; then
    [[ -x "$WALG" ]] || die "walg binary not found or not executable: $WALG"
    WALG=$(realpath "$WALG")
fi

# --- work directory and cleanup -------------------------------------------------------------------
WORK=$(mktemp -d /tmp/walg-bench.XXXXXX)
chmod 755 "$WORK"
cd "$WORK" # the postgres user may not be allowed into the caller's directory
DATA=$WORK/data
PORT=$((20000 + RANDOM % 30000))

as_pg() { runuser -u postgres -- env -i PATH=/usr/bin:/bin LC_ALL=C HOME="$WORK/home" "$@"; }

cleanup() {
    if [[ -f "$DATA/postmaster.pid" ]]; then
        as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [[ $KEEP -eq 1 ]]; then
        echo "work directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

mkdir -p "$WORK"/{home,staging,segs,results,walg-repo,fakepgdata/pg_wal,bin} \
    "$WORK"/pgbr/{repo,log,lock,spool}
chown -R postgres:postgres "$WORK"
if [[ $run_walg -eq 1 ]]; then
    cp "$WALG" "$WORK/bin/walg"
    chmod 755 "$WORK/bin/walg"
fi

psql_() { as_pg "$PGBIN/psql" -XAtq -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U postgres -d postgres "$@"; }
staged() { find "$WORK/staging" -maxdepth 1 -regextype posix-extended -regex '.*/[0-9A-F]{24}' | wc -l; }

# --- 1. cluster and segments -----------------------------------------------------------------------
echo "creating a cluster in $DATA (port $PORT, socket in $WORK) ..." >&2
as_pg "$PGBIN/initdb" -D "$DATA" --no-sync -A trust -U postgres -E UTF8 --locale=C >/dev/null
cat >>"$DATA/postgresql.conf" <<EOF

# bench-wal-push.sh
listen_addresses = ''
port = $PORT
unix_socket_directories = '$WORK'
fsync = off
shared_buffers = '128MB'
wal_level = replica
max_wal_size = '1GB'
archive_mode = on
archive_command = 'test ! -f $WORK/staging/%f && cp %p $WORK/staging/%f'
archive_timeout = 0
EOF
as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w start >/dev/null

want=$((SEGMENTS + 1))
echo "generating $want WAL segments (pgbench + random text) ..." >&2
as_pg "$PGBIN/pgbench" -i -q -s 5 -h "$WORK" -p "$PORT" -U postgres postgres >/dev/null 2>&1
psql_ -c "create table filler (id bigserial primary key, a text, b uuid)"
deadline=$((SECONDS + 900))
while [[ $(staged) -lt $want ]]; do
    [[ $SECONDS -lt $deadline ]] || die "only $(staged) of $want segments after 15 minutes; see $WORK/server.log"
    as_pg "$PGBIN/pgbench" -n -c 2 -j 2 -t 1000 -h "$WORK" -p "$PORT" -U postgres postgres >/dev/null
    psql_ -c "insert into filler (a, b) select md5(random()::text) || repeat(md5(random()::text), 2),
              gen_random_uuid() from generate_series(1, 100000)"
    sleep 0.2
done
mapfile -t SEGS < <(find "$WORK/staging" -maxdepth 1 -regextype posix-extended -regex '.*/[0-9A-F]{24}' \
    -printf '%f\n' | sort | head -n "$want")
for s in "${SEGS[@]}"; do
    [[ $(stat -c %s "$WORK/staging/$s") -eq $SEG_BYTES ]] || die "$s is not 16 MiB"
    cp "$WORK/staging/$s" "$WORK/segs/$s"
done
chown -R postgres:postgres "$WORK/segs"

# --- 2. pgBackRest stanza --------------------------------------------------------------------------
PGBR_CONF=$WORK/pgbr/pgbackrest.conf
cat >"$PGBR_CONF" <<EOF
[global]
repo1-path=$WORK/pgbr/repo
compress-type=lz4
archive-async=n
log-level-console=warn
log-path=$WORK/pgbr/log
lock-path=$WORK/pgbr/lock
spool-path=$WORK/pgbr/spool
start-fast=y

[bench]
pg1-path=$DATA
pg1-socket-path=$WORK
pg1-port=$PORT
EOF
chown postgres:postgres "$PGBR_CONF"
if [[ $run_pgbr -eq 1 ]]; then
    as_pg pgbackrest --config="$PGBR_CONF" --stanza=bench stanza-create
fi
# Timing runs against an idle machine: the cluster is not needed any more.
as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null

# --- 3./4. timed pushes ----------------------------------------------------------------------------
# measure.sh <result file> <tool> <seg> <command...>: runs the command, appends
# "tool seg wall_us peak_rss_kib exit_code" to the result file.
cat >"$WORK/measure.sh" <<'EOF'
#!/bin/bash
out=$1 tool=$2 seg=$3
shift 3
t0=$EPOCHREALTIME
/usr/bin/time -f '%M' -o "$out.rss.$tool" "$@" >"$out.log.$tool.$seg" 2>&1
rc=$?
t1=$EPOCHREALTIME
us=$(( ${t1/./} - ${t0/./} ))
rss=$(tail -n 1 "$out.rss.$tool")
echo "$tool $seg $us $rss $rc" >>"$out"
EOF
chmod 755 "$WORK/measure.sh"

RESULTS=$WORK/results/times
walg_push() {
    runuser -u postgres -- env -i PATH=/usr/bin:/bin LC_ALL=C HOME="$WORK/home" \
        WALG_FILE_PREFIX="$WORK/walg-repo" PGDATA="$WORK/fakepgdata" \
        "$WORK/measure.sh" "$RESULTS" "$1" "$2" "$WORK/bin/walg" wal-push "$WORK/segs/$2"
}
pgbr_push() {
    runuser -u postgres -- env -i PATH=/usr/bin:/bin LC_ALL=C HOME="$WORK/home" \
        "$WORK/measure.sh" "$RESULTS" "$1" "$2" \
        pgbackrest --config="$PGBR_CONF" --stanza=bench archive-push "$WORK/segs/$2"
}

echo "timing $SEGMENTS segments per tool (+1 warm-up) ..." >&2
i=0
for s in "${SEGS[@]}"; do
    cat "$WORK/segs/$s" >/dev/null
    tag=run
    [[ $i -eq 0 ]] && tag=warmup
    if ((i % 2 == 0)); then order="walg pgbackrest"; else order="pgbackrest walg"; fi
    for tool in $order; do
        if [[ $tool == walg && $run_walg -eq 1 ]]; then
            walg_push "walg-$tag" "$s"
        elif [[ $tool == pgbackrest && $run_pgbr -eq 1 ]]; then
            pgbr_push "pgbackrest-$tag" "$s"
        fi
    done
    i=$((i + 1))
done

# Every call must have succeeded and stored its segment.
failed=$(awk '$5 != 0' "$RESULTS")
if [[ -n "$failed" ]]; then
    echo "failed pushes (tool seg us rss rc):" >&2
    echo "$failed" >&2
    read -r tool seg _ < <(echo "$failed")
    echo "--- output of the first failure ($tool $seg):" >&2
    cat "$RESULTS.log.$tool.$seg" >&2
    exit 1
fi
for s in "${SEGS[@]}"; do
    if [[ $run_walg -eq 1 ]]; then
        [[ -s "$WORK/walg-repo/wal_005/$s.lz4" ]] || die "walg exited 0 but did not store wal_005/$s.lz4"
    fi
    if [[ $run_pgbr -eq 1 ]]; then
        compgen -G "$WORK/pgbr/repo/archive/bench/*/${s:0:16}/$s-*.lz4" >/dev/null ||
            die "pgbackrest exited 0 but did not store $s"
    fi
done

# --- 5. report -------------------------------------------------------------------------------------
# stats <tool>: "p50_ms p95_ms mean_ms max_rss_mib" over the timed (non-warm-up) calls.
stats() {
    awk -v t="$1-run" '$1 == t { print $3, $4 }' "$RESULTS" | sort -n | awk '
        { us[NR] = $1; sum += $1; if ($2 > rss) rss = $2 }
        END {
            if (NR == 0) { print "- - - -"; exit }
            i50 = int((NR * 50 + 99) / 100); i95 = int((NR * 95 + 99) / 100)
            printf "%.1f %.1f %.1f %.1f\n", us[i50] / 1000, us[i95] / 1000, sum / NR / 1000, rss / 1024
        }'
}
stored_bytes() { find "$1" -type f -name '*.lz4' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

plain=$((SEGMENTS * SEG_BYTES))
printf '\nwal-push of %d WAL segments (16 MiB each, from pgbench + random text), one process per segment\n\n' "$SEGMENTS"
printf '%-12s %9s %9s %9s %15s %14s %8s\n' tool "p50 ms" "p95 ms" "mean ms" "peak RSS MiB" "stored MiB" ratio
declare -A P50 RSS
for tool in walg pgbackrest; do
    [[ $tool == walg && $run_walg -eq 0 ]] && continue
    [[ $tool == pgbackrest && $run_pgbr -eq 0 ]] && continue
    read -r p50 p95 mean rss < <(stats "$tool")
    P50[$tool]=$p50
    RSS[$tool]=$rss
    if [[ $tool == walg ]]; then
        repo_dir=$WORK/walg-repo/wal_005
    else
        repo_dir=$WORK/pgbr/repo/archive/bench
    fi
    # Only the timed segments count (the warm-up segment is excluded).
    bytes=$(( $(stored_bytes "$repo_dir") - $(find "$repo_dir" -type f -name "${SEGS[0]}*.lz4" -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }') ))
    printf '%-12s %9s %9s %9s %15s %14.1f %7.2fx\n' "$tool" "$p50" "$p95" "$mean" "$rss" \
        "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')" "$(awk -v p="$plain" -v b="$bytes" 'BEGIN { print (b > 0 ? p / b : 0) }')"
done
printf '\n(plain: %d MiB; ratio = plain / stored)\n' $((plain / 1048576))

if [[ $run_walg -eq 1 && $run_pgbr -eq 1 ]]; then
    ratio=$(awk -v w="${P50[walg]}" -v p="${P50[pgbackrest]}" 'BEGIN { printf "%.3f", w / p }')
    speed=$(awk -v r="$ratio" 'BEGIN { print (r <= 0.25) ? "PASS" : "MISS" }')
    printf '\nwalg p50 / pgbackrest p50 = %s   target <= 0.25 (4x faster)   %s\n' "$ratio" "$speed"
fi
if [[ $run_walg -eq 1 ]]; then
    mem=$(awk -v r="${RSS[walg]}" 'BEGIN { print (r <= 16) ? "PASS" : "MISS" }')
    printf 'walg peak RSS = %s MiB   target <= 16 MiB   %s\n' "${RSS[walg]}" "$mem"
fi
