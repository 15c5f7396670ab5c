#!/usr/bin/env bash
# Benchmarks: builds benchmarks/ (Release), runs the kernel micro-benchmarks, then the same LeNet +
# pixel(any) training workload in selmask and in PyTorch side by side, and prints their ratios,
# ending with `epoch_time_ratio=<selmask seconds / PyTorch seconds>`; where libtorch is found, a
# third side: the same LeNet in libtorch's C++ frontend through selmask's torch adapter.
#   scripts/bench.sh [--epochs E] [--threads T] [--train-limit N] [--repeats R] [--skip-kernels]
# (the two sides run alternately R times, default 3; each side's time is the median of its runs)
# PyTorch: the current release from PyPI, installed into .venv-bench/ on first use (override with
# SELMASK_TORCH_PYTHON=/path/to/python, e.g. /usr/bin/python3 with Debian's python3-torch 1.13).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
source scripts/blas-env.sh
skip_kernels=0
args=()
for a in "$@"; do
  if [ "$a" = "--skip-kernels" ]; then skip_kernels=1; else args+=("$a"); fi
done

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DSELMASK_BUILD_BENCHMARKS=ON \
  -DSELMASK_BUILD_TESTS=OFF -DSELMASK_BUILD_EXAMPLES=OFF > /dev/null
cmake --build build-bench -j "${SELMASK_JOBS:-2}" --target bench_kernels bench_epoch
# the third side, LeNet in libtorch through selmask's torch adapter, where libtorch was found
adapter=()
if cmake --build build-bench --target help | grep -q bench_epoch_torch; then
  cmake --build build-bench -j "${SELMASK_JOBS:-2}" --target bench_epoch_torch
  adapter=(--adapter build-bench/benchmarks/bench_epoch_torch)
fi

python=${SELMASK_TORCH_PYTHON:-}
if [ -z "$python" ]; then
  if [ ! -x .venv-bench/bin/python ] || ! .venv-bench/bin/python -c "import torch" 2>/dev/null; then
    python3 -m venv .venv-bench
    .venv-bench/bin/pip install -q torch numpy
  fi
  python=.venv-bench/bin/python
fi

export OPENBLAS_NUM_THREADS=2
if [ "$skip_kernels" = 0 ]; then
  build-bench/benchmarks/bench_kernels --benchmark_min_time=0.2
fi
python3 benchmarks/compare.py build-bench/benchmarks/bench_epoch "$python" "${adapter[@]}" "${args[@]}"
