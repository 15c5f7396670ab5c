#pragma once
/// \file libtorch/aten.hpp
/// `selmask::aten`: a backend whose tensors are libtorch's `at::Tensor` (CPU, float32), written
/// from the core of the backend concept (backend/backend.hpp) plus `gemm` (backend/nn_backend.hpp)
/// with ATen's own operations; everything else the library uses comes from the generic defaults
/// (backend/ops.hpp, backend/nn_ops.hpp). Link `selmask::torch`.
///
/// Why a wrapper and not `at::Tensor` itself: the backend concept wants a regular value type
/// (a copy is a new tensor; two tensor objects never share memory), while copying an `at::Tensor`
/// copies a handle to the same storage. `selmask::aten::tensor` holds one `at::Tensor` and deep-
/// copies it on copy (`clone`, or `copy_` into storage of the same shape); moves move the handle.
/// `get()` gives the `at::Tensor` to hand to libtorch code without a copy (it shares the storage,
/// so keep it from outliving or aliasing the wrapper's use).
///
/// The cell primitives are ATen expressions: `scale_cells` expands the cell grid to a sample with
/// `repeat_interleave` along each axis (cropped to the sample at edge cells) and multiplies with
/// broadcasting; `reduce_cells` sums the batch in double, pads the sample to whole cells
/// (`constant_pad_nd`) and sums each cell's box as the axes of a reshaped view. `map` and `map2`
/// take selmask's C++ functors and loop over the contiguous data. Default-constructed tensors hold
/// no storage and read as empty.
///
/// This version runs on CPU tensors (Debian's libtorch, the one CI builds against, is CPU only);
/// a CUDA `at::Tensor` given to `aten::tensor` is refused with a `value_error`.

#include <ATen/ATen.h>

#include "glog_check.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../backend/backend.hpp"
#include "../backend/nn_backend.hpp"
#include "../error.hpp"
#include "../granularity/geometry.hpp"
#include "../shape.hpp"

namespace selmask {

struct aten {
  /// One dense, contiguous, float32 CPU `at::Tensor` with value semantics.
  class tensor {
  public:
    tensor() = default;
    /// Takes `t` without copying it (it must be a contiguous float32 CPU tensor); the caller must
    /// not write through other handles of its storage.
    explicit tensor(at::Tensor t) : t_(std::move(t)) {
      if (!t_.defined()) {
        return;
      }
      if (t_.scalar_type() != at::kFloat || !t_.device().is_cpu() || !t_.is_contiguous()) {
        throw value_error("selmask::aten::tensor: needs a contiguous float32 CPU tensor, got " +
                          std::string(t_.toString()) + (t_.is_contiguous() ? "" : " (not contiguous)"));
      }
    }
    tensor(const tensor& o) : t_(o.t_.defined() ? o.t_.clone() : at::Tensor{}) {}
    tensor& operator=(const tensor& o) {
      if (this == &o) {
        return *this;
      }
      if (t_.defined() && o.t_.defined() && t_.sizes() == o.t_.sizes()) {
        t_.copy_(o.t_); // same shape: reuse the storage
      } else {
        t_ = o.t_.defined() ? o.t_.clone() : at::Tensor{};
      }
      return *this;
    }
    tensor(tensor&&) noexcept = default;
    tensor& operator=(tensor&&) noexcept = default;
    ~tensor() = default;

    /// The `at::Tensor` (undefined for a default-constructed tensor).
    [[nodiscard]] const at::Tensor& get() const noexcept { return t_; }
    [[nodiscard]] at::Tensor& get() noexcept { return t_; }
    [[nodiscard]] std::size_t numel() const noexcept {
      return t_.defined() ? static_cast<std::size_t>(t_.numel()) : 0;
    }

  private:
    at::Tensor t_;
  };
  static constexpr std::string_view name = "aten";

  // ---- storage and transfers --------------------------------------------------------------
  static tensor zeros(const shape& s) { return tensor(at::zeros(sizes(s), at::kFloat)); }
  static tensor from_host(const shape& s, std::span<const float> host) {
    if (host.size() != s.size()) {
      throw shape_error("selmask::aten::from_host: " + std::to_string(host.size()) +
                        " values given for shape " + s.str() + " (" + std::to_string(s.size()) + " values)");
    }
    at::Tensor t = at::empty(sizes(s), at::kFloat);
    if (!host.empty()) {
      std::memcpy(t.data_ptr<float>(), host.data(), host.size() * sizeof(float));
    }
    return tensor(std::move(t));
  }
  static std::vector<float> to_host(const tensor& t) {
    if (t.numel() == 0) {
      return {};
    }
    const float* p = t.get().data_ptr<float>();
    return {p, p + t.numel()};
  }
  static shape shape_of(const tensor& t) {
    if (!t.get().defined()) {
      return shape{};
    }
    const auto d = t.get().sizes();
    return shape(d.begin(), d.end());
  }
  static void reshape(tensor& t, const shape& s) {
    if (s.size() != t.numel() || !t.get().defined()) {
      throw shape_error("selmask::aten::reshape: cannot view " + shape_of(t).str() + " as " + s.str());
    }
    t.get() = t.get().view(sizes(s));
  }
  static void copy(const tensor& a, tensor& t) { t = a; }

