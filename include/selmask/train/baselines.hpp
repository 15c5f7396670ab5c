#pragma once
/// \file train/baselines.hpp
/// The baselines a learned selection mask has to beat at the same budget. Each one ranks the
/// input's values (or takes none), and `top_k_mask` turns a ranking into a 0/1 mask of k ones,
/// the same form as the trainer's `keep_cells` projection:
///
///  - `random_mask`: k values drawn uniformly without replacement. The floor: a learned mask that
///    does not beat random masks at the same Q has learned nothing about the task.
///  - `mutual_information_ranking`: model-free. Each value's plug-in mutual information with the
///    label, I(x_j; y), after quantising the value into equal-width bins. It sees every value on
///    its own, so it misses values that are only informative together and keeps redundant ones;
///    a joint mask that cannot beat it gains nothing from being learned with the network.
///  - `saliency_ranking`: model-based. The mean magnitude of the input gradient of the network's
///    cross-entropy, |∂L/∂x_j|, of a trained network (typically the warm-up network, before any
///    mask is learned). It asks the network which values its loss is locally sensitive to, but a
///    gradient is a first-order, one-value-at-a-time measure of a network trained on all inputs,
///    not the accuracy of a network trained on the kept ones.
///
/// Everything here works on host vectors (`std::vector<float>`, one entry per value of a sample,
/// C·H·W, row-major as `io::dataset::sample`); the saliency moves batches to the model's backend
/// with `B::from_host` / `B::to_host`. Bad input throws `value_error` (or `shape_error` for a model
/// whose input gradient does not have the input's shape), naming the function.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "../backend/backend.hpp"
#include "../backend/nn_ops.hpp"
#include "../error.hpp"
#include "../io/dataset.hpp"
#include "../model/model.hpp"
#include "../shape.hpp"

namespace selmask {

/// A 0/1 mask over `cells` entries with exactly `k` ones at positions drawn uniformly without
/// replacement (a partial Fisher–Yates shuffle driven by `std::mt19937_64(seed)` and a bounded
/// draw that is the same on every standard library): the same seed gives the same mask
/// everywhere. The random baseline: evaluate a network trained on several such masks at the
/// learned mask's k. Throws `value_error` if `k > cells`.
inline std::vector<float> random_mask(std::size_t cells, std::size_t k, std::uint64_t seed) {
  if (k > cells) {
    throw value_error("selmask::random_mask: k = " + std::to_string(k) + " exceeds the " +
                      std::to_string(cells) + " cells");
  }
  std::vector<std::size_t> order(cells);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i < k; ++i) { // order[0..i) holds the cells drawn so far
    const auto j = i + static_cast<std::size_t>(io::detail::uniform_below(rng, cells - i));
    std::swap(order[i], order[j]);
  }
  std::vector<float> mask(cells, 0.0f);
  for (std::size_t i = 0; i < k; ++i) {
    mask[order[i]] = 1.0f;
  }
  return mask;
}

/// A 0/1 mask keeping the `k` largest `scores`: entry i is 1 iff fewer than k entries rank above
/// it, where j ranks above i when `scores[j] > scores[i]`, or the scores are equal and j < i (ties
/// go to the lower index, so the mask is deterministic). Turns any ranking (mutual information,
/// saliency, a learned mask's logits) into a mask of exactly k cells. Throws `value_error` if
/// `k > scores.size()` or a score is NaN (infinities rank as usual).
inline std::vector<float> top_k_mask(std::span<const float> scores, std::size_t k) {
  constexpr const char* who = "selmask::top_k_mask: ";
  if (k > scores.size()) {
    throw value_error(std::string(who) + "k = " + std::to_string(k) + " exceeds the " +
                      std::to_string(scores.size()) + " scores");
  }
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (std::isnan(scores[i])) {
      throw value_error(std::string(who) + "score " + std::to_string(i) + " is NaN");
    }
  }
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  const auto above = [&](std::size_t a, std::size_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  };
  const auto cut = order.begin() + static_cast<std::ptrdiff_t>(k);
  std::nth_element(order.begin(), cut, order.end(), above); // a strict total order: exact
  std::vector<float> mask(scores.size(), 0.0f);
  for (auto it = order.begin(); it != cut; ++it) {
    mask[*it] = 1.0f;
  }
  return mask;
}

