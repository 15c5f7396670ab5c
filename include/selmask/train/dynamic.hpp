#pragma once
/// \file train/dynamic.hpp
/// `learn_dynamic_mask`: Algorithm 1 for a dynamic mask (mask/dynamic.hpp) and a network.
///
/// Phases, in epochs over the training set:
///  1. warm-up (`warmup_epochs`): the network alone on the whole samples;
///  2. exploration (at most `mask_epochs`): every batch, the mask computes each sample's mask from
///     its preview, the network trains on the masked batch, and the mask's static prior and mask
///     model train on ∂(CE + λ·Q)/∂w; λ comes from a λ controller (`budget_controller` steers the
///     mean Q to a stated budget; any `lambda_schedule` with `end_batch` works). Exploration ends
///     when the controller says the masks are final;
///  3. fixation (`fixation_epochs`): the mask is frozen — optionally projected onto exactly
///     `keep_per_sample` cells per sample — and the network is fine-tuned to its masks.
/// After each epoch the validation set is evaluated (accuracy and mean Q with the hard masks); at
/// the end, the test set if one is given. Every number is returned in `dynamic_result` and passed
/// to the `on_epoch` callback as it happens.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "../backend/nn_ops.hpp"
#include "../error.hpp"
#include "../io/dataset.hpp"
#include "batch_source.hpp"
#include "evaluate.hpp"
#include "schedule.hpp"

namespace selmask {

struct dynamic_training_options {
  std::size_t warmup_epochs = 0;
  std::size_t mask_epochs = 10;    ///< most exploration epochs
  std::size_t fixation_epochs = 3; ///< network fine-tuned to the frozen masks
  std::size_t batch_size = 128;
  std::size_t eval_batch_size = 500;
  float lambda = 0.0f;                          ///< initial λ (the controller moves it)
  std::optional<std::size_t> keep_per_sample{}; ///< exactly this many cells per sample in fixation
  std::uint64_t seed = 0;

