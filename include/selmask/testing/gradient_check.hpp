#pragma once
/// \file testing/gradient_check.hpp
/// Public testing helpers: a central-difference gradient checker usable on any selmask stage,
/// a user's model or layer, on any backend (values travel through the host).
///
/// ```cpp
/// auto r = selmask::testing::check_gradient(f, x0, analytic, {.eps = 1e-3});
/// REQUIRE(r.ok);   // r.message says where the largest disagreement is
/// ```

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace selmask::testing {

struct gradient_check_options {
  double eps = 5e-3;  ///< central-difference step (float32 data: not much smaller)
  double rtol = 2e-2; ///< relative tolerance, against max(|analytic|, |numeric|)
  double atol = 1e-3; ///< absolute tolerance
};

struct gradient_check_result {
  bool ok = true;
  double max_abs_error = 0.0;
  std::size_t worst_index = 0;
  std::string message;
};

/// Central differences of a scalar function `f` at `x`: `(f(x + eps·e_i) − f(x − eps·e_i)) / 2eps`.
template <class F>
std::vector<double> numerical_gradient(F&& f, std::vector<float> x, double eps) {
  std::vector<double> g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float x0 = x[i];
    x[i] = static_cast<float>(x0 + eps);
    const double fp = f(x);
    x[i] = static_cast<float>(x0 - eps);
    const double fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2.0 * eps);
  }
  return g;
}

/// Compares `analytic` with the central-difference gradient of `f` at `x`.
template <class F>
gradient_check_result check_gradient(F&& f, const std::vector<float>& x, const std::vector<float>& analytic,
                                     gradient_check_options opt = {}) {
  gradient_check_result r;
  if (analytic.size() != x.size()) {
    r.ok = false;
    r.message = "analytic gradient has " + std::to_string(analytic.size()) + " values for " +
                std::to_string(x.size()) + " inputs";
    return r;
  }
  const std::vector<double> num = numerical_gradient(f, x, opt.eps);
  double worst_excess = -1.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double a = analytic[i];
    const double err = std::abs(a - num[i]);
    const double allowed = opt.atol + opt.rtol * std::max(std::abs(a), std::abs(num[i]));
    if (err - allowed > worst_excess) {
      worst_excess = err - allowed;
      r.worst_index = i;
    }
    r.max_abs_error = std::max(r.max_abs_error, err);
    if (err > allowed) {
      r.ok = false;
    }
  }
  if (!x.empty()) {
    const std::size_t i = r.worst_index;
    r.message = std::string(r.ok ? "ok" : "MISMATCH") + ": worst at index " + std::to_string(i) +
                ": analytic " + std::to_string(analytic[i]) + ", numeric " + std::to_string(num[i]) +
                " (max abs error " + std::to_string(r.max_abs_error) + ")";
  }
  return r;
}

} // namespace selmask::testing
