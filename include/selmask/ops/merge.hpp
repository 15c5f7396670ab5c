#pragma once
/// \file ops/merge.hpp
/// `merge<Op>`: V versions `N×V×C×H×W` → one tensor `N×C×H×W` the network accepts.
///
/// A merge operator is either *linear*, `op.weights(V)` giving one weight per version (empty: all
/// 1; it throws if it cannot merge V versions) — `sum` (with a one-hot xOr-mask before it, this
/// picks the chosen version of each cell) and `weighted_sum` ship —, or a user operator with
/// `op.template forward<B>(x, out)` (N×V×C×H×W → N×C×H×W) and
/// `op.template backward<B>(gy, V, gx)` (∂L/∂out → ∂L/∂x).

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "../backend/backend.hpp"
#include "../backend/ops.hpp"
#include "../error.hpp"
#include "../pipeline/stage.hpp"

namespace selmask {

/// y = Σ_v x_v;  ∂L/∂x_v = ∂L/∂y.
struct sum {
  /// Empty: every version has weight 1.
  [[nodiscard]] std::vector<float> weights(std::size_t /*versions*/) const { return {}; }
};

/// y = Σ_v a_v x_v;  ∂L/∂x_v = a_v ∂L/∂y. `values` must hold one finite weight per version.
struct weighted_sum {
  std::vector<float> values;

  [[nodiscard]] std::vector<float> weights(std::size_t versions) const {
    if (values.size() != versions) {
      throw value_error("selmask::weighted_sum: " + std::to_string(values.size()) + " weights for " +
                        std::to_string(versions) + " versions");
    }
    for (float w : values) {
      if (!std::isfinite(w)) {
        throw value_error("selmask::weighted_sum: weights must be finite");
      }
    }
    return values;
  }
};

/// A linear merge: a weight per version (`weights(V)`, empty for all ones).
template <class Op>
concept linear_merge_operator = requires(const Op& op, std::size_t v) {
  { op.weights(v) } -> std::same_as<std::vector<float>>;
};

template <class Op>
struct merge {
  static constexpr stage_role role = stage_role::merge;
  Op op{};

  template <tensor_backend B>
  class impl {
  public:
    impl(const merge& cfg, stage_context& ctx) : op_(cfg.op) {
      if (!ctx.has_versions) {
        throw shape_error("selmask::merge: the data has no versions to merge (no extend before it)");
      }
      if constexpr (linear_merge_operator<Op>) {
        std::vector<float> w = op_.weights(ctx.versions);
        if (!w.empty()) {
          weights_ = B::from_host(shape{w.size()}, w);
          weighted_ = true;
        }
      }
      versions_ = ctx.versions;
      sample_ = ctx.sample_shape();
      ctx.has_versions = false;
      ctx.versions = 1;
      ctx.version_costs.clear();
    }
    const tensor_t<B>& forward(const tensor_t<B>& x) {
      const shape xs = B::shape_of(x);
      if (xs.rank() != 5 || !(xs.drop_front() == sample_)) {
        throw shape_error("selmask::merge::forward: input shape " + xs.str() +
                          " does not match the versioned sample shape " + sample_.str());
      }
      if constexpr (linear_merge_operator<Op>) {
        bk::sum_versions<B>(x, weighted_ ? &weights_ : nullptr, y_);
      } else {
        op_.template forward<B>(x, y_);
      }
      return y_;
    }
    const tensor_t<B>& backward(const tensor_t<B>& gy) {
      if constexpr (linear_merge_operator<Op>) {
        bk::repeat_versions<B>(gy, versions_, weighted_ ? &weights_ : nullptr, gx_);
      } else {
        op_.template backward<B>(gy, versions_, gx_);
      }
      return gx_;
    }

  private:
    Op op_;
    std::size_t versions_ = 1;
    bool weighted_ = false;
    shape sample_;
    tensor_t<B> weights_, y_, gx_;
  };
};

} // namespace selmask
