#pragma once
/// \file ops/extend.hpp
/// `extend<Op>`: one input `N×C×H×W` → V versions `N×V×C×H×W`.
///
/// An extend operator `Op` models `selmask::extend_operator`:
///  - `Op::versions` (compile-time V, ≥ 1);
///  - `op.costs()`: the relative cost of each version (what one location of it costs to send;
///    1 = the raw data), used by xOr-masks with `uniform_cost`;
///  - `op.template forward<B>(x, out)`: fill `out` (N×V×C×H×W) from `x` (N×C×H×W);
///  - `op.template backward<B>(gy, gx)`: ∂L/∂x from ∂L/∂out.
/// Versions that are not differentiable in the input (JPEG, thumbnails, user functors) pass the
/// gradient straight through as if every version were the identity, `∂L/∂x = Σ_v ∂L/∂out_v`;
/// in practice the input of an extend is data, whose gradient nobody uses.

#include <concepts>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "../backend/backend.hpp"
#include "../backend/ops.hpp"
#include "../error.hpp"
#include "../pipeline/stage.hpp"

namespace selmask {

/// V identical versions, each costing 1 (e.g. for tests, or to combine with a weighted merge).
template <std::size_t V>
struct identity_versions {
  static_assert(V >= 1, "selmask::identity_versions<V>: V must be at least 1");
  static constexpr std::size_t versions = V;
  std::vector<float> version_costs = std::vector<float>(V, 1.0f);

  [[nodiscard]] std::vector<float> costs() const { return version_costs; }
  template <tensor_backend B>
  void forward(const tensor_t<B>& x, tensor_t<B>& out) const {
    bk::repeat_versions<B>(x, V, nullptr, out);
  }
  template <tensor_backend B>
  void backward(const tensor_t<B>& gy, tensor_t<B>& gx) const {
    bk::sum_versions<B>(gy, nullptr, gx);
  }
};

/// Versions made by a user functor on the host, one sample at a time:
/// `f(v, std::span<const float> sample, std::span<float> version)` writes version `v` of a
/// C×H×W sample. `version_costs` (V values) say what each version costs to send.
template <std::size_t V, class F = std::function<void(std::size_t, std::span<const float>, std::span<float>)>>
struct functor_versions {
  static_assert(V >= 1, "selmask::functor_versions<V, F>: V must be at least 1");
  static_assert(std::invocable<const F&, std::size_t, std::span<const float>, std::span<float>>,
                "selmask::functor_versions<V, F>: F must be callable as "
                "f(std::size_t version, std::span<const float> sample, std::span<float> out)");
  static constexpr std::size_t versions = V;
  F make{};
  std::vector<float> version_costs = std::vector<float>(V, 1.0f);

  [[nodiscard]] std::vector<float> costs() const { return version_costs; }
  template <tensor_backend B>
  void forward(const tensor_t<B>& x, tensor_t<B>& out) const {
    const shape xs = B::shape_of(x);
    const std::vector<float> in = B::to_host(x);
    const std::size_t n = xs[0];
    const std::size_t r = n == 0 ? 0 : in.size() / n;
    std::vector<float> res(n * V * r);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t v = 0; v < V; ++v) {
        make(v, std::span<const float>(in.data() + i * r, r),
             std::span<float>(res.data() + (i * V + v) * r, r));
      }
    }
    const shape full = xs.drop_front().prepend(V).prepend(n);
    out = B::from_host(full, res);
  }
  template <tensor_backend B>
  void backward(const tensor_t<B>& gy, tensor_t<B>& gx) const {
    bk::sum_versions<B>(gy, nullptr, gx);
  }
};

template <class Op>
concept extend_operator = requires(const Op& op) {
  { Op::versions } -> std::convertible_to<std::size_t>;
  { op.costs() } -> std::same_as<std::vector<float>>;
};

template <extend_operator Op>
struct extend {
  static constexpr stage_role role = stage_role::extend;
  static constexpr std::size_t versions = Op::versions;
  Op op{};

  template <tensor_backend B>
  class impl {
  public:
    impl(const extend& cfg, stage_context& ctx) : op_(cfg.op) {
      if (ctx.has_versions) {
        throw shape_error("selmask::extend: the data already has versions (merge them first)");
      }
      sample_ = ctx.sample_shape();
      std::vector<float> c = op_.costs();
      if (c.size() != Op::versions) {
        throw value_error("selmask::extend: the operator declares " + std::to_string(c.size()) +
                          " version costs for " + std::to_string(Op::versions) + " versions");
      }
      ctx.has_versions = true;
      ctx.versions = Op::versions;
      ctx.version_costs = std::move(c);
    }
    const tensor_t<B>& forward(const tensor_t<B>& x) {
      const shape xs = B::shape_of(x);
      if (xs.rank() != 4 || !(xs.drop_front() == sample_)) {
        throw shape_error("selmask::extend::forward: input shape " + xs.str() +
                          " does not match the pipeline's sample shape " + sample_.str());
      }
      op_.template forward<B>(x, y_);
      return y_;
    }
    const tensor_t<B>& backward(const tensor_t<B>& gy) {
      op_.template backward<B>(gy, gx_);
      return gx_;
    }
    [[nodiscard]] const Op& op() const { return op_; }

  private:
    Op op_;
    shape sample_;
    tensor_t<B> y_, gx_;
  };
};

} // namespace selmask
