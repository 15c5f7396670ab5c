#pragma once
/// \file train/loss.hpp
/// Task losses for the trainer: what `L_task` in `L_task + λ·Q` is, and how a point of the front
/// is scored. A loss is a policy (`task_loss` below); two ship:
///  - `softmax_cross_entropy_loss` (the default): model outputs N×K logits, the batch's labels are
///    class indices; the score of a sample is 1 when its largest logit is its label (accuracy);
///  - `mean_squared_error_loss`: model outputs N×K values, the batch's targets are N×K reals
///    (`io::dataset::targets`); per sample the loss is the mean over K of the squared error and the
///    score its negative (so that, as for accuracy, larger is better).
///
/// A user's loss is any type with these members (`B` the backend, `out` the model's output,
/// `b` the batch, `grad` the tensor the trainer passes to the model's `backward`):
///
/// | member | meaning |
/// |---|---|
/// | `name` | a short name for messages and logs |
/// | `check(out_shape, b)` | throws `shape_error` when the output does not fit the batch |
/// | `evaluate<B>(out, b, grad)` → `loss_sums` | the batch's summed per-sample loss and score; `grad` =
/// ∂(mean loss)/∂out |
///
/// The front keeps, per Q bucket, the point with the best validation score; the trainer reports
/// the score averaged over samples as "accuracy".

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../backend/nn_backend.hpp"
#include "../backend/nn_ops.hpp"
#include "../error.hpp"
#include "../shape.hpp"

namespace selmask {

/// A batch as the trainer reads it from a batch source, on the host.
struct host_batch {
  shape x_shape;                    ///< N × sample shape
  std::vector<float> x;             ///< N · sample values
  std::vector<std::int32_t> labels; ///< N class indices (classification), or empty
  std::vector<float> targets;       ///< N · target_size reals (regression), or empty
  std::size_t target_size = 0;
  std::size_t classes = 0; ///< number of classes of the source (0: regression, or unknown)

  [[nodiscard]] std::size_t size() const { return x_shape.rank() == 0 ? 0 : x_shape[0]; }
};

/// What a loss reports for one batch: sums over its samples (the trainer divides by their count).
struct loss_sums {
  double loss = 0.0;  ///< Σ_n loss_n
  double score = 0.0; ///< Σ_n score_n (correct predictions, or −squared error)
};

template <class L, class B>
concept task_loss = requires(const L& l, const tensor_t<B>& out, const host_batch& b, tensor_t<B>& grad,
                             const shape& s) {
  { L::name } -> std::convertible_to<std::string>;
  l.check(s, b);
  { l.template evaluate<B>(out, b, grad) } -> std::same_as<loss_sums>;
};

/// Softmax cross-entropy over N×K logits with class labels; score: accuracy.
struct softmax_cross_entropy_loss {
  static constexpr const char* name = "softmax_cross_entropy";

  void check(const shape& out, const host_batch& b) const {
    if (b.labels.size() != b.size()) {
      throw shape_error(std::string("selmask::softmax_cross_entropy_loss: the batch has ") +
                        std::to_string(b.labels.size()) + " labels for " + std::to_string(b.size()) +
                        " samples (a classification loss needs a label per sample)");
    }
    if (out.rank() != 2 || out[0] != b.size() || (b.classes != 0 && out[1] != b.classes)) {
      throw shape_error(
        "selmask::softmax_cross_entropy_loss: the model returns logits of shape " + out.str() +
        " for a batch of " + std::to_string(b.size()) + "; expected [" + std::to_string(b.size()) + "," +
        (b.classes != 0 ? std::to_string(b.classes) + "] (" + std::to_string(b.classes) + " classes)"
                        : std::string("classes]")));
    }
  }
  template <class B>
  loss_sums evaluate(const tensor_t<B>& logits, const host_batch& b, tensor_t<B>& grad) const {
    const cross_entropy_result r = bk::softmax_cross_entropy<B>(logits, b.labels, grad);
    return {r.loss_sum, static_cast<double>(r.correct)};
  }
};

namespace detail {
struct squared_difference {
  SELMASK_HOST_DEVICE float operator()(float a, float b) const { return (a - b) * (a - b); }
};
struct scaled_difference {
  float scale;
  SELMASK_HOST_DEVICE float operator()(float a, float b) const { return scale * (a - b); }
};
} // namespace detail

/// Mean squared error over N×K outputs and N×K targets: loss_n = (1/K) Σ_k (out − t)², score_n =
/// −loss_n; the gradient is that of the batch mean, 2 (out − t) / (N·K).
struct mean_squared_error_loss {
  static constexpr const char* name = "mean_squared_error";

  void check(const shape& out, const host_batch& b) const {
    if (b.target_size == 0 || b.targets.size() != b.size() * b.target_size) {
      throw shape_error("selmask::mean_squared_error_loss: the batch has " +
                        std::to_string(b.targets.size()) + " target values for " + std::to_string(b.size()) +
                        " samples (a regression loss needs io::dataset::targets)");
    }
    if (out.rank() < 1 || out[0] != b.size() || out.size() != b.targets.size()) {
      throw shape_error("selmask::mean_squared_error_loss: the model returns an output of shape " +
                        out.str() + " for a batch of " + std::to_string(b.size()) + " with " +
                        std::to_string(b.target_size) + " targets each; expected [" +
                        std::to_string(b.size()) + "," + std::to_string(b.target_size) + "]");
    }
  }
  template <class B>
  loss_sums evaluate(const tensor_t<B>& out, const host_batch& b, tensor_t<B>& grad) const {
    const shape s = B::shape_of(out);
    const tensor_t<B> t = B::from_host(s, b.targets);
    B::map2(out, t, grad, detail::squared_difference{});
    const double sq = B::sum(grad);
    const double k = static_cast<double>(b.target_size);
    const auto scale = static_cast<float>(2.0 / (static_cast<double>(b.size()) * k));
    B::map2(out, t, grad, detail::scaled_difference{scale});
    return {sq / k, -sq / k};
  }
};

} // namespace selmask
