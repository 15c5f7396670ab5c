#pragma once
/// \file mask/dynamic.hpp
/// Dynamic any-masks: a mask per sample, computed by a *mask model* from a cheap **preview** of
/// that sample (METHOD.md "Dynamic masks").
///
/// The preview is a fixed set of cells of the sample itself (`cell_preview`, e.g. every 7th pixel
/// of every 7th row of a 28×28 image: 16 values). Its values are fetched first; the mask model
/// maps them to one logit per cell; the cells whose hard mask is 1 are fetched next. The preview
/// cells are always part of what the network sees (they were transferred anyway), so a sample's
/// transferred data is
///
///     Q_n = ( Σ_{k ∈ P} c_k + Σ_{k ∉ P} h_nk·c_k ) / Σ_k c_k,
///
/// with c_k the cost of cell k (uniform or measured bytes), P the preview and h_n the sample's hard
/// mask. Q of a batch is the mean of the Q_n. Why a preview made of the sample's own cells and not a
/// thumbnail: a thumbnail's bytes are extra bytes that the network never sees; the preview's cells
/// are bytes of the selection, so no byte is spent only to decide.
///
/// Logits: `w_n = model(p_n) + b`, where p_n (N×P) are the preview values, `model` is any selmask
/// model functor (model/model.hpp: `forward` → N×K logits, `backward` → ∂L/∂p, `step`,
/// `zero_grad`; e.g. `nn::sequential<B, nn::dense<B>>`, linear), and b (K values) is a learned
/// static prior. `learn_static` and `learn_dynamic` switch the two parts on and off separately;
/// with `learn_dynamic = false` the model is neither run nor trained (w_n = b: a static mask).
///
/// Forward: `y_n = m_n ⊙ x_n + (1 − m_n)·fill` with `m_n = max(h_n, 1_P)`, `h_n` the surrogate's
/// hard (or soft) mask of `w_n / τ` and `fill` the value of a dropped cell (0 by default).
/// Backward (straight-through, as the static masks): `∂L/∂x = ∂L/∂y ⊙ m` (the data's own path;
/// the path through the preview into the mask model is not part of it), `∂L/∂h_nk = ∂L/∂y_nk ·
/// (x_nk − fill) + λ·c_k / (N·Σc)` for k ∉ P (0 on the preview); the surrogate turns that into
/// `∂L/∂w`, which goes to the model's backward and, summed over the batch, to b.
///
/// Cells are the values of the C×H×W sample (for one channel: pixels). Dynamic xOr masks (a version
/// per cell and sample) are not built yet.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "../backend/nn_backend.hpp"
#include "../backend/nn_ops.hpp"
#include "../backend/ops.hpp"
#include "../error.hpp"
#include "../model/model.hpp"
#include "../nn/adamw.hpp"
#include "../shape.hpp"
#include "../surrogate/straight_through.hpp"

namespace selmask {

/// The preview: which values of a C×H×W sample are fetched first (indices into the flattened
/// sample, ascending, distinct).
struct cell_preview {
  std::vector<std::size_t> cells;

