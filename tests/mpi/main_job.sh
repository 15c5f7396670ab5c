#!/usr/bin/env bash
# The main job over 2 MPI ranks (fashion_mnist_pixels_mpi under mpirun -np 2, as scripts/run.sh
# --ranks 2 runs it) against the same job with --shards 2 in one process: front.csv, summary.txt,
# epochs.csv (but for its seconds) and every checkpoint identical, byte for byte (label mpi).
#   tests/mpi/main_job.sh PATH/TO/fashion_mnist_pixels_mpi PATH/TO/fashion_mnist_pixels PATH/TO/mpirun
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
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
same=$("$here/../same_outputs.sh" "$work/ranks/out" "$work/shards/out") || fail "the outputs differ"
echo "mpi/main_job.sh: 2 ranks = --shards 2: $same"
echo "  $(head -1 "$work/ranks/out/summary.txt")"
