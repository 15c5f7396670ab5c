#pragma once
/// \file backend/cpu/cpu.hpp
/// `selmask::cpu`: the CPU tensor backend. Tensors are `xt::xarray<float>` (row-major), so CPU
/// users can hand selmask their xtensor arrays directly and read results back as xtensor arrays.
/// The primitives are written as plain loops over contiguous memory where that is what xtensor
/// would generate anyway and the cell index arithmetic would otherwise dominate.

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../error.hpp"
#include "../../granularity/geometry.hpp"
#include "../../shape.hpp"
#include "../backend.hpp"
#include "../nn_backend.hpp"
#include "../pool_window.hpp"
#include "blas.hpp"
#include "parallel.hpp"
#include "xtensor.hpp"

#include <xsimd/xsimd.hpp>

namespace selmask {

struct cpu {
  using tensor = xt::xarray<float>;
  static constexpr std::string_view name = "cpu";

  // ---- memory -------------------------------------------------------------------------------
  static tensor zeros(const shape& s) { return full(s, 0.0f); }
  static tensor full(const shape& s, float x) {
    tensor t;
    t.resize(std::vector<std::size_t>(s.begin(), s.end()));
    std::fill(t.data(), t.data() + t.size(), x);
    return t;
  }
  static tensor from_host(const shape& s, std::span<const float> host) {
    if (host.size() != s.size()) {
      throw shape_error("selmask::cpu::from_host: " + std::to_string(host.size()) +
                        " values given for shape " + s.str() + " (" + std::to_string(s.size()) + " values)");
    }
    tensor t;
    t.resize(std::vector<std::size_t>(s.begin(), s.end()));
    std::copy(host.begin(), host.end(), t.data());
    return t;
  }
  static std::vector<float> to_host(const tensor& t) { return {t.data(), t.data() + t.size()}; }
  static shape shape_of(const tensor& t) { return shape(t.shape().begin(), t.shape().end()); }
  static void reshape(tensor& t, const shape& s) {
    if (s.size() != t.size()) {
      throw shape_error("selmask::cpu::reshape: cannot view " + shape_of(t).str() + " as " + s.str());
    }
    t.reshape(std::vector<std::size_t>(s.begin(), s.end()));
  }
  static void copy(const tensor& a, tensor& t) {
    ensure_shape(t, a);
    const float* pa = a.data();
    float* pt = t.data();
    cpu_parallel::parallel_for(a.size(), 4 * elementwise_grain,
                               [&](std::size_t b, std::size_t e) { std::copy(pa + b, pa + e, pt + b); });
  }
  /// Resize `t` to `a`'s shape unless it already has it (workspaces are reused across batches).
  static void ensure_shape(tensor& t, const tensor& a) {
    if (!std::equal(t.shape().begin(), t.shape().end(), a.shape().begin(), a.shape().end())) {
      t.resize(a.shape());
    }
  }
  static void ensure_shape(tensor& t, const shape& s) {
    if (!std::equal(t.shape().begin(), t.shape().end(), s.begin(), s.end())) {
      t.resize(std::vector<std::size_t>(s.begin(), s.end()));
    }
  }

  // ---- elementwise ----------------------------------------------------------------------------
  template <class F>
  static void map(const tensor& a, tensor& t, F f) {
    ensure_shape(t, a);
    const float* pa = a.data();
    float* pt = t.data();
    const std::size_t n = a.size();
    for (std::size_t i = 0; i < n; ++i) {
      pt[i] = f(pa[i]);
    }
  }
  template <class F>
  static void map2(const tensor& a, const tensor& b, tensor& t, F f) {
    if (a.size() != b.size()) {
      throw shape_error("selmask::cpu::map2: operands have shapes " + shape_of(a).str() + " and " +
                        shape_of(b).str());
    }
    ensure_shape(t, a);
    const float* pa = a.data();
    const float* pb = b.data();
    float* pt = t.data();
    const std::size_t n = a.size();
    for (std::size_t i = 0; i < n; ++i) {
      pt[i] = f(pa[i], pb[i]);
    }
  }
  static void axpy(float x, const tensor& a, tensor& t) {
    if (a.size() != t.size()) {
      throw shape_error("selmask::cpu::axpy: operands have shapes " + shape_of(a).str() + " and " +
                        shape_of(t).str());
    }
    const float* pa = a.data();
    float* pt = t.data();
    const std::size_t n = a.size();
    for (std::size_t i = 0; i < n; ++i) {
      pt[i] += x * pa[i];
    }
  }

