#!/usr/bin/env bash
# Builds the cargo-fuzz targets of fuzz/ and runs each for a while: the tar reader, every
# decompressor, the JSON documents of a backup, the tablespace spec, WAL page headers, backup
# names and keys, the config file and cron expressions. Fails if any target finds a crash, a
# panic, a leak, an out-of-memory (RSS or a single allocation over the limit) or a slow input;
# the input that did it is left in fuzz/artifacts/<target>/ (replay it with
# `cargo +nightly fuzz run <target> <file>`). Prints the executions of every target.
#   scripts/fuzz.sh                       every target, 20 s each (CI)
#   scripts/fuzz.sh --seconds 600         every target, 10 minutes each
#   scripts/fuzz.sh --jobs 2 tar_extract  targets run two at a time; only the ones named
#   scripts/fuzz.sh --sanitizer none      no AddressSanitizer: faster, but no malloc limit
# Needs the nightly toolchain and cargo-fuzz (scripts/install-deps.sh installs cargo-fuzz).
# New inputs are kept in fuzz/corpus/<target>/ (not committed) next to the seeds of
# fuzz/seeds/<target>/, so longer runs build on earlier ones.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=20
jobs=1
sanitizer=address
rss_mb=2048
malloc_mb=2048
timeout_s=10
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --sanitizer) sanitizer=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is missing: scripts/install-deps.sh installs it" >&2
  exit 2
fi
all=$(cargo +nightly fuzz list)
[ ${#targets[@]} -gt 0 ] || mapfile -t targets <<<"$all"
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$all" || { echo "fuzz.sh: no target $t (have: $(echo $all))" >&2; exit 2; }
done

start=$(date +%s)
echo "== building ${#targets[@]} fuzz targets (sanitizer $sanitizer)"
if [ ${#targets[@]} -eq "$(wc -l <<<"$all")" ]; then
  cargo +nightly fuzz build --sanitizer "$sanitizer"
else
  for t in "${targets[@]}"; do cargo +nightly fuzz build --sanitizer "$sanitizer" "$t"; done
fi
built=$(date +%s)
echo "== built in $((built - start)) s; running each target for $seconds s, $jobs at a time"

bin_dir=target/x86_64-unknown-linux-gnu/release
logs=$(mktemp -d "${TMPDIR:-/tmp}/walg-fuzz-logs.XXXXXX")
scratch=/dev/shm
[ -d "$scratch" ] && [ -w "$scratch" ] || scratch=${TMPDIR:-/tmp}
scratch=$(mktemp -d "$scratch/walg-fuzz.XXXXXX")
trap 'rm -rf "$scratch" "$logs"' EXIT

run_one() { # run_one <target>: exit status of libFuzzer, log in $logs/<target>.log
  local t=$1
  mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
  TMPDIR="$scratch" "$bin_dir/$t" \
    -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$malloc_mb" \
    -timeout="$timeout_s" -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
    "corpus/$t" "seeds/$t" >"$logs/$t.log" 2>&1
}

declare -A status
pids=()
names=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  names+=("$t")
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" && status[${names[0]}]=0 || status[${names[0]}]=$?
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" && status[${names[$i]}]=0 || status[${names[$i]}]=$?
done

failed=0
printf '%-20s %12s %10s  %s\n' target executions corpus result
for t in "${targets[@]}"; do
  log="$logs/$t.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -1)
  corpus=$(find "corpus/$t" -type f | wc -l)
  if [ "${status[$t]}" -eq 0 ]; then
    result=ok
  else
    failed=1
    result="FAILED (exit ${status[$t]})"
  fi
  printf '%-20s %12s %10s  %s\n' "$t" "${execs:-?}" "$corpus" "$result"
  if [ "${status[$t]}" -ne 0 ]; then
    grep -E '^==[0-9]+==|ERROR|panicked|SUMMARY|Test unit written|out-of-memory|timeout' "$log" |
      head -20 | sed 's/^/    /'
  fi
done
echo "== fuzzing took $(( $(date +%s) - built )) s, $(( $(date +%s) - start )) s in all"
exit "$failed"
