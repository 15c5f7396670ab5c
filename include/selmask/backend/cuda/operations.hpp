#pragma once
/// \file backend/cuda/operations.hpp
/// `detail::cuda_backend<Exec>`: every operation of `tensor_backend` and `nn_backend`
/// (backend/backend.hpp, backend/nn_backend.hpp) for the CUDA backend, written once over an
/// *executor* `Exec` that owns memory and runs kernel bodies. `selmask::cuda` (backend/cuda/cuda.cuh)
/// is this template over the GPU executor; `selmask::cuda_host_emulation`
/// (backend/cuda/host_emulator.hpp) over a host executor, for tests without a GPU.
///
/// The semantics are those of `selmask::cpu` (backend/cpu/cpu.hpp), including the argument checks
/// and their messages ("selmask::cuda::<op>: ..."); results agree with the CPU's up to float
/// rounding (other summation orders in GEMM and reductions, fused multiply-adds, the device's
/// `exp`). Every reduction is deterministic (backend/cuda/kernels.hpp), so the same inputs give
/// the same bits on every run — the same seed gives the same hard masks.
///
/// An executor provides (all static):
/// | member                                   | effect                                               |
/// |------------------------------------------|------------------------------------------------------|
/// | `name`                                   | a `std::string_view`                                 |
/// | `allocate(bytes)`, `deallocate(p)`       | device memory (null for 0 bytes; `deallocate` noexcept) |
/// | `to_device(d, h, bytes)`                 | host → device; the host buffer is free on return     |
/// | `to_host(h, d, bytes)`                   | device → host, waits for all queued work             |
/// | `device_copy(d, s, bytes)`, `fill_zero(d, bytes)` | device copies and zeroing                   |
/// | `for_each(n, f)`                         | runs the kernel body `f(i)` for every `i < n`        |
/// | `gemm_column_major(ta, tb, m, n, k, α, a, lda, b, ldb, β, c, ldc)` | BLAS `sgemm`, column-major |
/// | `synchronize()`                          | waits for all queued work                            |
///
/// Plain C++ (no CUDA header): what needs the CUDA runtime is the executor's business, so this
/// header compiles with a host compiler as well as with nvcc.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../../error.hpp"
#include "../../granularity/geometry.hpp"
#include "../../shape.hpp"
#include "../backend.hpp"
#include "../nn_backend.hpp"
#include "kernels.hpp"
#include "tensor.hpp"

namespace selmask::detail {

/// A temporary device array of `T` (index lists, labels, partial sums), freed stream-ordered.
template <class T, class Exec>
class device_array {
public:
  explicit device_array(std::size_t n) : data_(static_cast<T*>(Exec::allocate(n * sizeof(T)))), size_(n) {}
  device_array(const device_array&) = delete;
  device_array& operator=(const device_array&) = delete;
  ~device_array() { Exec::deallocate(data_); }

  [[nodiscard]] T* data() noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  void upload(std::span<const T> host) { Exec::to_device(data_, host.data(), host.size() * sizeof(T)); }
  /// Copies to the host after all queued work.
  [[nodiscard]] std::vector<T> download() const {
    std::vector<T> out(size_);
    Exec::to_host(out.data(), data_, size_ * sizeof(T));
    return out;
  }

private:
  T* data_;
  std::size_t size_;
};

template <class Exec>
struct cuda_backend {
  using tensor = basic_device_tensor<Exec>;
  using executor = Exec;

