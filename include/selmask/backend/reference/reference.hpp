#pragma once
/// \file backend/reference/reference.hpp
/// `selmask::reference`: a backend that writes only the core of the backend concept
/// (backend/backend.hpp, plus `gemm` for the network kit) with naive loops over a
/// `std::vector<float>`. No xtensor, no BLAS, no threads: it compiles with any C++20 host
/// compiler. It serves two purposes — an independent second backend that the tests compare
/// the CPU backend against, and the worked example of writing a backend of your own.
///
/// ## Writing your own backend, step by step
///
/// 1. **A tensor type.** `B::tensor` owns dense row-major float32 storage and knows its shape.
///    It must be default-constructible and copyable (`std::semiregular`): the library keeps
///    default-constructed tensors as workspaces and hands them to the functions below as
///    outputs, which resize them. Here: a `std::vector<float>` and a `selmask::shape`.
/// 2. **Transfers.** `zeros`, `from_host` (check the value count), `to_host`, `shape_of`,
///    `reshape` (same size, new shape), `copy`. Everything else can be tested through these.
/// 3. **Elementwise.** `map(a, t, f)` and `map2(a, b, t, f)` resize `t` to `a`'s shape and
///    apply `f`, a functor marked `SELMASK_HOST_DEVICE` (so a device backend can call it in a
///    kernel); `axpy(x, a, t)` adds in place. These three (and `copy`) may write in place —
///    `t` may be the same object as `a` — so read `a[i]` before writing `t[i]`.
/// 4. **Reductions.** `sum(a)` accumulates in double.
/// 5. **Cell primitives.** Every mask granularity is a tiling of a sample `V×C×H×W` by boxes
///    (`cell_geometry`); `scale_cells` multiplies each value by its cell's number and
///    `reduce_cells` sums (products of) values into their cells over the whole batch. Use
///    `g.cell_of(i)` for the cell of offset `i` of a sample.
/// 6. **For the network kit, `gemm`.** `detail::check_gemm` computes and checks the sizes.
/// 7. **Check it** with `static_assert(selmask::tensor_backend<B>)` / `nn_backend<B>`, then add
///    `B` to the backend list of the tests (tests/support.hpp) and run them: every mask,
///    pipeline, cost and layer test then runs on your backend and compares with the truth.
/// 8. **Optionally, speed.** Everything else the library needs (`softmax_groups`,
///    `sum_versions`, `im2col`, `adamw_step`, ...) has a generic default in backend/ops.hpp and
///    backend/nn_ops.hpp, mostly a host round trip. Write a static member of the same name and
///    signature and the library uses it instead (the CPU and CUDA backends do this for all).
///
/// Throughout: a bad shape throws `selmask::shape_error` naming the function; an output that is
/// also an input of a non-elementwise function throws `selmask::value_error` (the aliasing rule
/// of backend/backend.hpp).

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../../error.hpp"
#include "../../granularity/geometry.hpp"
#include "../../shape.hpp"
#include "../backend.hpp"
#include "../nn_backend.hpp"

namespace selmask {

struct reference {
  /// Dense row-major float32 values and their shape.
  struct tensor {
    std::vector<float> values;
    selmask::shape extents;
  };
  static constexpr std::string_view name = "reference";

  // ---- storage and transfers --------------------------------------------------------------
  static tensor zeros(const shape& s) { return {std::vector<float>(s.size(), 0.0f), s}; }
  static tensor from_host(const shape& s, std::span<const float> host) {
    if (host.size() != s.size()) {
      throw shape_error("selmask::reference::from_host: " + std::to_string(host.size()) +
                        " values given for shape " + s.str() + " (" + std::to_string(s.size()) + " values)");
    }
    return {std::vector<float>(host.begin(), host.end()), s};
  }
  static std::vector<float> to_host(const tensor& t) { return t.values; }
  static shape shape_of(const tensor& t) { return t.extents; }
  static void reshape(tensor& t, const shape& s) {
    if (s.size() != t.values.size()) {
      throw shape_error("selmask::reference::reshape: cannot view " + t.extents.str() + " as " + s.str());
    }
    t.extents = s;
  }
  static void copy(const tensor& a, tensor& t) { t = a; }