namespace detail {

/// Plug-in mutual information in nats of a joint count table (`rows × cols`, row-major, `total`
/// the sum of its entries > 0): Σ_ab (n_ab/N) · ln(n_ab·N / (n_a·n_b)), the empty cells
/// contributing 0. Clamped at 0 against rounding (the exact value is never negative).
inline double mutual_information_of_counts(std::span<const std::uint32_t> joint, std::size_t rows,
                                           std::size_t cols, double total) {
  std::vector<double> row_sum(rows, 0.0), col_sum(cols, 0.0);
  for (std::size_t a = 0; a < rows; ++a) {
    for (std::size_t b = 0; b < cols; ++b) {
      row_sum[a] += joint[a * cols + b];
      col_sum[b] += joint[a * cols + b];
    }
  }
  double mi = 0.0;
  for (std::size_t a = 0; a < rows; ++a) {
    for (std::size_t b = 0; b < cols; ++b) {
      const double n = joint[a * cols + b];
      if (n > 0.0) {
        mi += n * std::log(n * total / (row_sum[a] * col_sum[b]));
      }
    }
  }
  return std::max(0.0, mi / total);
}

/// The distinct values of `v`, sorted, and each entry's position among them.
inline std::vector<std::size_t> dense_codes(const std::vector<std::size_t>& v, std::size_t& distinct) {
  std::vector<std::size_t> values = v;
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  distinct = values.size();
  std::vector<std::size_t> codes(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    codes[i] =
      static_cast<std::size_t>(std::lower_bound(values.begin(), values.end(), v[i]) - values.begin());
  }
  return codes;
}

} // namespace detail

/// The plug-in (maximum-likelihood) mutual information, in nats, between two discrete variables
/// observed together: `xbin[i]` and `label[i]` are the i-th observation of each (any codes; only
/// equality matters). With n_ab the number of observations with x = a and y = b, n_a and n_b the
/// marginal counts and N the number of observations,
///   I(x; y) = Σ_ab (n_ab/N) · ln(n_ab·N / (n_a·n_b)),
/// which is 0 when the empirical joint distribution factorises and ln K when x determines y and
/// y takes K equally frequent values. Throws `value_error` for sequences of different lengths or
/// no observations.
inline double mutual_information(const std::vector<std::size_t>& xbin,
                                 const std::vector<std::size_t>& label) {
  if (xbin.size() != label.size()) {
    throw value_error("selmask::mutual_information: " + std::to_string(xbin.size()) + " x values for " +
                      std::to_string(label.size()) + " labels (expected one label per value)");
  }
  if (xbin.empty()) {
    throw value_error("selmask::mutual_information: no observations");
  }
  std::size_t rows = 0, cols = 0;
  const std::vector<std::size_t> a = detail::dense_codes(xbin, rows);
  const std::vector<std::size_t> b = detail::dense_codes(label, cols);
  std::vector<std::uint32_t> joint(rows * cols, 0);
  for (std::size_t i = 0; i < a.size(); ++i) {
    ++joint[a[i] * cols + b[i]];
  }
  return detail::mutual_information_of_counts(joint, rows, cols, static_cast<double>(xbin.size()));
}

/// The model-free ranking: one score per value j of a sample (`d.sample.size()` = C·H·W scores),
/// the plug-in mutual information I(x_j; y) in nats (see `mutual_information`) between the label
/// and value j quantised into `bins` equal-width bins over [min_j, max_j], its range over the data
/// set: bin = min(bins − 1, ⌊bins · (x − min_j) / (max_j − min_j)⌋). A value that is constant over
/// the data set falls in one bin and scores 0. Ranks what each value tells about the label on its
/// own; `top_k_mask` of it is the baseline mask. Throws `value_error` for an empty data set, fewer
/// than 2 bins or a data set without labels, and what `io::dataset::validate` throws.
inline std::vector<float> mutual_information_ranking(const io::dataset& d, std::size_t bins = 8) {
  constexpr const char* who = "selmask::mutual_information_ranking: ";
  if (d.empty()) {
    throw value_error(std::string(who) + "empty data set (the ranking needs labelled samples)");
  }
  if (bins < 2) {
    throw value_error(std::string(who) + "bins must be at least 2, got " + std::to_string(bins));
  }
  if (d.labels.empty()) {
    throw value_error(std::string(who) + "the data set has no labels (mutual information with the "
                                         "label needs a classification data set)");
  }
  d.validate();
  const std::size_t n = d.size(), per = d.sample.size(), classes = d.classes;
  std::vector<float> lo(per), hi(per);
  const auto first = d.image(0);
  std::copy(first.begin(), first.end(), lo.begin());
  std::copy(first.begin(), first.end(), hi.begin());
  for (std::size_t i = 1; i < n; ++i) {
    const auto img = d.image(i);
    for (std::size_t j = 0; j < per; ++j) {
      lo[j] = std::min(lo[j], img[j]);
      hi[j] = std::max(hi[j], img[j]);
    }
  }
  // Count tables for a block of values at a time: one pass over the samples per block, at most
  // about 4 Mi counters held.
  const std::size_t table = bins * classes;
  const std::size_t block = std::max<std::size_t>(1, (std::size_t{1} << 22) / table);
  std::vector<float> scores(per, 0.0f);
  std::vector<std::uint32_t> joint;
  for (std::size_t j0 = 0; j0 < per; j0 += block) {
    const std::size_t j1 = std::min(per, j0 + block);
    joint.assign((j1 - j0) * table, 0);
    for (std::size_t i = 0; i < n; ++i) {
      const auto img = d.image(i);
      const auto y = static_cast<std::size_t>(d.labels[i]);
      for (std::size_t j = j0; j < j1; ++j) {
        std::size_t b = 0;
        if (hi[j] > lo[j]) {
          const double t = (static_cast<double>(img[j]) - lo[j]) / (static_cast<double>(hi[j]) - lo[j]);
          b = std::min(bins - 1, static_cast<std::size_t>(t * static_cast<double>(bins)));
        }
        ++joint[(j - j0) * table + b * classes + y];
      }
    }
    for (std::size_t j = j0; j < j1; ++j) {
      const std::span<const std::uint32_t> t(joint.data() + (j - j0) * table, table);
      scores[j] =
        static_cast<float>(detail::mutual_information_of_counts(t, bins, classes, static_cast<double>(n)));
    }
  }
  return scores;
}