  // ---- memory -------------------------------------------------------------------------------
  static tensor zeros(const shape& s) {
    tensor t(s);
    Exec::fill_zero(t.data(), t.size() * sizeof(float));
    return t;
  }
  static tensor full(const shape& s, float x) {
    tensor t(s);
    Exec::for_each(t.size(), kernels::fill_fn{t.data(), x});
    return t;
  }
  static tensor from_host(const shape& s, std::span<const float> host) {
    if (host.size() != s.size()) {
      throw shape_error("selmask::cuda::from_host: " + std::to_string(host.size()) +
                        " values given for shape " + s.str() + " (" + std::to_string(s.size()) + " values)");
    }
    tensor t(s);
    Exec::to_device(t.data(), host.data(), host.size() * sizeof(float));
    return t;
  }
  /// The values on the host (waits for the work queued before).
  static std::vector<float> to_host(const tensor& t) {
    std::vector<float> v(t.size());
    if (!v.empty()) {
      Exec::to_host(v.data(), t.data(), v.size() * sizeof(float));
    }
    return v;
  }
  static shape shape_of(const tensor& t) { return t.dims(); }
  static void reshape(tensor& t, const shape& s) {
    if (s.size() != t.size()) {
      throw shape_error("selmask::cuda::reshape: cannot view " + t.dims().str() + " as " + s.str());
    }
    t.reshape(s);
  }
  static void copy(const tensor& a, tensor& t) {
    if (&a == &t) {
      return;
    }
    ensure_shape(t, a.dims());
    Exec::device_copy(t.data(), a.data(), a.size() * sizeof(float));
  }
  /// Gives `t` shape `s` unless it has it (workspaces are reused across batches).
  static void ensure_shape(tensor& t, const shape& s) {
    if (!(t.dims() == s) || (t.size() == 0 && s.size() != 0)) {
      t.resize(s);
    }
  }
  /// Blocks until all queued work is done.
  static void synchronize() { Exec::synchronize(); }

  // ---- elementwise ----------------------------------------------------------------------------
  /// `t[i] = f(a[i])`; `f` is a trivially copyable SELMASK_HOST_DEVICE functor.
  template <class F>
  static void map(const tensor& a, tensor& t, F f) {
    ensure_shape(t, a.dims());
    Exec::for_each(a.size(), kernels::map_fn<F>{a.data(), t.data(), f});
  }
  template <class F>
  static void map2(const tensor& a, const tensor& b, tensor& t, F f) {
    if (a.size() != b.size()) {
      throw shape_error("selmask::cuda::map2: operands have shapes " + a.dims().str() + " and " +
                        b.dims().str());
    }
    ensure_shape(t, a.dims());
    Exec::for_each(a.size(), kernels::map2_fn<F>{a.data(), b.data(), t.data(), f});
  }
  static void axpy(float x, const tensor& a, tensor& t) {
    if (a.size() != t.size()) {
      throw shape_error("selmask::cuda::axpy: operands have shapes " + a.dims().str() + " and " +
                        t.dims().str());
    }
    Exec::for_each(a.size(), kernels::axpy_fn{x, a.data(), t.data()});
  }

  // ---- reductions (to the host: these wait for the queued work) ---------------------------------
  static double sum(const tensor& a) {
    double s = 0.0;
    for (double p : segment_partials(1, a.size(), kernels::values_of{a.data(), a.size()})) {
      s += p;
    }
    return s;
  }
  static bool all_finite(const tensor& a) {
    for (double p : segment_partials(1, a.size(), kernels::non_finite_of{a.data(), a.size()})) {
      if (p != 0.0) {
        return false;
      }
    }
    return true;
  }

  // ---- cell grids -----------------------------------------------------------------------------
  /// `t[n, i] = a[n, i] · c[cell(i)]`, `a` of shape N×(sample), `c` of `g.cells()` values.
  static void scale_cells(const tensor& a, const tensor& c, const cell_geometry& g, tensor& t) {
    const std::size_t per = check_cells("scale_cells", a, c, g);
    if (&t == &c) {
      throw shape_error("selmask::cuda::scale_cells: the output must not be the cell values");
    }
    ensure_shape(t, a.dims());
    Exec::for_each(a.size(),
                   kernels::scale_cells_fn{a.data(), c.data(), t.data(), kernels::grid_geometry::of(g), per});
  }
  /// `t[k] = Σ_n Σ_{i in cell k} a[n, i] · b[n, i]` (`b == nullptr`: `Σ a`); `t` gets the grid shape.
  static void reduce_cells(const tensor& a, const tensor* b, const cell_geometry& g, tensor& t) {
    const std::size_t per = g.values();
    if (per == 0 || a.size() % per != 0) {
      throw shape_error("selmask::cuda::reduce_cells: tensor of shape " + a.dims().str() +
                        " is not a batch of samples of " + std::to_string(per) + " values");
    }
    if (b && b->size() != a.size()) {
      throw shape_error("selmask::cuda::reduce_cells: operands have shapes " + a.dims().str() + " and " +
                        b->dims().str());
    }
    if (&t == &a || &t == b) {
      throw shape_error("selmask::cuda::reduce_cells: the output must not be an input");
    }
    ensure_shape(t, g.grid_shape());
    const std::size_t batch = a.size() / per;
    std::size_t largest = 1; // members of the largest (first) cell
    for (std::size_t ax = 0; ax < 4; ++ax) {
      largest *= std::min(g.block[ax], g.dims[ax]);
    }
    segmented_reduce(
      g.cells(), batch * largest,
      kernels::cell_members{a.data(), b ? b->data() : nullptr, kernels::grid_geometry::of(g), batch},
      kernels::store_float{t.data()});
  }

