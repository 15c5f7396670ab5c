#!/usr/bin/env bash
# The MPI tests of data-parallel training (label mpi):
#   tests/mpi/run.sh PATH/TO/mpi_train PATH/TO/mpirun
# 1. two ranks (mpirun -np 2 --oversubscribe) give the same front, hard masks and final weights,
#    byte for byte, as the same two shards computed in one process (local_shards(2)); the
#    difference to one process without shards is printed (sums taken in another order);
# 2. a run stopped mid-epoch and resumed across ranks (--state) gives the same result as one never
#    stopped;
# 3. a rank that exits mid-epoch ends the job, with a non-zero status, well within the timeout;
# 4. a rank that hangs mid-epoch makes the other stop with an error naming the timeout.
set -euo pipefail
prog=$(realpath "$1")
mpirun=${2:-mpirun}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "mpi/run.sh: FAILED: $*" >&2; exit 1; }
run2() { "$mpirun" -np 2 --oversubscribe "$prog" "$@"; }

run2 "$work/mpi" > "$work/mpi.log" 2>&1 || { cat "$work/mpi.log"; fail "two ranks"; }
"$prog" "$work/local" --local 2 > "$work/local.log" 2>&1 || { cat "$work/local.log"; fail "local_shards(2)"; }
"$prog" "$work/plain" --plain > "$work/plain.log" 2>&1 || { cat "$work/plain.log"; fail "one process"; }
cmp "$work/mpi/front.txt" "$work/local/front.txt" || fail "the front of 2 ranks differs from 2 shards in one process"
cmp "$work/mpi/weights.bin" "$work/local/weights.bin" || fail "the weights of 2 ranks differ from 2 shards in one process"
[ "$(wc -l < "$work/mpi/front.txt")" -ge 2 ] || fail "the front has fewer than 2 points"
python3 - "$work/mpi/weights.bin" "$work/plain/weights.bin" "$work/mpi/front.txt" "$work/plain/front.txt" <<'PY'
import struct, sys
a = open(sys.argv[1], 'rb').read(); b = open(sys.argv[2], 'rb').read()
x = struct.unpack('%df' % (len(a) // 4), a); y = struct.unpack('%df' % (len(b) // 4), b)
worst = max(abs(p - q) / max(1e-3, abs(p)) for p, q in zip(x, y))
masks = lambda f: [l.split()[6:] for l in open(f)]
print("mpi/run.sh: 2 ranks vs one process without shards: largest relative weight difference %.2e, "
      "masks of the front %s" % (worst, "identical" if masks(sys.argv[3]) == masks(sys.argv[4]) else "differ"))
PY
echo "mpi/run.sh: 2 ranks = 2 shards in one process, byte for byte (front.txt, weights.bin)"

# 2. resume across ranks: rank 1 alone asks to stop at global batch 23 (mid-epoch); every rank stops
# after that batch, rank 0 writes the state; the resumed run ends as one never stopped
rc=0
run2 "$work/resumed" --state --stop-at 23 > "$work/r1.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || { cat "$work/r1.log"; fail "the run asked to stop ran to its end"; }
[ "$(grep -c 'stopped by request_stop() after batch 4 of 10 of epoch 3' "$work/r1.log")" = 2 ] ||
  { cat "$work/r1.log"; fail "not both ranks stopped after batch 4 of epoch 3"; }
run2 "$work/resumed" --state > "$work/r2.log" 2>&1 || { cat "$work/r2.log"; fail "the resumed run"; }
grep -q "resuming from .* at epoch 3, batch 4" "$work/r2.log" || { cat "$work/r2.log"; fail "no resume at epoch 3, batch 4"; }
cmp "$work/resumed/front.txt" "$work/mpi/front.txt" || fail "resumed across ranks: the front differs"
cmp "$work/resumed/weights.bin" "$work/mpi/weights.bin" || fail "resumed across ranks: the weights differ"
echo "mpi/run.sh: both ranks stopped after batch 4 of epoch 3 (asked by rank 1 only), resumed: the same front and weights"

# 3. a rank exits mid-epoch: the job ends within the timeout (20 s) with a non-zero status
start=$(date +%s)
rc=0
timeout 120 "$mpirun" -np 2 --oversubscribe "$prog" "$work/die" --die-at 15 --timeout-ms 20000 > "$work/die.log" 2>&1 || rc=$?
took=$(( $(date +%s) - start ))
[ "$rc" -ne 0 ] || { cat "$work/die.log"; fail "a rank exited, yet the job succeeded"; }
[ "$rc" -ne 124 ] || { cat "$work/die.log"; fail "a rank exited and the job hung"; }
[ "$took" -lt 20 ] || fail "a rank exited and the job took $took s to end"
grep -q "rank 1 exits at batch 15" "$work/die.log" || { cat "$work/die.log"; fail "rank 1 did not exit where asked"; }
echo "mpi/run.sh: rank 1 exited at batch 15: the job ended in $took s with status $rc"

# 4. a rank hangs mid-epoch: the other stops with an error naming the timeout (3 s)
start=$(date +%s)
rc=0
timeout 120 "$mpirun" -np 2 --oversubscribe "$prog" "$work/hang" --hang-at 15 --timeout-ms 3000 > "$work/hang.log" 2>&1 || rc=$?
took=$(( $(date +%s) - start ))
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || { cat "$work/hang.log"; fail "a rank hung: status $rc"; }
grep -q "no answer from the other ranks within 3000 ms" "$work/hang.log" || { cat "$work/hang.log"; fail "no timeout error"; }
[ "$took" -lt 30 ] || fail "a rank hung and the job took $took s to end"
echo "mpi/run.sh: rank 1 hung at batch 15: rank 0 stopped with a timeout error, the job ended in $took s (status $rc)"