  // ---- elementwise (may write in place) ----------------------------------------------------
  template <class F>
  static void map(const tensor& a, tensor& t, F f) {
    resize_like(a, t);
    const float* in = data(a);
    float* out = data(t);
    for (std::size_t i = 0, n = a.numel(); i < n; ++i) {
      out[i] = f(in[i]);
    }
  }
  template <class F>
  static void map2(const tensor& a, const tensor& b, tensor& t, F f) {
    if (a.numel() != b.numel()) {
      throw shape_error("selmask::aten::map2: operands have shapes " + shape_of(a).str() + " and " +
                        shape_of(b).str());
    }
    resize_like(a, t);
    const float *pa = data(a), *pb = data(b);
    float* out = data(t);
    for (std::size_t i = 0, n = a.numel(); i < n; ++i) {
      out[i] = f(pa[i], pb[i]);
    }
  }
  static void axpy(float x, const tensor& a, tensor& t) {
    if (a.numel() != t.numel()) {
      throw shape_error("selmask::aten::axpy: operands have shapes " + shape_of(a).str() + " and " +
                        shape_of(t).str());
    }
    if (a.numel() != 0) {
      t.get().add_(a.get().view(t.get().sizes()), x);
    }
  }

  // ---- reduction ---------------------------------------------------------------------------
  static double sum(const tensor& a) {
    return a.numel() == 0 ? 0.0 : a.get().sum(at::kDouble).item<double>();
  }

  // ---- cell primitives ---------------------------------------------------------------------
  /// `t[n, i] = a[n, i] · c[cell(i)]`.
  static void scale_cells(const tensor& a, const tensor& c, const cell_geometry& g, tensor& t) {
    constexpr const char* who = "selmask::aten::scale_cells";
    detail::check_distinct(who, t, "t", a, "a");
    detail::check_distinct(who, t, "t", c, "c");
    const std::int64_t n = batch_of(who, a, g), per = static_cast<std::int64_t>(g.values());
    if (c.numel() != g.cells()) {
      throw shape_error(std::string(who) + ": " + std::to_string(c.numel()) + " cell values for a grid of " +
                        std::to_string(g.cells()) + " cells");
    }
    if (n == 0) {
      t = a;
      return;
    }
    // the cell grid expanded to one sample: each cell repeated over its box, cropped at the edges
    at::Tensor up = c.get().reshape(extents(g.grid));
    for (std::int64_t k = 0; k < 4; ++k) {
      const auto i = static_cast<std::size_t>(k);
      if (g.block[i] > 1) {
        up = up.repeat_interleave(static_cast<std::int64_t>(g.block[i]), k)
               .narrow(k, 0, static_cast<std::int64_t>(g.dims[i]));
      }
    }
    t.get() = (a.get().reshape({n, per}) * up.reshape({1, per})).view(a.get().sizes());
  }
  /// `t[k] = Σ_n Σ_{i in cell k} a[n, i] · b[n, i]` (`b == nullptr`: `Σ a`); `t` gets the grid shape.
  static void reduce_cells(const tensor& a, const tensor* b, const cell_geometry& g, tensor& t) {
    constexpr const char* who = "selmask::aten::reduce_cells";
    detail::check_distinct(who, t, "t", a, "a");
    const std::int64_t n = batch_of(who, a, g);
    if (b) {
      detail::check_distinct(who, t, "t", *b, "b");
      if (b->numel() != a.numel()) {
        throw shape_error(std::string(who) + ": operands have shapes " + shape_of(a).str() + " and " +
                          shape_of(*b).str());
      }
    }
    const auto grid = extents(g.grid);
    if (n == 0) {
      t = zeros(g.grid_shape());
      return;
    }
    // the products in float (as every backend forms them), the sums in double
    const at::Tensor p = b ? a.get() * b->get().view(a.get().sizes()) : a.get();
    std::vector<std::int64_t> batch{n};
    for (std::size_t d : g.dims) {
      batch.push_back(static_cast<std::int64_t>(d));
    }
    at::Tensor s = p.to(at::kDouble).reshape(batch).sum(0);
    // pad the sample to whole cells (pad pairs from the last axis), then sum each cell's box
    std::vector<std::int64_t> pad, boxes;
    for (std::size_t i = 4; i-- > 0;) {
      pad.push_back(0);
      pad.push_back(static_cast<std::int64_t>(g.grid[i] * g.block[i] - g.dims[i]));
    }
    for (std::size_t i = 0; i < 4; ++i) {
      boxes.push_back(grid[i]);
      boxes.push_back(static_cast<std::int64_t>(g.block[i]));
    }
    s = at::constant_pad_nd(s, pad, 0.0).reshape(boxes).sum({1, 3, 5, 7});
    t.get() = s.to(at::kFloat).reshape(sizes(g.grid_shape())).contiguous();
  }

