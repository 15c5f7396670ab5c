#!/usr/bin/env bash
# Builds selmask and runs its test suite (everything that needs no GPU).
#   scripts/test.sh              release build in build/, all tests but those labelled cuda
#   scripts/test.sh --sanitize   ASan + UBSan build in build-asan/, the tests (not the examples)
#   scripts/test.sh --torch      the tests labelled torch against the current PyPI torch wheel
#                                (installed into .venv-torch/ on first use; SELMASK_TORCH_PYTHON=...
#                                for another Python with torch), in build-torch/
# Installs the Debian packages it needs first (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
source scripts/blas-env.sh

jobs=${SELMASK_JOBS:-2}
if [ "${1:-}" = "--torch" ]; then
  python=${SELMASK_TORCH_PYTHON:-}
  if [ -z "$python" ]; then
    if [ ! -x .venv-torch/bin/python ] || ! .venv-torch/bin/python -c "import torch, numpy" 2>/dev/null; then
      /usr/bin/python3 -m venv .venv-torch
      .venv-torch/bin/pip install -q torch numpy
    fi
    python=$PWD/.venv-torch/bin/python
  fi
  echo "selmask: torch $("$python" -c 'import torch; print(torch.__version__)') from $python" >&2
  dir=build-torch
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DSELMASK_WARNINGS_AS_ERRORS=ON -DSELMASK_ENABLE_CUDA=OFF \
    -DSELMASK_TORCH=ON -DSELMASK_TORCH_PYTHON="$python"
  # only what the torch tests run: the adapter and ATen tests, the TorchScript example
  mapfile -t targets < <(cmake --build "$dir" --target help | grep -o '\(test_aten_[a-z_]*\|test_torch_model\|fashion_mnist_jpeg_torchscript\)' | sort -u)
  cmake --build "$dir" -j "$jobs" --target "${targets[@]}"
  ctest --test-dir "$dir" -j "$jobs" --output-on-failure -L torch
  exit 0
fi
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  # no nvcc here (ASan and the CUDA runtime do not mix); the CUDA backend's kernels and operations
  # still run, on the host emulator (test_cuda_emulated, plain C++)
  # -g1 (line tables only) instead of -g: sanitizer reports keep file and line, and the build of the
  # template-heavy test files takes about a quarter less time on CI's 2 cores. -O0: the same ASan
  # reports as -O1 (ASan instruments every access either way) in about a third of -O1's compiler
  # time with ASan + UBSan (a heavy test file: 16 s against 44 s), while the tests run about twice
  # as long (about 2 minutes in all); GCC's UBSan object-size check needs optimisation and is the
  # one check this gives up (the release pass runs the same tests optimised, without sanitizers).
  # the examples are built and run in the release pass; here only the tests are (the examples'
  # 18 programs were a third of this build's time on CI's 2 cores)
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -g1 -DNDEBUG" \
    -DSELMASK_SANITIZE=ON -DSELMASK_WARNINGS_AS_ERRORS=ON -DSELMASK_ENABLE_CUDA=OFF -DSELMASK_BUILD_EXAMPLES=OFF
  cmake --build "$dir" -j "$jobs"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir "$dir" -j "$jobs" --output-on-failure -LE 'cuda|build|install|slow'
else
  dir=build
  # benchmarks are built (not run) so that CI compiles and links every target, CUDA ones included.
  # CUDA code for one architecture (sm_90; SELMASK_CUDA_ARCHITECTURES=... for others): nothing here
  # runs it, and each architecture of the library's default set adds nvcc time on CI's 2 cores.
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DSELMASK_WARNINGS_AS_ERRORS=ON -DSELMASK_BUILD_BENCHMARKS=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${SELMASK_CUDA_ARCHITECTURES:-90}"
  cmake --build "$dir" -j "$jobs"
  ctest --test-dir "$dir" -j "$jobs" --output-on-failure -LE cuda
fi
