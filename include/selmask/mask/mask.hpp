#pragma once
/// \file mask/mask.hpp
/// Selection masks: `any_mask<G, S, Cost>` (keep or drop each cell) and `xor_mask<G, S, Cost>`
/// (pick exactly one of the V versions of each cell), METHOD.md "Mask kinds".
///
/// Both are configuration structs (the run-time numbers a user tunes: initialisation, τ, mode,
/// input-drop upscaling, cost table) whose `impl<B>` holds the logits on backend `B`. The
/// logits have the shape of the cell grid: `1×gc×gh×gw` for an any-mask, `V×gc×gh×gw` for an
/// xOr-mask (see granularity/granularity.hpp).
///
/// Forward: `y = x ⊙ up(h)` where `h` is the hard mask (or the soft one in `mask_mode::soft`).
/// Backward: `∂L/∂x = ∂L/∂y ⊙ up(h)`; `∂L/∂h = Σ_covered ∂L/∂y ⊙ x`, plus `λ·∂Q/∂h` added by the
/// pipeline, then the surrogate maps `∂L/∂h` to `∂L/∂w`. Gradients accumulate until
/// `zero_grad()`; a frozen mask (fixation phase) accumulates none.

#include <cmath>
#include <cstddef>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "../backend/backend.hpp"
#include "../backend/ops.hpp"
#include "../cost/cost.hpp"
#include "../error.hpp"
#include "../granularity/granularity.hpp"
#include "../pipeline/stage.hpp"
#include "../surrogate/straight_through.hpp"

namespace selmask {

namespace detail {

template <tensor_backend B, granularity G, surrogate S, class Cost>
class basic_mask {
public:
  using tensor = tensor_t<B>;
  static constexpr bool categorical = S::kind == surrogate_kind::categorical;
  /// A stochastic surrogate (surrogate/stochastic.hpp) draws in training and `expect`s otherwise.
  static constexpr bool stochastic = requires { requires S::stochastic; };

  struct settings {
    float init_mean;
    float init_std;
    float tau;
    mask_mode mode;
    bool upscale;
    bool check_finite;
    std::optional<std::size_t> initial_version;
    const char* kind_name;
  };

  basic_mask(const settings& cfg, const Cost& cost, stage_context& ctx)
    : name_(std::string("selmask::") + cfg.kind_name + "<" + G::name + ">"), mode_(cfg.mode),
      upscale_(cfg.upscale), check_finite_(cfg.check_finite) {
    set_tau(cfg.tau);
    if (!std::isfinite(cfg.init_mean) || !std::isfinite(cfg.init_std) || cfg.init_std < 0.0f) {
      throw value_error(name_ + ": initial logit mean and std must be finite (std >= 0)");
    }
    if (categorical && !ctx.has_versions) {
      throw shape_error(name_ + ": an xOr-mask needs versions (an extend stage before it)");
    }
    if (categorical && ctx.versions < 2) {
      throw shape_error(name_ + ": an xOr-mask needs at least 2 versions, got " +
                        std::to_string(ctx.versions));
    }
    sample_ = ctx.sample_shape();
    const std::size_t v = ctx.has_versions ? ctx.versions : 1;
    geom_ = make_geometry<G>(v, ctx.channels, ctx.height, ctx.width, /*versions_in_cell=*/!categorical);
    cost_geom_ = make_geometry<G>(1, ctx.channels, ctx.height, ctx.width, true);
    choices_ = categorical ? v : 1;
    const std::size_t k = cost_geom_.cells();

    // logits: any → N(mean, std); xOr → the best (most expensive) version gets `mean`, others 0.
    std::vector<float> w(choices_ * k);
    std::normal_distribution<float> noise(0.0f, 1.0f);
    std::mt19937_64& rng = *ctx.rng;
    std::size_t best = 0;
    if (categorical) {
      if (cfg.initial_version) {
        if (*cfg.initial_version >= choices_) {
          throw value_error(name_ + ": initial_version " + std::to_string(*cfg.initial_version) +
                            " is out of range for " + std::to_string(choices_) + " versions");
        }
        best = *cfg.initial_version;
      } else {
        for (std::size_t i = 1; i < ctx.version_costs.size(); ++i) {
          if (ctx.version_costs[i] > ctx.version_costs[best]) {
            best = i;
          }
        }
      }
    }
    for (std::size_t c = 0; c < choices_; ++c) {
      for (std::size_t i = 0; i < k; ++i) {
        const float base = categorical ? (c == best ? cfg.init_mean : 0.0f) : cfg.init_mean;
        w[c * k + i] = base + cfg.init_std * noise(rng);
      }
    }
    w_ = B::from_host(geom_.grid_shape(), w);
    gw_ = B::zeros(geom_.grid_shape());
    gh_ = B::zeros(geom_.grid_shape());
    costs_ = B::from_host(geom_.grid_shape(), cost.table(choices_, k, ctx.version_costs));
    std::vector<float> sizes(geom_.cells());
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      sizes[i] = static_cast<float>(geom_.cell_size(i));
    }
    cell_sizes_ = B::from_host(geom_.grid_shape(), sizes);
    ones_ = bk::full<B>(shape{1, 1, ctx.channels, ctx.height, ctx.width}, 1.0f);
    rng_ = &rng;
    refresh();
  }

