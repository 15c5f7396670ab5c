// A .cpp (host compiler) including the CUDA umbrella header must stop with the message below:
// CUDA code compiles from .cu files only, so the CPU build never needs nvcc.
#include <selmask/cuda.cuh>

int main() { return 0; }