  // ---- grouped softmax (xOr masks; logits laid out V×K, group = one cell k) ------------------
  static void softmax_groups(const tensor& w, std::size_t groups, float inv_tau, tensor& t) {
    const std::size_t k = check_groups("softmax_groups", w, groups);
    ensure_shape(t, w.dims());
    Exec::for_each(k, kernels::softmax_groups_fn{w.data(), t.data(), groups, k, inv_tau});
  }
  /// One-hot of the largest value of each group; ties go to the lowest version index.
  static void argmax_one_hot_groups(const tensor& s, std::size_t groups, tensor& t) {
    const std::size_t k = check_groups("argmax_one_hot_groups", s, groups);
    ensure_shape(t, s.dims());
    Exec::for_each(k, kernels::argmax_one_hot_fn{s.data(), t.data(), groups, k});
  }
  static void softmax_groups_backward(const tensor& s, const tensor& g, std::size_t groups, float inv_tau,
                                      tensor& t) {
    const std::size_t k = check_groups("softmax_groups_backward", s, groups);
    if (g.size() != s.size()) {
      throw shape_error("selmask::cuda::softmax_groups_backward: gradient shape " + g.dims().str() +
                        " differs from " + s.dims().str());
    }
    ensure_shape(t, s.dims());
    Exec::for_each(k, kernels::softmax_groups_backward_fn{s.data(), g.data(), t.data(), groups, k, inv_tau});
  }

  // ---- versions ------------------------------------------------------------------------------
  /// `a: N×V×R → t: N×R`, `t[n] = Σ_v w[v]·a[n, v]` (`w == nullptr`: weights 1).
  static void sum_versions(const tensor& a, const tensor* w, tensor& t) {
    const shape as = a.dims();
    if (as.rank() < 2) {
      throw shape_error("selmask::cuda::sum_versions: expected N×V×..., got " + as.str());
    }
    const std::size_t batch = as[0];
    const std::size_t versions = as[1];
    if (w && w->size() != versions) {
      throw shape_error("selmask::cuda::sum_versions: " + std::to_string(w->size()) + " weights for " +
                        std::to_string(versions) + " versions");
    }
    const std::size_t r = batch * versions == 0 ? 0 : a.size() / (batch * versions);
    shape out{batch};
    for (std::size_t i = 2; i < as.rank(); ++i) {
      out = append(out, as[i]);
    }
    if (&t == &a || (w && &t == w)) {
      throw shape_error("selmask::cuda::sum_versions: the output must not be an input");
    }
    ensure_shape(t, out);
    Exec::for_each(batch * r,
                   kernels::sum_versions_fn{a.data(), w ? w->data() : nullptr, t.data(), versions, r});
  }
  /// `a: N×R → t: N×V×R`, `t[n, v] = w[v]·a[n]` (`w == nullptr`: weights 1).
  static void repeat_versions(const tensor& a, std::size_t versions, const tensor* w, tensor& t) {
    const shape as = a.dims();
    if (as.rank() < 1) {
      throw shape_error("selmask::cuda::repeat_versions: expected N×..., got a scalar");
    }
    if (w && w->size() != versions) {
      throw shape_error("selmask::cuda::repeat_versions: " + std::to_string(w->size()) + " weights for " +
                        std::to_string(versions) + " versions");
    }
    const std::size_t batch = as[0];
    const std::size_t r = batch == 0 ? 0 : a.size() / batch;
    shape out{batch, versions};
    for (std::size_t i = 1; i < as.rank(); ++i) {
      out = append(out, as[i]);
    }
    if (&t == &a || (w && &t == w)) {
      throw shape_error("selmask::cuda::repeat_versions: the output must not be an input");
    }
    ensure_shape(t, out);
    Exec::for_each(batch * versions * r,
                   kernels::repeat_versions_fn{a.data(), w ? w->data() : nullptr, t.data(), versions, r});
  }

