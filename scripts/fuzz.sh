#!/usr/bin/env bash
# Builds the fuzz harnesses of tests/fuzz/ with clang's libFuzzer (+ ASan and UBSan) in
# build-fuzz/ and runs each for SECONDS (default 60), one after another (one process each: a
# single worker), on a copy of its corpus.
#   scripts/fuzz.sh [SECONDS] [HARNESS...]     e.g. scripts/fuzz.sh 120 plan idx
# New inputs the fuzzer finds go to build-fuzz/work/<harness>/ (not into the repository); a
# crash, leak, sanitizer report, timeout or out-of-memory stops that harness and leaves its input
# as build-fuzz/findings/<harness>/crash-* (or leak-*, timeout-*, oom-*): fix the parser, then
# copy the input into tests/fuzz/corpus/<harness>/ so that the test suite replays it. Prints the
# executions of each harness. Installs clang with apt-get when it is missing.
# Environment: SELMASK_FUZZ_JOBS (build jobs, default 2), SELMASK_FUZZ_RSS_MB (default 2048),
# SELMASK_FUZZ_MALLOC_MB (the largest single allocation, default 512: an input that makes the
# parser allocate more has claimed too much).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if [ $# -gt 0 ]; then shift; fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [HARNESS...]" >&2
  exit 2
fi
if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz.sh: installing clang (libFuzzer)" >&2
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y clang; else sudo apt-get install -y clang; fi
fi
scripts/install-deps.sh

all=(idx weights plan byteranges http_response tiles tile_table png pack_service jpeg bitmaps state)
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then harnesses=("${all[@]}"); fi

dir=build-fuzz
cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER="$(command -v clang++)" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSELMASK_FUZZ=ON -DSELMASK_ENABLE_CUDA=OFF -DSELMASK_BUILD_EXAMPLES=OFF >/dev/null
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build "$dir" -j "${SELMASK_FUZZ_JOBS:-2}" --target "${targets[@]}"

summary=()
status=0
for h in "${harnesses[@]}"; do
  work="$dir/work/$h" findings="$dir/findings/$h" log="$dir/logs/$h.log"
  mkdir -p "$work" "$findings" "$(dirname "$log")"
  cp -n tests/fuzz/corpus/"$h"/* "$work"/ 2>/dev/null || true
  echo "== fuzz_$h: ${seconds} s" >&2
  rc=0
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$dir/tests/fuzz_$h" -max_total_time="$seconds" -rss_limit_mb="${SELMASK_FUZZ_RSS_MB:-2048}" \
    -malloc_limit_mb="${SELMASK_FUZZ_MALLOC_MB:-512}" \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$findings/" \
    "$work" >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  if [ "$rc" -ne 0 ]; then
    status=1
    summary+=("fuzz_$h: FINDING after ${execs:-?} executions (exit $rc): $(ls "$findings" | tr '\n' ' ')(log: $log)")
  else
    summary+=("fuzz_$h: ${execs:-?} executions in ${seconds} s, coverage ${cov:-?}, no finding")
  fi
done
rm -rf /dev/shm/selmask-fuzz-* 2>/dev/null || true
printf '%s\n' "${summary[@]}"
exit "$status"
