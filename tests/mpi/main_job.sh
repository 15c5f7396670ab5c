#!/usr/bin/env bash
# The main job over 2 MPI ranks (fashion_mnist_pixels_mpi under mpirun -np 2, as scripts/run.sh
# --ranks 2 runs it) against the same job with --shards 2 in one process: front.csv, summary.txt,
# epochs.csv (but for its seconds) and every checkpoint identical, byte for byte (label mpi).
#   tests/mpi/main_job.sh PATH/TO/fashion_mnist_pixels_mpi PATH/TO/fashion_mnist_pixels PATH/TO/mpirun
set -euo pipefail
mpi_job=$(realpath "$1")
job=$(realpath "$2")
mpirun=${3:-mpirun}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "mpi/main_job.sh: FAILED: $*" >&2; exit 1; }
args=(--out out --train-limit 3000 --validation 500 --test-limit 500 --warmup 1 --mask-epochs 3)
mkdir -p "$work/ranks" "$work/shards"
(cd "$work/ranks" && "$mpirun" -np 2 --oversubscribe "$mpi_job" "${args[@]}" > log 2>&1) ||
  { cat "$work/ranks/log"; fail "2 ranks"; }
(cd "$work/shards" && "$job" "${args[@]}" --shards 2 > log 2>&1) || { cat "$work/shards/log"; fail "--shards 2"; }
a=$work/ranks/out
b=$work/shards/out
for f in front.csv summary.txt; do cmp "$a/$f" "$b/$f" || fail "$f differs"; done
diff <(cut -d, -f1-9 "$a/epochs.csv") <(cut -d, -f1-9 "$b/epochs.csv") || fail "epochs.csv differs"
n=0
for f in "$a"/checkpoints/*; do
  cmp "$f" "$b/checkpoints/$(basename "$f")" || fail "checkpoints/$(basename "$f") differs"
  n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "only $n checkpoints"
echo "mpi/main_job.sh: 2 ranks = --shards 2: front.csv, summary.txt, epochs.csv and $n checkpoint files identical"
echo "  $(cat "$a/summary.txt" | head -1)"
