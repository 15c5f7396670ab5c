#pragma once
/// \file backend/cuda/error.hpp
/// `selmask::cuda_error`: what the CUDA backend throws when a CUDA runtime or cuBLAS call fails,
/// including "no CUDA device found" at the first use of the backend on a machine without a GPU.
///
/// Plain C++ (no CUDA header), so that code compiled by a host compiler can catch it. The macro
/// that raises it, `SELMASK_CUDA_CHECK`, lives in backend/cuda/check.cuh (nvcc only).

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

} // namespace selmask
