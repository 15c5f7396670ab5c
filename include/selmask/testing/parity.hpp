#pragma once
/// \file testing/parity.hpp
/// Backend parity: compare the values one backend computed with those of another (typically a
/// CUDA result against the CPU's), element by element, under a stated tolerance.
///
/// ```cpp
/// const auto r = selmask::testing::compare_values(cpu::to_host(a), cuda::to_host(b),
///                                                 {.abs = 1e-5, .rel = 1e-4});
/// if (!r.ok) std::puts(r.message.c_str());
/// ```
///
/// A value `x` (expected `e`) is *within* the tolerance when `|x − e| ≤ abs + rel·|e|`; NaN
/// matches NaN, infinities match equal infinities. The comparison passes when the sizes agree,
/// at least `fraction` of the values are within, and every value is within `bound` of its
/// expected value. `fraction < 1` with a finite `bound` suits values after optimiser steps,
/// where a few coordinates whose gradient is almost 0 may step the other way on another backend.

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <span>
#include <string>

namespace selmask::testing {

struct parity_tolerance {
  double abs = 1e-5;
  double rel = 1e-5;
  double fraction = 1.0; ///< share of the values that must be within abs + rel·|expected|
  double bound = std::numeric_limits<double>::infinity(); ///< largest |difference| allowed at all

  /// Bit-for-bit equal values (up to NaN payloads): masks, indices, counts.
  static constexpr parity_tolerance exact() { return {0.0, 0.0, 1.0, 0.0}; }
};

struct parity_report {
  bool ok = true;
  std::size_t count = 0;       ///< values compared
  std::size_t outside = 0;     ///< values not within abs + rel·|expected|
  std::size_t worst_index = 0; ///< the value with the largest difference
  double worst_difference = 0.0;
  std::string message; ///< what failed, with the worst value; empty when ok
};

/// Compares `actual` with `expected` (see the file comment).
inline parity_report compare_values(std::span<const float> expected, std::span<const float> actual,
                                    const parity_tolerance& tol) {
  parity_report r;
  if (expected.size() != actual.size()) {
    r.ok = false;
    r.message = "sizes differ: expected " + std::to_string(expected.size()) + " values, got " +
                std::to_string(actual.size());
    return r;
  }
  r.count = expected.size();
  bool beyond_bound = false;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double e = expected[i];
    const double x = actual[i];
    double diff = 0.0;
    if (std::isnan(e) || std::isnan(x)) {
      diff = std::isnan(e) && std::isnan(x) ? 0.0 : std::numeric_limits<double>::infinity();
    } else if (std::isinf(e) || std::isinf(x)) {
      diff = e == x ? 0.0 : std::numeric_limits<double>::infinity();
    } else {
      diff = std::fabs(x - e);
    }
    const double allowed = tol.abs + (std::isfinite(e) ? tol.rel * std::fabs(e) : 0.0);
    if (!(diff <= allowed)) {
      ++r.outside;
    }
    if (!(diff <= tol.bound)) {
      beyond_bound = true;
    }
    if (diff > r.worst_difference || (i == 0 && diff == 0.0)) {
      r.worst_difference = diff;
      r.worst_index = i;
    }
  }
  const double allowed_outside =
    static_cast<double>(r.count) * (1.0 - tol.fraction) + 1e-9 * static_cast<double>(r.count);
  r.ok = !beyond_bound && static_cast<double>(r.outside) <= allowed_outside;
  if (!r.ok) {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%zu of %zu values outside abs %.3g + rel %.3g (%.4g%% allowed)%s; worst at index "
                  "%zu: expected %.9g, got %.9g (difference %.3g)",
                  r.outside, r.count, tol.abs, tol.rel, 100.0 * (1.0 - tol.fraction),
                  beyond_bound ? ", some beyond the bound" : "", r.worst_index,
                  static_cast<double>(expected[r.worst_index]), static_cast<double>(actual[r.worst_index]),
                  r.worst_difference);
    r.message = buf;
  }
  return r;
}

} // namespace selmask::testing