  // ---- gather / scatter ----------------------------------------------------------------------
  /// `t[j] = a[idx[j]]`; `t` is resized to a flat tensor of `idx.size()` values.
  static void gather(const tensor& a, std::span<const std::size_t> idx, tensor& t) {
    for (std::size_t j = 0; j < idx.size(); ++j) {
      if (idx[j] >= a.size()) {
        throw shape_error("selmask::cuda::gather: index " + std::to_string(idx[j]) + " out of range for " +
                          std::to_string(a.size()) + " values");
      }
    }
    if (&t == &a) {
      throw shape_error("selmask::cuda::gather: the output must not be the input");
    }
    ensure_shape(t, shape{idx.size()});
    if (idx.empty()) {
      return;
    }
    device_array<std::size_t, Exec> d(idx.size());
    d.upload(idx);
    Exec::for_each(idx.size(), kernels::gather_fn{a.data(), d.data(), t.data()});
  }
  /// `t[idx[j]] = a[j]`; `t` keeps its shape and its other values. A repeated index takes the
  /// value of its last occurrence, as on the CPU.
  static void scatter(const tensor& a, std::span<const std::size_t> idx, tensor& t) {
    if (a.size() != idx.size()) {
      throw shape_error("selmask::cuda::scatter: " + std::to_string(a.size()) + " values for " +
                        std::to_string(idx.size()) + " indices");
    }
    for (std::size_t j = 0; j < idx.size(); ++j) {
      if (idx[j] >= t.size()) {
        throw shape_error("selmask::cuda::scatter: index " + std::to_string(idx[j]) + " out of range for " +
                          std::to_string(t.size()) + " values");
      }
    }
    if (&t == &a) {
      throw shape_error("selmask::cuda::scatter: the output must not be the input");
    }
    if (idx.empty()) {
      return;
    }
    // one writer per target: keep the last occurrence of every index
    std::vector<std::pair<std::size_t, std::size_t>> order(idx.size());
    for (std::size_t j = 0; j < idx.size(); ++j) {
      order[j] = {idx[j], j};
    }
    std::sort(order.begin(), order.end());
    std::vector<std::size_t> dst;
    std::vector<std::size_t> src;
    for (std::size_t j = 0; j < order.size(); ++j) {
      if (j + 1 == order.size() || order[j + 1].first != order[j].first) {
        dst.push_back(order[j].first);
        src.push_back(order[j].second);
      }
    }
    device_array<std::size_t, Exec> d_dst(dst.size());
    device_array<std::size_t, Exec> d_src(src.size());
    d_dst.upload(dst);
    d_src.upload(src);
    Exec::for_each(dst.size(), kernels::scatter_fn{a.data(), d_dst.data(), d_src.data(), t.data()});
  }

  // ---- network kit primitives ----------------------------------------------------------------