  // ---- the mask as data ----------------------------------------------------------------------
  [[nodiscard]] const tensor& logits() const { return w_; }
  [[nodiscard]] const tensor& grad() const { return gw_; }
  /// Soft values s (sigmoid or softmax of w/τ), as of the last forward or `refresh()`.
  [[nodiscard]] const tensor& soft() const { return s_; }
  /// The mask the forward pass applies: hard 0/1 (one-hot) values in `mask_mode::hard`.
  [[nodiscard]] const tensor& applied() const { return h_; }
  /// The hard mask, whatever the mode.
  [[nodiscard]] tensor hard() const {
    tensor s;
    tensor h;
    std::mt19937_64 rng(0);
    apply_surrogate(mask_mode::hard, false, rng, s, h);
    return h;
  }
  [[nodiscard]] const cell_geometry& geometry() const { return geom_; }
  /// The cost of each choice of each cell (grid-shaped, as the logits), a per-location factor
  /// over the cells of `cost_geometry()` (the C×H×W grid Q is taken on).
  [[nodiscard]] const tensor& costs() const { return costs_; }
  [[nodiscard]] const cell_geometry& cost_geometry() const { return cost_geom_; }
  [[nodiscard]] std::size_t cells() const { return cost_geom_.cells(); }
  [[nodiscard]] std::size_t choices() const { return choices_; }
  [[nodiscard]] const std::string& name() const { return name_; }

  void set_logits(const tensor& w) {
    if (!(B::shape_of(w) == B::shape_of(w_))) {
      throw shape_error(name_ + "::set_logits: shape " + B::shape_of(w).str() + " expected " +
                        B::shape_of(w_).str());
    }
    if (!bk::all_finite<B>(w)) {
      throw value_error(name_ + "::set_logits: logits contain NaN or infinity");
    }
    B::copy(w, w_);
    refresh();
  }
  /// The logits and their gradient for an optimiser to update in place; the mask recomputes
  /// s and h from the logits at the next forward (or `refresh()`).
  tensor& logits_for_update() { return w_; }
  tensor& grad_for_update() { return gw_; }

  [[nodiscard]] float tau() const { return tau_; }
  void set_tau(float tau) {
    if (!(tau > 0.0f) || !std::isfinite(tau)) {
      throw value_error(name_ + ": temperature tau must be positive and finite, got " + std::to_string(tau));
    }
    tau_ = tau;
  }
  [[nodiscard]] mask_mode mode() const { return mode_; }
  void set_mode(mask_mode m) { mode_ = m; }
  [[nodiscard]] bool frozen() const { return frozen_; }
  /// A frozen mask applies its current mask and collects no gradient (fixation phase).
  void freeze(bool f = true) { frozen_ = f; }
  /// With a stochastic surrogate: whether an unfrozen mask draws (training; the default) or
  /// applies its expected mask (evaluation). No effect on the straight-through surrogates.
  void set_sampling(bool on) { sampling_ = on; }

