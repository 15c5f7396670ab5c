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
///
///  - `concrete_top_k<K>` (any-masks that keep exactly K of the n cells per draw; the concrete
///    selector of Abid, Balin and Zou 2019, "Concrete Autoencoders for Differentiable Feature
///    Selection and Reconstruction", with the relaxed subset sampling of Xie and Ermon 2019,
///    "Reparameterizable Subset Sampling via Continuous Relaxations"): g_i = −log(−log u_i) per
///    cell logit w_i, perturbed scores r = w + g. The hard mask h keeps the K largest r_i (Gumbel
///    top-k: K cells sampled without replacement with probabilities ∝ e^w). The relaxed mask is
///    s = Σ_{j=1..K} a_j with α¹ = r, a_j = softmax(α^j/τ), α^{j+1} = α^j + log max(1 − a_j, ε)
///    (ε = 1e-20 as in Xie and Ermon's code; 1 − a_m of the largest a_m is computed as
///    Σ_{i≠m} a_i), so Σ s = K (a single s_i may exceed 1: the relaxation does not bound it) and s → h as τ →
///    0. Straight-through: the forward applies h in `mask_mode::hard` and s in `soft`; the backward is the
///    exact vector-Jacobian product of s(w) for the drawn g, by reverse mode through the K softmax steps
///    (`detail::top_k_path`). `expect` keeps the K largest logits (hard; ties to the lower index) or applies
///    the relaxed mask with zero noise, s(w) (soft). τ anneals through the trainer's τ schedule (`set_tau`)
///    like the other surrogates. K larger than the number of cells is a `value_error`.
///    The policy's `backward(w, s, dh, ...)` receives no noise, so each forward and `expect`
///    records its perturbed scores r in a small process-wide store (the last 64 draws, keyed by
///    the exact values of w, s and τ; `detail::top_k_draws`) and `backward` looks its draw up
///    there (a `selmask::error` if it is gone: more than 64 top-k draws between a mask's forward
///    and its backward). Host-side (B::to_host / B::from_host): masks are small.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "../backend/backend.hpp"
#include "../backend/ops.hpp"
#include "../detail/config.hpp"
#include "../error.hpp"
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

namespace detail {

/// The relaxed top-k path of one draw (surrogate `concrete_top_k`): per softmax step j the
/// weights a_j, the complements 1 − a_j (the largest one's as Σ_{i≠m} a_i) and the index m of
/// the largest a_j; all in double, on the host.
struct top_k_path {
  static constexpr double log_floor = 1e-20; ///< ε in log max(1 − a, ε)
  std::size_t n = 0, k = 0;
  double tau = 1.0;
  std::vector<double> a, om;
  std::vector<std::size_t> m;

  /// s = Σ_j a_j for the perturbed scores r at temperature τ.
  void run(const std::vector<double>& r, std::size_t steps, double t, std::vector<double>& s) {
    n = r.size();
    k = steps;
    tau = t;
    a.assign(n * k, 0.0);
    om.assign(n * k, 0.0);
    m.assign(k, 0);
    s.assign(n, 0.0);
    std::vector<double> alpha = r;
    for (std::size_t j = 0; j < k; ++j) {
      double* aj = a.data() + j * n;
      double* oj = om.data() + j * n;
      std::size_t top = 0;
      for (std::size_t i = 1; i < n; ++i) {
        top = alpha[i] > alpha[top] ? i : top;
      }
      double sum = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        aj[i] = std::exp((alpha[i] - alpha[top]) / tau);
        sum += aj[i];
      }
      double rest = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        aj[i] /= sum;
        s[i] += aj[i];
        if (i != top) {
          oj[i] = 1.0 - aj[i];
          rest += aj[i];
        }
      }
      oj[top] = rest;
      m[j] = top;
      for (std::size_t i = 0; i < n; ++i) {
        alpha[i] += std::log(std::max(oj[i], log_floor));
      }
    }
  }

  /// ∂L/∂r from ∂L/∂s = gs, by reverse mode through the steps: with z = α^j/τ and
  /// ℓ_i = log(1 − a_i), ∂a_i/∂z_k = a_i(δ_ik − a_k) and Σ_i v_i ∂ℓ_i/∂z_k = a_k(Σ_{i≠k} q_i − v_k),
  /// q_i = v_i a_i/(1 − a_i), v = ∂L/∂α^{j+1} (0 where the floor ε clamps ℓ_i). Only the largest
  /// a_m can be near 1; its term a_k q_m is evaluated as v_m a_m (a_k/(1 − a_m)), a_k ≤ 1 − a_m.
  void backward(const std::vector<double>& gs, std::vector<double>& gr) const {
    gr.assign(n, 0.0); // ∂L/∂α^{K+1}
    std::vector<double> zbar(n), v(n);
    for (std::size_t j = k; j-- > 0;) {
      const double* aj = a.data() + j * n;
      const double* oj = om.data() + j * n;
      const std::size_t top = m[j];
      double dot = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        dot += aj[i] * gs[i];
        v[i] = oj[i] > log_floor ? gr[i] : 0.0;
      }
      double q_sum = 0.0; // Σ_{i≠m} q_i
      for (std::size_t i = 0; i < n; ++i) {
        q_sum += i == top ? 0.0 : v[i] * aj[i] / oj[i];
      }
      for (std::size_t i = 0; i < n; ++i) {
        double from_log = aj[i] * (q_sum - v[i]);
        if (i != top) {
          from_log -= aj[i] * v[i] * aj[i] / oj[i];
          if (v[top] != 0.0) {
            from_log += v[top] * aj[top] * (aj[i] / oj[top]);
          }
        }
        zbar[i] = aj[i] * (gs[i] - dot) + from_log;
      }
      for (std::size_t i = 0; i < n; ++i) {
        gr[i] += zbar[i] / tau;
      }
    }
  }
};

