#!/usr/bin/env bash
# The main job: learns a pixel(any) selection mask jointly with LeNet on Fashion-MNIST and writes
# the accuracy-versus-transferred-data front to out/fashion_pixels (CSV, PNG plot, mask pictures,
# one-line summary). Installs what it needs first. With no arguments the mask is learnt for a
# budget of 5 % of the pixels (--budget 0.05). Extra arguments go to the program, e.g.
#   scripts/run.sh --rounds        the lambda rounds of Algorithm 1 (17 epochs) instead of a budget
#   scripts/run.sh --full          the full schedule (75 epochs, about 14 minutes on 2 cores)
#   scripts/run.sh --out DIR       another output folder
#   scripts/run.sh --gpu [...]     the same job on a CUDA GPU (selmask::cuda; needs nvcc and a device)
set -euo pipefail
cd "$(dirname "$0")/.."
target=fashion_mnist_pixels
if [ "${1:-}" = "--gpu" ]; then
  shift
  target=fashion_mnist_pixels_cuda
fi
scripts/install-deps.sh
source scripts/blas-env.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
if [ "$target" = fashion_mnist_pixels_cuda ] && ! grep -q '^CMAKE_CUDA_COMPILER:.*nvcc' build/CMakeCache.txt; then
  echo "run.sh --gpu: no CUDA compiler (nvcc) was found when configuring build/" >&2
  exit 1
fi
cmake --build build -j "${SELMASK_JOBS:-2}" --target "$target"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
exec build/examples/"$target" "$@"