  /// `c = alpha·op(a)·op(b) + beta·c` through the executor's column-major GEMM (cuBLAS): the
  /// row-major product C = op(A)·op(B) is the column-major product Cᵀ = op(B)ᵀ·op(A)ᵀ, and a
  /// row-major buffer read column-major is the transpose, so the call swaps the operands and
  /// keeps their transpose flags. Matrix views and resizing as `cpu::gemm`.
  static void gemm(bool trans_a, bool trans_b, float alpha, const tensor& a, const tensor& b, float beta,
                   tensor& c) {
    if (&c == &a || &c == &b) {
      throw shape_error("selmask::cuda::gemm: the output must not be an operand");
    }
    const auto [m, n, k, ac, bc, c_fits] =
      detail::check_gemm("selmask::cuda::gemm", a.dims(), b.dims(), c.dims(), trans_a, trans_b, beta);
    if (!c_fits) {
      c.resize(shape{m, n});
    }
    if (m == 0 || n == 0) {
      return;
    }
    if (k == 0) {
      Exec::for_each(c.size(), kernels::scale_fn{c.data(), beta});
      return;
    }
    Exec::gemm_column_major(trans_b, trans_a, blas_int(n), blas_int(m), blas_int(k), alpha, b.data(),
                            blas_int(bc), a.data(), blas_int(ac), beta, c.data(), blas_int(n));
  }

  /// conv2d lowering, stride 1, zero padding `pad`: `x: N×C×H×W → col: (C·kh·kw) × (N·OH·OW)`
  /// (layout as `cpu::im2col`).
  static void im2col(const tensor& x, std::size_t kh, std::size_t kw, std::size_t pad, tensor& col) {
    const kernels::conv_geometry d = conv_dims_of("im2col", x.dims(), kh, kw, pad);
    if (&col == &x) {
      throw shape_error("selmask::cuda::im2col: the output must not be the input");
    }
    ensure_shape(col, shape{d.c * kh * kw, d.n * d.oh * d.ow});
    Exec::for_each(col.size(), kernels::im2col_fn{x.data(), col.data(), d});
  }
  /// The adjoint of `im2col`: `dx` (shape `x_shape`) gets the sum of the column entries that read
  /// each input value.
  static void col2im(const tensor& col, const shape& x_shape, std::size_t kh, std::size_t kw, std::size_t pad,
                     tensor& dx) {
    const kernels::conv_geometry d = conv_dims_of("col2im", x_shape, kh, kw, pad);
    const std::size_t np = d.n * d.oh * d.ow;
    if (col.size() != d.c * kh * kw * np) {
      throw shape_error("selmask::cuda::col2im: columns of shape " + col.dims().str() +
                        " do not fit an input of shape " + x_shape.str() + " (expected [" +
                        std::to_string(d.c * kh * kw) + "," + std::to_string(np) + "])");
    }
    if (&dx == &col) {
      throw shape_error("selmask::cuda::col2im: the output must not be the input");
    }
    ensure_shape(dx, x_shape);
    Exec::for_each(dx.size(), kernels::col2im_fn{col.data(), dx.data(), d});
  }

  /// `a: A×B×R… → t: B×A×R…`.
  static void swap_leading_axes(const tensor& a, tensor& t) {
    shape s = a.dims();
    if (s.rank() < 2) {
      throw shape_error("selmask::cuda::swap_leading_axes: expected rank >= 2, got " + s.str());
    }
    if (&t == &a) {
      throw shape_error("selmask::cuda::swap_leading_axes: the output must not be the input");
    }
    const std::size_t d0 = s[0];
    const std::size_t d1 = s[1];
    std::swap(s[0], s[1]);
    ensure_shape(t, s);
    const std::size_t r = d0 * d1 == 0 ? 0 : a.size() / (d0 * d1);
    Exec::for_each(a.size(), kernels::swap_leading_axes_fn{a.data(), t.data(), d0, d1, r});
  }

  /// `y[n, c, …] += b[c]`.
  static void add_bias(tensor& y, const tensor& b) {
    const auto [batch, ch, r] = channel_view("add_bias", y, b);
    Exec::for_each(batch * ch * r, kernels::add_bias_fn{y.data(), b.data(), ch, r});
  }
  /// `db[c] += Σ_{n, …} g[n, c, …]` (accumulates).
  static void bias_grad(const tensor& g, tensor& db) {
    const auto [batch, ch, r] = channel_view("bias_grad", g, db);
    segmented_reduce(ch, batch * r, kernels::channel_members{g.data(), batch, ch, r},
                     kernels::accumulate_float{db.data()});
  }

