#pragma once
/// \file train/trainer.hpp
/// `learn_selection_masks`: Algorithm 1 of the paper (DESIGN.md) — a warm-up of the network on full
/// data, then epochs of exploration (masks and network on `L_task + λ·Q`) and fixation (masks
/// frozen at their hard values, network only) as a λ schedule decides, τ annealed per epoch.
/// After every epoch the hard masks are evaluated on a validation split (accuracy and Q) and the
/// test set (reported only), and the accuracy-versus-transferred-data front keeps, per Q bucket,
/// the best validation point with its masks and checkpoint.
///
/// ```cpp
/// auto result = selmask::learn_selection_masks(pipe, net, train, validation, &test,
///                                              {.lambda = 0.05f, .mask_epochs = 30},
///                                              selmask::round_schedule{},
///                                              selmask::progress_display{});
/// ```
///
/// The model is a user's functor (model/model.hpp): `forward`, `backward` returning ∂L/∂x, and
/// optionally `step`/`zero_grad` (a model without them is frozen) and `save`/`load`. The loss is
/// softmax cross-entropy over the model's logits (N×classes). Deterministic for a fixed seed on
/// the CPU backend.

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../backend/nn_backend.hpp"
#include "../error.hpp"
#include "../io/dataset.hpp"
#include "../model/model.hpp"
#include "../nn/adamw.hpp"
#include "../nn/weights_file.hpp"
#include "callbacks.hpp"
#include "front.hpp"
#include "schedule.hpp"