  /// Every `stride`-th pixel of every `stride`-th row (all channels), starting at stride/2: for
  /// 28×28 and stride 7, the 16 pixels at rows and columns 3, 10, 17, 24.
  static cell_preview strided(const shape& sample, std::size_t stride) {
    if (sample.rank() != 3) {
      throw shape_error("selmask::cell_preview::strided: expected a C×H×W sample shape, got " + sample.str());
    }
    if (stride == 0) {
      throw value_error("selmask::cell_preview::strided: stride must be positive");
    }
    cell_preview p;
    for (std::size_t c = 0; c < sample[0]; ++c)
      for (std::size_t h = stride / 2; h < sample[1]; h += stride)
        for (std::size_t w = stride / 2; w < sample[2]; w += stride)
          p.cells.push_back((c * sample[1] + h) * sample[2] + w);
    return p;
  }
  [[nodiscard]] std::size_t size() const noexcept { return cells.size(); }
};

/// Run-time settings of a `dynamic_any_mask`.
struct dynamic_mask_options {
  float tau = 1.0f;
  float init_mean = 3.0f;    ///< initial static prior b (3: sigmoid ≈ 0.95, every cell kept)
  bool learn_static = true;  ///< train the static prior b
  bool learn_dynamic = true; ///< run and train the mask model (else w_n = b)
  mask_mode mode = mask_mode::hard;
  /// The static prior's optimiser (the mask model has its own).
  adamw_hyper prior_optimizer{
    .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
  std::vector<float> costs{}; ///< cost of each cell (C·H·W values); empty: 1 each
  /// The value of a dropped cell. 0 (the default) is the static masks' convention; a value outside
  /// the data's range (e.g. −1 for pixels in [0, 1]) lets the network tell a dropped cell from a
  /// dark one, so that it reads the mask's pattern too — which, for a dynamic mask, carries what
  /// the mask model saw in the preview, at no cost in bytes (the client knows the mask).
  float fill = 0.0f;
  bool check_finite = true;
};

namespace formula {
/// max(a, b): a hard mask with the preview cells forced on.
struct keep_either {
  SELMASK_HOST_DEVICE float operator()(float a, float b) const { return a > b ? a : b; }
};
/// m·x + (1 − m)·fill: the value kept, or `fill` where dropped (interpolated for soft masks).
struct keep_or_fill {
  float fill;
  SELMASK_HOST_DEVICE float operator()(float x, float m) const { return m * x + (1.0f - m) * fill; }
};
/// g·(x − fill): ∂L/∂m of `keep_or_fill` for ∂L/∂y = g.
struct minus_fill_times {
  float fill;
  SELMASK_HOST_DEVICE float operator()(float g, float x) const { return g * (x - fill); }
};
} // namespace formula

template <nn_backend B, class MaskModel, surrogate S = st_sigmoid>
requires differentiable_model<MaskModel, B>
class dynamic_any_mask {
  static_assert(S::kind == surrogate_kind::binary,
                "selmask::dynamic_any_mask<B, Model, S>: S must be a binary surrogate, e.g. st_sigmoid");

public:
  using tensor = tensor_t<B>;
  static constexpr bool stochastic = requires { requires S::stochastic; };

  /// A mask over samples of shape `sample` (C×H×W) with preview `preview` and mask model `model`
  /// (not owned; it must outlive the mask; it maps N×P previews to N×K logits, K = C·H·W).
  dynamic_any_mask(const shape& sample, cell_preview preview, MaskModel& model,
                   const dynamic_mask_options& opt = {}, std::uint64_t seed = 0)
    : sample_(sample), preview_(std::move(preview)), model_(&model), opt_(opt), rng_(seed),
      prior_opt_(opt.prior_optimizer) {
    if (sample.rank() != 3 || sample.size() == 0) {
      throw shape_error(name() + ": expected a non-empty C×H×W sample shape, got " + sample.str());
    }
    k_ = sample.size();
    set_tau(opt.tau);
    if (!std::isfinite(opt.init_mean)) {
      throw value_error(name() + ": the initial prior logit must be finite");
    }
    if (preview_.cells.empty()) {
      throw value_error(name() + ": the preview is empty (the mask model needs at least one value)");
    }
    for (std::size_t i = 0; i < preview_.cells.size(); ++i) {
      if (preview_.cells[i] >= k_ || (i > 0 && preview_.cells[i] <= preview_.cells[i - 1])) {
        throw value_error(name() + ": preview cell " + std::to_string(preview_.cells[i]) + " at position " +
                          std::to_string(i) + " is out of range for " + std::to_string(k_) +
                          " cells or not ascending");
      }
    }
    costs_host_ = opt.costs.empty() ? std::vector<float>(k_, 1.0f) : opt.costs;
    if (costs_host_.size() != k_) {
      throw shape_error(name() + ": " + std::to_string(costs_host_.size()) + " cell costs for " +
                        std::to_string(k_) + " cells");
    }
    double total = 0.0;
    for (float c : costs_host_) {
      if (!(c >= 0.0f) || !std::isfinite(c)) {
        throw value_error(name() + ": cell costs must be finite and non-negative");
      }
      total += c;
    }
    if (!(total > 0.0)) {
      throw value_error(name() + ": the cell costs sum to 0");
    }
    total_cost_ = total;
    for (std::size_t c : preview_.cells) {
      preview_cost_ += costs_host_[c];
    }
    std::vector<float> sel(preview_.size() * k_, 0.0f);
    for (std::size_t j = 0; j < preview_.size(); ++j) {
      sel[j * k_ + preview_.cells[j]] = 1.0f;
    }
    select_ = B::from_host(shape{preview_.size(), k_}, sel);
    std::vector<float> costs_col(costs_host_.begin(), costs_host_.end());
    costs_col_ = B::from_host(shape{k_, 1}, costs_col);
    prior_ = bk::full<B>(shape{k_}, opt.init_mean);
    gprior_ = B::zeros(shape{k_});
    prior_opt_.add(prior_, gprior_);
  }