/// The perturbed scores of the last `capacity` concrete_top_k draws, keyed by the exact w, s
/// and τ of the draw (the policy's backward receives no noise). Thread-safe.
class top_k_draws {
public:
  static constexpr std::size_t capacity = 64;
  static top_k_draws& instance() {
    static top_k_draws store;
    return store;
  }
  void put(std::vector<float> w, std::vector<float> s, float tau, std::vector<double> r) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (entries_.size() == capacity) {
      entries_.pop_back();
    }
    entries_.push_front(entry{std::move(w), std::move(s), tau, std::move(r)});
  }
  /// The most recent draw with these w, s and τ.
  std::optional<std::vector<double>> find(const std::vector<float>& w, const std::vector<float>& s,
                                          float tau) const {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& e : entries_) {
      if (e.tau == tau && e.w == w && e.s == s) {
        return e.r;
      }
    }
    return std::nullopt;
  }

private:
  struct entry {
    std::vector<float> w, s;
    float tau;
    std::vector<double> r;
  };
  mutable std::mutex mutex_;
  std::deque<entry> entries_;
};

} // namespace detail

/// Keep exactly K cells per draw: Gumbel top-k forward, relaxed top-k backward (see the file
/// comment). `concrete_top_k<K>` for an any-mask; the logits are the 1×gc×gh×gw cell grid.
template <std::size_t K>
struct concrete_top_k {
  static_assert(K >= 1, "selmask::concrete_top_k<K>: K must be at least 1");
  static constexpr surrogate_kind kind = surrogate_kind::binary;
  static constexpr const char* name = "concrete_top_k";
  static constexpr bool stochastic = true;
  static constexpr std::size_t k = K;

  template <tensor_backend B>
  static void forward(const tensor_t<B>& w, std::size_t /*choices*/, float tau, mask_mode mode,
                      std::mt19937_64& rng, tensor_t<B>& s, tensor_t<B>& h) {
    const std::vector<float> wh = host_logits<B>(w);
    std::vector<double> r(wh.size());
    for (std::size_t i = 0; i < r.size(); ++i) {
      r[i] = static_cast<double>(wh[i]) - std::log(-std::log(detail::open_uniform(rng)));
    }
    finish<B>(wh, r, tau, mode, B::shape_of(w), s, h);
  }
  template <tensor_backend B>
  static void expect(const tensor_t<B>& w, std::size_t /*choices*/, float tau, mask_mode mode, tensor_t<B>& s,
                     tensor_t<B>& h) {
    const std::vector<float> wh = host_logits<B>(w);
    const std::vector<double> r(wh.begin(), wh.end());
    finish<B>(wh, r, tau, mode, B::shape_of(w), s, h);
  }
  template <tensor_backend B>
  static void backward(const tensor_t<B>& w, const tensor_t<B>& s, const tensor_t<B>& dh,
                       std::size_t /*choices*/, float tau, tensor_t<B>& dw) {
    const auto r = detail::top_k_draws::instance().find(B::to_host(w), B::to_host(s), tau);
    if (!r) {
      throw error(std::string("selmask::concrete_top_k<") + std::to_string(K) +
                  ">::backward: the draw of these logits and soft values is no longer recorded (more than " +
                  std::to_string(detail::top_k_draws::capacity) +
                  " top-k draws since this mask's forward, or logits changed in between)");
    }
    detail::top_k_path path;
    std::vector<double> sd;
    path.run(*r, K, tau, sd);
    const std::vector<float> gh = B::to_host(dh);
    std::vector<double> gs(gh.begin(), gh.end()), gr;
    path.backward(gs, gr);
    dw = B::from_host(B::shape_of(w), std::vector<float>(gr.begin(), gr.end()));
  }

private:
  template <tensor_backend B>
  static std::vector<float> host_logits(const tensor_t<B>& w) {
    std::vector<float> wh = B::to_host(w);
    if (K > wh.size()) {
      throw value_error(std::string("selmask::concrete_top_k<") + std::to_string(K) +
                        ">: K = " + std::to_string(K) + " exceeds the mask's " + std::to_string(wh.size()) +
                        " cells (it keeps exactly K cells)");
    }
    return wh;
  }
  /// s = the relaxed top-k of r; h = the K largest r_i (ties to the lower index) in hard
  /// mode, s in soft; records r for the backward.
  template <tensor_backend B>
  static void finish(const std::vector<float>& wh, const std::vector<double>& r, float tau, mask_mode mode,
                     const shape& ws, tensor_t<B>& s, tensor_t<B>& h) {
    detail::top_k_path path;
    std::vector<double> sd;
    path.run(r, K, tau, sd);
    std::vector<float> sf(sd.begin(), sd.end());
    if (mode == mask_mode::hard) {
      std::vector<std::size_t> order(r.size());
      for (std::size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
      }
      std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(K), order.end(),
                        [&](std::size_t x, std::size_t y) { return r[x] > r[y] || (r[x] == r[y] && x < y); });
      std::vector<float> hf(r.size(), 0.0f);
      for (std::size_t j = 0; j < K; ++j) {
        hf[order[j]] = 1.0f;
      }
      h = B::from_host(ws, hf);
    } else {
      h = B::from_host(ws, sf);
    }
    s = B::from_host(ws, sf);
    detail::top_k_draws::instance().put(wh, std::move(sf), tau, r);
  }
};

static_assert(surrogate<hard_concrete> && surrogate<st_gumbel_softmax> && surrogate<concrete_top_k<1>>);

} // namespace selmask
