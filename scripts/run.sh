#!/usr/bin/env bash
# The main job: learns a pixel(any) selection mask jointly with LeNet on Fashion-MNIST and writes
# the accuracy-versus-transferred-data front to out/fashion_pixels (CSV, PNG plot, mask pictures,
# one-line summary). Installs what it needs first. With no arguments the mask is learnt for a
# budget of 5 % of the pixels (--budget 0.05). Extra arguments go to the program, e.g.
#   scripts/run.sh --rounds        the lambda rounds of Algorithm 1 (17 epochs) instead of a budget
#   scripts/run.sh --full          the full schedule (75 epochs, about 14 minutes on 2 cores)
#   scripts/run.sh --out DIR       another output folder
#   scripts/run.sh --gpu [...]     the same job on a CUDA GPU (selmask::cuda; needs nvcc and a device)
#   scripts/run.sh --ranks N [...] the same job over N MPI processes (mpirun; selmask::mpi), each
#                                  taking its share of every batch; rank 0 writes the outputs
#   scripts/run.sh --torch [...]   the same job with a small ResNet written in libtorch's C++ frontend
#                                  (selmask::torch_model; Debian's libtorch-dev)
#   scripts/run.sh --resume DIR    continue a stopped or killed run from DIR's state (with --ranks N
#                                  for a run over N processes)
set -euo pipefail
cd "$(dirname "$0")/.."
target=fashion_mnist_pixels
ranks=0
if [ "${1:-}" = "--gpu" ]; then
  shift
  target=fashion_mnist_pixels_cuda
elif [ "${1:-}" = "--torch" ]; then
  shift
  target=fashion_mnist_pixels_torch
  # one OpenMP thread per core without spin-waiting (libtorch's threads spin while idle)
  export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
elif [ "${1:-}" = "--ranks" ]; then
  ranks=${2:-}
  [[ "$ranks" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh --ranks N: N must be a positive number, got '$ranks'" >&2; exit 2; }
  shift 2
  target=fashion_mnist_pixels_mpi
fi
scripts/install-deps.sh
source scripts/blas-env.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
if [ "$target" = fashion_mnist_pixels_cuda ] && ! grep -q '^CMAKE_CUDA_COMPILER:.*nvcc' build/CMakeCache.txt; then
  echo "run.sh --gpu: no CUDA compiler (nvcc) was found when configuring build/" >&2
  exit 1
fi
if [ "$target" = fashion_mnist_pixels_mpi ] && ! grep -q '^MPI_CXX_FOUND:BOOL=TRUE\|^MPIEXEC_EXECUTABLE:.*mpiexec' build/CMakeCache.txt; then
  echo "run.sh --ranks: MPI was not found when configuring build/ (scripts/install-deps.sh installs libopenmpi-dev openmpi-bin)" >&2
  exit 1
fi
if [ "$target" = fashion_mnist_pixels_torch ] && ! cmake --build build --target help | grep -q fashion_mnist_pixels_torch; then
  echo "run.sh --torch: libtorch was not found when configuring build/ (scripts/install-deps.sh installs libtorch-dev)" >&2
  exit 1
fi
cmake --build build -j "${SELMASK_JOBS:-2}" --target "$target"
if [ "$ranks" -gt 0 ]; then
  # one BLAS thread per rank unless told otherwise; Open MPI refuses root without these two
  export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
  [ "$(id -u)" -ne 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  exec mpirun -np "$ranks" --oversubscribe build/examples/"$target" "$@"
fi
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
exec build/examples/"$target" "$@"