  // ---- reductions -----------------------------------------------------------------------------
  static double sum(const tensor& a) {
    double s = 0.0;
    const float* p = a.data();
    for (std::size_t i = 0; i < a.size(); ++i) {
      s += p[i];
    }
    return s;
  }
  static bool all_finite(const tensor& a) {
    const float* p = a.data();
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!std::isfinite(p[i])) {
        return false;
      }
    }
    return true;
  }

  // ---- cell grids -----------------------------------------------------------------------------
  /// `t[n, i] = a[n, i] · c[cell(i)]`, `a` of shape N×(sample), `c` of `g.cells()` values.
  static void scale_cells(const tensor& a, const tensor& c, const cell_geometry& g, tensor& t) {
    const std::size_t per = check_cells("scale_cells", a, c, g);
    ensure_shape(t, a);
    const std::size_t batch = a.size() / per;
    thread_local std::vector<std::size_t> wcell_buffer; // the caller's; reused from batch to batch
    wcell_buffer.resize(g.dims[3]);
    std::size_t* const wcell = wcell_buffer.data(); // workers see the caller's buffer through this
    for (std::size_t w = 0; w < g.dims[3]; ++w) {
      wcell[w] = w / g.block[3];
    }
    const float* pc = c.data();
    const float* a0 = a.data();
    float* t0 = t.data();
    // samples split over the pool's threads (each value written once: no order to keep)
    const std::size_t grain = std::max<std::size_t>(1, elementwise_grain / per);
    cpu_parallel::parallel_for(batch, grain, [&](std::size_t n0, std::size_t n1) {
      for (std::size_t n = n0; n < n1; ++n) {
        const float* pa = a0 + n * per;
        float* pt = t0 + n * per;
        for_each_row(g, [&](std::size_t row, std::size_t base) {
          const float* ra = pa + row * g.dims[3];
          float* rt = pt + row * g.dims[3];
          const float* rc = pc + base;
          for (std::size_t w = 0; w < g.dims[3]; ++w) {
            rt[w] = ra[w] * rc[wcell[w]];
          }
        });
      }
    });
  }
  /// `t[k] = Σ_n Σ_{i in cell k} a[n, i] · b[n, i]` (`b == nullptr`: `Σ a`); `t` gets the grid shape.
  static void reduce_cells(const tensor& a, const tensor* b, const cell_geometry& g, tensor& t) {
    const std::size_t per = g.values();
    if (per == 0 || a.size() % per != 0) {
      throw shape_error("selmask::cpu::reduce_cells: tensor of shape " + shape_of(a).str() +
                        " is not a batch of samples of " + std::to_string(per) + " values");
    }
    if (b && b->size() != a.size()) {
      throw shape_error("selmask::cpu::reduce_cells: operands have shapes " + shape_of(a).str() + " and " +
                        shape_of(*b).str());
    }
    ensure_shape(t, g.grid_shape());
    thread_local std::vector<std::size_t> wcell_buffer; // the caller's; reused from batch to batch
    wcell_buffer.resize(g.dims[3]);
    std::size_t* const wcell = wcell_buffer.data(); // workers see the caller's buffer through this
    for (std::size_t w = 0; w < g.dims[3]; ++w) {
      wcell[w] = w / g.block[3];
    }
    const std::size_t batch = a.size() / per;
    // fixed parts of the batch, one accumulator each, added in order: the result depends on the
    // number of threads only, never on which thread ran which part
    const std::size_t parts = a.size() < 2 * elementwise_grain ? 1 : std::min(cpu_parallel::threads(), batch);
    const std::size_t cells = g.cells();
    thread_local std::vector<double> acc_buffer; // the caller's; reused from batch to batch
    acc_buffer.assign(parts * cells, 0.0);
    double* const acc = acc_buffer.data(); // workers write through this, never by the name
    cpu_parallel::parallel_for(parts, 1, [&](std::size_t p0, std::size_t p1) {
      for (std::size_t part = p0; part < p1; ++part) {
        double* pacc = acc + part * cells;
        for (std::size_t n = batch * part / parts; n < batch * (part + 1) / parts; ++n) {
          const float* pa = a.data() + n * per;
          const float* pb = b ? b->data() + n * per : nullptr;
          for_each_row(g, [&](std::size_t row, std::size_t base) {
            const float* ra = pa + row * g.dims[3];
            double* rc = pacc + base;
            if (pb) {
              const float* rb = pb + row * g.dims[3];
              if (g.block[3] == 1) {
                for (std::size_t w = 0; w < g.dims[3]; ++w) {
                  rc[w] += static_cast<double>(ra[w] * rb[w]);
                }
              } else {
                double s = 0.0; // accumulate runs of equal cells before touching the accumulator
                std::size_t cur = 0;
                for (std::size_t w = 0; w < g.dims[3]; ++w) {
                  if (wcell[w] != cur) {
                    rc[cur] += s;
                    s = 0.0;
                    cur = wcell[w];
                  }
                  s += static_cast<double>(ra[w] * rb[w]);
                }
                rc[cur] += s;
              }
            } else {
              for (std::size_t w = 0; w < g.dims[3]; ++w) {
                rc[wcell[w]] += static_cast<double>(ra[w]);
              }
            }
          });
        }
      }
    });
    for (std::size_t part = 1; part < parts; ++part) {
      for (std::size_t k = 0; k < cells; ++k) {
        acc[k] += acc[part * cells + k];
      }
    }
    float* pt = t.data();
    for (std::size_t k = 0; k < cells; ++k) {
      pt[k] = static_cast<float>(acc[k]);
    }
  }

  // ---- grouped softmax (xOr masks; logits laid out V×K, group = one cell k) ------------------
  static void softmax_groups(const tensor& w, std::size_t groups, float inv_tau, tensor& t) {
    const std::size_t k_count = check_groups("softmax_groups", w, groups);
    ensure_shape(t, w);
    const float* pw = w.data();
    float* pt = t.data();
    for (std::size_t k = 0; k < k_count; ++k) {
      float m = pw[k] * inv_tau;
      for (std::size_t v = 1; v < groups; ++v) {
        m = std::max(m, pw[v * k_count + k] * inv_tau);
      }
      float z = 0.0f;
      for (std::size_t v = 0; v < groups; ++v) {
        const float e = std::exp(pw[v * k_count + k] * inv_tau - m);
        pt[v * k_count + k] = e;
        z += e;
      }
      for (std::size_t v = 0; v < groups; ++v) {
        pt[v * k_count + k] /= z;
      }
    }
  }
  /// One-hot of the largest value of each group; ties go to the lowest version index.
  static void argmax_one_hot_groups(const tensor& s, std::size_t groups, tensor& t) {
    const std::size_t k_count = check_groups("argmax_one_hot_groups", s, groups);
    ensure_shape(t, s);
    const float* ps = s.data();
    float* pt = t.data();
    for (std::size_t k = 0; k < k_count; ++k) {
      std::size_t best = 0;
      for (std::size_t v = 1; v < groups; ++v) {
        if (ps[v * k_count + k] > ps[best * k_count + k]) {
          best = v;
        }
      }
      for (std::size_t v = 0; v < groups; ++v) {
        pt[v * k_count + k] = v == best ? 1.0f : 0.0f;
      }
    }
  }
  static void softmax_groups_backward(const tensor& s, const tensor& g, std::size_t groups, float inv_tau,
                                      tensor& t) {
    const std::size_t k_count = check_groups("softmax_groups_backward", s, groups);
    if (g.size() != s.size()) {
      throw shape_error("selmask::cpu::softmax_groups_backward: gradient shape " + shape_of(g).str() +
                        " differs from " + shape_of(s).str());
    }
    ensure_shape(t, s);
    const float* ps = s.data();
    const float* pg = g.data();
    float* pt = t.data();
    for (std::size_t k = 0; k < k_count; ++k) {
      float dot = 0.0f;
      for (std::size_t v = 0; v < groups; ++v) {
        dot += ps[v * k_count + k] * pg[v * k_count + k];
      }
      for (std::size_t v = 0; v < groups; ++v) {
        pt[v * k_count + k] = ps[v * k_count + k] * (pg[v * k_count + k] - dot) * inv_tau;
      }
    }
  }

  // ---- versions ------------------------------------------------------------------------------
  /// `a: N×V×R → t: N×R`, `t[n] = Σ_v w[v]·a[n, v]` (`w == nullptr`: weights 1).
  static void sum_versions(const tensor& a, const tensor* w, tensor& t) {
    if (a.dimension() < 2) {
      throw shape_error("selmask::cpu::sum_versions: expected N×V×..., got " + shape_of(a).str());
    }
    const std::size_t batch = a.shape()[0];
    const std::size_t versions = a.shape()[1];
    if (w && w->size() != versions) {
      throw shape_error("selmask::cpu::sum_versions: " + std::to_string(w->size()) + " weights for " +
                        std::to_string(versions) + " versions");
    }
    const std::size_t r = batch * versions == 0 ? 0 : a.size() / (batch * versions);
    std::vector<std::size_t> out_shape{batch};
    out_shape.insert(out_shape.end(), a.shape().begin() + 2, a.shape().end());
    if (!std::equal(t.shape().begin(), t.shape().end(), out_shape.begin(), out_shape.end())) {
      t.resize(out_shape);
    }
    for (std::size_t n = 0; n < batch; ++n) {
      float* pt = t.data() + n * r;
      std::fill(pt, pt + r, 0.0f);
      for (std::size_t v = 0; v < versions; ++v) {
        const float wv = w ? w->data()[v] : 1.0f;
        const float* pa = a.data() + (n * versions + v) * r;
        for (std::size_t i = 0; i < r; ++i) {
          pt[i] += wv * pa[i];
        }
      }
    }
  }
  /// `a: N×R → t: N×V×R`, `t[n, v] = w[v]·a[n]` (`w == nullptr`: weights 1).
  static void repeat_versions(const tensor& a, std::size_t versions, const tensor* w, tensor& t) {
    if (a.dimension() < 1) {
      throw shape_error("selmask::cpu::repeat_versions: expected N×..., got a scalar");
    }
    if (w && w->size() != versions) {
      throw shape_error("selmask::cpu::repeat_versions: " + std::to_string(w->size()) + " weights for " +
                        std::to_string(versions) + " versions");
    }
    const std::size_t batch = a.shape()[0];
    const std::size_t r = batch == 0 ? 0 : a.size() / batch;
    std::vector<std::size_t> out_shape{batch, versions};
    out_shape.insert(out_shape.end(), a.shape().begin() + 1, a.shape().end());
    if (!std::equal(t.shape().begin(), t.shape().end(), out_shape.begin(), out_shape.end())) {
      t.resize(out_shape);
    }
    for (std::size_t n = 0; n < batch; ++n) {
      for (std::size_t v = 0; v < versions; ++v) {
        const float wv = w ? w->data()[v] : 1.0f;
        const float* pa = a.data() + n * r;
        float* pt = t.data() + (n * versions + v) * r;
        for (std::size_t i = 0; i < r; ++i) {
          pt[i] = wv * pa[i];
        }
      }
    }
  }

  // ---- gather / scatter ----------------------------------------------------------------------
  /// `t[j] = a[idx[j]]`; `t` is resized to a flat tensor of `idx.size()` values.
  static void gather(const tensor& a, std::span<const std::size_t> idx, tensor& t) {
    ensure_shape(t, shape{idx.size()});
    for (std::size_t j = 0; j < idx.size(); ++j) {
      if (idx[j] >= a.size()) {
        throw shape_error("selmask::cpu::gather: index " + std::to_string(idx[j]) + " out of range for " +
                          std::to_string(a.size()) + " values");
      }
      t.data()[j] = a.data()[idx[j]];
    }
  }
  /// `t[idx[j]] = a[j]`; `t` keeps its shape and its other values.
  static void scatter(const tensor& a, std::span<const std::size_t> idx, tensor& t) {
    if (a.size() != idx.size()) {
      throw shape_error("selmask::cpu::scatter: " + std::to_string(a.size()) + " values for " +
                        std::to_string(idx.size()) + " indices");
    }
    for (std::size_t j = 0; j < idx.size(); ++j) {
      if (idx[j] >= t.size()) {
        throw shape_error("selmask::cpu::scatter: index " + std::to_string(idx[j]) + " out of range for " +
                          std::to_string(t.size()) + " values");
      }
      t.data()[idx[j]] = a.data()[j];
    }
  }

  // ---- network kit primitives ----------------------------------------------------------------
  // The operations of `nn_backend` (backend/nn_backend.hpp documents each one). Workspaces passed
  // as outputs are resized only when their shape changes, so a training loop allocates nothing
  // per batch once the first batch has set the shapes.

  /// `c = alpha·op(a)·op(b) + beta·c` through `cblas_sgemm`. Each tensor is read as a matrix:
  /// (first axis) × (all other axes), rank 1 as 1×n. With `beta == 0`, `c` is resized to M×N
  /// unless its matrix view already is M×N; otherwise its view must be M×N.
  static void gemm(bool trans_a, bool trans_b, float alpha, const tensor& a, const tensor& b, float beta,
                   tensor& c) {
    const auto [m, n, k, ac, bc, c_fits] =
      detail::check_gemm("selmask::cpu::gemm", shape_of(a), shape_of(b), shape_of(c), trans_a, trans_b, beta);
    if (!c_fits) {
      c.resize(std::vector<std::size_t>{m, n});
    }
    if (m == 0 || n == 0) {
      return;
    }
    if (k == 0) {
      scale_in_place(c, beta);
      return;
    }
    blas::check_kernels();
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    const int lda = blas_int("gemm", ac), ldb = blas_int("gemm", bc), ldc = blas_int("gemm", n);
    const int kk = blas_int("gemm", k);
    // rows [i0, i1) and columns [j0, j1) of c
    const auto block = [&](std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1) {
      const float* pa = a.data() + (trans_a ? i0 : i0 * ac);
      const float* pb = b.data() + (trans_b ? j0 * bc : j0);
      cblas_sgemm(CblasRowMajor, ta, tb, blas_int("gemm", i1 - i0), blas_int("gemm", j1 - j0), kk, alpha, pa,
                  lda, pb, ldb, beta, c.data() + i0 * n + j0, ldc);
    };
    // Split the larger side of c over the pool's threads (in panels of 16, a multiple of every
    // SIMD width); each part is one single-threaded sgemm. Small products run whole.
    constexpr std::size_t panel = 16;
    auto& tp = cpu_parallel::pool::instance();
    if (tp.size() == 1 || m * n * k < (std::size_t{1} << 20)) {
      block(0, m, 0, n);
    } else if (n >= m) {
      tp.parallel_for((n + panel - 1) / panel, 1, [&](std::size_t pb, std::size_t pe) {
        block(0, m, pb * panel, std::min(n, pe * panel));
      });
    } else {
      tp.parallel_for((m + panel - 1) / panel, 1, [&](std::size_t pb, std::size_t pe) {
        block(pb * panel, std::min(m, pe * panel), 0, n);
      });
    }
  }

  /// conv2d lowering, stride 1, zero padding `pad`: `x: N×C×H×W → col: (C·kh·kw) × (N·OH·OW)`
  /// with OH = H + 2·pad − kh + 1, OW = W + 2·pad − kw + 1. Row `(c·kh + i)·kw + j`, column
  /// `(n·OH + oh)·OW + ow` holds `x[n, c, oh + i − pad, ow + j − pad]` (0 outside the image).
  /// One GEMM `weights (OC × C·kh·kw) · col` then gives the whole batch's output as OC×N×OH×OW.
  static void im2col(const tensor& x, std::size_t kh, std::size_t kw, std::size_t pad, tensor& col) {
    const conv_dims d = conv_dims_of("im2col", shape_of(x), kh, kw, pad);
    ensure_shape(col, shape{d.c * kh * kw, d.n * d.oh * d.ow});
    const std::size_t np = d.n * d.oh * d.ow;
    cpu_parallel::parallel_for(d.n, 1, [&](std::size_t n0, std::size_t n1) {
      im2col_range(x.data(), d, kh, kw, pad, n0, n1, col.data() + n0 * d.oh * d.ow, np);
    });
  }

  /// The adjoint of `im2col`: `dx` (resized to `x_shape`, N×C×H×W) becomes the sum of the column
  /// entries that read each input value; padding entries are dropped.
  static void col2im(const tensor& col, const shape& x_shape, std::size_t kh, std::size_t kw, std::size_t pad,
                     tensor& dx) {
    const conv_dims d = conv_dims_of("col2im", x_shape, kh, kw, pad);
    const std::size_t np = d.n * d.oh * d.ow;
    if (col.size() != d.c * kh * kw * np) {
      throw shape_error("selmask::cpu::col2im: columns of shape " + shape_of(col).str() +
                        " do not fit an input of shape " + x_shape.str() + " (expected [" +
                        std::to_string(d.c * kh * kw) + "," + std::to_string(np) + "])");
    }
    ensure_shape(dx, x_shape);
    cpu_parallel::parallel_for(d.n, 1, [&](std::size_t n0, std::size_t n1) {
      col2im_range(col.data() + n0 * d.oh * d.ow, np, d, kh, kw, pad, n0, n1, dx.data());
    });
  }

  /// Fused conv2d forward (stride 1, square `k×k` kernel, zero padding `pad`):
  /// `y[n, o] = b[o] + Σ_{c,i,j} w[o, c, i, j] · x[n, c, · + i − pad, · + j − pad]`, `x: N×C×H×W`,
  /// `w: OC×C×k×k`, `b: OC`, `y` resized to N×OC×OH×OW. Same result as `im2col` + `gemm` +
  /// `swap_leading_axes` + `add_bias`, but the batch is cut into chunks of a few samples whose
  /// columns fit in the core's cache, and each thread of the pool lowers, multiplies and writes
  /// back its own chunks; nothing the size of the whole batch's columns is ever written.
  static void conv2d_forward(const tensor& x, const tensor& w, const tensor& b, std::size_t k,
                             std::size_t pad, tensor& y) {
    const conv_dims d = conv_dims_of("conv2d_forward", shape_of(x), k, k, pad);
    const std::size_t oc = check_conv_weights("conv2d_forward", w, b, d.c, k);
    ensure_shape(y, shape{d.n, oc, d.oh, d.ow});
    const std::size_t p = d.oh * d.ow;
    conv_chunks_forward(x, w, d, k, pad,
                        [&](std::size_t n0, std::size_t n1, const float* out, std::size_t cols) {
                          for (std::size_t n = n0; n < n1; ++n) {
                            for (std::size_t o = 0; o < oc; ++o) {
                              const float* src = out + o * cols + (n - n0) * p;
                              float* dst = y.data() + (n * oc + o) * p;
                              const float bo = b.data()[o];
                              for (std::size_t q = 0; q < p; ++q) {
                                dst[q] = src[q] + bo;
                              }
                            }
                          }
                        });
  }

  /// Fused conv2d backward for `conv2d_forward`'s `x` and `w` and the output gradient `g`
  /// (N×OC×OH×OW): `dw += ∂L/∂w`, `db += ∂L/∂b` (both accumulate) and, when `dx` is not null,
  /// `*dx = ∂L/∂x` (resized to x's shape). Chunked like the forward pass; each thread sums its
  /// part of the weight gradient in its own buffer, and the buffers are added in a fixed order.
  static void conv2d_backward(const tensor& x, const tensor& w, const tensor& g, std::size_t k,
                              std::size_t pad, tensor& dw, tensor& db, tensor* dx) {
    const conv_dims d = conv_dims_of("conv2d_backward", shape_of(x), k, k, pad);
    const std::size_t oc = check_conv_weights("conv2d_backward", w, db, d.c, k);
    if (!(shape_of(g) == shape{d.n, oc, d.oh, d.ow})) {
      throw shape_error("selmask::cpu::conv2d_backward: gradient of shape " + shape_of(g).str() +
                        " for an output of shape " + shape{d.n, oc, d.oh, d.ow}.str());
    }
    const std::size_t p = d.oh * d.ow;
    const float* gd = g.data();
    conv_chunks_backward("conv2d_backward", x, w, d, k, pad, dw, db, dx,
                         [&](std::size_t n0, std::size_t n1, float* gcm, std::size_t cols, float* pdb) {
                           for (std::size_t n = n0; n < n1; ++n) { // g: N×OC×P → OC×(chunk·P)
                             for (std::size_t o = 0; o < oc; ++o) {
                               const float* src = gd + (n * oc + o) * p;
                               copy_row(gcm + o * cols + (n - n0) * p, src, p);
                               pdb[o] += sum_of(src, p);
                             }
                           }
                         });
  }

  /// conv2d → ReLU → 2×2 max-pool in one pass: `y = maxpool2(max(conv2d(x, w, b), 0))`, resized to
  /// N×OC×⌊OH/2⌋×⌊OW/2⌋, and `idx` (same shape) the window offset 0…3 of each maximum, as
  /// `maxpool2_forward` records it. The convolution's output is never written out: each chunk is
  /// pooled straight from the GEMM's result. (ReLU and max commute, and the window's first
  /// maximum is the same before and after the ReLU whenever it is positive, so `y`, `idx` and
  /// the gradients equal those of the three separate operations.)
  static void conv2d_relu_pool_forward(const tensor& x, const tensor& w, const tensor& b, std::size_t k,
                                       std::size_t pad, tensor& y, tensor& idx) {
    const conv_dims d = conv_dims_of("conv2d_relu_pool_forward", shape_of(x), k, k, pad);
    const std::size_t oc = check_conv_weights("conv2d_relu_pool_forward", w, b, d.c, k);
    const std::size_t ph = d.oh / 2;
    const std::size_t pw = d.ow / 2;
    if (ph == 0 || pw == 0) {
      throw shape_error("selmask::cpu::conv2d_relu_pool_forward: a convolution output of " +
                        std::to_string(d.oh) + "x" + std::to_string(d.ow) + " is too small for a 2x2 pool");
    }
    ensure_shape(y, shape{d.n, oc, ph, pw});
    ensure_shape(idx, shape{d.n, oc, ph, pw});
    const std::size_t p = d.oh * d.ow;
    conv_chunks_forward(
      x, w, d, k, pad, [&](std::size_t n0, std::size_t n1, const float* out, std::size_t cols) {
        for (std::size_t n = n0; n < n1; ++n) {
          for (std::size_t o = 0; o < oc; ++o) {
            const float* plane = out + o * cols + (n - n0) * p;
            float* py = y.data() + (n * oc + o) * ph * pw;
            float* pi = idx.data() + (n * oc + o) * ph * pw;
            const float bo = b.data()[o];
            for (std::size_t r = 0; r < ph; ++r) {
              const float* top = plane + 2 * r * d.ow;
              const float* bottom = top + d.ow;
              for (std::size_t q = 0; q < pw; ++q) {
                // bias first, so that ties resolve as in maxpool2_forward
                const auto [best, at] = formula::pool_window(top + 2 * q, bottom + 2 * q, bo);
                py[r * pw + q] = std::max(best, 0.0f);
                pi[r * pw + q] = at;
              }
            }
          }
        }
      });
  }

  /// Backward of `conv2d_relu_pool_forward` from its `y` and `idx` and the gradient `g` of `y`:
  /// `dw`, `db` accumulate, `*dx` (when not null) is overwritten, as in `conv2d_backward`.
  static void conv2d_relu_pool_backward(const tensor& x, const tensor& w, const tensor& y, const tensor& idx,
                                        const tensor& g, std::size_t k, std::size_t pad, tensor& dw,
                                        tensor& db, tensor* dx) {
    const conv_dims d = conv_dims_of("conv2d_relu_pool_backward", shape_of(x), k, k, pad);
    const std::size_t oc = check_conv_weights("conv2d_relu_pool_backward", w, db, d.c, k);
    const std::size_t ph = d.oh / 2;
    const std::size_t pw = d.ow / 2;
    const shape ys{d.n, oc, ph, pw};
    if (!(shape_of(g) == ys) || !(shape_of(y) == ys) || !(shape_of(idx) == ys)) {
      throw shape_error("selmask::cpu::conv2d_relu_pool_backward: gradient " + shape_of(g).str() +
                        ", output " + shape_of(y).str() + " and indices " + shape_of(idx).str() +
                        " must all have shape " + ys.str());
    }
    const std::size_t p = d.oh * d.ow;
    const float* yd = y.data(); // read through plain pointers: stores to float* could alias the
    const float* gd = g.data(); // tensors' own members, which would keep data() in the loop
    const float* id = idx.data();
    conv_chunks_backward("conv2d_relu_pool_backward", x, w, d, k, pad, dw, db, dx,
                         [&](std::size_t n0, std::size_t n1, float* gcm, std::size_t cols, float* pdb) {
                           if (d.oh % 2 != 0 || d.ow % 2 != 0) { // a last row or column outside every window
                             std::fill(gcm, gcm + oc * cols, 0.0f);
                           }
                           for (std::size_t n = n0; n < n1; ++n) {
                             for (std::size_t o = 0; o < oc; ++o) {
                               const std::size_t base = (n * oc + o) * ph * pw;
                               float* plane = gcm + o * cols + (n - n0) * p;
                               for (std::size_t r = 0; r < ph; ++r) {
                                 unpool_rows(plane + 2 * r * d.ow, plane + (2 * r + 1) * d.ow,
                                             yd + base + r * pw, gd + base + r * pw, id + base + r * pw, pw);
                               }
                               pdb[o] += sum_of(plane, p); // the window values plus zeros
                             }
                           }
                         });
  }

  /// `a: A×B×R… → t: B×A×R…` (the first two axes swapped, the rest kept as a contiguous block).
  static void swap_leading_axes(const tensor& a, tensor& t) {
    if (a.dimension() < 2) {
      throw shape_error("selmask::cpu::swap_leading_axes: expected rank >= 2, got " + shape_of(a).str());
    }
    shape s = shape_of(a);
    std::swap(s[0], s[1]);
    ensure_shape(t, s);
    const std::size_t d0 = a.shape()[0];
    const std::size_t d1 = a.shape()[1];
    const std::size_t r = d0 * d1 == 0 ? 0 : a.size() / (d0 * d1);
    const float* pa = a.data();
    float* pt = t.data();
    cpu_parallel::parallel_for(d0 * d1, 64, [&](std::size_t t0, std::size_t t1) {
      for (std::size_t ij = t0; ij < t1; ++ij) {
        const std::size_t i = ij / d1;
        const std::size_t j = ij % d1;
        std::copy(pa + ij * r, pa + (ij + 1) * r, pt + (j * d0 + i) * r);
      }
    });
  }

  /// `y[n, c, …] += b[c]`: a bias per output channel (N×C×H×W) or per feature (N×F).
  static void add_bias(tensor& y, const tensor& b) {
    const auto [batch, ch, r] = channel_view("add_bias", y, b);
    const float* pb = b.data();
    float* py = y.data();
    if (r == 1) { // N×F: one bias per column, added row by row (a vector loop, no index division)
      cpu_parallel::parallel_for(batch, 16, [&](std::size_t n0, std::size_t n1) {
        for (std::size_t n = n0; n < n1; ++n) {
          float* row = py + n * ch;
          for (std::size_t c = 0; c < ch; ++c) {
            row[c] += pb[c];
          }
        }
      });
      return;
    }
    cpu_parallel::parallel_for(batch * ch, 64, [&](std::size_t t0, std::size_t t1) {
      for (std::size_t t = t0; t < t1; ++t) {
        float* row = py + t * r;
        const float bc = pb[t % ch];
        for (std::size_t i = 0; i < r; ++i) {
          row[i] += bc;
        }
      }
    });
  }

  /// `db[c] += Σ_{n, …} g[n, c, …]` (accumulates, like every parameter gradient).
  static void bias_grad(const tensor& g, tensor& db) {
    const auto [batch, ch, r] = channel_view("bias_grad", g, db);
    const float* pg = g.data();
    float* pb = db.data();
    if (r == 1) { // N×F: column sums, row by row into double accumulators (the same order per column)
      cpu_parallel::parallel_for(ch, 64, [&](std::size_t c0, std::size_t c1) {
        thread_local std::vector<double> acc;
        acc.assign(c1 - c0, 0.0);
        double* pa = acc.data();
        for (std::size_t n = 0; n < batch; ++n) {
          const float* row = pg + n * ch + c0;
          for (std::size_t c = 0; c < c1 - c0; ++c) {
            pa[c] += static_cast<double>(row[c]);
          }
        }
        for (std::size_t c = c0; c < c1; ++c) {
          pb[c] += static_cast<float>(pa[c - c0]);
        }
      });
      return;
    }
    cpu_parallel::parallel_for(ch, 1, [&](std::size_t c0, std::size_t c1) {
      for (std::size_t c = c0; c < c1; ++c) {
        double s = 0.0;
        for (std::size_t n = 0; n < batch; ++n) {
          s += static_cast<double>(sum_of(pg + (n * ch + c) * r, r));
        }
        pb[c] += static_cast<float>(s);
      }
    });
  }

  /// `y = max(x, 0)` (NaN stays NaN).
  static void relu_forward(const tensor& x, tensor& y) {
    ensure_shape(y, x);
    const float* px = x.data();
    float* py = y.data();
    const std::size_t n = x.size();
    cpu_parallel::parallel_for(n, elementwise_grain, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        py[i] = std::max(px[i], 0.0f); // branch-free: the signs of activations are random
      }
    });
  }

  /// `dx = g · [y > 0]` where `y` is the forward output.
  static void relu_backward(const tensor& y, const tensor& g, tensor& dx) {
    if (y.size() != g.size()) {
      throw shape_error("selmask::cpu::relu_backward: gradient shape " + shape_of(g).str() +
                        " differs from the output shape " + shape_of(y).str());
    }
    ensure_shape(dx, g);
    const float* py = y.data();
    const float* pg = g.data();
    float* pd = dx.data();
    const std::size_t n = g.size();
    cpu_parallel::parallel_for(n, elementwise_grain, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        const float gi = pg[i]; // both loads unconditional, so the select needs no branch
        const float yi = py[i];
        pd[i] = yi > 0.0f ? gi : 0.0f;
      }
    });
  }

  /// 2×2 max-pool, stride 2: `x: N×C×H×W → y: N×C×⌊H/2⌋×⌊W/2⌋` (an odd last row / column is
  /// dropped). `idx` (shape of `y`) holds the window offset 0…3 (row-major in the window) of each
  /// maximum; the first maximum wins ties.
  static void maxpool2_forward(const tensor& x, tensor& y, tensor& idx) {
    if (x.dimension() != 4) {
      throw shape_error("selmask::cpu::maxpool2_forward: expected N×C×H×W, got " + shape_of(x).str());
    }
    const std::size_t nc = x.shape()[0] * x.shape()[1];
    const std::size_t h = x.shape()[2];
    const std::size_t w = x.shape()[3];
    const std::size_t oh = h / 2;
    const std::size_t ow = w / 2;
    const shape out{x.shape()[0], x.shape()[1], oh, ow};
    ensure_shape(y, out);
    ensure_shape(idx, out);
    const float* px = x.data();
    float* py = y.data();
    float* pi = idx.data();
    cpu_parallel::parallel_for(nc, 16, [&](std::size_t p0, std::size_t p1) {
      for (std::size_t p = p0; p < p1; ++p) {
        const float* img = px + p * h * w;
        for (std::size_t r = 0; r < oh; ++r) {
          const float* top = img + 2 * r * w;
          const float* bottom = top + w;
          for (std::size_t q = 0; q < ow; ++q) {
            const auto [best, at] = formula::pool_window(top + 2 * q, bottom + 2 * q, 0.0f);
            py[(p * oh + r) * ow + q] = best;
            pi[(p * oh + r) * ow + q] = at;
          }
        }
      }
    });
  }

  /// `dx` (resized to `x_shape`, the forward input's) receives `g` at the maxima recorded in `idx`
  /// and 0 elsewhere.
  static void maxpool2_backward(const tensor& g, const tensor& idx, const shape& x_shape, tensor& dx) {
    if (x_shape.rank() != 4) {
      throw shape_error("selmask::cpu::maxpool2_backward: expected an N×C×H×W input shape, got " +
                        x_shape.str());
    }
    const std::size_t h = x_shape[2];
    const std::size_t w = x_shape[3];
    const std::size_t oh = h / 2;
    const std::size_t ow = w / 2;
    const shape out{x_shape[0], x_shape[1], oh, ow};
    if (!(shape_of(g) == out) || !(shape_of(idx) == out)) {
      throw shape_error("selmask::cpu::maxpool2_backward: gradient " + shape_of(g).str() + " and indices " +
                        shape_of(idx).str() + " must have the pooled shape " + out.str() + " of input " +
                        x_shape.str());
    }
    ensure_shape(dx, x_shape);
    const std::size_t nc = x_shape[0] * x_shape[1];
    const float* pg = g.data();
    const float* pi = idx.data();
    float* pd = dx.data();
    cpu_parallel::parallel_for(nc, 16, [&](std::size_t p0, std::size_t p1) {
      std::fill(pd + p0 * h * w, pd + p1 * h * w, 0.0f);
      for (std::size_t p = p0; p < p1; ++p) {
        float* img = pd + p * h * w;
        for (std::size_t r = 0; r < oh; ++r) {
          for (std::size_t q = 0; q < ow; ++q) {
            const std::size_t o = (p * oh + r) * ow + q;
            const auto k = static_cast<std::size_t>(pi[o]) & 3u;
            img[(2 * r + k / 2) * w + 2 * q + k % 2] += pg[o];
          }
        }
      }
    });
  }

  /// Softmax cross-entropy of logits `N×K` against `labels` (N values in [0, K)). Returns the
  /// summed loss and the number of samples whose first largest logit is the label; `grad` gets
  /// the gradient of the *mean* loss, `(softmax − onehot) / N`.
  static cross_entropy_result softmax_cross_entropy(const tensor& logits,
                                                    std::span<const std::int32_t> labels, tensor& grad) {
    if (logits.dimension() != 2) {
      throw shape_error("selmask::cpu::softmax_cross_entropy: expected logits N×K, got " +
                        shape_of(logits).str());
    }
    const std::size_t batch = logits.shape()[0];
    const std::size_t k_count = logits.shape()[1];
    if (labels.size() != batch) {
      throw shape_error("selmask::cpu::softmax_cross_entropy: " + std::to_string(labels.size()) +
                        " labels for logits of shape " + shape_of(logits).str());
    }
    if (k_count == 0) {
      throw shape_error("selmask::cpu::softmax_cross_entropy: logits of shape " + shape_of(logits).str() +
                        " have no classes");
    }
    ensure_shape(grad, logits);
    cross_entropy_result r;
    const float inv_n = batch == 0 ? 0.0f : 1.0f / static_cast<float>(batch);
    for (std::size_t n = 0; n < batch; ++n) {
      const std::int32_t y = labels[n];
      if (y < 0 || static_cast<std::size_t>(y) >= k_count) {
        throw value_error("selmask::cpu::softmax_cross_entropy: label " + std::to_string(y) + " of sample " +
                          std::to_string(n) + " is outside [0, " + std::to_string(k_count) + ")");
      }
      const auto label = static_cast<std::size_t>(y);
      const float* row = logits.data() + n * k_count;
      float* grow = grad.data() + n * k_count;
      std::size_t best = 0;
      for (std::size_t k = 1; k < k_count; ++k) {
        if (row[k] > row[best]) {
          best = k;
        }
      }
      const float mx = row[best];
      double z = 0.0;
      for (std::size_t k = 0; k < k_count; ++k) {
        const float e = std::exp(row[k] - mx);
        grow[k] = e;
        z += static_cast<double>(e);
      }
      r.loss_sum += std::log(z) - static_cast<double>(row[label] - mx);
      r.correct += best == label ? 1 : 0;
      const auto scale = static_cast<float>(1.0 / z) * inv_n;
      for (std::size_t k = 0; k < k_count; ++k) {
        grow[k] *= scale;
      }
      grow[label] -= inv_n;
    }
    return r;
  }

  /// One AdamW update (PyTorch's semantics, see `adamw_hyper`) of `param` with `grad`; `m`, `v`
  /// and `vmax` are the optimiser state (same size as `param`; `vmax` is unused, and may be
  /// empty, without AMSGrad); `step` counts updates from 1.
  static void adamw_step(tensor& param, const tensor& grad, tensor& m, tensor& v, tensor& vmax,
                         const adamw_hyper& h, std::size_t step) {
    const std::size_t n = param.size();
    if (grad.size() != n || m.size() != n || v.size() != n || (h.amsgrad && vmax.size() != n)) {
      throw shape_error("selmask::cpu::adamw_step: parameter " + shape_of(param).str() + ", gradient " +
                        shape_of(grad).str() + ", moments " + shape_of(m).str() + " / " + shape_of(v).str() +
                        (h.amsgrad ? " / " + shape_of(vmax).str() : "") + " must have the same size");
    }
    if (step == 0) {
      throw value_error("selmask::cpu::adamw_step: step counts from 1, got 0");
    }
    const double t = static_cast<double>(step);
    const double bc1 = 1.0 - std::pow(static_cast<double>(h.beta1), t);
    const double bc2 = 1.0 - std::pow(static_cast<double>(h.beta2), t);
    const auto step_size = static_cast<float>(static_cast<double>(h.lr) / bc1);
    const auto inv_bc2_sqrt = static_cast<float>(1.0 / std::sqrt(bc2));
    const float decay = 1.0f - h.lr * h.weight_decay;
    const float b1 = h.beta1;
    const float b2 = h.beta2;
    float* pp = param.data();
    const float* pg = grad.data();
    float* pm = m.data();
    float* pv = v.data();
    float* pvm = h.amsgrad ? vmax.data() : nullptr;
    const float eps = h.eps;
    // one element; `second` is the (AMSGrad: running maximum of the) second moment
    const auto scalar = [&](std::size_t i) {
      const float g = pg[i];
      pm[i] = b1 * pm[i] + (1.0f - b1) * g;
      pv[i] = b2 * pv[i] + (1.0f - b2) * g * g;
      float second = pv[i];
      if (pvm) {
        pvm[i] = std::max(pvm[i], pv[i]);
        second = pvm[i];
      }
      const float denom = std::sqrt(second) * inv_bc2_sqrt + eps;
      pp[i] = pp[i] * decay - step_size * pm[i] / denom;
    };
    cpu_parallel::parallel_for(n, elementwise_grain, [&](std::size_t i0, std::size_t i1) {
      // the same arithmetic on SIMD batches (xsimd): a plain loop would stay scalar, because
      // std::sqrt may set errno and so cannot be vectorised without -fno-math-errno
      using vf = xsimd::batch<float>;
      constexpr std::size_t lanes = vf::size;
      const vf vb1(b1), vb1c(1.0f - b1), vb2(b2), vb2c(1.0f - b2), vinv(inv_bc2_sqrt), veps(eps),
        vdecay(decay), vstep(step_size);
      std::size_t i = i0;
      for (; i + lanes <= i1; i += lanes) {
        const vf g = vf::load_unaligned(pg + i);
        const vf mi = vb1 * vf::load_unaligned(pm + i) + vb1c * g;
        const vf vi = vb2 * vf::load_unaligned(pv + i) + vb2c * g * g;
        mi.store_unaligned(pm + i);
        vi.store_unaligned(pv + i);
        vf second = vi;
        if (pvm) {
          second = xsimd::max(vf::load_unaligned(pvm + i), vi);
          second.store_unaligned(pvm + i);
        }
        const vf denom = xsimd::sqrt(second) * vinv + veps;
        (vf::load_unaligned(pp + i) * vdecay - vstep * mi / denom).store_unaligned(pp + i);
      }
      for (; i < i1; ++i) {
        scalar(i);
      }
    });
  }

  // helpers of the network kit primitives
