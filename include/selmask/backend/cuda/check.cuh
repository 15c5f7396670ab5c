#pragma once
/// \file backend/cuda/check.cuh
/// `SELMASK_CUDA_CHECK(expr)`: evaluates a CUDA runtime call (`cudaError_t`) or a cuBLAS call
/// (`cublasStatus_t`) and throws `selmask::cuda_error` naming the call, the file and line, and
/// CUDA's error name and message when it does not succeed. Every CUDA call selmask makes goes
/// through it. Kernel launches go through `cuda_check_launch`, which explains a missing kernel
/// image (a device architecture that was not compiled in) with the device's and the compiled
/// architectures.

#if !defined(__CUDACC__)
#error "selmask/backend/cuda/check.cuh needs nvcc: CUDA code compiles from .cu files only"
#endif

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "error.hpp"

namespace selmask::detail {

/// "cudaErrorMemoryAllocation (out of memory)"
inline std::string cuda_error_text(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")";
}

inline std::string cuda_error_text(cublasStatus_t s) {
  return std::string("cuBLAS status ") + std::to_string(static_cast<int>(s)) + " (" +
         cublasGetStatusString(s) + ")";
}

[[noreturn]] inline void throw_cuda_error(const std::string& what, const char* expr, const char* file,
                                          int line) {
  throw cuda_error("selmask::cuda: " + std::string(expr) + " failed at " + file + ":" + std::to_string(line) +
                   ": " + what);
}

inline void cuda_check(cudaError_t e, const char* expr, const char* file, int line) {
  if (e != cudaSuccess) {
    (void)cudaGetLastError(); // clear a sticky-free error so that later calls report their own
    throw_cuda_error(cuda_error_text(e), expr, file, line);
  }
}

inline void cuda_check(cublasStatus_t s, const char* expr, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    throw_cuda_error(cuda_error_text(s), expr, file, line);
  }
}

/// The architectures the including translation unit was compiled for (nvcc's
/// `__CUDA_ARCH_LIST__`). `static`: each .cu file has its own list, as it has its own kernels.
static inline std::string compiled_cuda_architectures() {
#if defined(__CUDA_ARCH_LIST__)
  static constexpr int list[] = {__CUDA_ARCH_LIST__};
  return cuda_architectures_text(list);
#else
  return cuda_architectures_text({});
#endif
}

/// `cuda_check` for the error of a kernel launch. `cudaErrorNoKernelImageForDevice` and
/// `cudaErrorInvalidDeviceFunction` (no code for the device's architecture) get the device's
/// architecture (`cudaGetDeviceProperties`) and the compiled ones in the message.
inline void cuda_check_launch(cudaError_t e, const std::string& compiled, const char* expr, const char* file,
                              int line) {
  if (e != cudaErrorNoKernelImageForDevice && e != cudaErrorInvalidDeviceFunction) {
    cuda_check(e, expr, file, line);
    return;
  }
  (void)cudaGetLastError();
  int device = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&device) != cudaSuccess || cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    (void)cudaGetLastError();
    throw_cuda_error(cuda_error_text(e) +
                       ": no kernel image for the device (its properties are unknown), "
                       "the kernels were compiled for " +
                       compiled,
                     expr, file, line);
  }
  throw_cuda_error(no_kernel_image_text(prop.name, prop.major, prop.minor, compiled) + ": " +
                     cuda_error_text(e),
                   expr, file, line);
}

} // namespace selmask::detail

/// Throws `selmask::cuda_error` unless `expr` (a `cudaError_t` or `cublasStatus_t`) succeeds.
#define SELMASK_CUDA_CHECK(expr) ::selmask::detail::cuda_check((expr), #expr, __FILE__, __LINE__)
