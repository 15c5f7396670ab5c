#pragma once
/// \file train/budget.hpp
/// Budgets a user states instead of a λ to tune (METHOD.md, "Algorithm 1"; the issue "Beyond the
/// paper", item 3):
///
///  - `budget_controller`, a λ controller (`lambda_schedule`): dual ascent on λ for the constraint
///    Q ≤ Q_target, `λ ← max(0, λ + η·(Q − Q_path))`, so that λ grows while Q is above its target
///    and shrinks while it is below. `Q_path` falls geometrically from 1 to the target over the
///    first `reach_fraction` of the `by_epoch` exploration epochs (a glide path: Q reaches the
///    target by the stated epoch instead of as fast as η allows), or is the target throughout.
///    Once an exploration epoch ends with Q in [target − tolerance, target], or at `by_epoch`,
///    the masks are final: every remaining mask epoch is a final fixation epoch (as
///    `trainer_options::target_q`).
///  - `keep_best_cells`: the projection the trainer applies when the masks become final and
///    `trainer_options::keep_cells` (exactly k cells) or `keep_q` (a cost budget) is set: the k
///    cells with the largest logits, or, for a budget, the cells with the largest σ(w)/cost taken
///    greedily while they fit (σ(w), the keep probability, ranks as the logit does when the costs
///    are equal). Ties go to the lower cell index, so the projection is deterministic.
///
/// Besides the members every λ controller has, `budget_controller` has the two optional ones the
/// trainer calls when a controller has them: `end_batch(q, λ)` after every exploration batch (the
/// per-batch update) and `masks_final(k, q)` after every exploration epoch.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "../error.hpp"
#include "schedule.hpp"

namespace selmask {

struct budget_controller {
  double target_q = 0.05;       ///< the stated Q, in (0, 1]
  std::size_t by_epoch = 10;    ///< exploration epochs (after the warm-up) by which Q is reached
  float eta = 1.0f;             ///< λ step per unit of Q above (below) its target (≥ 0)
  double tolerance = 0.005;     ///< Q in [target − tolerance, target] ends the exploration early
  bool per_batch = false;       ///< update λ after every batch (batch Q) instead of every epoch
  bool glide = true;            ///< follow the geometric path from 1 to the target (else the target)
  double reach_fraction = 0.75; ///< part of `by_epoch` over which the path reaches the target

  void validate() const {
    const std::string who = "selmask::budget_controller: ";
    if (!(target_q > 0.0 && target_q <= 1.0)) {
      throw value_error(who + "target_q must lie in (0, 1], got " + std::to_string(target_q));
    }
    if (by_epoch == 0) {
      throw value_error(who + "by_epoch must be at least 1, got 0");
    }
    if (!(eta >= 0.0f) || !std::isfinite(eta)) {
      throw value_error(who + "eta must be finite and >= 0, got " + std::to_string(eta));
    }
    if (!(tolerance >= 0.0) || !std::isfinite(tolerance)) {
      throw value_error(who + "tolerance must be finite and >= 0, got " + std::to_string(tolerance));
    }
    if (!(reach_fraction > 0.0 && reach_fraction <= 1.0)) {
      throw value_error(who + "reach_fraction must lie in (0, 1], got " + std::to_string(reach_fraction));
    }
  }

  /// The Q aimed at after exploration epoch k: target^(min(1, (k+1)/⌈reach_fraction·by_epoch⌉)).
  [[nodiscard]] double path_q(std::size_t k) const {
    if (!glide) {
      return target_q;
    }
    const double reach = std::max(1.0, std::ceil(reach_fraction * static_cast<double>(by_epoch)));
    const double t = std::min(1.0, static_cast<double>(k + 1) / reach);
    return std::pow(target_q, t);
  }
  /// One dual-ascent step: λ ← max(0, λ + η·(q − aim)).
  void step(double q, double aim, float& lambda) const {
    lambda = std::max(0.0f, lambda + eta * static_cast<float>(q - aim));
  }