private:
  /// Elementwise loops shorter than this run on one thread (the split would cost more than it saves).
  static constexpr std::size_t elementwise_grain = 16384;
  struct conv_dims {
    std::size_t n, c, h, w, oh, ow;
  };
  static conv_dims conv_dims_of(const char* op, const shape& x, std::size_t kh, std::size_t kw,
                                std::size_t pad) {
    if (x.rank() != 4) {
      throw shape_error(std::string("selmask::cpu::") + op + ": expected an N×C×H×W input, got " + x.str());
    }
    if (kh == 0 || kw == 0 || x[2] + 2 * pad < kh || x[3] + 2 * pad < kw) {
      throw shape_error(std::string("selmask::cpu::") + op + ": a " + std::to_string(kh) + "x" +
                        std::to_string(kw) + " kernel with padding " + std::to_string(pad) +
                        " does not fit an input of shape " + x.str());
    }
    return {x[0], x[1], x[2], x[3], x[2] + 2 * pad - kh + 1, x[3] + 2 * pad - kw + 1};
  }
  /// The output columns `ow` in `[lo, hi)` whose input column `ow + j − pad` lies inside `[0, w)`.
  static std::pair<std::size_t, std::size_t> valid_range(std::size_t j, std::size_t pad, std::size_t w,
                                                         std::size_t ow) {
    const std::size_t lo = std::min(ow, pad > j ? pad - j : 0);
    const std::size_t hi = std::min(ow, w + pad > j ? w + pad - j : 0);
    return {lo, std::max(lo, hi)};
  }
  /// im2col of samples `[n0, n1)`: row `(c·kh + i)·kw + j` of `col` (row stride `ld`) gets, at
  /// column `(n − n0)·OH·OW + oh·OW + ow`, `x[n, c, oh + i − pad, ow + j − pad]` (0 outside).
  static void im2col_range(const float* px, const conv_dims& d, std::size_t kh, std::size_t kw,
                           std::size_t pad, std::size_t n0, std::size_t n1, float* col, std::size_t ld) {
    const std::size_t p = d.oh * d.ow;
    if (pad == 0) { // every window lies inside the image: plain row copies
      for (std::size_t n = n0; n < n1; ++n) {
        for (std::size_t c = 0; c < d.c; ++c) {
          const float* img = px + (n * d.c + c) * d.h * d.w;
          for (std::size_t i = 0; i < kh; ++i) {
            for (std::size_t j = 0; j < kw; ++j) {
              float* dst = col + ((c * kh + i) * kw + j) * ld + (n - n0) * p;
              const float* src = img + i * d.w + j;
              copy_rows(dst, src, d.oh, d.ow, d.w);
            }
          }
        }
      }
      return;
    }
    for (std::size_t n = n0; n < n1; ++n) {
      for (std::size_t c = 0; c < d.c; ++c) {
        const float* img = px + (n * d.c + c) * d.h * d.w;
        for (std::size_t i = 0; i < kh; ++i) {
          for (std::size_t j = 0; j < kw; ++j) {
            float* dst = col + ((c * kh + i) * kw + j) * ld + (n - n0) * p;
            const auto [lo, hi] = valid_range(j, pad, d.w, d.ow);
            for (std::size_t oh = 0; oh < d.oh; ++oh, dst += d.ow) {
              const std::size_t ih_pad = oh + i; // ih + pad
              if (ih_pad < pad || ih_pad - pad >= d.h) {
                std::fill(dst, dst + d.ow, 0.0f);
                continue;
              }
              const float* src = img + (ih_pad - pad) * d.w + j - pad; // src[ow] for lo <= ow < hi
              for (std::size_t ow = 0; ow < lo; ++ow) {
                dst[ow] = 0.0f;
              }
              copy_row(dst + lo, src + lo, hi - lo);
              for (std::size_t ow = hi; ow < d.ow; ++ow) {
                dst[ow] = 0.0f;
              }
            }
          }
        }
      }
    }
  }
  /// The adjoint of `im2col_range`: samples `[n0, n1)` of `dx` are overwritten with the sums.
  static void col2im_range(const float* col, std::size_t ld, const conv_dims& d, std::size_t kh,
                           std::size_t kw, std::size_t pad, std::size_t n0, std::size_t n1, float* px) {
    const std::size_t p = d.oh * d.ow;
    std::fill(px + n0 * d.c * d.h * d.w, px + n1 * d.c * d.h * d.w, 0.0f);
    if (pad == 0) {
      for (std::size_t n = n0; n < n1; ++n) {
        for (std::size_t c = 0; c < d.c; ++c) {
          float* img = px + (n * d.c + c) * d.h * d.w;
          for (std::size_t i = 0; i < kh; ++i) {
            for (std::size_t j = 0; j < kw; ++j) {
              const float* src = col + ((c * kh + i) * kw + j) * ld + (n - n0) * p;
              float* dst = img + i * d.w + j;
              add_rows(dst, src, d.oh, d.ow, d.w);
            }
          }
        }
      }
      return;
    }
    for (std::size_t n = n0; n < n1; ++n) {
      for (std::size_t c = 0; c < d.c; ++c) {
        float* img = px + (n * d.c + c) * d.h * d.w;
        for (std::size_t i = 0; i < kh; ++i) {
          for (std::size_t j = 0; j < kw; ++j) {
            const float* src = col + ((c * kh + i) * kw + j) * ld + (n - n0) * p;
            const auto [lo, hi] = valid_range(j, pad, d.w, d.ow);
            for (std::size_t oh = 0; oh < d.oh; ++oh, src += d.ow) {
              const std::size_t ih_pad = oh + i;
              if (ih_pad < pad || ih_pad - pad >= d.h) {
                continue;
              }
              float* dst = img + (ih_pad - pad) * d.w + j - pad; // dst[ow] for lo <= ow < hi
              add_row(dst + lo, src + lo, hi - lo);
            }
          }
        }
      }
    }
  }
  /// The forward half of the fused conv2d variants: cuts the batch into chunks, and for each one
  /// (on some thread of the pool) lowers it with `im2col_range`, multiplies by `w` into an
  /// OC × (chunk·OH·OW) buffer and calls `write_back(n0, n1, buffer, columns)`.
  template <class WriteBack>
  static void conv_chunks_forward(const tensor& x, const tensor& w, const conv_dims& d, std::size_t k,
                                  std::size_t pad, WriteBack&& write_back) {
    const std::size_t oc = w.shape()[0];
    const std::size_t p = d.oh * d.ow;
    const std::size_t ckk = d.c * k * k;
    const std::size_t chunk = conv_chunk(ckk, p, d.n);
    const std::size_t chunks = (d.n + chunk - 1) / chunk;
    blas::check_kernels();
    // chunks handed out one at a time: on a machine whose cores are shared, a slowed thread
    // takes fewer of them instead of holding up the whole layer
    cpu_parallel::parallel_each(chunks, [&](std::size_t ci) {
      thread_local std::vector<float> col;
      thread_local std::vector<float> out;
      const std::size_t n0 = ci * chunk;
      const std::size_t n1 = std::min(d.n, n0 + chunk);
      const std::size_t cols = (n1 - n0) * p;
      col.resize(ckk * cols);
      out.resize(oc * cols);
      im2col_range(x.data(), d, k, k, pad, n0, n1, col.data(), cols);
      const int icols = blas_int("conv2d", cols);
      const int ickk = blas_int("conv2d", ckk);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blas_int("conv2d", oc), icols, ickk, 1.0f,
                  w.data(), ickk, col.data(), icols, 0.0f, out.data(), icols);
      write_back(n0, n1, static_cast<const float*>(out.data()), cols);
    });
  }
  /// The backward half: per chunk, `fill_gcm(n0, n1, gcm, columns, db_part)` writes the output
  /// gradient as OC × (chunk·OH·OW) and adds the chunk's bias gradient to `db_part`; then the
  /// weight gradient (per-thread partial sums, added in a fixed order) and, when `dx` is not
  /// null, the input gradient through `col2im_range`.
  template <class FillGcm>
  static void conv_chunks_backward(const char* op, const tensor& x, const tensor& w, const conv_dims& d,
                                   std::size_t k, std::size_t pad, tensor& dw, tensor& db, tensor* dx,
                                   FillGcm&& fill_gcm) {
    if (dw.size() != w.size()) {
      throw shape_error(std::string("selmask::cpu::") + op + ": weight gradient of shape " +
                        shape_of(dw).str() + " for weights of shape " + shape_of(w).str());
    }
    if (dx != nullptr) {
      ensure_shape(*dx, shape_of(x));
    }
    const std::size_t oc = w.shape()[0];
    const std::size_t p = d.oh * d.ow;
    const std::size_t ckk = d.c * k * k;
    const std::size_t chunk = conv_chunk(ckk, p, d.n);
    const std::size_t chunks = (d.n + chunk - 1) / chunk;
    // The weight gradient is summed per part (a fixed run of chunks, its own buffer), the parts
    // handed out one at a time like the forward's chunks and added in a fixed order at the end;
    // several parts per thread, so that a slowed thread takes fewer of them.
    const std::size_t parts = std::min(chunks, std::max<std::size_t>(8, 2 * cpu_parallel::threads()));
    const std::size_t per_part = oc * ckk + oc;
    thread_local std::vector<float> partial_buffer; // the caller's; the parts write through `partial`
    partial_buffer.assign(parts * per_part, 0.0f);
    float* const partial = partial_buffer.data();
    blas::check_kernels();
    const int ioc = blas_int(op, oc);
    const int ickk = blas_int(op, ckk);
    cpu_parallel::parallel_each(parts, [&](std::size_t part) {
      thread_local std::vector<float> col;
      thread_local std::vector<float> gcm;
      thread_local std::vector<float> dcol;
      float* pdw = partial + part * per_part;
      float* pdb = pdw + oc * ckk;
      for (std::size_t ci = chunks * part / parts; ci < chunks * (part + 1) / parts; ++ci) {
        const std::size_t n0 = ci * chunk;
        const std::size_t n1 = std::min(d.n, n0 + chunk);
        const std::size_t cols = (n1 - n0) * p;
        const int icols = blas_int(op, cols);
        col.resize(ckk * cols);
        gcm.resize(oc * cols);
        im2col_range(x.data(), d, k, k, pad, n0, n1, col.data(), cols);
        fill_gcm(n0, n1, gcm.data(), cols, pdb);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ioc, ickk, icols, 1.0f, gcm.data(), icols,
                    col.data(), icols, 1.0f, pdw, ickk);
        if (dx != nullptr) {
          dcol.resize(ckk * cols);
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ickk, icols, ioc, 1.0f, w.data(), ickk,
                      gcm.data(), icols, 0.0f, dcol.data(), icols);
          col2im_range(dcol.data(), cols, d, k, k, pad, n0, n1, dx->data());
        }
      }
    });
    // dw, db += the parts' sums, each value adding the parts in their order
    float* gw = dw.data();
    float* gb = db.data();
    cpu_parallel::parallel_for(per_part, elementwise_grain, [&](std::size_t i0, std::size_t i1) {
      for (std::size_t part = 0; part < parts; ++part) {
        const float* pp = partial + part * per_part;
        const std::size_t split = std::clamp(oc * ckk, i0, i1); // weights below, biases from here
        for (std::size_t i = i0; i < split; ++i) {
          gw[i] += pp[i];
        }
        for (std::size_t i = split; i < i1; ++i) {
          gb[i - oc * ckk] += pp[i];
        }
      }
    });
  }
  /// Samples per chunk of the fused conv2d: enough for about `conv_columns()` GEMM columns
  /// (at least one sample), and at most 256 Ki floats (1 MiB) of lowered input, which stays in a
  /// core's L2 cache between the lowering and the GEMM. OpenBLAS's kernels ran LeNet's shapes
  /// fastest with narrow chunks (benchmarks/bench_kernels): one sample (576 columns) for the
  /// first convolution, four (256 columns) for the second; wider GEMMs with so few rows (20 or
  /// 50 output channels) ran up to 1.6× slower.
  static std::size_t conv_chunk(std::size_t ckk, std::size_t p, std::size_t n) {
    const std::size_t per_sample = std::max<std::size_t>(1, p);
    const std::size_t by_columns = (conv_columns() + per_sample / 2) / per_sample;
    const std::size_t by_cache = (std::size_t{1} << 18) / std::max<std::size_t>(1, ckk * p);
    return std::clamp<std::size_t>(std::min(by_columns, by_cache), 1, std::max<std::size_t>(1, n));
  }
  /// The GEMM width the fused conv2d aims for: 256, or `SELMASK_CONV_COLUMNS` (read once) for
  /// tuning on another CPU.
  static std::size_t conv_columns() {
    static const std::size_t columns = [] {
      const std::size_t v = cpu_parallel::detail::env_count("SELMASK_CONV_COLUMNS", 1L << 24);
      return v > 0 ? v : std::size_t{256};
    }();
    return columns;
  }
  /// Checks `w: OC×C×k×k` and `b: OC`; returns OC.
  static std::size_t check_conv_weights(const char* op, const tensor& w, const tensor& b, std::size_t c,
                                        std::size_t k) {
    const shape ws = shape_of(w);
    if (ws.rank() != 4 || ws[1] != c || ws[2] != k || ws[3] != k || b.size() != ws[0]) {
      throw shape_error(std::string("selmask::cpu::") + op + ": weights " + ws.str() + " and bias " +
                        shape_of(b).str() + " do not fit " + std::to_string(c) + " input channels and a " +
                        std::to_string(k) + "x" + std::to_string(k) + " kernel (expected [OC," +
                        std::to_string(c) + "," + std::to_string(k) + "," + std::to_string(k) +
                        "] and [OC])");
    }
    return ws[0];
  }
  /// The gradient of ReLU + 2×2 max-pool for one row of windows: each window's two conv-output
  /// rows get `g` (where `y > 0`, else 0) at the recorded offset 0…3 and 0 at the other three.
  /// Every value of both rows is written (no clearing pass first), with selects only, so that
  /// the loop compiles to vector code.
  static void unpool_rows(float* __restrict top, float* __restrict bottom, const float* __restrict y,
                          const float* __restrict g, const float* __restrict at, std::size_t pw) {
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC ivdep
#endif
    for (std::size_t q = 0; q < pw; ++q) {
      const float yv = y[q]; // every load unconditional: a select, not a branch
      const float gv = g[q];
      const float a = at[q];
      const float ge = yv > 0.0f ? gv : 0.0f;
      top[2 * q] = a == 0.0f ? ge : 0.0f;
      top[2 * q + 1] = a == 1.0f ? ge : 0.0f;
      bottom[2 * q] = a == 2.0f ? ge : 0.0f;
      bottom[2 * q + 1] = a == 3.0f ? ge : 0.0f;
    }
  }
  /// `dst[0..n) = src[0..n)` in blocks of eight (conv rows are short, often 8 or 24 values, where
  /// a generic vectorised loop spends more time choosing its path than copying). Each block is a
  /// fixed-size memcpy, which compiles to plain vector moves; the element loop it replaced ran
  /// the lowering of LeNet's second convolution 3.5× slower.
  static void copy_row(float* dst, const float* src, std::size_t n) {
    if (n >= 8) {
      // blocks of eight, the last one ending at n (it may overlap the one before: same values)
      for (std::size_t i = 0; i + 8 < n; i += 8) {
        std::memcpy(dst + i, src + i, 8 * sizeof(float));
      }
      std::memcpy(dst + n - 8, src + n - 8, 8 * sizeof(float));
      return;
    }
    for (std::size_t i = 0; i < n; ++i) {
      dst[i] = src[i];
    }
  }
  /// Calls `f(std::integral_constant<std::size_t, W>{})` when `n` is one of the usual short row
  /// widths W (8, 16, 24, 32: LeNet's rows are 8 and 24 values), else `f(n)`; a row loop written
  /// against the constant is fully unrolled into vector moves.
  template <class F>
  static void with_row_width(std::size_t n, F&& f) {
    switch (n) {
      case 8:
        return f(std::integral_constant<std::size_t, 8>{});
      case 16:
        return f(std::integral_constant<std::size_t, 16>{});
      case 24:
        return f(std::integral_constant<std::size_t, 24>{});
      case 32:
        return f(std::integral_constant<std::size_t, 32>{});
      default:
        return f(n);
    }
  }
  /// `rows` rows of `n` values from `src` (row stride `stride`) to consecutive rows of `dst` (the
  /// lowering of LeNet's second convolution, 8 values a row, ran about 20 % faster with the
  /// constant-width loop than with `copy_row` per row, measured alone).
  static void copy_rows(float* dst, const float* src, std::size_t rows, std::size_t n, std::size_t stride) {
    with_row_width(n, [&](auto w) {
      for (std::size_t r = 0; r < rows; ++r, dst += w, src += stride) {
        if constexpr (std::is_same_v<decltype(w), std::size_t>) {
          copy_row(dst, src, w);
        } else {
          std::memcpy(dst, src, w * sizeof(float));
        }
      }
    });
  }
  /// `dst[0..W) += src[0..W)` for a constant `W`; the two never overlap.
  template <std::size_t W>
  static void add_fixed(float* __restrict dst, const float* __restrict src) {
    for (std::size_t i = 0; i < W; ++i) {
      dst[i] += src[i];
    }
  }
  /// The adjoint of `copy_rows`: rows of `src` (consecutive, `n` values each) added to rows of
  /// `dst` (row stride `stride`).
  static void add_rows(float* dst, const float* src, std::size_t rows, std::size_t n, std::size_t stride) {
    with_row_width(n, [&](auto w) {
      for (std::size_t r = 0; r < rows; ++r, dst += stride, src += w) {
        if constexpr (std::is_same_v<decltype(w), std::size_t>) {
          add_row(dst, src, w);
        } else {
          add_fixed<decltype(w)::value>(dst, src);
        }
      }
    });
  }
  /// `dst[0..n) += src[0..n)`, blocked like `copy_row`.
  static void add_row(float* dst, const float* src, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      for (std::size_t l = 0; l < 8; ++l) {
        dst[i + l] += src[i + l];
      }
    }
    for (; i < n; ++i) {
      dst[i] += src[i];
    }
  }
  /// `Σ p[0..n)` in eight interleaved partial sums, a loop the compiler vectorises (a single
  /// running float sum has to stay scalar, since reordering it would change the rounding).
  static float sum_of(const float* p, std::size_t n) {
    float lane[8] = {};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      for (std::size_t l = 0; l < 8; ++l) {
        lane[l] += p[i + l];
      }
    }
    for (; i < n; ++i) {
      lane[i % 8] += p[i];
    }
    return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
  }
  static int blas_int(const char* op, std::size_t n) {
    if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      throw shape_error(std::string("selmask::cpu::") + op + ": dimension " + std::to_string(n) +
                        " exceeds the BLAS integer range");
    }
    return static_cast<int>(n);
  }
  static void scale_in_place(tensor& t, float beta) {
    float* p = t.data();
    for (std::size_t i = 0; i < t.size(); ++i) {
      p[i] = beta == 0.0f ? 0.0f : beta * p[i];
    }
  }
  struct channel_dims {
    std::size_t batch, channels, rest;
  };
  static channel_dims channel_view(const char* op, const tensor& y, const tensor& b) {
    if (y.dimension() < 2) {
      throw shape_error(std::string("selmask::cpu::") + op + ": expected N×C×… , got " + shape_of(y).str());
    }
    const std::size_t batch = y.shape()[0];
    const std::size_t ch = y.shape()[1];
    if (b.size() != ch) {
      throw shape_error(std::string("selmask::cpu::") + op + ": " + std::to_string(b.size()) +
                        " bias values for " + std::to_string(ch) + " channels (tensor " + shape_of(y).str() +
                        ")");
    }
    return {batch, ch, batch * ch == 0 ? 0 : y.size() / (batch * ch)};
  }

