#pragma once
/// \file train/mask_reach.hpp
/// Whether the planned mask steps can change any mask at all (the issue "Beyond the paper", item
/// 6: no silent no-ops). A hard mask changes only when a logit crosses 0 (an any-mask cell) or
/// two logits of a cell swap order (an xOr-mask); any-masks start at logit 3 (METHOD.md, "Mask
/// kinds"). AdamW moves a logit by about one learning rate per step whatever the gradient's size,
/// so `steps × lr` is about the farthest a logit can travel in the exploration epochs. When that
/// is shorter than the nearest logit's distance to a change, training would end with the masks it
/// started with and say nothing; the trainer checks this before the first epoch and, as
/// `trainer_options::mask_reach` says, raises the mask learning rate (the default), throws, warns,
/// or does nothing.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "../error.hpp"
#include "schedule.hpp"

namespace selmask {

/// What the trainer does when the planned mask steps cannot change any mask.
enum class mask_reach_policy {
  scale, ///< raise the mask learning rate to `2 × mean distance / steps` and say so (default)
  warn,  ///< say what to change on stderr (and in `training_result::notes`), train as asked
  error, ///< throw a `value_error` saying what to change
  off,   ///< no check
};

/// The check's numbers: `distance` is the smallest distance of any cell's logits to a change of
/// its hard mask, `mean_distance` the mean over cells, `steps` the exploration steps planned.
struct mask_reach {
  double distance = 0.0;
  double mean_distance = 0.0;
  double lr = 0.0;
  std::size_t steps = 0;
  std::size_t epochs = 0;  ///< exploration epochs planned
  std::size_t batches = 0; ///< per epoch

  /// Whether `steps × lr` reaches the nearest change.
  [[nodiscard]] bool reachable() const { return static_cast<double>(steps) * lr >= distance; }
  /// The rate `scale` sets: what carries a logit of mean distance to its mirror image.
  [[nodiscard]] double scaled_lr() const {
    return steps == 0 ? lr : 2.0 * mean_distance / static_cast<double>(steps);
  }
  /// The plain statement of the problem and of what to change.
  [[nodiscard]] std::string message() const {
    char buf[768];
    const double travel = static_cast<double>(steps) * lr;
    const double min_lr = steps == 0 ? 0.0 : distance / static_cast<double>(steps);
    const double min_steps = lr > 0.0 ? distance / lr : 0.0;
    std::snprintf(buf, sizeof buf,
                  "the mask logits start %.3g on average from a change of the hard mask (the nearest "
                  "%.3g; an any-mask cell changes when its logit crosses 0) and AdamW moves a logit at "
                  "most ~lr per step: %zu exploration steps (%zu epochs x %zu batches) x "
                  "lr %.3g = %.3g cannot cross 0, so no mask would change; raise mask_optimizer.lr to "
                  ">= %.3g (%.3g moves a mean logit to its mirror image) or train >= %.0f exploration "
                  "steps (more epochs or smaller batches)",
                  mean_distance, distance, steps, epochs, batches, lr, travel, min_lr, scaled_lr(),
                  min_steps);
    return buf;
  }
};

/// Sets `r.distance` and `r.mean_distance` from the logits of every mask of `pipe`: an any-mask
/// cell is |w| from a change (its logit crossing 0), an xOr-mask cell half the gap between its two
/// largest logits.
template <class Pipeline>
void add_logit_distances(Pipeline& pipe, mask_reach& r) {
  using B = typename Pipeline::backend;
  double nearest = std::numeric_limits<double>::infinity();
  double total = 0.0;
  std::size_t cells = 0;
  pipe.for_each_mask([&](auto& m) {
    const std::vector<float> w = B::to_host(m.logits_for_update());
    std::size_t v = 1;
    if constexpr (requires { m.choices(); }) {
      v = m.choices();
    }
    const std::size_t k = w.size() / v;
    for (std::size_t i = 0; i < k; ++i) {
      double d = std::abs(static_cast<double>(w[i]));
      if (v > 1) {
        double top = -std::numeric_limits<double>::infinity(), second = top;
        for (std::size_t c = 0; c < v; ++c) {
          const double x = w[c * k + i];
          second = x > top ? top : std::max(second, x);
          top = std::max(top, x);
        }
        d = (top - second) / 2.0;
      }
      nearest = std::min(nearest, d);
      total += d;
      ++cells;
    }
  });
  r.distance = nearest;
  r.mean_distance = cells == 0 ? 0.0 : total / static_cast<double>(cells);
}

namespace detail {

/// The trainer's reach check: the exploration steps of the first `planned_epochs` mask epochs
/// (the phases `lambda` gives them) against the logits' distances; with `mask_reach_policy::scale`
/// the mask optimiser's rate is raised to what the steps need. Returns the note to give (none
/// when the steps reach, the policy is `off`, or the optimiser has no learning rate to ask).
template <class Pipeline, class Lambda, class MaskOpt>
std::optional<std::string> apply_mask_reach(mask_reach_policy policy, Pipeline& pipe, const Lambda& lambda,
                                            std::size_t planned_epochs, std::size_t batches, MaskOpt& opt,
                                            const char* who) {
  if constexpr (requires(MaskOpt & o, float lr) {
                  { o.learning_rate() } -> std::convertible_to<float>;
                  o.set_learning_rate(lr);
                }) {
    if (policy == mask_reach_policy::off || Pipeline::pipeline_type::mask_count == 0) {
      return std::nullopt;
    }
    mask_reach r;
    for (std::size_t k = 0; k < planned_epochs; ++k) {
      r.epochs += lambda.phase_of(k) == phase::exploration ? 1 : 0;
    }
    r.batches = batches;
    r.steps = r.epochs * r.batches;
    add_logit_distances(pipe, r);
    r.lr = opt.learning_rate();
    if (r.steps == 0 || r.reachable()) {
      return std::nullopt;
    }
    const std::string msg = std::string(who) + r.message();
    if (policy == mask_reach_policy::error) {
      throw value_error(msg);
    }
    if (policy == mask_reach_policy::scale) {
      opt.set_learning_rate(static_cast<float>(r.scaled_lr()));
      return msg + "; raised mask_optimizer.lr to " + std::to_string(r.scaled_lr()) +
             " for this run (trainer_options::mask_reach = scale; warn, error or off keep the rate)";
    }
    return msg;
  }
  return std::nullopt;
}

} // namespace detail

} // namespace selmask