  /// `y = max(x, 0)` (NaN stays NaN).
  static void relu_forward(const tensor& x, tensor& y) {
    ensure_shape(y, x.dims());
    Exec::for_each(x.size(), kernels::relu_forward_fn{x.data(), y.data()});
  }
  /// `dx = g · [y > 0]` where `y` is the forward output.
  static void relu_backward(const tensor& y, const tensor& g, tensor& dx) {
    if (y.size() != g.size()) {
      throw shape_error("selmask::cuda::relu_backward: gradient shape " + g.dims().str() +
                        " differs from the output shape " + y.dims().str());
    }
    ensure_shape(dx, g.dims());
    Exec::for_each(g.size(), kernels::relu_backward_fn{y.data(), g.data(), dx.data()});
  }

  /// 2×2 max-pool, stride 2 (as `cpu::maxpool2_forward`).
  static void maxpool2_forward(const tensor& x, tensor& y, tensor& idx) {
    const shape xs = x.dims();
    if (xs.rank() != 4) {
      throw shape_error("selmask::cuda::maxpool2_forward: expected N×C×H×W, got " + xs.str());
    }
    if (&y == &x || &idx == &x || &y == &idx) {
      throw shape_error("selmask::cuda::maxpool2_forward: outputs must be distinct from the input");
    }
    const std::size_t oh = xs[2] / 2;
    const std::size_t ow = xs[3] / 2;
    const shape out{xs[0], xs[1], oh, ow};
    ensure_shape(y, out);
    ensure_shape(idx, out);
    Exec::for_each(out.size(),
                   kernels::maxpool2_forward_fn{x.data(), y.data(), idx.data(), xs[2], xs[3], oh, ow});
  }
  /// `dx` (shape `x_shape`) gets `g` at the maxima recorded in `idx`, 0 elsewhere.
  static void maxpool2_backward(const tensor& g, const tensor& idx, const shape& x_shape, tensor& dx) {
    if (x_shape.rank() != 4) {
      throw shape_error("selmask::cuda::maxpool2_backward: expected an N×C×H×W input shape, got " +
                        x_shape.str());
    }
    const std::size_t oh = x_shape[2] / 2;
    const std::size_t ow = x_shape[3] / 2;
    const shape out{x_shape[0], x_shape[1], oh, ow};
    if (!(g.dims() == out) || !(idx.dims() == out)) {
      throw shape_error("selmask::cuda::maxpool2_backward: gradient " + g.dims().str() + " and indices " +
                        idx.dims().str() + " must have the pooled shape " + out.str() + " of input " +
                        x_shape.str());
    }
    if (&dx == &g || &dx == &idx) {
      throw shape_error("selmask::cuda::maxpool2_backward: the output must not be an input");
    }
    ensure_shape(dx, x_shape);
    Exec::fill_zero(dx.data(), dx.size() * sizeof(float));
    Exec::for_each(out.size(), kernels::maxpool2_backward_fn{g.data(), idx.data(), dx.data(), x_shape[2],
                                                             x_shape[3], oh, ow});
  }