private:
  static std::size_t check_cells(const char* op, const tensor& a, const tensor& c, const cell_geometry& g) {
    const std::size_t per = g.values();
    if (per == 0 || a.size() % per != 0) {
      throw shape_error(std::string("selmask::cpu::") + op + ": tensor of shape " + shape_of(a).str() +
                        " is not a batch of samples of " + std::to_string(per) + " values");
    }
    if (c.size() != g.cells()) {
      throw shape_error(std::string("selmask::cpu::") + op + ": " + std::to_string(c.size()) +
                        " cell values for a grid of " + std::to_string(g.cells()) + " cells");
    }
    return per;
  }
  static std::size_t check_groups(const char* op, const tensor& w, std::size_t groups) {
    if (groups == 0 || w.size() % groups != 0) {
      throw shape_error(std::string("selmask::cpu::") + op + ": " + std::to_string(w.size()) +
                        " logits do not form groups of " + std::to_string(groups));
    }
    return w.size() / groups;
  }
  /// Calls `f(row, base)` for every (v, c, h) row of a sample: `row` is the row's index, `base`
  /// the index of the row's first cell.
  template <class F>
  static void for_each_row(const cell_geometry& g, F&& f) {
    std::size_t row = 0;
    for (std::size_t v = 0; v < g.dims[0]; ++v) {
      for (std::size_t c = 0; c < g.dims[1]; ++c) {
        const std::size_t vc = (v / g.block[0] * g.grid[1] + c / g.block[1]) * g.grid[2];
        for (std::size_t h = 0; h < g.dims[2]; ++h) {
          f(row++, (vc + h / g.block[2]) * g.grid[3]);
        }
      }
    }
  }
};

static_assert(tensor_backend<cpu>, "selmask::cpu must model selmask::tensor_backend");
static_assert(nn_backend<cpu>, "selmask::cpu must model selmask::nn_backend");

} // namespace selmask