  // ---- the network kit's one core function -------------------------------------------------
  /// `c = alpha·op(a)·op(b) + beta·c`, each tensor read as (first axis) × (all other axes).
  static void gemm(bool trans_a, bool trans_b, float alpha, const tensor& a, const tensor& b, float beta,
                   tensor& c) {
    constexpr const char* who = "selmask::aten::gemm";
    detail::check_distinct(who, c, "c", a, "a");
    detail::check_distinct(who, c, "c", b, "b");
    const auto [m, n, k, lda, ldb, c_fits] =
      detail::check_gemm(who, shape_of(a), shape_of(b), shape_of(c), trans_a, trans_b, beta);
    const auto i64 = [](std::size_t v) { return static_cast<std::int64_t>(v); };
    const auto matrix = [&](const tensor& x, std::size_t rows, std::size_t cols, bool trans) {
      const at::Tensor v =
        x.numel() == 0 ? at::zeros({i64(rows), i64(cols)}) : x.get().view({i64(rows), i64(cols)});
      return trans ? v.t() : v;
    };
    at::Tensor r = at::mm(matrix(a, trans_a ? k : m, lda, trans_a), matrix(b, trans_b ? n : k, ldb, trans_b));
    if (alpha != 1.0f) {
      r.mul_(alpha);
    }
    if (!c_fits) {
      c = tensor(r.contiguous());
      return;
    }
    at::Tensor cv = c.get().view({i64(m), i64(n)});
    if (beta == 0.0f) {
      cv.copy_(r); // β = 0 ignores what c held (NaN included)
    } else {
      cv.mul_(beta).add_(r);
    }
  }

private:
  static std::vector<std::int64_t> sizes(const shape& s) {
    std::vector<std::int64_t> d;
    for (std::size_t e : s) {
      d.push_back(static_cast<std::int64_t>(e));
    }
    return d;
  }
  static std::vector<std::int64_t> extents(const std::array<std::size_t, 4>& e) {
    return {static_cast<std::int64_t>(e[0]), static_cast<std::int64_t>(e[1]), static_cast<std::int64_t>(e[2]),
            static_cast<std::int64_t>(e[3])};
  }
  static const float* data(const tensor& t) { return t.numel() == 0 ? nullptr : t.get().data_ptr<float>(); }
  static float* data(tensor& t) { return t.numel() == 0 ? nullptr : t.get().data_ptr<float>(); }
  /// `t` takes `a`'s shape: a new view when it already holds as many values (so that `t` may be
  /// one of the operands of an elementwise function), else new storage.
  static void resize_like(const tensor& a, tensor& t) {
    if (&a == &t) {
      return;
    }
    const at::IntArrayRef want = a.get().defined() ? a.get().sizes() : at::IntArrayRef{};
    if (!a.get().defined()) {
      t = tensor{};
    } else if (t.get().defined() && t.numel() == a.numel()) {
      t.get() = t.get().view(want);
    } else {
      t.get() = at::empty(want, at::kFloat);
    }
  }
  /// Samples in `a`; throws unless `a` is a whole batch of samples of `g`.
  static std::int64_t batch_of(const char* who, const tensor& a, const cell_geometry& g) {
    const std::size_t per = g.values();
    if (per == 0 || a.numel() % per != 0) {
      throw shape_error(std::string(who) + ": tensor of shape " + shape_of(a).str() +
                        " is not a batch of samples of " + std::to_string(per) + " values");
    }
    return static_cast<std::int64_t>(a.numel() / per);
  }
};

static_assert(tensor_backend<aten>, "selmask::aten must model selmask::tensor_backend");
static_assert(nn_backend<aten>, "selmask::aten must model selmask::nn_backend");

} // namespace selmask
