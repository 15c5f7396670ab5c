#pragma once
/// \file backend/backend.hpp
/// The `tensor_backend` concept: the small core that masks, surrogates, costs, pipelines and
/// extend / merge operators ask of a place where tensors live (the CPU, a CUDA device, or a
/// backend of the user's own).
///
/// A backend `B` is a type with static member functions over its own tensor type `B::tensor`
/// (dense, row-major, float32, a regular value type: default-constructible and copyable). Nothing
/// in the concept names xtensor or CUDA, so library code is written once against `tensor_t<B>`.
///
/// The concept is layered. This file is the **core**, what every backend writes (12 functions
/// and a name; `t`, `a`, `b`: tensors; `s`: `selmask::shape`; `g`: `cell_geometry`):
///
/// | expression                      | effect                                                       |
/// |---------------------------------|--------------------------------------------------------------|
/// | `B::name`                       | a short name ("cpu", "cuda", "reference")                    |
/// | `B::zeros(s)`                   | a new tensor of shape `s`, all 0                             |
/// | `B::from_host(s, span)`         | a new tensor holding host floats (row-major); size must fit  |
/// | `B::to_host(t)`                 | its values as `std::vector<float>`                           |
/// | `B::shape_of(t)`                | its `selmask::shape`                                         |
/// | `B::reshape(t, s)`              | same values, new shape of equal size (in place)              |
/// | `B::copy(a, t)`                 | `t` becomes a copy of `a` (resized)                          |
/// | `B::map(a, t, f)`               | `t[i] = f(a[i])`, `t` resized; `f` a SELMASK_HOST_DEVICE functor |
/// | `B::map2(a, b, t, f)`           | `t[i] = f(a[i], b[i])`, `t` resized to `a`'s shape           |
/// | `B::axpy(x, a, t)`              | `t += x·a` (equal sizes)                                     |
/// | `B::sum(a)`                     | `Σ a` to the host, accumulated in double                     |
/// | `B::scale_cells(a, c, g, t)`    | `t[n,i] = a[n,i]·c[cell(i)]` (upsample a cell grid)          |
/// | `B::reduce_cells(a, b, g, t)`   | `t[k] = Σ_n Σ_{i∈k} a[n,i]·b[n,i]`, `b` may be null; `t`: grid |
///
/// Everything else the library uses has a generic default written on this core, in
/// backend/ops.hpp (`selmask::bk::full`, `all_finite`, `softmax_groups`, ...) and, for the
/// network kit, backend/nn_ops.hpp. Library code calls those `bk::` functions; each one calls
/// `B::<same name>` when the backend has a member of that name and signature (detected with
/// `requires`), else the default. A backend writes such a member only where it has something
/// faster. The second layer, `nn_backend` (backend/nn_backend.hpp), adds `B::gemm`.
///
/// **Aliasing rule.** Only the elementwise functions may write in place: the output of `copy`,
/// `map`, `map2` and `axpy` may be the same tensor object as one of their inputs (each output
/// value depends only on the input values at the same index). Every other function, core or
/// default, must get an output that is a different object from each of its inputs; the
/// reference backend and the generic defaults throw `selmask::value_error` naming the function
/// when it is not. (Tensors own their storage, so distinct objects never share memory and
/// "different object" is the whole rule.)
///
/// backend/reference/reference.hpp is a complete core-only backend and a walk-through of
/// writing one.

#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
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

/// Throws `value_error` when `out` is the same object as `in`: the aliasing rule of
/// backend/backend.hpp for the non-elementwise functions. `who` names the function
/// ("selmask::reference::scale_cells"), `out_name` / `in_name` its arguments.
template <class T>
void check_distinct(const char* who, const T& out, const char* out_name, const T& in, const char* in_name) {
  if (&out == &in) {
    throw value_error(std::string(who) + ": output " + out_name + " is the same tensor as input " + in_name +
                      " (only copy, map, map2 and axpy may write in place)");
  }
}
} // namespace detail

template <class B>
concept tensor_backend = requires {
  typename B::tensor;
}
&&std::semiregular<typename B::tensor>&& requires(typename B::tensor& t, const typename B::tensor& a,
                                                  const shape& s, std::span<const float> host,
                                                  const cell_geometry& g, float x) {
  { B::name } -> std::convertible_to<std::string_view>;
  { B::zeros(s) } -> std::same_as<typename B::tensor>;
  { B::from_host(s, host) } -> std::same_as<typename B::tensor>;
  { B::to_host(a) } -> std::same_as<std::vector<float>>;
  { B::shape_of(a) } -> std::same_as<shape>;
  B::reshape(t, s);
  B::copy(a, t);
  B::map(a, t, detail::concept_probe_unary{});
  B::map2(a, a, t, detail::concept_probe_binary{});
  B::axpy(x, a, t);
  { B::sum(a) } -> std::convertible_to<double>;
  B::scale_cells(a, a, g, t);
  B::reduce_cells(a, &a, g, t);
};

/// The tensor type of backend `B`.
template <class B>
using tensor_t = typename B::tensor;

} // namespace selmask
