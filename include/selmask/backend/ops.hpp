#pragma once
/// \file backend/ops.hpp
/// `selmask::bk`: the operations library code needs beyond the `tensor_backend` core, each with
/// a generic default written on that core. `bk::f<B>(...)` calls `B::f(...)` when backend `B`
/// has a static member `f` callable with those arguments (detected with `requires`), and the
/// default otherwise, so a backend that writes only the core works everywhere and a backend with
/// something faster overrides one function at a time.
///
/// Functions (default written as: H = host round trip, or the core functions named):
///  - `bk::full<B>(s, x)` (`zeros` + `map`): a new tensor of shape `s`, all `x`.
///  - `bk::all_finite<B>(a)` (`map` + `sum`): no NaN or infinity in `a`.
///  - `bk::softmax_groups<B>(w, V, 1/τ, t)` (H): `w` is V×K (flat); per cell k, `t[v·K+k]` is the
///    softmax over v of `w[v·K+k]/τ`.
///  - `bk::argmax_one_hot_groups<B>(s, V, t)` (H): the one-hot of the largest of each group
///    (ties: the lowest v).
///  - `bk::softmax_groups_backward<B>(s, g, V, 1/τ, t)` (H): `t_v = s_v (g_v − Σ_u s_u g_u)/τ` per
///    group.
///  - `bk::sum_versions<B>(a, w, t)` (H): `a: N×V×R… → t: N×R…`, `t = Σ_v w_v a_v` (`w` null: 1).
///  - `bk::repeat_versions<B>(a, V, w, t)` (H): `a: N×R… → t: N×V×R…`, `t_v = w_v a` (`w` null: 1).
///
/// "Host round trip" means `to_host` → plain loops → `from_host`: the only generic form of an
/// operation that moves values between indices, since the core's elementwise functions see one
/// index at a time and the cell primitives cover only cell grids. It is correct on every backend
/// and slow on a device; the CPU and CUDA backends override all of these.
///
/// Outputs (`t`) are resized as needed and must not be an input (the aliasing rule of
/// backend/backend.hpp); the defaults throw `value_error` when they are, and `shape_error` for
/// operands that do not fit, naming the function.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../shape.hpp"
#include "backend.hpp"