  dynamic_any_mask(const dynamic_any_mask&) = delete;
  dynamic_any_mask& operator=(const dynamic_any_mask&) = delete;

  [[nodiscard]] std::string name() const { return "selmask::dynamic_any_mask<" + std::string(S::name) + ">"; }
  [[nodiscard]] const shape& sample_shape() const noexcept { return sample_; }
  /// The settings it was made with (τ as of now).
  [[nodiscard]] const dynamic_mask_options& options() const noexcept { return opt_; }
  [[nodiscard]] const cell_preview& preview() const noexcept { return preview_; }
  [[nodiscard]] std::size_t cells() const noexcept { return k_; }
  [[nodiscard]] const std::vector<float>& costs() const noexcept { return costs_host_; }
  /// The preview's share of Q (Σ_{k∈P} c_k / Σ c_k): the least a sample can cost.
  [[nodiscard]] double preview_q() const noexcept { return preview_cost_ / total_cost_; }
  [[nodiscard]] float tau() const noexcept { return opt_.tau; }
  /// The value of a dropped cell (`dynamic_mask_options::fill`).
  [[nodiscard]] float fill() const noexcept { return opt_.fill; }
  void set_tau(float tau) {
    if (!(tau > 0.0f) || !std::isfinite(tau)) {
      throw value_error(name() + ": temperature tau must be positive and finite, got " + std::to_string(tau));
    }
    opt_.tau = tau;
  }
  /// A frozen mask applies its masks and collects no gradient (fixation).
  void freeze(bool f = true) noexcept { frozen_ = f; }
  [[nodiscard]] bool frozen() const noexcept { return frozen_; }
  /// Stochastic surrogates: draw (training) or apply the expected mask (evaluation).
  void set_sampling(bool on) noexcept { sampling_ = on; }
  /// Exactly `k` cells outside the preview per sample: the k largest logits of each sample (ties:
  /// the lower index), instead of the surrogate's threshold (the per-sample form of the static
  /// masks' "exactly k cells" projection; uniform costs make that a budget of (|P| + k)/K).
  /// `std::nullopt` goes back to the threshold.
  void keep_per_sample(std::optional<std::size_t> k) {
    if (k && *k > k_ - preview_.size()) {
      throw value_error(name() + "::keep_per_sample: " + std::to_string(*k) + " cells asked, only " +
                        std::to_string(k_ - preview_.size()) + " lie outside the preview");
    }
    keep_k_ = k;
  }
  [[nodiscard]] std::optional<std::size_t> kept_per_sample() const noexcept { return keep_k_; }
  [[nodiscard]] const tensor& prior() const noexcept { return prior_; }
  tensor& prior_for_update() noexcept { return prior_; }
  /// ∂L/∂b accumulated since the last `zero_grad` (with `learn_static`).
  [[nodiscard]] const tensor& prior_grad() const noexcept { return gprior_; }
  [[nodiscard]] MaskModel& model() noexcept { return *model_; }

  /// The masked batch: x (N×C×H×W) with every cell outside the preview and outside the sample's
  /// hard mask set to `fill()`. Valid until the next forward.
  const tensor& forward(const tensor& x) {
    const shape xs = B::shape_of(x);
    if (xs.rank() != 4 || !(xs.drop_front() == sample_)) {
      throw shape_error(name() + "::forward: input shape " + xs.str() + " does not match the sample shape " +
                        sample_.str());
    }
    if (xs[0] == 0) {
      throw shape_error(name() + "::forward: empty batch (N = 0)");
    }
    if (opt_.check_finite && !bk::all_finite<B>(x)) {
      throw value_error(name() + "::forward: input contains NaN or infinity");
    }
    in_shape_ = xs;
    B::copy(x, x_);
    B::reshape(x_, shape{xs[0], k_});
    B::gemm(false, true, 1.0f, x_, select_, 0.0f, p_);
    masks_from_previews(p_);
    B::map2(x_, m_, y_, formula::keep_or_fill{opt_.fill});
    B::reshape(y_, xs);
    return y_;
  }

