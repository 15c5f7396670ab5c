#pragma once
/// \file backend/cuda/host_emulator.hpp
/// `selmask::cuda_host_emulation`: the CUDA backend with its device replaced by the host, for
/// testing the backend where no GPU is present. Everything except the executor is the code of
/// `selmask::cuda`: the same tensor type, argument checks, launch sizes, the same kernel bodies
/// (backend/cuda/kernels.hpp, here run one logical thread after another) and the same mapping
/// of row-major GEMMs onto column-major BLAS calls (here a plain column-major loop standing in
/// for `cublasSgemm`). A parity test against `selmask::cpu` on this backend checks all of that
/// on any machine; only the CUDA runtime calls, cuBLAS itself and real concurrency are left to
/// the device tests (label `cuda`).
///
/// Plain C++: a host compiler builds it (the kernel bodies are SELMASK_HOST_DEVICE, plain inline
/// functions outside nvcc), so the emulated parity tests run in every build, the sanitizer build
/// included, without the CUDA toolkit, a driver or a GPU.

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

#include "operations.hpp"

namespace selmask {

namespace detail {

/// An executor whose "device memory" is host memory and whose kernels are host loops.
struct host_emulator {
  static constexpr std::string_view name = "cuda_host_emulation";

  static void* allocate(std::size_t bytes) {
    if (bytes == 0) {
      return nullptr;
    }
    void* p = std::malloc(bytes);
    if (!p) {
      throw std::bad_alloc();
    }
    std::memset(p, 0xff, bytes); // NaN-filled, like uninitialised device memory could be
    return p;
  }
  static void deallocate(void* p) noexcept { std::free(p); }
  static void to_device(void* dst, const void* src, std::size_t bytes) { copy(dst, src, bytes); }
  static void to_host(void* dst, const void* src, std::size_t bytes) { copy(dst, src, bytes); }
  static void device_copy(void* dst, const void* src, std::size_t bytes) {
    if (dst != src) {
      copy(dst, src, bytes);
    }
  }
  static void fill_zero(void* dst, std::size_t bytes) {
    if (bytes > 0) {
      std::memset(dst, 0, bytes);
    }
  }
  static void synchronize() {}

  template <class F>
  static void for_each(std::size_t n, const F& f) {
    for (std::size_t i = 0; i < n; ++i) {
      f(i);
    }
  }

  /// Column-major `C = α·op(A)·op(B) + β·C`, as `cublasSgemm` defines it.
  static void gemm_column_major(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                                int lda, const float* b, int ldb, float beta, float* c, int ldc) {
    const auto at = [&](int i, int p) { // op(A)[i, p]
      return trans_a
               ? a[static_cast<std::size_t>(i) * static_cast<std::size_t>(lda) + static_cast<std::size_t>(p)]
               : a[static_cast<std::size_t>(p) * static_cast<std::size_t>(lda) + static_cast<std::size_t>(i)];
    };
    const auto bt = [&](int p, int j) { // op(B)[p, j]
      return trans_b
               ? b[static_cast<std::size_t>(p) * static_cast<std::size_t>(ldb) + static_cast<std::size_t>(j)]
               : b[static_cast<std::size_t>(j) * static_cast<std::size_t>(ldb) + static_cast<std::size_t>(p)];
    };
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < m; ++i) {
        float acc = 0.0f;
        for (int p = 0; p < k; ++p) {
          acc += at(i, p) * bt(p, j);
        }
        float& out =
          c[static_cast<std::size_t>(j) * static_cast<std::size_t>(ldc) + static_cast<std::size_t>(i)];
        out = beta == 0.0f ? alpha * acc : alpha * acc + beta * out;
      }
    }
  }

private:
  static void copy(void* dst, const void* src, std::size_t bytes) {
    if (bytes > 0) {
      std::memcpy(dst, src, bytes);
    }
  }
};

} // namespace detail

/// The CUDA backend's code on the host (see the file comment). Tensors live in host memory.
struct cuda_host_emulation : detail::cuda_backend<detail::host_emulator> {
  static constexpr std::string_view name = "cuda_host_emulation";
};

static_assert(tensor_backend<cuda_host_emulation>,
              "selmask::cuda_host_emulation must model selmask::tensor_backend");
static_assert(nn_backend<cuda_host_emulation>, "selmask::cuda_host_emulation must model selmask::nn_backend");

} // namespace selmask