  /// Softmax cross-entropy of logits `N×K` against host `labels` (as
  /// `cpu::softmax_cross_entropy`): returns the summed loss and the number of correct samples
  /// (waits for the queued work); `grad` gets `(softmax − onehot) / N`.
  static cross_entropy_result softmax_cross_entropy(const tensor& logits,
                                                    std::span<const std::int32_t> labels, tensor& grad) {
    const shape ls = logits.dims();
    if (ls.rank() != 2) {
      throw shape_error("selmask::cuda::softmax_cross_entropy: expected logits N×K, got " + ls.str());
    }
    const std::size_t batch = ls[0];
    const std::size_t k_count = ls[1];
    if (labels.size() != batch) {
      throw shape_error("selmask::cuda::softmax_cross_entropy: " + std::to_string(labels.size()) +
                        " labels for logits of shape " + ls.str());
    }
    if (k_count == 0) {
      throw shape_error("selmask::cuda::softmax_cross_entropy: logits of shape " + ls.str() +
                        " have no classes");
    }
    for (std::size_t n = 0; n < batch; ++n) {
      const std::int32_t y = labels[n];
      if (y < 0 || static_cast<std::size_t>(y) >= k_count) {
        throw value_error("selmask::cuda::softmax_cross_entropy: label " + std::to_string(y) + " of sample " +
                          std::to_string(n) + " is outside [0, " + std::to_string(k_count) + ")");
      }
    }
    if (&grad == &logits) {
      throw shape_error("selmask::cuda::softmax_cross_entropy: the gradient must not be the logits");
    }
    ensure_shape(grad, ls);
    cross_entropy_result r;
    if (batch == 0) {
      return r;
    }
    device_array<std::int32_t, Exec> d_labels(batch);
    device_array<double, Exec> d_loss(batch);
    device_array<std::int32_t, Exec> d_correct(batch);
    d_labels.upload(labels);
    Exec::for_each(batch, kernels::softmax_cross_entropy_fn{logits.data(), d_labels.data(), grad.data(),
                                                            d_loss.data(), d_correct.data(), k_count,
                                                            1.0f / static_cast<float>(batch)});
    const std::vector<double> loss = d_loss.download();
    const std::vector<std::int32_t> correct = d_correct.download();
    for (std::size_t n = 0; n < batch; ++n) { // in sample order, as the CPU adds them
      r.loss_sum += loss[n];
      r.correct += static_cast<std::size_t>(correct[n]);
    }
    return r;
  }

  /// One AdamW update (PyTorch's semantics, see `adamw_hyper`) of `param` with `grad`.
  static void adamw_step(tensor& param, const tensor& grad, tensor& m, tensor& v, tensor& vmax,
                         const adamw_hyper& h, std::size_t step) {
    const std::size_t n = param.size();
    if (grad.size() != n || m.size() != n || v.size() != n || (h.amsgrad && vmax.size() != n)) {
      throw shape_error("selmask::cuda::adamw_step: parameter " + param.dims().str() + ", gradient " +
                        grad.dims().str() + ", moments " + m.dims().str() + " / " + v.dims().str() +
                        (h.amsgrad ? " / " + vmax.dims().str() : "") + " must have the same size");
    }
    if (step == 0) {
      throw value_error("selmask::cuda::adamw_step: step counts from 1, got 0");
    }
    const double t = static_cast<double>(step);
    const double bc1 = 1.0 - std::pow(static_cast<double>(h.beta1), t);
    const double bc2 = 1.0 - std::pow(static_cast<double>(h.beta2), t);
    Exec::for_each(n, kernels::adamw_fn{param.data(), grad.data(), m.data(), v.data(),
                                        h.amsgrad ? vmax.data() : nullptr, h.beta1, h.beta2, h.eps,
                                        1.0f - h.lr * h.weight_decay,
                                        static_cast<float>(static_cast<double>(h.lr) / bc1),
                                        static_cast<float>(1.0 / std::sqrt(bc2))});
  }

private:
  /// Number of partial sums per segment: enough threads to fill a large GPU, at least ~16
  /// members per thread, at most 1024 partials per segment. Depends on the shapes only.
  static std::size_t chunks_for(std::size_t segments, std::size_t longest) {
    const std::size_t by_work = (longest + 15) / 16;
    const std::size_t by_threads = (std::size_t{1} << 16) / std::max<std::size_t>(segments, 1) + 1;
    return std::max<std::size_t>(1, std::min({by_work, by_threads, std::size_t{1024}}));
  }
  /// First pass of a segmented reduction; the partial sums stay on the device.
  template <class V>
  static void segment_partials_on_device(std::size_t segments, std::size_t chunks, const V& value,
                                         double* partial) {
    Exec::for_each(segments * chunks, kernels::segment_partials_fn<V>{value, chunks, partial});
  }
  /// Both passes on the device: `finish(s, Σ segment s)` for every segment.
  template <class V, class Finish>
  static void segmented_reduce(std::size_t segments, std::size_t longest, const V& value,
                               const Finish& finish) {
    if (segments == 0) {
      return;
    }
    const std::size_t chunks = chunks_for(segments, longest);
    device_array<double, Exec> partial(segments * chunks);
    segment_partials_on_device(segments, chunks, value, partial.data());
    Exec::for_each(segments, kernels::segment_combine_fn<Finish>{partial.data(), chunks, finish});
  }
  /// The partial sums of a one-segment reduction, on the host (adding them in order is the
  /// second pass).
  template <class V>
  static std::vector<double> segment_partials(std::size_t segments, std::size_t longest, const V& value) {
    if (longest == 0) {
      return {};
    }
    const std::size_t chunks = chunks_for(segments, longest);
    device_array<double, Exec> partial(segments * chunks);
    segment_partials_on_device(segments, chunks, value, partial.data());
    return partial.download();
  }