  /// ∂L/∂x for ∂L/∂y of the last forward; accumulates ∂L/∂w (from ∂L/∂y and λ·∂Q/∂h) unless frozen.
  const tensor& backward(const tensor& gy, float lambda) {
    if (!(B::shape_of(gy) == in_shape_)) {
      throw shape_error(name() + "::backward: gradient shape " + B::shape_of(gy).str() +
                        " differs from the forward input's " + in_shape_.str());
    }
    if (!(lambda >= 0.0f) || !std::isfinite(lambda)) {
      throw value_error(name() + "::backward: lambda must be finite and >= 0, got " + std::to_string(lambda));
    }
    B::copy(gy, g_);
    B::reshape(g_, shape{in_shape_[0], k_});
    B::map2(g_, m_, gx_, formula::multiply{});
    B::reshape(gx_, in_shape_);
    if (frozen_) {
      return gx_;
    }
    B::map2(g_, x_, gh_, formula::minus_fill_times{opt_.fill});
    const float per = lambda / static_cast<float>(static_cast<double>(in_shape_[0]) * total_cost_);
    B::axpy(per, costs_n_, gh_);
    B::map2(gh_, outside_n_, gh_, formula::multiply{});
    S::template backward<B>(w_, s_, gh_, 1, opt_.tau, gw_);
    if (opt_.learn_static) {
      bk::bias_grad<B>(gw_, gprior_);
    }
    if (opt_.learn_dynamic) {
      (void)model_->backward(gw_);
    }
    return gx_;
  }

  void step() {
    if (frozen_) {
      return;
    }
    if (opt_.learn_static) {
      prior_opt_.step();
    }
    if constexpr (trainable_model<MaskModel, B>) {
      if (opt_.learn_dynamic) {
        model_->step();
      }
    }
  }
  void zero_grad() {
    prior_opt_.zero_grad();
    if constexpr (trainable_model<MaskModel, B>) {
      model_->zero_grad();
    }
  }

  /// The kept cells (preview included, ascending) of each sample whose previews are `p` (N×P): what
  /// a client that has fetched only the previews decides. Replaces the last forward's masks (and
  /// runs the mask model's forward).
  [[nodiscard]] std::vector<std::vector<std::size_t>> choose(const tensor& p) {
    masks_from_previews(p);
    const std::vector<float> m = B::to_host(m_);
    const std::size_t n = B::shape_of(p)[0];
    std::vector<std::vector<std::size_t>> out(n);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t k = 0; k < k_; ++k)
        if (m[i * k_ + k] > 0.5f)
          out[i].push_back(k);
    return out;
  }

  /// The preview values (N×P) of a batch x (N×C×H×W), in the order of `preview().cells`.
  [[nodiscard]] tensor previews_of(const tensor& x) const {
    tensor flat = x;
    B::reshape(flat, shape{B::shape_of(x)[0], k_});
    tensor p;
    B::gemm(false, true, 1.0f, flat, select_, 0.0f, p);
    return p;
  }

