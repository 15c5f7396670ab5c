#pragma once
/// \file backend/nn_backend.hpp
/// The `nn_backend` concept: the second layer of the backend concept, what the small network kit
/// (`selmask::nn`) asks of a backend on top of the `tensor_backend` core — one function, a GEMM.
/// Also the two plain structs the network primitives pass across the backend boundary
/// (`adamw_hyper`, `cross_entropy_result`).
///
/// The one function: `B::gemm(ta, tb, α, a, b, β, t)`: `t = α·op(a)·op(b) + β·t`. Every tensor is
/// read as a matrix, (first axis) × (all other axes), rank 1 as 1×n; `op` transposes when
/// `ta`/`tb`; with β = 0, `t` is resized to M×N unless its matrix view already is M×N
/// (`detail::check_gemm` checks the sizes); `t` must not be `a` or `b`.
///
/// The rest of what the layers use — the conv2d lowering (`im2col` / `col2im`),
/// `swap_leading_axes`, `add_bias` / `bias_grad`, ReLU, the 2×2 max-pool pair,
/// `softmax_cross_entropy` and `adamw_step` — has generic defaults on the core in
/// backend/nn_ops.hpp (`selmask::bk::im2col`, ...), which call a backend's own member of the same
/// name when it has one. The aliasing rule of backend/backend.hpp holds for all of them.
///
/// Optional fused operations, used by the layers when a backend has them (detected with
/// `requires`; the CPU backend has both pairs, the CUDA backend neither):
/// `B::conv2d_forward(x, w, b, k, pad, t)` / `B::conv2d_backward(x, w, g, k, pad, dw, db, dx*)` for
/// `nn::conv2d`, and `B::conv2d_relu_pool_forward(x, w, b, k, pad, t, u)` /
/// `B::conv2d_relu_pool_backward(x, w, y, u, g, k, pad, dw, db, dx*)` for `nn::conv_relu_pool`
/// (backend/cpu/conv.hpp documents their contracts). Without them the layers compose the
/// operations above.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "../error.hpp"
#include "../shape.hpp"
#include "backend.hpp"

namespace selmask {

/// The hyper-parameters of one AdamW update (Loshchilov & Hutter; PyTorch's `AdamW` semantics):
/// `p ← p·(1 − lr·wd)`, `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`, with `amsgrad`
/// `v̂ ← max(v̂, v)` (else `v̂ = v`), `p ← p − lr/(1−β1ᵗ) · m / (√v̂/√(1−β2ᵗ) + eps)`.
/// The defaults are the reference settings of the paper selmask implements.
struct adamw_hyper {
  float lr = 1e-3f;
  float beta1 = 0.5f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 1e-4f;
  bool amsgrad = true;
};

namespace detail {

/// The sizes of `c = op(a)·op(b)` as every backend's `gemm` reads its row-major operands: a tensor
/// is the matrix (first axis) × (all other axes), rank 1 is 1×n. Throws `shape_error` (prefixed
/// with `who`, e.g. "selmask::cpu::gemm") for a scalar operand, inner dimensions that differ, and a
/// `c` whose view is not M×N when `beta != 0` (with `beta == 0` the caller resizes `c` when
/// `c_fits` is false).
struct gemm_sizes {
  std::size_t m, n, k;
  std::size_t lda, ldb; ///< columns of a's and b's matrix views (row-major leading dimensions)
  bool c_fits;
};

inline gemm_sizes check_gemm(const std::string& who, const shape& a, const shape& b, const shape& c,
                             bool trans_a, bool trans_b, float beta) {
  const auto view = [&](const char* arg, const shape& s) -> std::pair<std::size_t, std::size_t> {
    if (s.rank() == 0) {
      throw shape_error(who + ": " + arg + " is a scalar, expected a matrix");
    }
    if (s.rank() == 1) {
      return {1, s.size()};
    }
    return {s[0], s[0] == 0 ? 0 : s.size() / s[0]};
  };
  const auto [ar, ac] = view("a", a);
  const auto [br, bc] = view("b", b);
  const std::size_t m = trans_a ? ac : ar;
  const std::size_t k = trans_a ? ar : ac;
  const std::size_t kb = trans_b ? bc : br;
  const std::size_t n = trans_b ? br : bc;
  if (k != kb) {
    throw shape_error(who + ": inner dimensions differ: op(a) is " + std::to_string(m) + "x" +
                      std::to_string(k) + " (a " + a.str() + (trans_a ? ", transposed" : "") +
                      "), op(b) is " + std::to_string(kb) + "x" + std::to_string(n) + " (b " + b.str() +
                      (trans_b ? ", transposed" : "") + ")");
  }
  const bool c_fits = c.rank() >= 1 && c.size() == m * n && (c.rank() == 1 ? m == 1 : c[0] == m);
  if (!c_fits && beta != 0.0f) {
    throw shape_error(who + ": c has shape " + c.str() + ", expected a " + std::to_string(m) + "x" +
                      std::to_string(n) + " matrix (beta != 0, so c is not resized)");
  }
  return {m, n, k, ac, bc, c_fits};
}

} // namespace detail

/// What `bk::softmax_cross_entropy` reports for a batch: the summed (not averaged) loss and the
/// number of samples whose largest logit is their label.
struct cross_entropy_result {
  double loss_sum = 0.0;
  std::size_t correct = 0;
};

template <class B>
concept nn_backend = tensor_backend<B> &&
  requires(typename B::tensor& t, const typename B::tensor& a, bool flag, float x) {
  B::gemm(flag, flag, x, a, a, x, t);
};

} // namespace selmask