namespace selmask {

/// Training diverged (a NaN or infinite loss): the message names the epoch and batch, and where
/// the last good checkpoint is.
class training_diverged : public value_error {
public:
  using value_error::value_error;
};

struct trainer_options {
  float lambda = 0.05f;          ///< λ of the first exploration epoch (≥ 0)
  std::size_t warmup_epochs = 2; ///< network on full data first (0: e.g. weights were loaded)
  std::size_t mask_epochs = 20;  ///< epochs after the warm-up
  std::size_t batch_size = 128;
  std::size_t eval_batch_size = 500;
  /// AdamW for the mask logits: the reference's betas (0.5, 0.999), weight decay 1e-7.
  adamw_hyper mask_optimizer{5e-3f, 0.5f, 0.999f, 1e-8f, 1e-7f, true};
  tau_schedule tau{};
  /// The model's learning rate during fixation epochs, as a factor of its rate in the other
  /// epochs (> 0; 1 leaves it alone). Fixation fine-tunes the network to a frozen mask, where a
  /// smaller step helps. Needs a model with `learning_rate()` and `set_learning_rate(lr)` (the
  /// network kit's `sequential`); other models must leave it at 1.
  float fixation_lr_scale = 1.0f;
  /// The same for exploration epochs (>= 0; 0 holds the network still while the masks move).
  /// While the masks change from batch to batch the network learns a moving target, and at large
  /// λ one exploration epoch can cost it several points that fixation must win back.
  float exploration_lr_scale = 1.0f;
  /// The last `final_fixation_epochs` of the `mask_epochs` are fixation epochs whatever the
  /// schedule says: the network settles on the last (smallest) mask before training ends, the
  /// point of the front the rounds alone leave least trained. λ no longer grows in them.
  std::size_t final_fixation_epochs = 0;
  /// A budget: once an exploration epoch ends with a validation Q at most `target_q`, the masks
  /// stay as they are and every remaining mask epoch is a final fixation epoch (0: no budget,
  /// train through the whole schedule). The front then reaches down to the budget and its last
  /// point has the network fine-tuned longest.
  double target_q = 0.0;
  /// The model's learning rate in the final fixation epochs, as a factor of its base rate (> 0).
  /// Same requirement on the model as `fixation_lr_scale` when it is not 1.
  float final_fixation_lr_scale = 1.0f;
  /// When true the final fixation's rate falls from `final_fixation_lr_scale` along a half
  /// cosine over those epochs (epoch k of K: scale·(1 + cos(πk/K))/2), so that the last epochs
  /// settle the network with small steps.
  bool final_fixation_cosine = false;
  double bucket_width = 0.05;
  std::uint64_t seed = 0;
  /// Where front checkpoints (`front_NN.weights`, `front_NN.masks`) and `last_good.weights` go;
  /// empty: nothing is saved.
  std::filesystem::path checkpoint_dir{};
};

struct training_result {
  accuracy_front front;
  double full_val_accuracy = NAN; ///< after the warm-up, all data kept
  double full_test_accuracy = NAN;
  std::size_t epochs_run = 0;
};

namespace detail {

template <class C, class Info>
bool call_epoch_end(C& c, const Info& info) {
  if constexpr (requires {
                  { c.on_epoch_end(info) } -> std::convertible_to<bool>;
                }) {
    return static_cast<bool>(c.on_epoch_end(info));
  } else if constexpr (requires { c.on_epoch_end(info); }) {
    c.on_epoch_end(info);
  }
  return false;
}

template <class Pipeline>
void collect_masks(Pipeline& pipe, front_point& p) {
  using B = typename Pipeline::backend;
  p.masks.clear();
  p.mask_shapes.clear();
  pipe.for_each_mask([&](auto& m) {
    const auto h = m.hard();
    p.masks.push_back(B::to_host(h));
    p.mask_shapes.push_back(B::shape_of(h));
  });
}

} // namespace detail

/// Accuracy of `model` on `data` seen through the hard masks of `pipe`, and the Q of those masks.
template <class Pipeline, class Model>
std::pair<double, double> evaluate(Pipeline& pipe, Model& model, const io::dataset& data,
                                   std::size_t batch_size = 500) {
  using B = typename Pipeline::backend;
  std::vector<float> xh;
  std::vector<std::int32_t> yh;
  std::vector<std::size_t> idx;
  tensor_t<B> scratch;
  std::size_t correct = 0;
  double q = 1.0;
  for (std::size_t first = 0; first < data.size(); first += batch_size) {
    const std::size_t n = std::min(batch_size, data.size() - first);
    idx.resize(n);
    for (std::size_t j = 0; j < n; ++j) {
      idx[j] = first + j;
    }
    const shape s = io::gather_batch(data, idx, xh, yh);
    const auto x = B::from_host(s, xh);
    const auto fr = pipe.forward(x);
    q = fr.q;
    const auto& logits = model.forward(fr.output);
    correct += B::softmax_cross_entropy(logits, yh, scratch).correct;
  }
  return {data.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(data.size()), q};
}

template <class Pipeline, class Model, lambda_schedule Schedule = round_schedule, class... Callbacks>
training_result learn_selection_masks(Pipeline& pipe, Model& model, const io::dataset& train,
                                      const io::dataset& validation, const io::dataset* test,
                                      const trainer_options& opt = {}, Schedule schedule = {},
                                      Callbacks&&... callbacks) {
  using B = typename Pipeline::backend;
  static_assert(nn_backend<B>, "selmask::learn_selection_masks: the pipeline's backend must model "
                               "selmask::nn_backend (softmax cross-entropy, AdamW)");
  static_assert(differentiable_model<Model, B>,
                "selmask::learn_selection_masks: the model must have forward(x) -> logits and "
                "backward(dL/dlogits) -> dL/dx on the pipeline's backend (see model/model.hpp)");
  constexpr bool trainable = trainable_model<Model, B>;

  // ---- checks of the arguments ------------------------------------------------------------------
  const std::string who = "selmask::learn_selection_masks: ";
  if (!(opt.lambda >= 0.0f) || !std::isfinite(opt.lambda)) {
    throw value_error(who + "lambda must be finite and >= 0, got " + std::to_string(opt.lambda));
  }
  if (opt.batch_size == 0 || opt.eval_batch_size == 0) {
    throw value_error(who + "batch sizes must be positive");
  }
  constexpr bool has_lr = requires(Model & m, float lr) {
    { m.learning_rate() } -> std::convertible_to<float>;
    m.set_learning_rate(lr);
  };
  // the learning-rate factors: finite, positive (exploration may be 0), and only for a model whose
  // rate can be set when any of them changes it
  const auto check_scale = [&](const char* name, float scale, bool zero_allowed) {
    if (!(zero_allowed ? scale >= 0.0f : scale > 0.0f) || !std::isfinite(scale)) {
      throw value_error(who + name + " must be finite and " + (zero_allowed ? ">= 0" : "> 0") + ", got " +
                        std::to_string(scale));
    }
  };
  check_scale("fixation_lr_scale", opt.fixation_lr_scale, false);
  check_scale("exploration_lr_scale", opt.exploration_lr_scale, true);
  check_scale("final_fixation_lr_scale", opt.final_fixation_lr_scale, false);
  const bool rates_vary = opt.fixation_lr_scale != 1.0f || opt.exploration_lr_scale != 1.0f ||
                          opt.final_fixation_lr_scale != 1.0f || opt.final_fixation_cosine;
  if (rates_vary && !has_lr) {
    throw value_error(who +
                      "fixation_lr_scale, exploration_lr_scale, final_fixation_lr_scale and "
                      "final_fixation_cosine need a model with learning_rate() and set_learning_rate(lr)");
  }
  if (!(opt.target_q >= 0.0 && opt.target_q <= 1.0)) {
    throw value_error(who + "target_q must lie in [0, 1] (0: none), got " + std::to_string(opt.target_q));
  }
  if (opt.final_fixation_epochs > opt.mask_epochs) {
    throw value_error(who + "final_fixation_epochs (" + std::to_string(opt.final_fixation_epochs) +
                      ") cannot exceed mask_epochs (" + std::to_string(opt.mask_epochs) + ")");
  }
  opt.tau.validate();
  schedule.validate();
  train.validate();
  validation.validate();
  if (test) {
    test->validate();
  }
  for (const io::dataset* d : {&train, &validation, test}) {
    if (d && !(d->sample == pipe.sample_shape())) {
      throw shape_error(who + "data samples of shape " + d->sample.str() +
                        " do not match the pipeline's sample shape " + pipe.sample_shape().str());
    }
    if (d && d->classes != train.classes) {
      throw shape_error(who + "the data sets disagree on the number of classes (" +
                        std::to_string(d->classes) + " vs " + std::to_string(train.classes) + ")");
    }
  }
  if (!opt.checkpoint_dir.empty()) {
    std::filesystem::create_directories(opt.checkpoint_dir);
  }

  // ---- state ----------------------------------------------------------------------------------------
  training_result result{accuracy_front(opt.bucket_width)};
  const float base_lr = [&] {
    if constexpr (has_lr) {
      return static_cast<float>(model.learning_rate());
    } else {
      return 0.0f;
    }
  }();
  nn::adamw<B> mask_opt(opt.mask_optimizer);
  pipe.for_each_mask([&](auto& m) { mask_opt.add(m.logits_for_update(), m.grad_for_update()); });
  float lambda = opt.lambda;
  float tau = opt.tau.init;
  pipe.set_tau(tau);
  const std::size_t epochs = opt.warmup_epochs + opt.mask_epochs;
  io::batch_sampler sampler(train.size(), opt.batch_size, true, opt.seed);
  const std::size_t batches = sampler.batches();
  std::vector<float> xh;
  std::vector<std::int32_t> yh;
  tensor_t<B> dlogits;
  bool logits_checked = false;
  std::filesystem::path last_good;
  const auto t_start = std::chrono::steady_clock::now();
  std::size_t images_done = 0;
  const std::size_t images_total = epochs * train.size();

  const train_begin_info begin{epochs, batches, train.size(), validation.size()};
  (
    [&] {
      if constexpr (requires { callbacks.on_train_begin(begin); }) {
        callbacks.on_train_begin(begin);
      }
    }(),
    ...);

  bool budget_reached = false;      // target_q met: the masks stay fixed from here on
  std::size_t final_start = epochs; // the first final fixation epoch, once there is one
  for (std::size_t e = 0; e < epochs; ++e) {
    const auto t_epoch = std::chrono::steady_clock::now();
    const bool warm = e < opt.warmup_epochs;
    const bool final_fixation = !warm && (budget_reached || e >= epochs - opt.final_fixation_epochs);
    if (final_fixation && final_start == epochs) {
      final_start = e;
    }
    const phase ph = warm             ? phase::warmup
                     : final_fixation ? phase::fixation
                                      : schedule.phase_of(e - opt.warmup_epochs);
    const bool explore = ph == phase::exploration;
    pipe.freeze_masks(!explore);
    if constexpr (has_lr) {
      if (rates_vary) {
        float final_scale = opt.final_fixation_lr_scale;
        if (final_fixation && opt.final_fixation_cosine) {
          const double k = static_cast<double>(e - final_start);
          const double n = static_cast<double>(epochs - final_start);
          final_scale *= static_cast<float>(0.5 * (1.0 + std::cos(std::numbers::pi * k / n)));
        }
        model.set_learning_rate(final_fixation             ? base_lr * final_scale
                                : ph == phase::fixation    ? base_lr * opt.fixation_lr_scale
                                : ph == phase::exploration ? base_lr * opt.exploration_lr_scale
                                                           : base_lr);
      }
    }
    sampler.set_epoch(e);
    double loss_sum = 0.0;
    std::size_t correct = 0;
    std::size_t seen = 0;
    double q_batch = 1.0;

    for (std::size_t b = 0; b < batches; ++b) {
      const auto idx = sampler.batch(b);
      const shape s = io::gather_batch(train, idx, xh, yh);
      const auto x = B::from_host(s, xh);
      if (explore) {
        mask_opt.zero_grad();
      }
      if constexpr (trainable) {
        model.zero_grad();
      }
      const auto fr = pipe.forward(x);
      q_batch = fr.q;
      const auto& logits = model.forward(fr.output);
      if (!logits_checked) {
        const shape ls = B::shape_of(logits);
        if (ls.rank() != 2 || ls[0] != idx.size() || ls[1] != train.classes) {
          throw shape_error(who + "the model returns logits of shape " + ls.str() + " for a batch of " +
                            std::to_string(idx.size()) + "; expected [" + std::to_string(idx.size()) + "," +
                            std::to_string(train.classes) + "] (" + std::to_string(train.classes) +
                            " classes)");
        }
        logits_checked = true;
      }
      const cross_entropy_result ce = B::softmax_cross_entropy(logits, yh, dlogits);
      if (!std::isfinite(ce.loss_sum)) {
        throw training_diverged(who + "the loss is not finite at epoch " + std::to_string(e + 1) +
                                ", batch " + std::to_string(b + 1) + "; " +
                                (last_good.empty() ? std::string("no checkpoint was written yet")
                                                   : "the last good checkpoint is " + last_good.string()));
      }
      const auto& gx = model.backward(dlogits);
      if (explore) {
        pipe.backward(gx, lambda);
        mask_opt.step();
      }
      if constexpr (trainable) {
        model.step();
      }
      loss_sum += ce.loss_sum;
      correct += ce.correct;
      seen += idx.size();
      images_done += idx.size();

      if constexpr (sizeof...(Callbacks) > 0) {
        const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
        const double ips = elapsed > 0 ? static_cast<double>(images_done) / elapsed : 0.0;
        const batch_info bi{e,
                            epochs,
                            b,
                            batches,
                            ph,
                            loss_sum / static_cast<double>(seen),
                            static_cast<double>(correct) / static_cast<double>(seen),
                            q_batch,
                            explore ? lambda : 0.0f,
                            tau,
                            ips,
                            ips > 0 ? static_cast<double>(images_total - images_done) / ips : NAN};
        (
          [&] {
            if constexpr (requires { callbacks.on_batch_end(bi); }) {
              callbacks.on_batch_end(bi);
            }
          }(),
          ...);
      }
    }

    // ---- evaluation of the hard masks ----------------------------------------------------------
    const auto [val_acc, val_q] = evaluate(pipe, model, validation, opt.eval_batch_size);
    const double test_acc = test ? evaluate(pipe, model, *test, opt.eval_batch_size).first : NAN;
    if (warm || (e == 0 && opt.warmup_epochs == 0)) {
      result.full_val_accuracy = val_acc;
      result.full_test_accuracy = test_acc;
    }

    front_point p;
    p.q = val_q;
    p.val_accuracy = val_acc;
    p.test_accuracy = test_acc;
    p.epoch = e + 1;
    p.lambda = warm ? 0.0f : lambda;
    p.tau = tau;
    detail::collect_masks(pipe, p);
    const long bucket = result.front.bucket_of(p.q);
    if (result.front.would_accept(p) && !opt.checkpoint_dir.empty()) {
      char name[64];
      std::snprintf(name, sizeof name, "front_%03ld", bucket);
      std::vector<nn::host_tensor> masks;
      for (std::size_t i = 0; i < p.masks.size(); ++i) {
        masks.push_back({p.mask_shapes[i], p.masks[i]});
      }
      nn::write_weights_file(opt.checkpoint_dir / (std::string(name) + ".masks"), masks);
      if constexpr (checkpointable_model<Model>) {
        p.checkpoint = opt.checkpoint_dir / (std::string(name) + ".weights");
        model.save(p.checkpoint);
      }
    }
    const bool improved = result.front.offer(p);
    if constexpr (checkpointable_model<Model>) {
      if (!opt.checkpoint_dir.empty()) {
        last_good = opt.checkpoint_dir / "last_good.weights";
        model.save(last_good);
      }
    }

    // ---- schedules ---------------------------------------------------------------------------------
    const float lambda_used = explore ? lambda : 0.0f;
    const float tau_used = tau;
    if (explore && opt.target_q > 0.0 && val_q <= opt.target_q) {
      budget_reached = true;
    }
    if (!warm && !final_fixation) {
      const bool grew = schedule.end_epoch(e - opt.warmup_epochs, val_q, lambda);
      tau = grew ? opt.tau.init : opt.tau.next(tau);
      pipe.set_tau(tau);
    }

    const epoch_info ei{e,
                        epochs,
                        ph,
                        lambda_used,
                        tau_used,
                        loss_sum / static_cast<double>(seen),
                        static_cast<double>(correct) / static_cast<double>(seen),
                        val_acc,
                        val_q,
                        test_acc,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count(),
                        improved};
    result.epochs_run = e + 1;
    (void)ei; // unused without callbacks
    bool stop = false;
    ((stop = detail::call_epoch_end(callbacks, ei) || stop), ...);
    if (stop) {
      break;
    }
  }
  if constexpr (has_lr) {
    model.set_learning_rate(base_lr); // as the caller gave it
  }
  (
    [&] {
      if constexpr (requires { callbacks.on_train_end(result.front); }) {
        callbacks.on_train_end(result.front);
      }
    }(),
    ...);
  return result;
}

} // namespace selmask
