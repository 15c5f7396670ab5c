#pragma once
/// \file train/schedule.hpp
/// λ and τ schedules of Algorithm 1 (METHOD.md, "Algorithm 1"): policies the trainer asks, after each epoch,
/// which phase comes next and whether λ grows.
///
/// A λ schedule models `lambda_schedule`: `phase_of(k)` gives the phase of the k-th epoch after
/// warm-up (exploration: masks and network train on L + λ·Q; fixation: masks frozen at their
/// hard values, network only), and `end_epoch(k, validation_q, lambda)` may multiply `lambda`
/// and returns true when it did (the trainer then resets τ to its initial value).

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

#include "../error.hpp"

namespace selmask {

enum class phase { warmup, exploration, fixation };

inline const char* phase_name(phase p) {
  switch (p) {
    case phase::warmup:
      return "warmup";
    case phase::exploration:
      return "explore";
    case phase::fixation:
      return "fixate";
  }
  return "?";
}

/// The paper's rounds: `exploration_epochs` of joint training, then `fixation_epochs` with frozen
/// masks, then λ ← λ·factor. A large factor removes many cells at once (the paper saw this).
struct round_schedule {
  std::size_t exploration_epochs = 2;
  std::size_t fixation_epochs = 1;
  float factor = 1.5f;

  void validate() const {
    if (exploration_epochs == 0) {
      throw value_error("selmask::round_schedule: exploration_epochs must be at least 1");
    }
    if (!(factor >= 1.0f) || !std::isfinite(factor)) {
      throw value_error("selmask::round_schedule: factor must be finite and >= 1, got " +
                        std::to_string(factor));
    }
  }
  [[nodiscard]] phase phase_of(std::size_t k) const {
    return k % (exploration_epochs + fixation_epochs) < exploration_epochs ? phase::exploration
                                                                           : phase::fixation;
  }
  bool end_epoch(std::size_t k, double /*validation_q*/, float& lambda) {
    if ((k + 1) % (exploration_epochs + fixation_epochs) == 0) {
      lambda *= factor;
      return factor != 1.0f;
    }
    return false;
  }
};

/// The later code's plateau rule: always explore; when the validation Q has not improved by more
/// than `threshold` for `patience` epochs, λ ← λ·factor, then wait `cooldown` epochs.
struct plateau_schedule {
  double threshold = 0.01;
  std::size_t patience = 2;
  std::size_t cooldown = 1;
  float factor = 1.5f;

  void validate() const {
    if (!(factor >= 1.0f) || !std::isfinite(factor)) {
      throw value_error("selmask::plateau_schedule: factor must be finite and >= 1, got " +
                        std::to_string(factor));
    }
    if (!(threshold >= 0.0)) {
      throw value_error("selmask::plateau_schedule: threshold must be >= 0");
    }
  }
  [[nodiscard]] phase phase_of(std::size_t /*k*/) const { return phase::exploration; }
  bool end_epoch(std::size_t /*k*/, double validation_q, float& lambda) {
    if (validation_q < best_ - threshold) {
      best_ = validation_q;
      waited_ = 0;
    } else {
      ++waited_;
    }
    if (cooling_ > 0) {
      --cooling_;
      return false;
    }
    if (waited_ >= patience) {
      lambda *= factor;
      waited_ = 0;
      cooling_ = cooldown;
      best_ = validation_q;
      return factor != 1.0f;
    }
    return false;
  }

  /// State, not settings (public so that the schedule stays an aggregate and takes designated
  /// initialisers such as `plateau_schedule{.patience = 3}`).
  double best_ = std::numeric_limits<double>::infinity();
  std::size_t waited_ = 0;
  std::size_t cooling_ = 0;
};

template <class S>
concept lambda_schedule = requires(S& s, const S& cs, std::size_t k, double q, float& lambda) {
  cs.validate();
  { cs.phase_of(k) } -> std::same_as<phase>;
  { s.end_epoch(k, q, lambda) } -> std::same_as<bool>;
};

/// τ ← max(τ·factor, min) after every epoch; back to `init` when λ grows.
struct tau_schedule {
  float init = 1.0f;
  float factor = 1.0f;
  float min = 0.1f;

  void validate() const {
    if (!(init > 0.0f) || !(min > 0.0f) || !(factor > 0.0f) || !std::isfinite(init)) {
      throw value_error("selmask::tau_schedule: init, factor and min must be positive (init " +
                        std::to_string(init) + ", factor " + std::to_string(factor) + ", min " +
                        std::to_string(min) + ")");
    }
  }
  [[nodiscard]] float next(float tau) const { return tau * factor > min ? tau * factor : min; }
};

} // namespace selmask