  /// The applied masks of the last forward (N×K; 1 on the preview and the chosen cells).
  [[nodiscard]] const tensor& applied() const noexcept { return m_; }
  /// Q of each sample of the last forward (the preview included).
  [[nodiscard]] std::vector<double> sample_q() {
    tensor q;
    B::gemm(false, false, 1.0f, m_, costs_col_, 0.0f, q);
    std::vector<float> h = B::to_host(q);
    std::vector<double> out(h.size());
    for (std::size_t i = 0; i < h.size(); ++i) {
      out[i] = static_cast<double>(h[i]) / total_cost_;
    }
    return out;
  }
  /// Mean Q of the last forward's batch.
  [[nodiscard]] double mean_q() {
    const std::vector<double> q = sample_q();
    double s = 0.0;
    for (double v : q) {
      s += v;
    }
    return q.empty() ? 0.0 : s / static_cast<double>(q.size());
  }

private:
  void masks_from_previews(const tensor& p) {
    const shape ps = B::shape_of(p);
    if (ps.rank() != 2 || ps[1] != preview_.size() || ps[0] == 0) {
      throw shape_error(name() + ": previews of shape " + ps.str() + ", expected N×" +
                        std::to_string(preview_.size()));
    }
    const std::size_t n = ps[0];
    if (n != batch_) {
      resize_batch(n);
    }
    if (opt_.learn_dynamic) {
      const tensor& w = model_->forward(p);
      if (B::shape_of(w).size() != n * k_) {
        throw shape_error(name() + ": the mask model returned " + B::shape_of(w).str() + " for previews " +
                          ps.str() + ", expected " + std::to_string(n) + "×" + std::to_string(k_) +
                          " logits");
      }
      B::copy(w, w_);
      B::reshape(w_, shape{n, k_});
    } else if (B::shape_of(w_) == shape{n, k_}) {
      B::map(w_, w_, formula::scale_by{0.0f}); // w_n = b: no model, no allocation per batch
    } else {
      w_ = B::zeros(shape{n, k_});
    }
    bk::add_bias<B>(w_, prior_);
    if (opt_.check_finite && !bk::all_finite<B>(w_)) {
      throw value_error(name() + ": mask logits contain NaN or infinity (training diverged?)");
    }
    if constexpr (stochastic) {
      if (frozen_ || !sampling_) {
        S::template expect<B>(w_, 1, opt_.tau, opt_.mode, s_, h_);
      } else {
        S::template forward<B>(w_, 1, opt_.tau, opt_.mode, rng_, s_, h_);
      }
    } else {
      S::template forward<B>(w_, 1, opt_.tau, opt_.mode, rng_, s_, h_);
    }
    if (keep_k_) {
      project_top_k(n);
    }
    B::map2(h_, preview_n_, m_, formula::keep_either{});
  }

  /// h ← the top-`keep_k_` logits of each row outside the preview (a host pass: N×K values).
  void project_top_k(std::size_t n) {
    const std::vector<float> w = B::to_host(w_);
    std::vector<float> h(n * k_, 0.0f);
    std::vector<std::size_t> order;
    std::vector<char> in_preview(k_, 0);
    for (std::size_t c : preview_.cells) {
      in_preview[c] = 1;
    }
    for (std::size_t i = 0; i < n; ++i) {
      order.clear();
      for (std::size_t k = 0; k < k_; ++k) {
        if (!in_preview[k]) {
          order.push_back(k);
        }
      }
      const float* row = w.data() + i * k_;
      std::partial_sort(
        order.begin(), order.begin() + static_cast<std::ptrdiff_t>(*keep_k_), order.end(),
        [row](std::size_t a, std::size_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
      for (std::size_t j = 0; j < *keep_k_; ++j) {
        h[i * k_ + order[j]] = 1.0f;
      }
    }
    h_ = B::from_host(shape{n, k_}, h);
  }

  void resize_batch(std::size_t n) {
    std::vector<float> pv(n * k_, 0.0f), outside(n * k_, 1.0f), c(n * k_);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < k_; ++k) {
        c[i * k_ + k] = costs_host_[k];
      }
      for (std::size_t k : preview_.cells) {
        pv[i * k_ + k] = 1.0f;
        outside[i * k_ + k] = 0.0f;
      }
    }
    preview_n_ = B::from_host(shape{n, k_}, pv);
    outside_n_ = B::from_host(shape{n, k_}, outside);
    costs_n_ = B::from_host(shape{n, k_}, c);
    batch_ = n;
  }

  shape sample_;
  cell_preview preview_;
  MaskModel* model_;
  dynamic_mask_options opt_;
  std::mt19937_64 rng_;
  nn::adamw<B> prior_opt_;
  std::size_t k_ = 0;
  std::size_t batch_ = 0;
  std::vector<float> costs_host_;
  double total_cost_ = 0.0;
  double preview_cost_ = 0.0;
  bool frozen_ = false;
  bool sampling_ = true;
  std::optional<std::size_t> keep_k_{};
  shape in_shape_{};
  tensor select_, costs_col_, prior_, gprior_, preview_n_, outside_n_, costs_n_;
  tensor x_, p_, w_, s_, h_, m_, y_, g_, gx_, gh_, gw_;
};

} // namespace selmask
