#pragma once
/// \file train/checks.hpp
/// The trainer's checks of its arguments before the first batch: the options (λ, batch sizes,
/// budgets, epochs, τ and the policies' own settings) and the data sets' shapes and classes.

#include <cmath>
#include <cstddef>
#include <string>

#include "../error.hpp"
#include "../io/dataset.hpp"
#include "../shape.hpp"

namespace selmask::detail {

/// Throws `value_error` naming the first bad option (`Options` is `trainer_options`).
template <class Options, class Policies>
void check_options(const Options& opt, const Policies& policies, const char* who) {
  if (!(opt.lambda >= 0.0f) || !std::isfinite(opt.lambda)) {
    throw value_error(std::string(who) + "lambda must be finite and >= 0, got " + std::to_string(opt.lambda));
  }
  if (opt.batch_size == 0 || opt.eval_batch_size == 0) {
    throw value_error(std::string(who) + "batch sizes must be positive");
  }
  if (!(opt.target_q >= 0.0 && opt.target_q <= 1.0)) {
    throw value_error(std::string(who) + "target_q must lie in [0, 1] (0: none), got " +
                      std::to_string(opt.target_q));
  }
  if (opt.final_fixation_epochs > opt.mask_epochs) {
    throw value_error(std::string(who) + "final_fixation_epochs (" +
                      std::to_string(opt.final_fixation_epochs) + ") cannot exceed mask_epochs (" +
                      std::to_string(opt.mask_epochs) + ")");
  }
  opt.tau.validate();
  policies.lambda.validate();
  policies.lr.validate();
}

/// Every data set's samples have the pipeline's shape, and all have the training set's classes.
inline void check_data_shapes(const shape& sample, const shape& train_sample, std::size_t train_classes,
                              const io::dataset& validation, const io::dataset* test, const char* who) {
  const auto check = [&](const shape& s, std::size_t classes) {
    if (!(s == sample)) {
      throw shape_error(std::string(who) + "data samples of shape " + s.str() +
                        " do not match the pipeline's sample shape " + sample.str());
    }
    if (classes != train_classes) {
      throw shape_error(std::string(who) + "the data sets disagree on the number of classes (" +
                        std::to_string(classes) + " vs " + std::to_string(train_classes) + ")");
    }
  };
  check(train_sample, train_classes);
  check(validation.sample, validation.classes);
  if (test) {
    check(test->sample, test->classes);
  }
}

} // namespace selmask::detail
