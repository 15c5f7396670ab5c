#pragma once
/// \file backend/cuda/error.hpp
/// `selmask::cuda_error`: what the CUDA backend throws when a CUDA runtime or cuBLAS call fails,
/// including "no CUDA device found" at the first use of the backend on a machine without a GPU.
///
/// Plain C++ (no CUDA header), so that code compiled by a host compiler can catch it. The macro
/// that raises it, `SELMASK_CUDA_CHECK`, lives in backend/cuda/check.cuh (nvcc only), and so does
/// the launch check that explains a missing kernel image with `no_kernel_image_text` below.

#include <span>
#include <string>

#include "../../error.hpp"

namespace selmask {

/// A CUDA runtime or cuBLAS call failed. The message names the call, the file and line of the
/// check, CUDA's error name and CUDA's own message, e.g.
/// "selmask::cuda: no CUDA device found: cudaGetDeviceCount failed with
/// cudaErrorInsufficientDriver (CUDA driver version is insufficient for CUDA runtime version)".
class cuda_error : public error {
public:
  using error::error;
};

namespace detail {

/// "sm_75, sm_80, sm_120" from nvcc's `__CUDA_ARCH_LIST__` values (750, 800, 1200).
inline std::string cuda_architectures_text(std::span<const int> arch_list) {
  if (arch_list.empty()) {
    return "unknown architectures";
  }
  std::string out;
  for (const int a : arch_list) {
    out += (out.empty() ? "sm_" : ", sm_") + std::to_string(a / 10);
  }
  return out;
}

/// Why no kernel ran: the device (name, compute capability `major.minor`) is none of the
/// architectures compiled in (`compiled`, as `cuda_architectures_text` writes them).
inline std::string no_kernel_image_text(const std::string& device, int major, int minor,
                                        const std::string& compiled) {
  const std::string sm = std::to_string(major) + std::to_string(minor);
  return "no kernel image for the device: " + device + " is sm_" + sm + " (compute capability " +
         std::to_string(major) + "." + std::to_string(minor) + "), the kernels were compiled for " +
         compiled + "; rebuild with sm_" + sm +
         " in CMAKE_CUDA_ARCHITECTURES (-DCMAKE_CUDA_ARCHITECTURES=" + sm +
         ", or =native for the GPUs of the building machine; nvcc -arch=sm_" + sm + ")";
}

} // namespace detail

} // namespace selmask
