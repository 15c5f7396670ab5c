#pragma once
/// \file backend/cpu/gemm.hpp
/// `detail::cpu_gemm_ops`: `selmask::cpu::gemm`, OpenBLAS's sgemm on the backend's thread pool.
/// With more than one pool thread OpenBLAS runs one thread per call (backend/cpu/parallel.hpp),
/// and a large product is split into panels of output rows or columns, one sgemm each, so that the
/// pool's threads do the work instead of a second thread team on the same cores.
///
/// What xtensor-blas does here: a product whose three operands are whole row-major matrices (every
/// product that runs in one piece, and row panels of an untransposed `a`) goes through
/// `xt::blas::gemm` over `xt::adapt`ed views of the tensors' memory — xtensor-blas's typed binding
/// of BLAS to xtensor expressions, which checks ranks and derives sizes and leading dimensions from
/// the views. The other panels are strided sub-matrices, which `xt::blas::gemm` would first copy
/// into contiguous storage; they call `cblas_sgemm` with their leading dimensions directly.

#include <cblas.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

#include "xtensor.hpp"

#include "../nn_backend.hpp"
#include "blas.hpp"
#include "common.hpp"
#include "parallel.hpp"

namespace selmask::detail {

struct cpu_gemm_ops : cpu_common {
  /// `c = alpha·op(a)·op(b) + beta·c` through `cblas_sgemm`. Each tensor is read as a matrix:
  /// (first axis) × (all other axes), rank 1 as 1×n. With `beta == 0`, `c` is resized to M×N
  /// unless its matrix view already is M×N; otherwise its view must be M×N.
  static void gemm(bool trans_a, bool trans_b, float alpha, const tensor& a, const tensor& b, float beta,
                   tensor& c) {
    const auto [m, n, k, ac, bc, c_fits] =
      detail::check_gemm("selmask::cpu::gemm", shape_of(a), shape_of(b), shape_of(c), trans_a, trans_b, beta);
    if (!c_fits) {
      c.resize(std::vector<std::size_t>{m, n});
    }
    if (m == 0 || n == 0) {
      return;
    }
    if (k == 0) {
      scale_in_place(c, beta);
      return;
    }
    blas::check_kernels();
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    const int lda = blas_int("gemm", ac), ldb = blas_int("gemm", bc), ldc = blas_int("gemm", n);
    const int kk = blas_int("gemm", k);
    // rows [i0, i1) and columns [j0, j1) of c
    const auto block = [&](std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1) {
      const float* pa = a.data() + (trans_a ? i0 : i0 * ac);
      const float* pb = b.data() + (trans_b ? j0 * bc : j0);
      float* pc = c.data() + i0 * n + j0;
      const std::size_t rows = i1 - i0, cols = j1 - j0;
      // contiguous when each operand's leading dimension is its own row length
      const bool whole = (trans_a ? rows == ac : k == ac) && (trans_b ? k == bc : cols == bc) && cols == n;
      if (whole) {
        using extents = std::array<std::size_t, 2>;
        const auto va =
          xt::adapt(pa, rows * k, xt::no_ownership(), trans_a ? extents{k, rows} : extents{rows, k});
        const auto vb =
          xt::adapt(pb, k * cols, xt::no_ownership(), trans_b ? extents{cols, k} : extents{k, cols});
        auto vc = xt::adapt(pc, rows * cols, xt::no_ownership(), extents{rows, cols});
        xt::blas::gemm(va, vb, vc, trans_a, trans_b, alpha, beta);
        return;
      }
      cblas_sgemm(CblasRowMajor, ta, tb, blas_int("gemm", rows), blas_int("gemm", cols), kk, alpha, pa, lda,
                  pb, ldb, beta, pc, ldc);
    };
    // Split the larger side of c over the pool's threads (in panels of 16, a multiple of every
    // SIMD width); each part is one single-threaded sgemm. Small products run whole.
    constexpr std::size_t panel = 16;
    auto& tp = cpu_parallel::pool::instance();
    if (tp.size() == 1 || m * n * k < (std::size_t{1} << 20)) {
      block(0, m, 0, n);
    } else if (n >= m) {
      tp.parallel_for((n + panel - 1) / panel, 1, [&](std::size_t pb, std::size_t pe) {
        block(0, m, pb * panel, std::min(n, pe * panel));
      });
    } else {
      tp.parallel_for((m + panel - 1) / panel, 1, [&](std::size_t pb, std::size_t pe) {
        block(pb * panel, std::min(m, pe * panel), 0, n);
      });
    }
  }

protected:
  static void scale_in_place(tensor& t, float beta) {
    float* p = t.data();
    for (std::size_t i = 0; i < t.size(); ++i) {
      p[i] = beta == 0.0f ? 0.0f : beta * p[i];
    }
  }
};

} // namespace selmask::detail
