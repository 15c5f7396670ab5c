// The main job on the GPU: fashion_mnist_pixels.cpp, compiled by nvcc with selmask::cuda as its
// backend (same flags, same outputs; pass --out to keep the CPU run's folder apart):
//
//   build/examples/fashion_mnist_pixels_cuda [--out out/fashion_pixels_cuda] [--full] ...
//   scripts/run.sh --gpu [...]
//
// Needs a CUDA device; without one it stops at the first use of the backend with
// "selmask::cuda: no CUDA device found: ...".
#define SELMASK_EXAMPLE_CUDA
#include <selmask/cuda.cuh>

#include "fashion_mnist_pixels.cpp"
