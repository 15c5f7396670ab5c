#pragma once
/// \file surrogate/formulas.hpp
/// The scalar formulas of the surrogates, written once as SELMASK_HOST_DEVICE functors so that
/// every backend (CPU loops, CUDA kernels) evaluates exactly the same expressions.

#include <cmath>

#include "../detail/config.hpp"

namespace selmask::formula {

/// s = sigmoid(w / τ)
struct sigmoid {
  float inv_tau;
  SELMASK_HOST_DEVICE float operator()(float w) const { return 1.0f / (1.0f + std::exp(-w * inv_tau)); }
};

/// h = [s ≥ 0.5]
struct threshold_half {
  SELMASK_HOST_DEVICE float operator()(float s) const { return s >= 0.5f ? 1.0f : 0.0f; }
};

/// ∂L/∂w = ∂L/∂s · s(1−s)/τ  (straight-through: ∂L/∂h is used as ∂L/∂s)
struct sigmoid_backward {
  float inv_tau;
  SELMASK_HOST_DEVICE float operator()(float s, float g) const { return g * s * (1.0f - s) * inv_tau; }
};

/// a · b
struct multiply {
  SELMASK_HOST_DEVICE float operator()(float a, float b) const { return a * b; }
};

/// a · x
struct scale_by {
  float x;
  SELMASK_HOST_DEVICE float operator()(float a) const { return a * x; }
};

} // namespace selmask::formula
