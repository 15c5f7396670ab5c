#pragma once
/// \file surrogate/stochastic.hpp
/// Stochastic surrogates beside the straight-through ones (surrogate/straight_through.hpp has the
/// policy shape): each forward pass in training draws fresh noise from the pipeline's seeded rng
/// (`stage_context::rng`), so a fixed seed gives fixed draws.
///
///  - `hard_concrete` (any-masks; Louizos, Welling and Kingma 2018, "Learning sparse neural
///    networks through L0 regularization"): u ~ U(0,1), s = σ((w + log u − log(1−u))/β) with
///    log α = w and β = (2/3)·τ, gate z = min(1, max(0, s(ζ − γ) + γ)), γ = −0.1, ζ = 1.1. The
///    forward applies the gate z (exactly 0 or 1 with positive probability) and the gradient is
///    the pathwise one, ∂z/∂w = (ζ − γ)·s(1 − s)/β inside (0, 1), 0 where clamped: its mean over
///    draws is the gradient of the expected loss. P(z ≠ 0) = σ(w − β·log(−γ/ζ)) (`p_nonzero`).
///  - `st_gumbel_softmax` (xOr-masks; Jang, Gu and Poole 2017): g = −log(−log u) per logit,
///    y = softmax((w + g)/τ); the forward applies one_hot(argmax y) (`mask_mode::hard`; by the
///    Gumbel-max property version v is chosen with probability softmax(w)_v) or y itself (`soft`),
///    the backward goes through y.
///
/// A stochastic surrogate has `stochastic = true`, `forward` (a draw) and `expect` (no draw:
/// what evaluation, `hard()` and frozen masks apply). `expect` in `mask_mode::hard` keeps a
/// hard-concrete cell when w ≥ 0 (the test-time gate min(1, max(0, σ(w)(ζ − γ) + γ)) ≥ 1/2) and
/// picks the xOr version of largest logit; in `soft` it applies the test-time gate / softmax(w/τ).
/// With these masks the mask loss Q of a training batch is that of the drawn gates, so λ·Q
/// penalises the expected gated cost E[Σ cost·z], not the L0 count P(z ≠ 0).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "../backend/backend.hpp"
#include "../backend/ops.hpp"
#include "../detail/config.hpp"
#include "formulas.hpp"
#include "straight_through.hpp"

