#pragma once
/// \file backend/backend.hpp
/// The `tensor_backend` concept: everything masks, surrogates, costs and extend/merge operators
/// ask of a place where tensors live (the CPU, a CUDA device, or a backend of the user's own).
///
/// A backend `B` is a type with static member functions over its own tensor type `B::tensor`
/// (dense, row-major, float32). Nothing in the concept names xtensor or CUDA, so masks, pipelines
/// and trainers are written once against `tensor_t<B>` and run on every backend.
///
/// Required (`t`, `a`, `b`: tensors; `s`: `selmask::shape`; `g`: `cell_geometry`):
///
/// | expression                              | effect                                              |
/// |-----------------------------------------|-----------------------------------------------------|
/// | `B::name`                               | a short name ("cpu", "cuda")                        |
/// | `B::zeros(s)`, `B::full(s, x)`          | a new tensor of shape `s`                           |
/// | `B::from_host(s, span)`                 | a new tensor holding host floats (row-major)        |
/// | `B::to_host(t)`                         | its values as `std::vector<float>`                  |
/// | `B::shape_of(t)`                        | its `selmask::shape`                                |
/// | `B::reshape(t, s)`                      | same values, new shape of equal size                |
/// | `B::copy(a, t)`                         | `t` becomes a copy of `a` (resized)                 |
/// | `B::map(a, t, f)`                       | `t[i] = f(a[i])`; `f` is a SELMASK_HOST_DEVICE functor |
/// | `B::map2(a, b, t, f)`                   | `t[i] = f(a[i], b[i])`                              |
/// | `B::axpy(x, a, t)`                      | `t += x·a`                                          |
/// | `B::sum(a)`, `B::all_finite(a)`         | reductions to the host                              |
/// | `B::scale_cells(a, c, g, t)`            | `t[n,i] = a[n,i]·c[cell(i)]` (upsample a cell grid) |
/// | `B::reduce_cells(a, b, g, t)`           | `t[k] = Σ_n Σ_{i∈k} a[n,i]·b[n,i]` (`b` may be null) |
/// | `B::softmax_groups(w, V, 1/τ, t)`       | per cell k, softmax over v of `w[v·K+k]/τ`          |
/// | `B::argmax_one_hot_groups(s, V, t)`     | one-hot of the largest of each group                |
/// | `B::softmax_groups_backward(s,g,V,1/τ,t)`| `t_v = s_v (g_v − Σ_u s_u g_u)/τ`                  |
/// | `B::sum_versions(a, w, t)`              | `a: N×V×R → t: N×R`, `t = Σ_v w_v a_v` (`w` null: 1) |
/// | `B::repeat_versions(a, V, w, t)`        | `a: N×R → t: N×V×R`, `t_v = w_v a` (`w` null: 1)     |
/// | `B::gather(a, idx, t)`, `B::scatter(a, idx, t)` | `t[j] = a[idx[j]]`; `t[idx[j]] = a[j]`      |

#include <concepts>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "../granularity/geometry.hpp"
#include "../shape.hpp"

namespace selmask {

namespace detail {
/// A functor used only to check that a backend's `map` accepts SELMASK_HOST_DEVICE functors.
struct concept_probe_unary {
  SELMASK_HOST_DEVICE float operator()(float x) const { return x; }
};
struct concept_probe_binary {
  SELMASK_HOST_DEVICE float operator()(float x, float y) const { return x + y; }
};
} // namespace detail

template <class B>
concept tensor_backend = requires {
  typename B::tensor;
}
&&requires(typename B::tensor& t, const typename B::tensor& a, const shape& s, std::span<const float> host,
           std::span<const std::size_t> idx, const cell_geometry& g, float x, std::size_t n) {
  { B::name } -> std::convertible_to<std::string_view>;
  { B::zeros(s) } -> std::same_as<typename B::tensor>;
  { B::full(s, x) } -> std::same_as<typename B::tensor>;
  { B::from_host(s, host) } -> std::same_as<typename B::tensor>;
  { B::to_host(a) } -> std::same_as<std::vector<float>>;
  { B::shape_of(a) } -> std::same_as<shape>;
  B::reshape(t, s);
  B::copy(a, t);
  B::map(a, t, detail::concept_probe_unary{});
  B::map2(a, a, t, detail::concept_probe_binary{});
  B::axpy(x, a, t);
  { B::sum(a) } -> std::convertible_to<double>;
  { B::all_finite(a) } -> std::same_as<bool>;
  B::scale_cells(a, a, g, t);
  B::reduce_cells(a, &a, g, t);
  B::softmax_groups(a, n, x, t);
  B::argmax_one_hot_groups(a, n, t);
  B::softmax_groups_backward(a, a, n, x, t);
  B::sum_versions(a, &a, t);
  B::repeat_versions(a, n, &a, t);
  B::gather(a, idx, t);
  B::scatter(a, idx, t);
};

/// The tensor type of backend `B`.
template <class B>
using tensor_t = typename B::tensor;

} // namespace selmask