/// The model-based ranking: one score per value j of a sample (`d.sample.size()` scores), the
/// mean over the data set's samples of the magnitude of the input gradient of the per-sample
/// softmax cross-entropy ℓ_n = −log softmax(f(x_n))[y_n] of the model's logits f(x_n):
///   s_j = (1/N) Σ_n |∂ℓ_n/∂x_{n,j}|.
/// The samples go through the model in order, `batch` at a time (`io::gather_batch`,
/// `B::from_host`); the model's `backward` receives ∂(batch-mean loss)/∂logits =
/// (softmax − onehot)/n_batch (`bk::softmax_cross_entropy`), so its input gradient is scaled back
/// by n_batch and the scores do not depend on `batch` (for a model whose samples do not interact).
/// Pass the trained warm-up network: `top_k_mask` of the scores is the values its loss is most
/// sensitive to. The model's weights are not changed; a trainable model's accumulated parameter
/// gradients are cleared (`zero_grad`) afterwards, since the backward passes here add to them.
/// Throws `value_error` for an empty or unlabelled data set or `batch` = 0, `shape_error` when the
/// model's input gradient does not have the batch's shape, and what `io::dataset::validate` and
/// the loss throw (logits not N×K, a label outside [0, K)).
template <class B, class M>
requires differentiable_model<M, B> std::vector<float> saliency_ranking(M& model, const io::dataset& d,
                                                                        std::size_t batch = 256) {
  constexpr const char* who = "selmask::saliency_ranking: ";
  if (d.empty()) {
    throw value_error(std::string(who) + "empty data set (the ranking needs labelled samples)");
  }
  if (batch == 0) {
    throw value_error(std::string(who) + "batch must be positive, got 0");
  }
  if (d.labels.empty()) {
    throw value_error(std::string(who) + "the data set has no labels (the cross-entropy needs a "
                                         "classification data set)");
  }
  d.validate();
  const std::size_t n = d.size(), per = d.sample.size();
  std::vector<double> acc(per, 0.0);
  std::vector<std::size_t> idx;
  std::vector<float> x;
  std::vector<std::int32_t> y;
  tensor_t<B> grad;
  for (std::size_t first = 0; first < n; first += batch) {
    const std::size_t nb = std::min(batch, n - first);
    idx.resize(nb);
    std::iota(idx.begin(), idx.end(), first);
    const shape s = io::gather_batch(d, idx, x, y);
    const tensor_t<B> xt = B::from_host(s, x);
    const tensor_t<B>& logits = model.forward(xt);
    (void)bk::softmax_cross_entropy<B>(logits, y, grad);
    const tensor_t<B>& dx = model.backward(grad);
    if (B::shape_of(dx) != s) {
      throw shape_error(std::string(who) + "the model's input gradient has shape " + B::shape_of(dx).str() +
                        " for a batch of shape " + s.str() + " (expected the same)");
    }
    // backward saw the batch mean, so the per-sample gradient is nb times the one it returns.
    const std::vector<float> g = B::to_host(dx);
    const auto scale = static_cast<double>(nb);
    for (std::size_t k = 0; k < g.size(); ++k) {
      acc[k % per] += scale * std::abs(static_cast<double>(g[k]));
    }
  }
  if constexpr (requires { model.zero_grad(); }) {
    model.zero_grad();
  }
  std::vector<float> scores(per);
  for (std::size_t j = 0; j < per; ++j) {
    scores[j] = static_cast<float>(acc[j] / static_cast<double>(n));
  }
  return scores;
}

} // namespace selmask