namespace selmask {

namespace formula {

/// s = σ((w + n)·inv_beta): the binary concrete sample for logistic noise n = log u − log(1−u).
struct concrete {
  float inv_beta;
  SELMASK_HOST_DEVICE float operator()(float w, float n) const {
    return 1.0f / (1.0f + std::exp(-(w + n) * inv_beta));
  }
};

/// z = min(1, max(0, s(ζ − γ) + γ)): the stretched and clamped gate.
struct stretch_clamp {
  float gamma, zeta;
  SELMASK_HOST_DEVICE float operator()(float s) const {
    const float z = s * (zeta - gamma) + gamma;
    return z < 0.0f ? 0.0f : (z > 1.0f ? 1.0f : z);
  }
};

/// ∂L/∂w = ∂L/∂z · (ζ − γ)·s(1 − s)·inv_beta where the gate is not clamped, else 0.
struct hard_concrete_backward {
  float inv_beta, gamma, zeta;
  SELMASK_HOST_DEVICE float operator()(float s, float g) const {
    const float z = s * (zeta - gamma) + gamma;
    return z > 0.0f && z < 1.0f ? g * (zeta - gamma) * s * (1.0f - s) * inv_beta : 0.0f;
  }
};

/// a + b
struct add {
  SELMASK_HOST_DEVICE float operator()(float a, float b) const { return a + b; }
};

} // namespace formula

namespace detail {
/// u in the open interval (0, 1) from 53 random bits (the same on every standard library).
inline double open_uniform(std::mt19937_64& rng) {
  return (static_cast<double>(rng() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
} // namespace detail

struct hard_concrete {
  static constexpr surrogate_kind kind = surrogate_kind::binary;
  static constexpr const char* name = "hard_concrete";
  static constexpr bool stochastic = true;
  static constexpr float beta0 = 2.0f / 3.0f; ///< β at τ = 1
  static constexpr float gamma = -0.1f;
  static constexpr float zeta = 1.1f;

  /// P(z ≠ 0) for logit w at temperature τ: σ(w − β·log(−γ/ζ)).
  [[nodiscard]] static double p_nonzero(double w, float tau = 1.0f) {
    const double beta = static_cast<double>(beta0) * tau;
    return 1.0 / (1.0 + std::exp(-(w - beta * std::log(-static_cast<double>(gamma) / zeta))));
  }

  template <tensor_backend B>
  static void forward(const tensor_t<B>& w, std::size_t /*choices*/, float tau, mask_mode /*mode*/,
                      std::mt19937_64& rng, tensor_t<B>& s, tensor_t<B>& h) {
    const shape ws = B::shape_of(w);
    std::vector<float> n(ws.size());
    for (auto& x : n) {
      const double u = detail::open_uniform(rng);
      x = static_cast<float>(std::log(u) - std::log1p(-u));
    }
    B::map2(w, B::from_host(ws, n), s, formula::concrete{1.0f / (beta0 * tau)});
    B::map(s, h, formula::stretch_clamp{gamma, zeta});
  }
  template <tensor_backend B>
  static void expect(const tensor_t<B>& w, std::size_t /*choices*/, float /*tau*/, mask_mode mode,
                     tensor_t<B>& s, tensor_t<B>& h) {
    B::map(w, s, formula::sigmoid{1.0f});
    if (mode == mask_mode::hard) {
      B::map(s, h, formula::threshold_half{});
    } else {
      B::map(s, h, formula::stretch_clamp{gamma, zeta});
    }
  }
  template <tensor_backend B>
  static void backward(const tensor_t<B>& /*w*/, const tensor_t<B>& s, const tensor_t<B>& dh,
                       std::size_t /*choices*/, float tau, tensor_t<B>& dw) {
    B::map2(s, dh, dw, formula::hard_concrete_backward{1.0f / (beta0 * tau), gamma, zeta});
  }
};

struct st_gumbel_softmax {
  static constexpr surrogate_kind kind = surrogate_kind::categorical;
  static constexpr const char* name = "st_gumbel_softmax";
  static constexpr bool stochastic = true;

  template <tensor_backend B>
  static void forward(const tensor_t<B>& w, std::size_t choices, float tau, mask_mode mode,
                      std::mt19937_64& rng, tensor_t<B>& s, tensor_t<B>& h) {
    const shape ws = B::shape_of(w);
    std::vector<float> g(ws.size());
    for (auto& x : g) {
      x = static_cast<float>(-std::log(-std::log(detail::open_uniform(rng))));
    }
    B::map2(w, B::from_host(ws, g), h, formula::add{});
    bk::softmax_groups<B>(h, choices, 1.0f / tau, s);
    finish<B>(s, choices, mode, h);
  }
  template <tensor_backend B>
  static void expect(const tensor_t<B>& w, std::size_t choices, float tau, mask_mode mode, tensor_t<B>& s,
                     tensor_t<B>& h) {
    bk::softmax_groups<B>(w, choices, 1.0f / tau, s);
    finish<B>(s, choices, mode, h);
  }
  template <tensor_backend B>
  static void backward(const tensor_t<B>& /*w*/, const tensor_t<B>& s, const tensor_t<B>& dh,
                       std::size_t choices, float tau, tensor_t<B>& dw) {
    bk::softmax_groups_backward<B>(s, dh, choices, 1.0f / tau, dw);
  }

private:
  template <tensor_backend B>
  static void finish(const tensor_t<B>& s, std::size_t choices, mask_mode mode, tensor_t<B>& h) {
    if (mode == mask_mode::hard) {
      bk::argmax_one_hot_groups<B>(s, choices, h);
    } else {
      B::copy(s, h);
    }
  }
};

static_assert(surrogate<hard_concrete> && surrogate<st_gumbel_softmax>);

} // namespace selmask
