#pragma once
/// \file pipeline/stage.hpp
/// The stage concepts: what a pipeline asks of each of its stages, and what it tells them.
///
/// **What a stage represents.** A configuration type `S` — a mask (`any_mask`, `xor_mask`), an
/// operator (`extend`, `merge`) or a stage of the user's own (`role = stage_role::transform`, e.g.
/// a per-channel normalisation, see examples/user_stage.cpp) — with
///  - `static constexpr stage_role role`: what it does to the version axis, so that a pipeline
///    rejects impossible compositions at compile time, and whether it is a mask (the one source
///    of truth: `is_mask_stage<S>`);
///  - `template <tensor_backend B> class impl`, constructed as `impl(const S& config,
///    stage_context& ctx)`: the constructor reads the per-sample layout of its input from `ctx`
///    and writes the layout of its output back (a transform leaves it as it is).
///
/// **`pipeline_stage<S, B>` requires** of `impl<B>`: `forward(x)` → `const tensor&` (the stage's
/// output for a batch `x`, valid until the next call) and `backward(g)` → `const tensor&`
/// (∂L/∂input given `g` = ∂L/∂output of the last forward).
///
/// **`mask_stage<S, B>` requires** in addition (role `mask_any` or `mask_xor`; mask/mask.hpp has
/// the two that ship): `cost_field(f)` (the per-location cost factor of the hard mask, over the
/// C×H×W grid), `add_cost_grad(df, λ)` (∂(λ·Q)/∂field into the logit gradient), `finish_backward()`,
/// `zero_grad()`, `freeze(bool)`, `set_tau(τ)`, `set_mode(mask_mode)`, `refresh()`, `hard()` (the
/// hard mask), `logits_for_update()` / `grad_for_update()` (what a mask optimiser updates).

#include <concepts>
#include <cstddef>
#include <random>
#include <vector>

#include "../backend/backend.hpp"
#include "../shape.hpp"
#include "../surrogate/straight_through.hpp"

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

/// A type that declares a stage role (the first thing a pipeline checks).
template <class S>
concept stage_type = requires {
  { S::role } -> std::convertible_to<stage_role>;
};

/// Whether stage type `S` is a mask: the one place that decides it (by its role).
template <class S>
inline constexpr bool is_mask_stage = stage_type<S> &&
                                      (S::role == stage_role::mask_any || S::role == stage_role::mask_xor);

template <class S, class B>
concept pipeline_stage =
  stage_type<S> && tensor_backend<B> && std::constructible_from < typename S::template impl<B>,
const S&, stage_context& > &&requires(typename S::template impl<B>& s, const tensor_t<B>& t) {
  { s.forward(t) } -> std::convertible_to<const tensor_t<B>&>;
  { s.backward(t) } -> std::convertible_to<const tensor_t<B>&>;
};

template <class S, class B>
concept mask_stage = pipeline_stage<S, B> && is_mask_stage<S> &&
  requires(typename S::template impl<B>& m, tensor_t<B>& t, const tensor_t<B>& c, float x, bool f,
           mask_mode mode) {
  m.cost_field(t);
  m.add_cost_grad(c, x);
  m.finish_backward();
  m.zero_grad();
  m.freeze(f);
  m.set_tau(x);
  m.set_mode(mode);
  m.refresh();
  m.hard();
  { m.logits_for_update() } -> std::same_as<tensor_t<B>&>;
  { m.grad_for_update() } -> std::same_as<tensor_t<B>&>;
};

} // namespace selmask
