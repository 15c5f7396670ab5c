#!/usr/bin/env bash
# The GPU check, for a machine with a CUDA device (the CI and scripts/test.sh run everything that
# needs none): builds the CUDA backend's tests and the GPU benchmark in build-gpu/ and runs
#   1. the tests labelled cuda: CUDA vs CPU parity of every op, mask, layer, LeNet steps and
#      Algorithm 1 on the GPU, the error of a launch without a kernel image for the device, and
#      every .cuh header compiling on its own;
#   2. the tests that run everywhere (the host emulator's parity, the first use of the backend);
#   3. bench_gpu: a LeNet + pixel(any) training epoch (Fashion-MNIST-sized synthetic data, batch
#      128) and mask forward/backward throughput, CPU and GPU side by side.
# About 3-4 minutes on 16 cores and an H100.
#   scripts/gpu-check.sh [--jobs N] [--skip-bench] [bench_gpu arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${SELMASK_JOBS:-$(nproc)}
bench=1
bench_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) jobs=$2; shift 2 ;;
    --skip-bench) bench=0; shift ;;
    *) bench_args+=("$1"); shift ;;
  esac
done
start=$(date +%s)

# Debian packages (does nothing when they are there; without a network a missing one fails the build)
scripts/install-deps.sh || echo "gpu-check: scripts/install-deps.sh failed; trying with what is installed" >&2
source scripts/blas-env.sh

if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
else
  echo "gpu-check: nvidia-smi not found; the tests below fail without a CUDA device" >&2
fi

dir=build-gpu
# CUDA code for this machine's GPU only ("native"; SELMASK_CUDA_ARCHITECTURES=... for others): the
# library's default set of architectures would multiply nvcc's time for code that cannot run here
configure() {
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DSELMASK_ENABLE_CUDA=ON -DSELMASK_BUILD_EXAMPLES=OFF \
    -DCMAKE_CUDA_ARCHITECTURES="${SELMASK_CUDA_ARCHITECTURES:-native}" -DSELMASK_BUILD_BENCHMARKS="$1" \
    > "$dir/configure.log" 2>&1
}
mkdir -p "$dir"
if ! configure ON; then
  echo "gpu-check: configuring with the benchmarks failed (Google Benchmark missing?), building the tests only:" >&2
  tail -5 "$dir/configure.log" >&2
  bench=0
  configure OFF || { cat "$dir/configure.log" >&2; exit 1; }
fi
targets=(test_cuda test_cuda_emulated test_cuda_arch_mismatch)
[ "$bench" = 1 ] && targets+=(bench_gpu)
cmake --build "$dir" -j "$jobs" --target "${targets[@]}"
echo "gpu-check: built in $(( $(date +%s) - start )) s"

status=0
export CMAKE_BUILD_PARALLEL_LEVEL=$jobs # the header check builds through cmake --build
ctest --test-dir "$dir" --output-on-failure -L cuda || status=1
ctest --test-dir "$dir" --output-on-failure -R '^test_cuda_(emulated|first_use)$' || status=1

if [ "$bench" = 1 ]; then
  "$dir/benchmarks/bench_gpu" "${bench_args[@]}" || status=1
fi
echo "gpu-check: $([ $status = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - start )) s"
exit $status
