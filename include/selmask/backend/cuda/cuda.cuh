#pragma once
/// \file backend/cuda/cuda.cuh
/// `selmask::cuda`: the CUDA tensor backend. It models `tensor_backend` and `nn_backend`, so
/// masks, pipelines, the network kit and `learn_selection_masks` run on a GPU unchanged:
///
/// ```cpp
/// #include <selmask/cuda.cuh>          // in a .cu file, compiled by nvcc
/// using B = selmask::cuda;
/// selmask::pipeline<selmask::any_mask<selmask::pixel>>::on<B> masks(selmask::shape{1, 28, 28});
/// selmask::nn::lenet<B> net(/*seed=*/1);
/// ```
///
/// Tensors (`selmask::cuda::tensor`, backend/cuda/tensor.hpp) live in device memory; data enter
/// with `from_host` and leave with `to_host`. Elementwise maps take the same SELMASK_HOST_DEVICE
/// functors as the CPU backend (surrogate/formulas.hpp). GEMMs go through cuBLAS; every other
/// operation is a kernel of backend/cuda/kernels.hpp. Reductions are deterministic, so a seed
/// gives the same hard masks on every run, and the same ones as the CPU backend up to float
/// rounding (the parity tests, label `cuda`, check that).
///
/// Work is queued on `cuda::stream()` and nothing synchronises except the calls that return host
/// values (`to_host`, `sum`, `all_finite`, `softmax_cross_entropy`); `cuda::synchronize()` waits
/// for the rest (e.g. before reading a clock). Every CUDA and cuBLAS call is checked and throws
/// `selmask::cuda_error`; on a machine without a GPU the first operation that touches the device
/// throws `cuda_error` "selmask::cuda: no CUDA device found: ...". There is no CPU fallback.

#if !defined(__CUDACC__)
#error "selmask/backend/cuda/cuda.cuh needs nvcc: CUDA code compiles from .cu files only"
#endif

#include <cuda_runtime.h>

#include <string>
#include <string_view>

#include "../backend.hpp"
#include "../nn_backend.hpp"
#include "check.cuh"
#include "device.cuh"
#include "error.hpp"
#include "operations.hpp"
#include "tensor.hpp"

namespace selmask {

/// The tensor type of `selmask::cuda`.
using cuda_tensor = basic_device_tensor<detail::cuda_device>;

struct cuda : detail::cuda_backend<detail::cuda_device> {
  static constexpr std::string_view name = "cuda";

  /// The stream all of the backend's work is queued on (creates the context on first use).
  static cudaStream_t stream() { return detail::cuda_context::get().stream(); }
  /// Queue the backend's work (and cuBLAS's) on `s` from now on. Synchronise the old stream
  /// first if work queued there and work queued on `s` touch the same tensors.
  static void set_stream(cudaStream_t s) { detail::cuda_context::get().set_stream(s); }
  /// Number of CUDA devices; 0 without a device or driver (never throws).
  static int device_count() noexcept { return detail::cuda_context::device_count(); }
  /// The name of the device the backend runs on (creates the context on first use).
  static std::string device_name() { return detail::cuda_context::get().device_name(); }
};

static_assert(tensor_backend<cuda>, "selmask::cuda must model selmask::tensor_backend");
static_assert(nn_backend<cuda>, "selmask::cuda must model selmask::nn_backend");

} // namespace selmask