namespace selmask::bk {

namespace detail {
struct fill_with {
  float x;
  SELMASK_HOST_DEVICE float operator()(float) const { return x; }
};
/// The largest finite float, as a constexpr scalar (usable in device code as well).
inline constexpr float largest_float = std::numeric_limits<float>::max();
/// 1 for NaN and ±infinity, 0 for a finite value (comparisons only, so it runs on any device).
struct not_finite {
  SELMASK_HOST_DEVICE float operator()(float v) const {
    return v >= -largest_float && v <= largest_float ? 0.0f : 1.0f;
  }
};

inline std::size_t group_size(const char* who, std::size_t values, std::size_t groups) {
  if (groups == 0 || values % groups != 0) {
    throw shape_error(std::string(who) + ": " + std::to_string(values) + " logits do not form groups of " +
                      std::to_string(groups));
  }
  return values / groups;
}
} // namespace detail

/// A new tensor of shape `s` with every value `x`.
template <tensor_backend B>
tensor_t<B> full(const shape& s, float x) {
  if constexpr (requires { B::full(s, x); }) {
    return B::full(s, x);
  } else {
    tensor_t<B> t = B::zeros(s);
    B::map(t, t, detail::fill_with{x}); // in place: allowed for map
    return t;
  }
}

/// True when no value of `a` is NaN or infinite.
template <tensor_backend B>
bool all_finite(const tensor_t<B>& a) {
  if constexpr (requires { B::all_finite(a); }) {
    return B::all_finite(a);
  } else {
    tensor_t<B> flags;
    B::map(a, flags, detail::not_finite{});
    return B::sum(flags) == 0.0;
  }
}

/// Per group (cell) k of `w` (V×K values, version-major), `t[v·K+k] = softmax_v(w[v·K+k]·inv_tau)`.
template <tensor_backend B>
void softmax_groups(const tensor_t<B>& w, std::size_t groups, float inv_tau, tensor_t<B>& t) {
  if constexpr (requires { B::softmax_groups(w, groups, inv_tau, t); }) {
    B::softmax_groups(w, groups, inv_tau, t);
  } else {
    constexpr const char* who = "selmask::bk::softmax_groups";
    selmask::detail::check_distinct(who, t, "t", w, "w");
    const std::vector<float> pw = B::to_host(w);
    const std::size_t kc = detail::group_size(who, pw.size(), groups);
    std::vector<float> pt(pw.size());
    for (std::size_t k = 0; k < kc; ++k) {
      float m = pw[k] * inv_tau;
      for (std::size_t v = 1; v < groups; ++v) {
        m = std::max(m, pw[v * kc + k] * inv_tau);
      }
      float z = 0.0f;
      for (std::size_t v = 0; v < groups; ++v) {
        pt[v * kc + k] = std::exp(pw[v * kc + k] * inv_tau - m);
        z += pt[v * kc + k];
      }
      for (std::size_t v = 0; v < groups; ++v) {
        pt[v * kc + k] /= z;
      }
    }
    t = B::from_host(B::shape_of(w), pt);
  }
}

/// One-hot of the largest value of each group of `s` (V×K); ties go to the lowest version.
template <tensor_backend B>
void argmax_one_hot_groups(const tensor_t<B>& s, std::size_t groups, tensor_t<B>& t) {
  if constexpr (requires { B::argmax_one_hot_groups(s, groups, t); }) {
    B::argmax_one_hot_groups(s, groups, t);
  } else {
    constexpr const char* who = "selmask::bk::argmax_one_hot_groups";
    selmask::detail::check_distinct(who, t, "t", s, "s");
    const std::vector<float> ps = B::to_host(s);
    const std::size_t kc = detail::group_size(who, ps.size(), groups);
    std::vector<float> pt(ps.size(), 0.0f);
    for (std::size_t k = 0; k < kc; ++k) {
      std::size_t best = 0;
      for (std::size_t v = 1; v < groups; ++v) {
        best = ps[v * kc + k] > ps[best * kc + k] ? v : best;
      }
      pt[best * kc + k] = 1.0f;
    }
    t = B::from_host(B::shape_of(s), pt);
  }
}

/// Backward of `softmax_groups` from its output `s` and the output gradient `g`.
template <tensor_backend B>
void softmax_groups_backward(const tensor_t<B>& s, const tensor_t<B>& g, std::size_t groups, float inv_tau,
                             tensor_t<B>& t) {
  if constexpr (requires { B::softmax_groups_backward(s, g, groups, inv_tau, t); }) {
    B::softmax_groups_backward(s, g, groups, inv_tau, t);
  } else {
    constexpr const char* who = "selmask::bk::softmax_groups_backward";
    selmask::detail::check_distinct(who, t, "t", s, "s");
    selmask::detail::check_distinct(who, t, "t", g, "g");
    const std::vector<float> ps = B::to_host(s);
    const std::vector<float> pg = B::to_host(g);
    if (pg.size() != ps.size()) {
      throw shape_error(std::string(who) + ": gradient shape " + B::shape_of(g).str() + " differs from " +
                        B::shape_of(s).str());
    }
    const std::size_t kc = detail::group_size(who, ps.size(), groups);
    std::vector<float> pt(ps.size());
    for (std::size_t k = 0; k < kc; ++k) {
      float dot = 0.0f;
      for (std::size_t v = 0; v < groups; ++v) {
        dot += ps[v * kc + k] * pg[v * kc + k];
      }
      for (std::size_t v = 0; v < groups; ++v) {
        pt[v * kc + k] = ps[v * kc + k] * (pg[v * kc + k] - dot) * inv_tau;
      }
    }
    t = B::from_host(B::shape_of(s), pt);
  }
}

/// `a: N×V×R… → t: N×R…`, `t[n] = Σ_v w[v]·a[n, v]` (`w == nullptr`: weights 1).
template <tensor_backend B>
void sum_versions(const tensor_t<B>& a, const tensor_t<B>* w, tensor_t<B>& t) {
  if constexpr (requires { B::sum_versions(a, w, t); }) {
    B::sum_versions(a, w, t);
  } else {
    constexpr const char* who = "selmask::bk::sum_versions";
    selmask::detail::check_distinct(who, t, "t", a, "a");
    const shape s = B::shape_of(a);
    if (s.rank() < 2) {
      throw shape_error(std::string(who) + ": expected N×V×..., got " + s.str());
    }
    const std::size_t batch = s[0];
    const std::size_t versions = s[1];
    std::vector<float> pw(versions, 1.0f);
    if (w) {
      selmask::detail::check_distinct(who, t, "t", *w, "w");
      pw = B::to_host(*w);
      if (pw.size() != versions) {
        throw shape_error(std::string(who) + ": " + std::to_string(pw.size()) + " weights for " +
                          std::to_string(versions) + " versions");
      }
    }
    const std::vector<float> pa = B::to_host(a);
    const std::size_t r = batch * versions == 0 ? 0 : pa.size() / (batch * versions);
    std::vector<float> pt(batch * r, 0.0f);
    for (std::size_t n = 0; n < batch; ++n) {
      for (std::size_t v = 0; v < versions; ++v) {
        for (std::size_t i = 0; i < r; ++i) {
          pt[n * r + i] += pw[v] * pa[(n * versions + v) * r + i];
        }
      }
    }
    t = B::from_host(s.drop_front().drop_front().prepend(batch), pt);
  }
}

/// `a: N×R… → t: N×V×R…`, `t[n, v] = w[v]·a[n]` (`w == nullptr`: weights 1).
template <tensor_backend B>
void repeat_versions(const tensor_t<B>& a, std::size_t versions, const tensor_t<B>* w, tensor_t<B>& t) {
  if constexpr (requires { B::repeat_versions(a, versions, w, t); }) {
    B::repeat_versions(a, versions, w, t);
  } else {
    constexpr const char* who = "selmask::bk::repeat_versions";
    selmask::detail::check_distinct(who, t, "t", a, "a");
    const shape s = B::shape_of(a);
    if (s.rank() < 1) {
      throw shape_error(std::string(who) + ": expected N×..., got a scalar");
    }
    std::vector<float> pw(versions, 1.0f);
    if (w) {
      selmask::detail::check_distinct(who, t, "t", *w, "w");
      pw = B::to_host(*w);
      if (pw.size() != versions) {
        throw shape_error(std::string(who) + ": " + std::to_string(pw.size()) + " weights for " +
                          std::to_string(versions) + " versions");
      }
    }
    const std::vector<float> pa = B::to_host(a);
    const std::size_t batch = s[0];
    const std::size_t r = batch == 0 ? 0 : pa.size() / batch;
    std::vector<float> pt(batch * versions * r);
    for (std::size_t n = 0; n < batch; ++n) {
      for (std::size_t v = 0; v < versions; ++v) {
        for (std::size_t i = 0; i < r; ++i) {
          pt[(n * versions + v) * r + i] = pw[v] * pa[n * r + i];
        }
      }
    }
    t = B::from_host(s.drop_front().prepend(versions).prepend(batch), pt);
  }
}

} // namespace selmask::bk
