// A kernel launch on a device whose architecture was not compiled in must throw cuda_error naming
// the device's architecture and the compiled ones. This file is compiled for sm_75 machine code
// only (no PTX; tests/CMakeLists.txt), so on every other GPU its first launch has no kernel image.
// Needs a GPU (ctest label cuda): fails without one.
#include <selmask/backend/cuda/cuda.cuh>

#include <cuda_runtime.h>

#include <cstdio>
#include <string>

int main() {
  if (selmask::cuda::device_count() == 0) {
    std::fprintf(stderr, "test_cuda_arch_mismatch: no CUDA device\n");
    return 1;
  }
  int device = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&device) != cudaSuccess || cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    std::fprintf(stderr, "test_cuda_arch_mismatch: cannot query the device\n");
    return 1;
  }
  const std::string sm = "sm_" + std::to_string(prop.major) + std::to_string(prop.minor);
  if (sm == "sm_75") {
    std::printf(
      "test_cuda_arch_mismatch: the device is sm_75, the architecture compiled in: nothing to check\n");
    return 0;
  }
  try {
    (void)selmask::cuda::to_host(selmask::cuda::full(selmask::shape{4}, 1.0f));
    std::fprintf(stderr, "test_cuda_arch_mismatch: a launch for sm_75 code ran on %s\n", sm.c_str());
    return 1;
  } catch (const selmask::cuda_error& e) {
    const std::string what = e.what();
    std::printf("test_cuda_arch_mismatch: %s\n", what.c_str());
    const bool ok = what.find("no kernel image for the device") != std::string::npos &&
                    what.find(" is " + sm + " ") != std::string::npos &&
                    what.find("compiled for sm_75") != std::string::npos;
    return ok ? 0 : 1;
  }
}