  static shape append(const shape& s, std::size_t e) {
    std::size_t d[shape::max_rank + 1];
    std::size_t r = 0;
    for (std::size_t x : s) {
      d[r++] = x;
    }
    d[r++] = e;
    return shape(d, d + r);
  }

  static std::size_t check_cells(const char* op, const tensor& a, const tensor& c, const cell_geometry& g) {
    const std::size_t per = g.values();
    if (per == 0 || a.size() % per != 0) {
      throw shape_error(std::string("selmask::cuda::") + op + ": tensor of shape " + a.dims().str() +
                        " is not a batch of samples of " + std::to_string(per) + " values");
    }
    if (c.size() != g.cells()) {
      throw shape_error(std::string("selmask::cuda::") + op + ": " + std::to_string(c.size()) +
                        " cell values for a grid of " + std::to_string(g.cells()) + " cells");
    }
    return per;
  }
  static std::size_t check_groups(const char* op, const tensor& w, std::size_t groups) {
    if (groups == 0 || w.size() % groups != 0) {
      throw shape_error(std::string("selmask::cuda::") + op + ": " + std::to_string(w.size()) +
                        " logits do not form groups of " + std::to_string(groups));
    }
    return w.size() / groups;
  }
  static kernels::conv_geometry conv_dims_of(const char* op, const shape& x, std::size_t kh, std::size_t kw,
                                             std::size_t pad) {
    if (x.rank() != 4) {
      throw shape_error(std::string("selmask::cuda::") + op + ": expected an N×C×H×W input, got " + x.str());
    }
    if (kh == 0 || kw == 0 || x[2] + 2 * pad < kh || x[3] + 2 * pad < kw) {
      throw shape_error(std::string("selmask::cuda::") + op + ": a " + std::to_string(kh) + "x" +
                        std::to_string(kw) + " kernel with padding " + std::to_string(pad) +
                        " does not fit an input of shape " + x.str());
    }
    return {x[0], x[1], x[2], x[3], x[2] + 2 * pad - kh + 1, x[3] + 2 * pad - kw + 1, kh, kw, pad};
  }
  static int blas_int(std::size_t n) {
    if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      throw shape_error("selmask::cuda::gemm: dimension " + std::to_string(n) +
                        " exceeds the BLAS integer range");
    }
    return static_cast<int>(n);
  }
  struct channel_dims {
    std::size_t batch, channels, rest;
  };
  static channel_dims channel_view(const char* op, const tensor& y, const tensor& b) {
    const shape s = y.dims();
    if (s.rank() < 2) {
      throw shape_error(std::string("selmask::cuda::") + op + ": expected N×C×… , got " + s.str());
    }
    const std::size_t batch = s[0];
    const std::size_t ch = s[1];
    if (b.size() != ch) {
      throw shape_error(std::string("selmask::cuda::") + op + ": " + std::to_string(b.size()) +
                        " bias values for " + std::to_string(ch) + " channels (tensor " + s.str() + ")");
    }
    return {batch, ch, batch * ch == 0 ? 0 : y.size() / (batch * ch)};
  }
};

} // namespace selmask::detail
