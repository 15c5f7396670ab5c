#!/usr/bin/env bash
# The main job: learns a pixel(any) selection mask jointly with LeNet on Fashion-MNIST and writes
# the accuracy-versus-transferred-data front to out/fashion_pixels (CSV, PNG plot, mask pictures,
# one-line summary). Installs what it needs first. Extra arguments go to the program, e.g.
#   scripts/run.sh --full          the full schedule (about an hour on 2 cores)
#   scripts/run.sh --out DIR       another output folder
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j "${SELMASK_JOBS:-2}" --target fashion_mnist_pixels
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
exec build/examples/fashion_mnist_pixels "$@"