  void validate() const {
    if (batch_size == 0 || eval_batch_size == 0) {
      throw value_error("selmask::dynamic_training_options: batch sizes must be positive");
    }
    if (!(lambda >= 0.0f) || !std::isfinite(lambda)) {
      throw value_error("selmask::dynamic_training_options: lambda must be finite and >= 0, got " +
                        std::to_string(lambda));
    }
  }
};

/// What one epoch measured.
struct dynamic_epoch {
  std::size_t epoch = 0; ///< counting from 0 over all phases
  phase stage = phase::warmup;
  float lambda = 0.0f;
  double train_loss = 0.0;          ///< mean cross-entropy over the epoch's batches
  double train_q = 1.0;             ///< mean Q of the epoch's training masks
  double validation_accuracy = 0.0; ///< with the hard masks (1 − nothing masked in warm-up)
  double validation_q = 1.0;
};

/// Accuracy and transferred data of a network behind a dynamic mask on a data set.
struct dynamic_evaluation {
  double accuracy = 0.0;
  double mean_q = 0.0;
  std::vector<double> sample_q; ///< Q of every sample, in data-set order
};

struct dynamic_result {
  std::vector<dynamic_epoch> epochs;
  dynamic_evaluation validation;
  std::optional<dynamic_evaluation> test;
};

/// Accuracy and Q of `net` behind `mask` (hard masks, no sampling, no gradient) on `data`.
template <nn_backend B, class Mask, class Net>
dynamic_evaluation evaluate_dynamic(Mask& mask, Net& net, const io::dataset& data,
                                    std::size_t batch_size = 500) {
  if (data.empty()) {
    throw value_error("selmask::evaluate_dynamic: empty data set");
  }
  dataset_source source(data, batch_size, false);
  host_batch hb;
  dynamic_evaluation e;
  e.sample_q.reserve(data.size());
  std::size_t correct = 0;
  tensor_t<B> grad;
  const bool was_frozen = mask.frozen();
  mask.freeze(true);
  for (std::size_t b = 0; b < source.batches(); ++b) {
    source.read(b, hb);
    const tensor_t<B> x = B::from_host(hb.x_shape, hb.x);
    const auto& logits = detail::infer(net, mask.forward(x));
    correct += bk::softmax_cross_entropy<B>(logits, hb.labels, grad).correct;
    for (double q : mask.sample_q()) {
      e.sample_q.push_back(q);
    }
  }
  mask.freeze(was_frozen);
  double s = 0.0;
  for (double q : e.sample_q) {
    s += q;
  }
  e.mean_q = s / static_cast<double>(e.sample_q.size());
  e.accuracy = static_cast<double>(correct) / static_cast<double>(data.size());
  return e;
}

/// No silent no-op: with the mask model off (`learn_dynamic = false`) only the static prior moves,
/// by about one learning rate per AdamW step, so when the planned exploration steps times the
/// prior's learning rate cannot bring the initial logits to 0 no mask would change. Throws a
/// `value_error` that says what to change. (With the mask model on, its output moves the logits
/// too and no such bound holds.)
template <class Mask>
void check_reach(const Mask& mask, const dynamic_training_options& opt, std::size_t batches) {
  const auto& mo = mask.options();
  if (mo.learn_dynamic || !mo.learn_static || opt.mask_epochs == 0) {
    return;
  }
  const double steps = static_cast<double>(opt.mask_epochs) * static_cast<double>(batches);
  const double reach = steps * static_cast<double>(mo.prior_optimizer.lr);
  const double distance = std::fabs(static_cast<double>(mo.init_mean));
  if (reach < distance) {
    throw value_error("selmask::learn_dynamic_mask: " + std::to_string(opt.mask_epochs) +
                      " exploration epochs x " + std::to_string(batches) + " batches x prior lr " +
                      std::to_string(mo.prior_optimizer.lr) + " = " + std::to_string(reach) +
                      " cannot move the prior's logits from " + std::to_string(mo.init_mean) +
                      " to 0, so no mask would change; raise " +
                      "prior_optimizer.lr to >= " + std::to_string(distance / steps) + " or train >= " +
                      std::to_string(static_cast<std::size_t>(
                        std::ceil(distance / mo.prior_optimizer.lr * (1.0 - 1e-6)) /* float lr rounding */)) +
                      " exploration steps");
  }
}

/// Trains `net` (a trainable model) and `mask` (a `dynamic_any_mask`) on `train`; see the file
/// comment. `controller` is a `lambda_schedule` (e.g. `budget_controller{.per_batch = true}`).
template <nn_backend B, class Mask, class Net, lambda_schedule Controller>
dynamic_result learn_dynamic_mask(Mask& mask, Net& net, const io::dataset& train,
                                  const io::dataset& validation, const io::dataset* test,
                                  const dynamic_training_options& opt, Controller controller,
                                  const std::function<void(const dynamic_epoch&)>& on_epoch = {}) {
  opt.validate();
  controller.validate();
  for (const io::dataset* d : {&train, &validation}) {
    d->validate();
    if (!(d->sample == mask.sample_shape())) {
      throw shape_error("selmask::learn_dynamic_mask: data samples " + d->sample.str() +
                        " differ from the mask's " + mask.sample_shape().str());
    }
  }
  if (train.labels.empty()) {
    throw value_error("selmask::learn_dynamic_mask: the training set has no labels");
  }
  dataset_source source(train, opt.batch_size, true, opt.seed);
  check_reach(mask, opt, source.batches());
  host_batch hb;
  tensor_t<B> grad;
  dynamic_result r;
  float lambda = opt.lambda;
  std::size_t epoch = 0;

  // one epoch of training; masked: through the mask (else the whole samples); the mask learns
  // when it is not frozen
  const auto run_epoch = [&](phase stage, bool masked) {
    source.set_epoch(epoch);
    dynamic_epoch e{.epoch = epoch, .stage = stage};
    double loss = 0.0, q = 0.0;
    for (std::size_t b = 0; b < source.batches(); ++b) {
      source.read(b, hb);
      const tensor_t<B> x = B::from_host(hb.x_shape, hb.x);
      net.zero_grad();
      mask.zero_grad();
      const auto& logits = masked ? net.forward(mask.forward(x)) : net.forward(x);
      loss += bk::softmax_cross_entropy<B>(logits, hb.labels, grad).loss_sum / static_cast<double>(hb.size());
      const auto& gy = net.backward(grad);
      if (masked) {
        (void)mask.backward(gy, lambda);
        mask.step();
        const double bq = mask.mean_q();
        q += bq;
        if constexpr (requires { controller.end_batch(bq, lambda); }) {
          if (stage == phase::exploration) {
            controller.end_batch(bq, lambda);
          }
        }
      } else {
        q += 1.0;
      }
      net.step();
    }
    e.train_loss = loss / static_cast<double>(source.batches());
    e.train_q = q / static_cast<double>(source.batches());
    if (masked) {
      const dynamic_evaluation v = evaluate_dynamic<B>(mask, net, validation, opt.eval_batch_size);
      e.validation_accuracy = v.accuracy;
      e.validation_q = v.mean_q;
    } else {
      dataset_source vs(validation, opt.eval_batch_size, false);
      std::size_t correct = 0;
      for (std::size_t b = 0; b < vs.batches(); ++b) {
        vs.read(b, hb);
        correct +=
          bk::softmax_cross_entropy<B>(detail::infer(net, B::from_host(hb.x_shape, hb.x)), hb.labels, grad)
            .correct;
      }
      e.validation_accuracy = static_cast<double>(correct) / static_cast<double>(validation.size());
    }
    e.lambda = lambda;
    return e;
  };
  const auto record = [&](const dynamic_epoch& e) {
    r.epochs.push_back(e);
    if (on_epoch) {
      on_epoch(e);
    }
    ++epoch;
  };

  for (std::size_t k = 0; k < opt.warmup_epochs; ++k) {
    record(run_epoch(phase::warmup, false));
  }
  mask.freeze(false);
  for (std::size_t k = 0; k < opt.mask_epochs; ++k) {
    dynamic_epoch e = run_epoch(phase::exploration, true);
    (void)controller.end_epoch(k, e.validation_q, lambda);
    e.lambda = lambda;
    record(e);
    if constexpr (requires { controller.masks_final(k, e.validation_q); }) {
      if (controller.masks_final(k, e.validation_q)) {
        break;
      }
    }
  }
  mask.freeze(true);
  if (opt.keep_per_sample) {
    mask.keep_per_sample(opt.keep_per_sample);
  }
  for (std::size_t k = 0; k < opt.fixation_epochs; ++k) {
    record(run_epoch(phase::fixation, true));
  }
  r.validation = evaluate_dynamic<B>(mask, net, validation, opt.eval_batch_size);
  if (test != nullptr) {
    r.test = evaluate_dynamic<B>(mask, net, *test, opt.eval_batch_size);
  }
  return r;
}

} // namespace selmask
