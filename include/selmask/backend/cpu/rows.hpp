#pragma once
/// \file backend/cpu/rows.hpp
/// Row helpers of the CPU backend's convolutions: copying and adding the short rows that
/// im2col / col2im move (conv rows of LeNet are 8 or 24 values), summing a row in eight lanes,
/// and the ReLU + max-pool gradient of one row of windows. Written so that the compiler turns
/// them into vector code: fixed-size blocks, rows of a constant width unrolled, selects instead
/// of branches, interleaved partial sums.

#include <cstddef>
#include <cstring>
#include <type_traits>

namespace selmask::detail::cpu_rows {

/// The gradient of ReLU + 2×2 max-pool for one row of windows: each window's two conv-output
/// rows get `g` (where `y > 0`, else 0) at the recorded offset 0…3 and 0 at the other three.
/// Every value of both rows is written (no clearing pass first), with selects only, so that
/// the loop compiles to vector code.
inline void unpool_rows(float* __restrict top, float* __restrict bottom, const float* __restrict y,
                        const float* __restrict g, const float* __restrict at, std::size_t pw) {
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC ivdep
#endif
  for (std::size_t q = 0; q < pw; ++q) {
    const float yv = y[q]; // every load unconditional: a select, not a branch
    const float gv = g[q];
    const float a = at[q];
    const float ge = yv > 0.0f ? gv : 0.0f;
    top[2 * q] = a == 0.0f ? ge : 0.0f;
    top[2 * q + 1] = a == 1.0f ? ge : 0.0f;
    bottom[2 * q] = a == 2.0f ? ge : 0.0f;
    bottom[2 * q + 1] = a == 3.0f ? ge : 0.0f;
  }
}
/// `dst[0..n) = src[0..n)` in blocks of eight (conv rows are short, often 8 or 24 values, where
/// a generic vectorised loop spends more time choosing its path than copying). Each block is a
/// fixed-size memcpy, which compiles to plain vector moves.
inline void copy_row(float* dst, const float* src, std::size_t n) {
  if (n >= 8) {
    // blocks of eight, the last one ending at n (it may overlap the one before: same values)
    for (std::size_t i = 0; i + 8 < n; i += 8) {
      std::memcpy(dst + i, src + i, 8 * sizeof(float));
    }
    std::memcpy(dst + n - 8, src + n - 8, 8 * sizeof(float));
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    dst[i] = src[i];
  }
}
/// Calls `f(std::integral_constant<std::size_t, W>{})` when `n` is one of the usual short row
/// widths W (8, 16, 24, 32: LeNet's rows are 8 and 24 values), else `f(n)`; a row loop written
/// against the constant is fully unrolled into vector moves.
template <class F>
void with_row_width(std::size_t n, F&& f) {
  switch (n) {
    case 8:
      return f(std::integral_constant<std::size_t, 8>{});
    case 16:
      return f(std::integral_constant<std::size_t, 16>{});
    case 24:
      return f(std::integral_constant<std::size_t, 24>{});
    case 32:
      return f(std::integral_constant<std::size_t, 32>{});
    default:
      return f(n);
  }
}
/// `rows` rows of `n` values from `src` (row stride `stride`) to consecutive rows of `dst`; a
/// usual width is copied with one fixed-size move per row instead of `copy_row`'s blocks.
inline void copy_rows(float* dst, const float* src, std::size_t rows, std::size_t n, std::size_t stride) {
  with_row_width(n, [&](auto w) {
    for (std::size_t r = 0; r < rows; ++r, dst += w, src += stride) {
      if constexpr (std::is_same_v<decltype(w), std::size_t>) {
        copy_row(dst, src, w);
      } else {
        std::memcpy(dst, src, w * sizeof(float));
      }
    }
  });
}
/// `dst[0..W) += src[0..W)` for a constant `W`; the two never overlap.
template <std::size_t W>
void add_fixed(float* __restrict dst, const float* __restrict src) {
  for (std::size_t i = 0; i < W; ++i) {
    dst[i] += src[i];
  }
}
/// `dst[0..n) += src[0..n)`, blocked like `copy_row`.
inline void add_row(float* dst, const float* src, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (std::size_t l = 0; l < 8; ++l) {
      dst[i + l] += src[i + l];
    }
  }
  for (; i < n; ++i) {
    dst[i] += src[i];
  }
}
/// The adjoint of `copy_rows`: rows of `src` (consecutive, `n` values each) added to rows of
/// `dst` (row stride `stride`).
inline void add_rows(float* dst, const float* src, std::size_t rows, std::size_t n, std::size_t stride) {
  with_row_width(n, [&](auto w) {
    for (std::size_t r = 0; r < rows; ++r, dst += stride, src += w) {
      if constexpr (std::is_same_v<decltype(w), std::size_t>) {
        add_row(dst, src, w);
      } else {
        add_fixed<decltype(w)::value>(dst, src);
      }
    }
  });
}
/// `Σ p[0..n)` in eight interleaved partial sums, a loop the compiler vectorises (a single
/// running float sum has to stay scalar, since reordering it would change the rounding).
inline float sum_of(const float* p, std::size_t n) {
  float lane[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (std::size_t l = 0; l < 8; ++l) {
      lane[l] += p[i + l];
    }
  }
  for (; i < n; ++i) {
    lane[i % 8] += p[i];
  }
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

} // namespace selmask::detail::cpu_rows
