#!/usr/bin/env bash
# Data-parallel scaling of the main job on this machine: two epochs (a warm-up and one exploration
# epoch, the λ rounds' settings) on the 55,000 training images with
#   1 process, 1 BLAS thread;  1 process, 2 BLAS threads;  2 MPI ranks of 1 thread each,
# all with the same global batch of 128, and the seconds of each epoch from epochs.csv. Then the
# time of one gradient exchange between 2 ranks (the LeNet gradients and mask logits, 1.73 MB) from
# bench_exchange. Run it on a quiet machine: both cores are used.
#   benchmarks/scaling.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cmake --build "$build" -j 2 --target fashion_mnist_pixels fashion_mnist_pixels_mpi bench_exchange > /dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
args=(--rounds --warmup 1 --mask-epochs 1)
seconds() { tail -n 2 "$1/epochs.csv" | cut -d, -f10 | paste -sd' '; }
OPENBLAS_NUM_THREADS=1 "$build/examples/fashion_mnist_pixels" --out "$work/one1" "${args[@]}" > /dev/null 2>&1
echo "1 process, 1 thread:    epoch seconds $(seconds "$work/one1")"
OPENBLAS_NUM_THREADS=2 "$build/examples/fashion_mnist_pixels" --out "$work/one2" "${args[@]}" > /dev/null 2>&1
echo "1 process, 2 threads:   epoch seconds $(seconds "$work/one2")"
OPENBLAS_NUM_THREADS=1 mpirun -np 2 --oversubscribe "$build/examples/fashion_mnist_pixels_mpi" --out "$work/two" "${args[@]}" > /dev/null 2>&1
echo "2 ranks, 1 thread each: epoch seconds $(seconds "$work/two")"
OPENBLAS_NUM_THREADS=1 mpirun -np 2 --oversubscribe "$build/benchmarks/bench_exchange"