  /// Recomputes s and h from the logits (called by forward; call it after changing logits).
  void refresh() {
    if (check_finite_ && !bk::all_finite<B>(w_)) {
      throw value_error(name_ + ": logits contain NaN or infinity (training diverged?)");
    }
    apply_surrogate(mode_, !frozen_ && sampling_, *rng_, s_, h_);
    if (upscale_ && !categorical) {
      B::map2(h_, cell_sizes_, tmp_cells_, formula::multiply{});
      const double kept = B::sum(tmp_cells_) / static_cast<double>(geom_.values());
      B::map(h_, m_, formula::scale_by{kept > 0.0 ? static_cast<float>(1.0 / kept) : 0.0f});
      scale_ = kept > 0.0 ? static_cast<float>(1.0 / kept) : 0.0f;
    } else {
      scale_ = 1.0f;
    }
  }

  // ---- forward / backward --------------------------------------------------------------------
  const tensor& forward(const tensor& x) {
    const shape xs = B::shape_of(x);
    if (xs.rank() != sample_.rank() + 1 || !(xs.drop_front() == sample_)) {
      throw shape_error(name_ + "::forward: input shape " + xs.str() + " does not match the mask's " +
                        "sample shape " + sample_.str() + " (expected [N," + sample_.str().substr(1));
    }
    if (xs[0] == 0) {
      throw shape_error(name_ + "::forward: empty batch (N = 0)");
    }
    if (check_finite_ && !bk::all_finite<B>(x)) {
      throw value_error(name_ + "::forward: input contains NaN or infinity");
    }
    refresh();
    B::copy(x, x_);
    B::scale_cells(x, effective(), geom_, y_);
    return y_;
  }

  const tensor& backward(const tensor& gy) {
    if (!(B::shape_of(gy) == B::shape_of(x_))) {
      throw shape_error(name_ + "::backward: gradient shape " + B::shape_of(gy).str() +
                        " differs from the forward input's " + B::shape_of(x_).str());
    }
    B::scale_cells(gy, effective(), geom_, gx_);
    if (!frozen_) {
      B::reduce_cells(gy, &x_, geom_, tmp_cells_);
      B::axpy(scale_, tmp_cells_, gh_);
    }
    return gx_;
  }

  // ---- the mask loss Q -------------------------------------------------------------------------
  /// Per-location cost factor of the current mask over the C×H×W grid (shape 1×1×C×H×W).
  void cost_field(tensor& field) {
    cell_costs(tmp_cells_);
    B::scale_cells(ones_, tmp_cells_, cost_geom_, field);
  }
  /// Adds λ·∂Q/∂h given ∂Q/∂field (shape 1×1×C×H×W).
  void add_cost_grad(const tensor& dfield, float lambda) {
    if (frozen_) {
      return;
    }
    B::reduce_cells(dfield, nullptr, cost_geom_, tmp_k_);
    B::reshape(tmp_k_, shape{1, cost_geom_.cells()});
    bk::repeat_versions<B>(tmp_k_, choices_, nullptr, tmp_vk_);
    B::reshape(tmp_vk_, geom_.grid_shape());
    B::map2(tmp_vk_, costs_, tmp_vk_, formula::multiply{});
    B::axpy(lambda, tmp_vk_, gh_);
  }
  /// Turns the accumulated ∂L/∂h into ∂L/∂w (added to `grad()`), then clears ∂L/∂h.
  void finish_backward() {
    if (!frozen_) {
      S::template backward<B>(w_, s_, gh_, choices_, tau_, tmp_cells_);
      B::axpy(1.0f, tmp_cells_, gw_);
    }
    B::map(gh_, gh_, formula::scale_by{0.0f});
  }
  void zero_grad() {
    B::map(gw_, gw_, formula::scale_by{0.0f});
    B::map(gh_, gh_, formula::scale_by{0.0f});
  }

