#pragma once
/// \file backend/cuda/device.cuh
/// Where the CUDA backend's work runs: the device context (device, stream, cuBLAS handle, memory
/// pool) and `cuda_device`, the executor that allocates device memory, copies, launches the kernel
/// bodies of backend/cuda/kernels.hpp and calls cuBLAS.
///
/// The context is created at the first use of the backend (the first allocation, launch or copy),
/// on the device that is current then (`cudaSetDevice` before the first use to pick another).
/// Without a usable device that first use throws `selmask::cuda_error` whose message starts with
/// "selmask::cuda: no CUDA device found: " and gives CUDA's reason; nothing falls back to the CPU.
///
/// All work is queued on one stream, `selmask::cuda::stream()` (a stream of its own unless
/// `selmask::cuda::set_stream` names another). Nothing synchronises except the operations that
/// return host values (`to_host`, `sum`, `all_finite`, `softmax_cross_entropy`). Device memory
/// comes from CUDA's stream-ordered allocator (`cudaMallocAsync`) with the pool kept warm, so the
/// workspaces of a training loop cost no `cudaMalloc` per batch. The context lives until the
/// process ends (it is never destroyed, so tensors that outlive `main` can still free memory).
///
/// A launch on a device whose architecture was not compiled in (see CMAKE_CUDA_ARCHITECTURES)
/// throws `cuda_error` naming the device's architecture and the compiled ones. With
/// SELMASK_CUDA_SYNC_CHECK (below) every launch and cuBLAS call also waits and checks.

#if !defined(__CUDACC__)
#error "selmask/backend/cuda/device.cuh needs nvcc: CUDA code compiles from .cu files only"
#endif

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.cuh"
#include "error.hpp"

/// SELMASK_CUDA_SYNC_CHECK=1 (CMake option SELMASK_CUDA_SYNC_CHECK, or define it before including
/// selmask): synchronise after every kernel launch and cuBLAS call and check, so that an error
/// inside a kernel is reported by the launch that caused it (naming the kernel) instead of by a
/// later call. For debugging: it serialises the host with the GPU.
#if !defined(SELMASK_CUDA_SYNC_CHECK)
#define SELMASK_CUDA_SYNC_CHECK 0
#endif

namespace selmask::detail {

/// The process-wide state of the CUDA backend.
class cuda_context {
public:
  /// The context, created on first call. Throws `cuda_error` ("no CUDA device found: ...") when
  /// CUDA reports no device; a later call tries again.
  static cuda_context& get() {
    static cuda_context* const ctx = new cuda_context(); // never destroyed: see the file comment
    return *ctx;
  }

  /// Number of CUDA devices, 0 when the runtime or the driver reports none (never throws).
  static int device_count() noexcept {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      (void)cudaGetLastError();
      return 0;
    }
    return n;
  }

  [[nodiscard]] cudaStream_t stream() const noexcept { return stream_; }
  void set_stream(cudaStream_t s) {
    SELMASK_CUDA_CHECK(cublasSetStream(blas_, s));
    stream_ = s;
  }
  [[nodiscard]] cublasHandle_t blas() const noexcept { return blas_; }
  [[nodiscard]] int device() const noexcept { return device_; }
  [[nodiscard]] bool stream_ordered_allocation() const noexcept { return pools_; }
  /// Upper bound on the blocks of a grid-stride launch (enough to fill the device).
  [[nodiscard]] unsigned max_blocks() const noexcept { return max_blocks_; }
  [[nodiscard]] const std::string& device_name() const noexcept { return name_; }

  cuda_context(const cuda_context&) = delete;
  cuda_context& operator=(const cuda_context&) = delete;

private:
  cuda_context() {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      throw cuda_error("selmask::cuda: no CUDA device found: cudaGetDeviceCount failed with " +
                       cuda_error_text(e));
    }
    if (count == 0) {
      throw cuda_error("selmask::cuda: no CUDA device found: cudaGetDeviceCount reports 0 devices");
    }
    SELMASK_CUDA_CHECK(cudaGetDevice(&device_));
    cudaDeviceProp prop{};
    SELMASK_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    name_ = prop.name;
    max_blocks_ = static_cast<unsigned>(std::max(1, prop.multiProcessorCount) * 32);
    int pools = 0;
    SELMASK_CUDA_CHECK(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device_));
    pools_ = pools != 0;
    if (pools_) {
      cudaMemPool_t pool{};
      SELMASK_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device_));
      std::uint64_t keep = UINT64_MAX; // keep freed blocks for reuse instead of returning them
      SELMASK_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    }
    SELMASK_CUDA_CHECK(cudaStreamCreate(&stream_)); // blocking: ordered with the legacy stream
    SELMASK_CUDA_CHECK(cublasCreate(&blas_));
    SELMASK_CUDA_CHECK(cublasSetStream(blas_, stream_));
  }

  int device_ = 0;
  bool pools_ = false;
  unsigned max_blocks_ = 1;
  std::string name_;
  cudaStream_t stream_{};
  cublasHandle_t blas_{};
};