  [[nodiscard]] phase phase_of(std::size_t k) const {
    return k < by_epoch ? phase::exploration : phase::fixation;
  }
  /// The per-epoch update on the validation Q; λ never "grows" in the round sense, so τ keeps
  /// annealing (returns false).
  bool end_epoch(std::size_t k, double validation_q, float& lambda) {
    current_epoch = k + 1;
    if (!per_batch) {
      step(validation_q, path_q(k), lambda);
    }
    return false;
  }
  /// The per-batch update on the Q of the batch's masks, aimed at the current epoch's path.
  void end_batch(double batch_q, float& lambda) {
    if (per_batch) {
      step(batch_q, path_q(current_epoch), lambda);
    }
  }
  /// Whether the masks are final after exploration epoch k with validation Q `q`.
  [[nodiscard]] bool masks_final(std::size_t k, double q) const {
    return k + 1 >= by_epoch || (q <= target_q + 1e-12 && q >= target_q - tolerance - 1e-12);
  }

  /// State, not a setting: the exploration epoch the coming batches belong to (kept public so
  /// that the controller stays an aggregate, configured with designated initialisers).
  std::size_t current_epoch = 0;
};

static_assert(lambda_schedule<budget_controller>);

/// Which cells to keep: `keep[i]` for cell i. `logits` and `cell_q` (each cell's share of Q when
/// kept, ≥ 0) have one value per cell. Exactly one of `k` (the k largest logits) and `q_budget`
/// (greedy by σ(w)/cost, a cell taken when it still fits the budget; zero-cost cells first) is set.
inline std::vector<bool> keep_best_cells(std::span<const float> logits, std::span<const float> cell_q,
                                         std::optional<std::size_t> k, std::optional<double> q_budget) {
  const std::string who = "selmask::keep_best_cells: ";
  const std::size_t n = logits.size();
  if (cell_q.size() != n) {
    throw value_error(who + std::to_string(cell_q.size()) + " cell costs for " + std::to_string(n) +
                      " cells");
  }
  if (k.has_value() == q_budget.has_value()) {
    throw value_error(who + "set exactly one of k (cells) and q_budget (a cost budget)");
  }
  if (k && (*k == 0 || *k > n)) {
    throw value_error(who + "k must lie in 1.." + std::to_string(n) + " (the mask's cells), got " +
                      std::to_string(*k));
  }
  if (q_budget && !(*q_budget > 0.0 && *q_budget <= 1.0)) {
    throw value_error(who + "q_budget must lie in (0, 1], got " + std::to_string(*q_budget));
  }
  std::vector<double> score(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(logits[i]) || !(cell_q[i] >= 0.0f) || !std::isfinite(cell_q[i])) {
      throw value_error(who + "cell " + std::to_string(i) + " has logit " + std::to_string(logits[i]) +
                        " and cost " + std::to_string(cell_q[i]) + " (finite, cost >= 0 expected)");
    }
    const double keep_p = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[i])));
    score[i] = k ? static_cast<double>(logits[i])
                 : (cell_q[i] > 0.0f ? keep_p / cell_q[i] : std::numeric_limits<double>::infinity());
  }
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return score[a] > score[b]; });
  std::vector<bool> keep(n, false);
  if (k) {
    for (std::size_t j = 0; j < *k; ++j) {
      keep[order[j]] = true;
    }
    return keep;
  }
  double spent = 0.0;
  for (const std::size_t i : order) {
    if (spent + cell_q[i] <= *q_budget + 1e-6) { // costs are floats: 1e-6 is far below a cell
      keep[i] = true;
      spent += cell_q[i];
    }
  }
  return keep;
}

/// Logits whose hard mask is `keep`: a kept cell's logit is at least +margin, a dropped one's at
/// most −margin; a logit already on the right side stays as it is.
inline std::vector<float> logits_keeping(std::span<const float> logits, const std::vector<bool>& keep,
                                         float margin = 0.5f) {
  std::vector<float> w(logits.begin(), logits.end());
  for (std::size_t i = 0; i < w.size(); ++i) {
    w[i] = keep[i] ? std::max(w[i], margin) : std::min(w[i], -margin);
  }
  return w;
}

} // namespace selmask
