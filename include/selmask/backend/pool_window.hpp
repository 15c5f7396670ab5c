#pragma once
/// \file backend/pool_window.hpp
/// The 2×2 max-pool window selection, written once for every backend (CPU loops, CUDA kernels)
/// so that both pick the same maximum and record the same offset.

#include "../detail/config.hpp"

namespace selmask::formula {

/// The maximum of a 2×2 window and its offset 0…3 (as a float, the layout of the index tensors).
struct pool_pick {
  float best;
  float at;
};

/// The window `top[0], top[1], bottom[0], bottom[1]`, each plus `bias`; the first maximum wins
/// ties. Selects instead of branches: which element wins is data-dependent and random.
SELMASK_HOST_DEVICE pool_pick pool_window(const float* top, const float* bottom, float bias) {
  float best = top[0] + bias;
  float at = 0.0f;
  const float v1 = top[1] + bias;
  const float v2 = bottom[0] + bias;
  const float v3 = bottom[1] + bias;
  at = v1 > best ? 1.0f : at;
  best = v1 > best ? v1 : best;
  at = v2 > best ? 2.0f : at;
  best = v2 > best ? v2 : best;
  at = v3 > best ? 3.0f : at;
  best = v3 > best ? v3 : best;
  return {best, at};
}

} // namespace selmask::formula
