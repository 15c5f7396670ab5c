#pragma once
/// \file surrogate/straight_through.hpp
/// The paper's surrogates: straight-through sigmoid (any-masks) and straight-through softmax
/// (xOr-masks), with temperature τ.
///
/// A surrogate models `selmask::surrogate`: a policy with
///  - `kind`: `surrogate_kind::binary` (keep/drop per cell) or `surrogate_kind::categorical`
///    (one of V choices per cell; logits laid out V×K, K cells);
///  - `forward<B>(w, choices, τ, mode, rng, s, h)`: the soft values `s` and the mask `h` the
///    forward pass applies (`h` hard in `mask_mode::hard`, `h = s` in `mask_mode::soft`);
///  - `backward<B>(w, s, dh, choices, τ, dw)`: `dw = ∂L/∂w` from `dh = ∂L/∂h`.
/// Stochastic surrogates use `rng` in training; the hard mask is what inference transfers.

#include <cstddef>
#include <random>

#include "../backend/backend.hpp"
#include "../backend/ops.hpp"
#include "formulas.hpp"

namespace selmask {

enum class surrogate_kind { binary, categorical };

/// `hard`: the forward pass applies the hard 0/1 (one-hot) mask and gradients go straight
/// through (training, inference). `soft`: the forward pass applies the soft values, so the
/// backward pass is the exact gradient (gradient checks, soft warm-up).
enum class mask_mode { hard, soft };

/// Straight-through sigmoid: s = sigmoid(w/τ), h = [s ≥ 0.5], ∂L/∂w = ∂L/∂h · s(1−s)/τ.
struct st_sigmoid {
  static constexpr surrogate_kind kind = surrogate_kind::binary;
  static constexpr const char* name = "st_sigmoid";

  template <tensor_backend B>
  static void forward(const tensor_t<B>& w, std::size_t /*choices*/, float tau, mask_mode mode,
                      std::mt19937_64& /*rng*/, tensor_t<B>& s, tensor_t<B>& h) {
    B::map(w, s, formula::sigmoid{1.0f / tau});
    if (mode == mask_mode::hard) {
      B::map(s, h, formula::threshold_half{});
    } else {
      B::copy(s, h);
    }
  }
  template <tensor_backend B>
  static void backward(const tensor_t<B>& /*w*/, const tensor_t<B>& s, const tensor_t<B>& dh,
                       std::size_t /*choices*/, float tau, tensor_t<B>& dw) {
    B::map2(s, dh, dw, formula::sigmoid_backward{1.0f / tau});
  }
};

/// Straight-through softmax over the V choices of each cell: s = softmax(w/τ),
/// h = one_hot(argmax s), ∂L/∂w_v = s_v (∂L/∂h_v − Σ_u s_u ∂L/∂h_u)/τ.
struct st_softmax {
  static constexpr surrogate_kind kind = surrogate_kind::categorical;
  static constexpr const char* name = "st_softmax";

  template <tensor_backend B>
  static void forward(const tensor_t<B>& w, std::size_t choices, float tau, mask_mode mode,
                      std::mt19937_64& /*rng*/, tensor_t<B>& s, tensor_t<B>& h) {
    bk::softmax_groups<B>(w, choices, 1.0f / tau, s);
    if (mode == mask_mode::hard) {
      bk::argmax_one_hot_groups<B>(s, choices, h);
    } else {
      B::copy(s, h);
    }
  }
  template <tensor_backend B>
  static void backward(const tensor_t<B>& /*w*/, const tensor_t<B>& s, const tensor_t<B>& dh,
                       std::size_t choices, float tau, tensor_t<B>& dw) {
    bk::softmax_groups_backward<B>(s, dh, choices, 1.0f / tau, dw);
  }
};

/// A type usable as the surrogate of a mask.
template <class S>
concept surrogate = requires {
  { S::kind } -> std::convertible_to<surrogate_kind>;
  { S::name } -> std::convertible_to<const char*>;
};

} // namespace selmask