  /// Fraction of the sample's values the current mask keeps (any-masks; 1 for xOr-masks).
  [[nodiscard]] double kept_fraction() {
    B::map2(h_, cell_sizes_, tmp_cells_, formula::multiply{});
    return B::sum(tmp_cells_) / static_cast<double>(geom_.values());
  }

private:
  void apply_surrogate(mask_mode mode, bool draw, std::mt19937_64& rng, tensor& s, tensor& h) const {
    if constexpr (stochastic) {
      if (!draw) {
        S::template expect<B>(w_, choices_, tau_, mode, s, h);
        return;
      }
    }
    S::template forward<B>(w_, choices_, tau_, mode, rng, s, h);
  }
  const tensor& effective() const { return upscale_ && !categorical ? m_ : h_; }
  /// c_k = Σ_v h[v,k]·cost[v,k], shaped as the cost grid.
  void cell_costs(tensor& out) {
    B::map2(h_, costs_, tmp_vk_, formula::multiply{});
    B::reshape(tmp_vk_, shape{1, choices_, cost_geom_.cells()});
    bk::sum_versions<B>(tmp_vk_, nullptr, out);
    B::reshape(tmp_vk_, geom_.grid_shape());
    B::reshape(out, cost_geom_.grid_shape());
  }

  std::string name_;
  shape sample_;
  cell_geometry geom_;
  cell_geometry cost_geom_;
  std::size_t choices_ = 1;
  float tau_ = 1.0f;
  float scale_ = 1.0f;
  mask_mode mode_ = mask_mode::hard;
  bool upscale_ = false;
  bool check_finite_ = true;
  bool frozen_ = false;
  bool sampling_ = true;
  std::mt19937_64* rng_ = nullptr;
  tensor w_, gw_, gh_, s_, h_, m_, costs_, cell_sizes_, ones_;
  tensor x_, y_, gx_, tmp_cells_, tmp_k_, tmp_vk_;
};

} // namespace detail

/// Keep or drop each cell independently. `any_mask<pixel>`, `any_mask<channel>`, ...
template <granularity G, surrogate S = st_sigmoid, cost_model Cost = uniform_cost>
struct any_mask {
  static_assert(S::kind == surrogate_kind::binary,
                "selmask::any_mask<G, S>: S must be a binary surrogate (keep/drop per cell), "
                "e.g. selmask::st_sigmoid; categorical surrogates belong to selmask::xor_mask");
  static constexpr stage_role role = stage_role::mask_any;
  using granularity_type = G;
  using surrogate_type = S;

  float init_mean = 3.0f; ///< initial logit mean: sigmoid(3) ≈ 0.95, everything kept
  float init_std = 0.01f;
  float tau = 1.0f;
  mask_mode mode = mask_mode::hard;
  bool upscale = false; ///< input-drop upscaling: divide by the kept fraction (dropout-style)
  bool check_finite = true;
  Cost cost{};

  template <tensor_backend B>
  class impl : public detail::basic_mask<B, G, S, Cost> {
  public:
    impl(const any_mask& cfg, stage_context& ctx)
      : detail::basic_mask<B, G, S, Cost>({cfg.init_mean, cfg.init_std, cfg.tau, cfg.mode, cfg.upscale,
                                           cfg.check_finite, std::nullopt, "any_mask"},
                                          cfg.cost, ctx) {}
  };
};

/// Pick exactly one of the V versions of each cell (after an extend stage).
template <granularity G, surrogate S = st_softmax, cost_model Cost = uniform_cost>
struct xor_mask {
  static_assert(S::kind == surrogate_kind::categorical,
                "selmask::xor_mask<G, S>: S must be a categorical surrogate (one of V per cell), "
                "e.g. selmask::st_softmax; binary surrogates belong to selmask::any_mask");
  static constexpr stage_role role = stage_role::mask_xor;
  using granularity_type = G;
  using surrogate_type = S;

  float init_mean = 3.0f; ///< initial logit of the selected version (others 0)
  float init_std = 0.01f;
  float tau = 1.0f;
  mask_mode mode = mask_mode::hard;
  bool check_finite = true;
  /// Version selected at the start; default: the most expensive (best) one.
  std::optional<std::size_t> initial_version{};
  Cost cost{};

  template <tensor_backend B>
  class impl : public detail::basic_mask<B, G, S, Cost> {
  public:
    impl(const xor_mask& cfg, stage_context& ctx)
      : detail::basic_mask<B, G, S, Cost>({cfg.init_mean, cfg.init_std, cfg.tau, cfg.mode, false,
                                           cfg.check_finite, cfg.initial_version, "xor_mask"},
                                          cfg.cost, ctx) {}
  };
};

} // namespace selmask
