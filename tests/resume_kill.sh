#!/usr/bin/env bash
# The main job killed with SIGKILL at three random moments and resumed each time (--resume), then
# stopped once more with SIGTERM and resumed to the end, against one run never interrupted: its
# front.csv, epochs.csv (but for the seconds column: wall-clock time differs between any two runs),
# summary.txt, front checkpoints, masks and last weights must be identical, byte for byte.
#   tests/resume_kill.sh PATH/TO/fashion_mnist_pixels
# A kill lands after a random number (1..6) of rewrites of the state file and a random delay
# (0..0.3 s); SELMASK_RESUME_SEED=N repeats the moments of an earlier run (the seed is printed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
job=$(realpath "$1")
seed=${SELMASK_RESUME_SEED:-$(( $(date +%s%N) % 32768 ))}
RANDOM=$seed
echo "resume_kill: seed $seed (SELMASK_RESUME_SEED=$seed repeats these moments)"
export OPENBLAS_NUM_THREADS=1 # the same thread count in every run: bit-for-bit results
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$work"' EXIT
args=(--out out --train-limit 3000 --validation 500 --test-limit 500 --warmup 1 --mask-epochs 3
      --state-every 4)
fail() { echo "resume_kill: FAILED: $*" >&2; exit 1; }

mkdir -p "$work/reference" "$work/stopped"
(cd "$work/reference" && "$job" "${args[@]}" > log 2>&1) || { cat "$work/reference/log"; fail "the reference run failed"; }

inode() { stat -c %i "$1" 2>/dev/null || echo none; }
# starts the job in $work/stopped (args "$@"), waits for N rewrites of the state, then signals it
interrupt() {
  local signal=$1 expect=$2 log=$3
  shift 3
  local writes=$(( RANDOM % 6 + 1 )) delay
  delay=$(printf '0.%02d' $(( RANDOM % 31 )))
  (cd "$work/stopped" && exec "$job" "$@" > "$log" 2>&1) &
  pid=$!
  local state="$work/stopped/out/state/state.bin" last seen=0
  last=$(inode "$state")
  while [ "$seen" -lt "$writes" ]; do
    kill -0 "$pid" 2>/dev/null || fail "the run ended before its state was rewritten $writes times ($log)"
    local now
    now=$(inode "$state")
    if [ "$now" != "$last" ]; then
      seen=$((seen + 1))
      last=$now
    fi
    sleep 0.02
  done
  sleep "$delay"
  kill -"$signal" "$pid" || fail "the run had ended before SIG$signal"
  local rc=0
  { wait "$pid"; } 2> /dev/null || rc=$? # (no "Killed" line from the shell)
  pid=
  [ "$rc" = "$expect" ] || { cat "$work/stopped/$log"; fail "SIG$signal: exit status $rc, expected $expect"; }
  echo "resume_kill: SIG$signal after $writes state writes + ${delay}s: $(grep -o 'resuming from .*' "$work/stopped/$log" || echo 'a fresh start')"
}

interrupt KILL 137 log1 "${args[@]}"
interrupt KILL 137 log2 --resume out
interrupt KILL 137 log3 --resume out
interrupt TERM 143 log4 --resume out
grep -q "stopped by SIGTERM" "$work/stopped/log4" || fail "SIGTERM: no message saying the run stopped"
grep -q -- "--resume out" "$work/stopped/log4" || fail "SIGTERM: the message does not say how to resume"
(cd "$work/stopped" && "$job" --resume out > log5 2>&1) || { cat "$work/stopped/log5"; fail "the last resume failed"; }
for k in 2 3 4 5; do
  grep -q "resuming from .* at epoch" "$work/stopped/log$k" || fail "run $k did not resume from a state"
done

same=$("$here/same_outputs.sh" "$work/reference/out" "$work/stopped/out") || fail "the outputs differ"
echo "resume_kill: $same to the uninterrupted run's"
