#pragma once
/// \file train/lr_schedule.hpp
/// Learning-rate schedules for the network: a policy the trainer asks, before every epoch, for a
/// factor of the model's base rate (the rate it had when training began). A schedule models
/// `lr_schedule`: `validate()` throws on bad settings, `factor(c)` returns the factor (≥ 0) for the
/// epoch described by `c`, and `constant()` says whether every factor is 1 — then the model needs
/// no `learning_rate()` / `set_learning_rate(lr)` (a frozen model, or a user's model without them).
///
/// Two ship: `constant_lr` (the default) and `phase_lr`, factors per phase of Algorithm 1 with an
/// optional half-cosine decay over the final fixation epochs. Fixation fine-tunes the network to
/// frozen masks, where smaller steps help; while masks change from batch to batch (exploration)
/// the network learns a moving target, and a smaller rate keeps it from chasing every change.

#include <cmath>
#include <concepts>
#include <cstddef>
#include <numbers>
#include <string>

#include "../error.hpp"
#include "schedule.hpp"

namespace selmask {

/// What a learning-rate schedule knows of the epoch it sets the rate for.
struct lr_context {
  phase current = phase::warmup;
  bool final_fixation = false; ///< one of the final fixation epochs (after the budget, or the last ones)
  std::size_t epoch = 0;       ///< 0-based, counting warm-up epochs
  std::size_t epochs = 0;      ///< planned in all
  std::size_t final_index = 0; ///< k of the final fixation epochs (0-based) when `final_fixation`
  std::size_t final_count = 0; ///< how many final fixation epochs there are when `final_fixation`
};

template <class S>
concept lr_schedule = requires(const S& s, const lr_context& c) {
  s.validate();
  { s.factor(c) } -> std::convertible_to<float>;
  { s.constant() } -> std::convertible_to<bool>;
};

/// The base rate throughout.
struct constant_lr {
  void validate() const {}
  [[nodiscard]] float factor(const lr_context&) const { return 1.0f; }
  [[nodiscard]] bool constant() const { return true; }
};

/// A factor per phase: `exploration` (≥ 0; 0 holds the network still while the masks move),
/// `fixation` (> 0) for the rounds' fixation epochs, `final_fixation` (> 0) for the final ones;
/// with `final_cosine` the final factor falls along a half cosine, epoch k of K getting
/// `final_fixation · (1 + cos(πk/K)) / 2`. Warm-up epochs run at the base rate.
struct phase_lr {
  float exploration = 1.0f;
  float fixation = 1.0f;
  float final_fixation = 1.0f;
  bool final_cosine = false;

  void validate() const {
    const auto check = [](const char* name, float v, bool zero_allowed) {
      if (!(zero_allowed ? v >= 0.0f : v > 0.0f) || !std::isfinite(v)) {
        throw value_error(std::string("selmask::phase_lr: ") + name + " must be finite and " +
                          (zero_allowed ? ">= 0" : "> 0") + ", got " + std::to_string(v));
      }
    };
    check("exploration", exploration, true);
    check("fixation", fixation, false);
    check("final_fixation", final_fixation, false);
  }
  [[nodiscard]] float factor(const lr_context& c) const {
    if (c.final_fixation) {
      if (!final_cosine || c.final_count == 0) {
        return final_fixation;
      }
      const double k = static_cast<double>(c.final_index);
      const double n = static_cast<double>(c.final_count);
      return final_fixation * static_cast<float>(0.5 * (1.0 + std::cos(std::numbers::pi * k / n)));
    }
    switch (c.current) {
      case phase::exploration:
        return exploration;
      case phase::fixation:
        return fixation;
      case phase::warmup:
        break;
    }
    return 1.0f;
  }
  [[nodiscard]] bool constant() const {
    return exploration == 1.0f && fixation == 1.0f && final_fixation == 1.0f && !final_cosine;
  }
};

} // namespace selmask
