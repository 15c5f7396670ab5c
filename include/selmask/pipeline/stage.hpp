#pragma once
/// \file pipeline/stage.hpp
/// What a pipeline tells each stage when it is built: the layout of the data reaching it.
///
/// A *stage* is a configuration type `S` (a mask, an extend or a merge) with a nested
/// `template <tensor_backend B> class impl` constructed as `impl(const S& config,
/// stage_context& ctx)`. The constructor reads the layout of its input from `ctx` and writes the
/// layout of its output back. `impl` has `forward(x) → y` and `backward(∂L/∂y) → ∂L/∂x`; masks
/// also take part in the mask loss Q (see mask/mask.hpp). Each stage type declares at compile
/// time what it does to the version axis (`stage_traits`), which lets a pipeline reject
/// impossible compositions before anything runs.

#include <cstddef>
#include <random>
#include <vector>

#include "../shape.hpp"

namespace selmask {

/// The data layout between two stages, per sample: `C×H×W`, or `V×C×H×W` after an extend.
struct stage_context {
  std::size_t channels = 1;
  std::size_t height = 1;
  std::size_t width = 1;
  bool has_versions = false;
  std::size_t versions = 1;
  /// Relative cost of each version, as declared by the extend stage (empty without versions).
  std::vector<float> version_costs;
  std::mt19937_64* rng = nullptr;

  /// Per-sample shape of the data at this point.
  [[nodiscard]] shape sample_shape() const {
    return has_versions ? shape{versions, channels, height, width} : shape{channels, height, width};
  }
};

/// What a stage does to the version axis, for compile-time checks of a pipeline.
enum class stage_role {
  mask_any,  ///< keeps the layout; works with or without versions
  mask_xor,  ///< needs versions (an extend before it, no merge in between)
  extend,    ///< adds the version axis
  merge,     ///< removes the version axis
  transform, ///< keeps the layout (user stage)
};

} // namespace selmask