  // ---- elementwise (may write in place) ----------------------------------------------------
  template <class F>
  static void map(const tensor& a, tensor& t, F f) {
    t.values.resize(a.values.size());
    t.extents = a.extents;
    for (std::size_t i = 0; i < a.values.size(); ++i) {
      t.values[i] = f(a.values[i]);
    }
  }
  template <class F>
  static void map2(const tensor& a, const tensor& b, tensor& t, F f) {
    if (a.values.size() != b.values.size()) {
      throw shape_error("selmask::reference::map2: operands have shapes " + a.extents.str() + " and " +
                        b.extents.str());
    }
    t.values.resize(a.values.size());
    t.extents = a.extents;
    for (std::size_t i = 0; i < a.values.size(); ++i) {
      t.values[i] = f(a.values[i], b.values[i]);
    }
  }
  static void axpy(float x, const tensor& a, tensor& t) {
    if (a.values.size() != t.values.size()) {
      throw shape_error("selmask::reference::axpy: operands have shapes " + a.extents.str() + " and " +
                        t.extents.str());
    }
    for (std::size_t i = 0; i < a.values.size(); ++i) {
      t.values[i] += x * a.values[i];
    }
  }

  // ---- reduction ---------------------------------------------------------------------------
  static double sum(const tensor& a) {
    double s = 0.0;
    for (float v : a.values) {
      s += static_cast<double>(v);
    }
    return s;
  }

  // ---- cell primitives ---------------------------------------------------------------------
  /// `t[n, i] = a[n, i] · c[cell(i)]`.
  static void scale_cells(const tensor& a, const tensor& c, const cell_geometry& g, tensor& t) {
    constexpr const char* who = "selmask::reference::scale_cells";
    detail::check_distinct(who, t, "t", a, "a");
    detail::check_distinct(who, t, "t", c, "c");
    const std::size_t per = samples_of(who, a, g);
    if (c.values.size() != g.cells()) {
      throw shape_error(std::string(who) + ": " + std::to_string(c.values.size()) +
                        " cell values for a grid of " + std::to_string(g.cells()) + " cells");
    }
    t.values.resize(a.values.size());
    t.extents = a.extents;
    for (std::size_t i = 0; i < a.values.size(); ++i) {
      t.values[i] = a.values[i] * c.values[g.cell_of(i % per)];
    }
  }
  /// `t[k] = Σ_n Σ_{i in cell k} a[n, i] · b[n, i]` (`b == nullptr`: `Σ a`); `t` gets the grid shape.
  static void reduce_cells(const tensor& a, const tensor* b, const cell_geometry& g, tensor& t) {
    constexpr const char* who = "selmask::reference::reduce_cells";
    detail::check_distinct(who, t, "t", a, "a");
    const std::size_t per = samples_of(who, a, g);
    if (b) {
      detail::check_distinct(who, t, "t", *b, "b");
      if (b->values.size() != a.values.size()) {
        throw shape_error(std::string(who) + ": operands have shapes " + a.extents.str() + " and " +
                          b->extents.str());
      }
    }
    std::vector<double> acc(g.cells(), 0.0);
    for (std::size_t i = 0; i < a.values.size(); ++i) {
      acc[g.cell_of(i % per)] += static_cast<double>(a.values[i] * (b ? b->values[i] : 1.0f));
    }
    t.values.assign(acc.begin(), acc.end());
    t.extents = g.grid_shape();
  }

  // ---- the network kit's one core function -------------------------------------------------
  /// `c = alpha·op(a)·op(b) + beta·c`, each tensor read as (first axis) × (all other axes).
  static void gemm(bool trans_a, bool trans_b, float alpha, const tensor& a, const tensor& b, float beta,
                   tensor& c) {
    constexpr const char* who = "selmask::reference::gemm";
    detail::check_distinct(who, c, "c", a, "a");
    detail::check_distinct(who, c, "c", b, "b");
    const auto [m, n, k, lda, ldb, c_fits] =
      detail::check_gemm(who, a.extents, b.extents, c.extents, trans_a, trans_b, beta);
    if (!c_fits) {
      c = zeros(shape{m, n});
    }
    for (std::size_t i = 0; i < m; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        double s = 0.0;
        for (std::size_t p = 0; p < k; ++p) {
          const float av = trans_a ? a.values[p * lda + i] : a.values[i * lda + p];
          const float bv = trans_b ? b.values[j * ldb + p] : b.values[p * ldb + j];
          s += static_cast<double>(av) * static_cast<double>(bv);
        }
        float& out = c.values[i * n + j];
        out = static_cast<float>(alpha * s) + (beta == 0.0f ? 0.0f : beta * out);
      }
    }
  }

private:
  /// Values per sample; throws unless `a` is a whole batch of samples of `g`.
  static std::size_t samples_of(const char* who, const tensor& a, const cell_geometry& g) {
    const std::size_t per = g.values();
    if (per == 0 || a.values.size() % per != 0) {
      throw shape_error(std::string(who) + ": tensor of shape " + a.extents.str() +
                        " is not a batch of samples of " + std::to_string(per) + " values");
    }
    return per;
  }
};

static_assert(tensor_backend<reference>, "selmask::reference must model selmask::tensor_backend");
static_assert(nn_backend<reference>, "selmask::reference must model selmask::nn_backend");

} // namespace selmask