/// "the kernel selmask::detail::kernels::relu_forward_fn" (for SELMASK_CUDA_SYNC_CHECK's messages).
template <class F>
std::string kernel_name() {
  const std::string_view signature = __PRETTY_FUNCTION__; // "... [with F = <type>; ...]" or "[with F=<type>]"
  std::string_view::size_type from = signature.find("F = ");
  std::size_t skip = 4;
  if (from == std::string_view::npos) {
    from = signature.find("F=");
    skip = 2;
  }
  if (from == std::string_view::npos) {
    return "the kernel " + std::string(signature);
  }
  from += skip;
  const std::string_view::size_type to = signature.find_first_of(";]", from);
  return "the kernel " + std::string(signature.substr(from, to == std::string_view::npos ? to : to - from));
}

/// Runs a kernel body `f` (backend/cuda/kernels.hpp) for every `i < n`, grid-stride.
template <class F>
__global__ void for_each_kernel(std::size_t n, F f) {
  const std::size_t stride = static_cast<std::size_t>(blockDim.x) * gridDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    f(i);
  }
}

/// The executor of `selmask::cuda`: device memory, copies, kernel launches and cuBLAS on the
/// context's stream. (backend/cuda/operations.hpp lists what an executor provides.)
struct cuda_device {
  static constexpr std::string_view name = "cuda";

  /// Device memory for `bytes` bytes (null for 0 bytes); creates the context on first use.
  static void* allocate(std::size_t bytes) {
    cuda_context& ctx = cuda_context::get();
    if (bytes == 0) {
      return nullptr;
    }
    void* p = nullptr;
    if (ctx.stream_ordered_allocation()) {
      SELMASK_CUDA_CHECK(cudaMallocAsync(&p, bytes, ctx.stream()));
    } else {
      SELMASK_CUDA_CHECK(cudaMalloc(&p, bytes));
    }
    return p;
  }
  /// Frees (stream-ordered: after the work queued so far). Errors are ignored: it runs in
  /// destructors, also while the process exits and the runtime is shutting down.
  static void deallocate(void* p) noexcept {
    if (!p) {
      return;
    }
    cuda_context& ctx = cuda_context::get(); // exists: p came from allocate
    const cudaError_t e = ctx.stream_ordered_allocation() ? cudaFreeAsync(p, ctx.stream()) : cudaFree(p);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
    }
  }
  /// Host → device. The host buffer may be reused as soon as the call returns.
  static void to_device(void* dst, const void* src, std::size_t bytes) {
    if (bytes == 0) {
      return;
    }
    SELMASK_CUDA_CHECK(
      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cuda_context::get().stream()));
  }
  /// Device → host; waits for the copy (and everything queued before it).
  static void to_host(void* dst, const void* src, std::size_t bytes) {
    const cudaStream_t s = cuda_context::get().stream();
    if (bytes > 0) {
      SELMASK_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
    }
    SELMASK_CUDA_CHECK(cudaStreamSynchronize(s));
  }
  static void device_copy(void* dst, const void* src, std::size_t bytes) {
    if (bytes == 0 || dst == src) {
      return;
    }
    SELMASK_CUDA_CHECK(
      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda_context::get().stream()));
  }
  static void fill_zero(void* dst, std::size_t bytes) {
    if (bytes == 0) {
      return;
    }
    SELMASK_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, cuda_context::get().stream()));
  }
  static void synchronize() { SELMASK_CUDA_CHECK(cudaStreamSynchronize(cuda_context::get().stream())); }

  /// `f(i)` for every `i < n`, as one grid-stride kernel.
  template <class F>
  static void for_each(std::size_t n, const F& f) {
    if (n == 0) {
      return;
    }
    const cuda_context& ctx = cuda_context::get();
    constexpr unsigned threads = 256;
    const std::size_t wanted = (n + threads - 1) / threads;
    const auto blocks = static_cast<unsigned>(std::min<std::size_t>(wanted, ctx.max_blocks()));
    for_each_kernel<F><<<blocks, threads, 0, ctx.stream()>>>(n, f);
    cuda_check_launch(cudaGetLastError(), compiled_cuda_architectures(), "for_each_kernel<<<...>>>", __FILE__,
                      __LINE__);
#if SELMASK_CUDA_SYNC_CHECK
    cuda_check(cudaStreamSynchronize(ctx.stream()), kernel_name<F>().c_str(), __FILE__, __LINE__);
#endif
  }

  /// Column-major `C = α·op(A)·op(B) + β·C` (BLAS `sgemm` semantics), through cuBLAS.
  static void gemm_column_major(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                                int lda, const float* b, int ldb, float beta, float* c, int ldc) {
    const cuda_context& ctx = cuda_context::get();
    SELMASK_CUDA_CHECK(cublasSgemm(ctx.blas(), trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                   trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha, a, lda, b, ldb,
                                   &beta, c, ldc));
#if SELMASK_CUDA_SYNC_CHECK
    SELMASK_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
#endif
  }
};

} // namespace selmask::detail
