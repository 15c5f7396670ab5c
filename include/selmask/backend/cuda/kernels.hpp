#pragma once
/// \file backend/cuda/kernels.hpp
/// The bodies of the CUDA backend's kernels, one small functor per operation.
///
/// Every kernel of selmask's CUDA backend is "one logical thread per output value": a functor
/// with `SELMASK_HOST_DEVICE void operator()(std::size_t i) const` that computes output `i` from
/// raw device pointers, launched by an executor's `for_each(n, f)` (backend/cuda/device.cuh runs
/// it as a grid-stride CUDA kernel, backend/cuda/host_emulator.hpp as a host loop). No thread
/// depends on another, so results never depend on the launch configuration or on scheduling:
///
///  - reductions are *segmented* and two-pass: thread `(s, c)` sums the members
///    `j = c, c + chunks, c + 2·chunks, …` of segment `s` in that order, in double precision
///    (neighbouring threads read neighbouring values), and a second pass (or the host) adds the
///    `chunks` partial sums of each segment in order. The number of chunks depends only on the
///    shapes, so the same inputs give bit-identical results on every run and every GPU;
///  - scatter-like operations (col2im, max-pool backward) are written as gathers: each output
///    value sums the inputs that reach it in the CPU backend's order.
///
/// The functors hold plain pointers and sizes only (trivially copyable kernel parameters).
///
/// Plain C++ behind SELMASK_HOST_DEVICE (detail/config.hpp): nvcc compiles the bodies for host
/// and device, a host compiler as ordinary inline functions (for the host emulator). Nothing here
/// touches the CUDA runtime; that is backend/cuda/device.cuh.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../../detail/config.hpp"
#include "../../granularity/geometry.hpp"
#include "../pool_window.hpp"

namespace selmask::detail::kernels {

using index = std::size_t;

// ---- elementwise ---------------------------------------------------------------------------------

struct fill_fn {
  float* t;
  float x;
  SELMASK_HOST_DEVICE void operator()(index i) const { t[i] = x; }
};

template <class F>
struct map_fn {
  const float* a;
  float* t;
  F f;
  SELMASK_HOST_DEVICE void operator()(index i) const { t[i] = f(a[i]); }
};

template <class F>
struct map2_fn {
  const float* a;
  const float* b;
  float* t;
  F f;
  SELMASK_HOST_DEVICE void operator()(index i) const { t[i] = f(a[i], b[i]); }
};

/// t += x·a
struct axpy_fn {
  float x;
  const float* a;
  float* t;
  SELMASK_HOST_DEVICE void operator()(index i) const { t[i] += x * a[i]; }
};

/// t = β·t (β = 0 writes 0, whatever t held: GEMM semantics)
struct scale_fn {
  float* t;
  float beta;
  SELMASK_HOST_DEVICE void operator()(index i) const { t[i] = beta == 0.0f ? 0.0f : beta * t[i]; }
};

// ---- segmented reductions --------------------------------------------------------------------------

/// First pass: `partial[s·chunks + c] = Σ_{j ≡ c (mod chunks), j < V::length(s)} value(s, j)`.
template <class V>
struct segment_partials_fn {
  V value;
  index chunks;
  double* partial;
  SELMASK_HOST_DEVICE void operator()(index i) const {
    const index s = i / chunks;
    const index c = i % chunks;
    const index n = value.length(s);
    double acc = 0.0;
    for (index j = c; j < n; j += chunks) {
      acc += value(s, j);
    }
    partial[i] = acc;
  }
};

/// Second pass: `finish(s, Σ_c partial[s·chunks + c])`, the chunks added in order.
template <class Finish>
struct segment_combine_fn {
  const double* partial;
  index chunks;
  Finish finish;
  SELMASK_HOST_DEVICE void operator()(index s) const {
    double acc = 0.0;
    for (index c = 0; c < chunks; ++c) {
      acc += partial[s * chunks + c];
    }
    finish(s, acc);
  }
};

/// `t[s] = (float)sum`
struct store_float {
  float* t;
  SELMASK_HOST_DEVICE void operator()(index s, double sum) const { t[s] = static_cast<float>(sum); }
};
/// `t[s] += (float)sum` (parameter gradients accumulate)
struct accumulate_float {
  float* t;
  SELMASK_HOST_DEVICE void operator()(index s, double sum) const { t[s] += static_cast<float>(sum); }
};

/// One segment: all values of `a`.
struct values_of {
  const float* a;
  index n;
  SELMASK_HOST_DEVICE index length(index) const { return n; }
  SELMASK_HOST_DEVICE double operator()(index, index j) const { return static_cast<double>(a[j]); }
};

/// One segment: 1 for every NaN or infinite value of `a`.
struct non_finite_of {
  const float* a;
  index n;
  SELMASK_HOST_DEVICE index length(index) const { return n; }
  SELMASK_HOST_DEVICE double operator()(index, index j) const { return std::isfinite(a[j]) ? 0.0 : 1.0; }
};

/// The cell tiling of a sample (granularity/geometry.hpp) as plain arrays for device code.
struct grid_geometry {
  index dims[4];
  index block[4];
  index grid[4];

  static grid_geometry of(const cell_geometry& g) {
    grid_geometry d{};
    for (int a = 0; a < 4; ++a) {
      d.dims[a] = g.dims[a];
      d.block[a] = g.block[a];
      d.grid[a] = g.grid[a];
    }
    return d;
  }
  SELMASK_HOST_DEVICE index values() const { return dims[0] * dims[1] * dims[2] * dims[3]; }
  /// Cell of the value at flat offset `i` of a sample.
  SELMASK_HOST_DEVICE index cell_of(index i) const {
    const index w = i % dims[3];
    i /= dims[3];
    const index h = i % dims[2];
    i /= dims[2];
    const index c = i % dims[1];
    const index v = i / dims[1];
    return ((v / block[0] * grid[1] + c / block[1]) * grid[2] + h / block[2]) * grid[3] + w / block[3];
  }
  /// First index and extent of cell `k` along every axis (edge cells are smaller).
  SELMASK_HOST_DEVICE void box(index k, index lo[4], index extent[4]) const {
    for (int a = 3; a >= 0; --a) {
      const index g = k % grid[a];
      k /= grid[a];
      lo[a] = g * block[a];
      const index hi = lo[a] + block[a] < dims[a] ? lo[a] + block[a] : dims[a];
      extent[a] = hi - lo[a];
    }
  }
};

/// Segment `k` = the members of cell `k` over the batch: `Σ_n Σ_{i∈k} a[n,i]·b[n,i]` (`b` null:
/// `Σ a`). Member `j` is sample `j / |k|`, then the cell's values in row-major order.
struct cell_members {
  const float* a;
  const float* b;
  grid_geometry g;
  index batch;
  SELMASK_HOST_DEVICE index length(index k) const {
    index lo[4], ext[4];
    g.box(k, lo, ext);
    return batch * ext[0] * ext[1] * ext[2] * ext[3];
  }
  SELMASK_HOST_DEVICE double operator()(index k, index j) const {
    index lo[4], ext[4];
    g.box(k, lo, ext);
    const index cell_size = ext[0] * ext[1] * ext[2] * ext[3];
    const index n = j / cell_size;
    index r = j % cell_size;
    const index dw = r % ext[3];
    r /= ext[3];
    const index dh = r % ext[2];
    r /= ext[2];
    const index dc = r % ext[1];
    const index dv = r / ext[1];
    const index i = n * g.values() +
                    (((lo[0] + dv) * g.dims[1] + lo[1] + dc) * g.dims[2] + lo[2] + dh) * g.dims[3] + lo[3] +
                    dw;
    return b ? static_cast<double>(a[i] * b[i]) : static_cast<double>(a[i]);
  }
};

/// Segment `c` = channel `c` of an N×C×R tensor: `Σ_{n, q} g[n, c, q]`.
struct channel_members {
  const float* g;
  index batch;
  index channels;
  index rest;
  SELMASK_HOST_DEVICE index length(index) const { return batch * rest; }
  SELMASK_HOST_DEVICE double operator()(index c, index j) const {
    const index n = j / rest;
    const index q = j % rest;
    return static_cast<double>(g[(n * channels + c) * rest + q]);
  }
};

// ---- cell grids ---------------------------------------------------------------------------------------

/// `t[n, i] = a[n, i] · c[cell(i)]`
struct scale_cells_fn {
  const float* a;
  const float* c;
  float* t;
  grid_geometry g;
  index per;
  SELMASK_HOST_DEVICE void operator()(index i) const { t[i] = a[i] * c[g.cell_of(i % per)]; }
};

// ---- grouped softmax (logits V×K, one group per cell k) ------------------------------------------------

struct softmax_groups_fn {
  const float* w;
  float* t;
  index groups;
  index cells;
  float inv_tau;
  SELMASK_HOST_DEVICE void operator()(index k) const {
    float m = w[k] * inv_tau;
    for (index v = 1; v < groups; ++v) {
      const float x = w[v * cells + k] * inv_tau;
      m = m < x ? x : m;
    }
    float z = 0.0f;
    for (index v = 0; v < groups; ++v) {
      const float e = std::exp(w[v * cells + k] * inv_tau - m);
      t[v * cells + k] = e;
      z += e;
    }
    for (index v = 0; v < groups; ++v) {
      t[v * cells + k] /= z;
    }
  }
};

/// One-hot of the largest value of each group; ties go to the lowest version.
struct argmax_one_hot_fn {
  const float* s;
  float* t;
  index groups;
  index cells;
  SELMASK_HOST_DEVICE void operator()(index k) const {
    index best = 0;
    for (index v = 1; v < groups; ++v) {
      if (s[v * cells + k] > s[best * cells + k]) {
        best = v;
      }
    }
    for (index v = 0; v < groups; ++v) {
      t[v * cells + k] = v == best ? 1.0f : 0.0f;
    }
  }
};

/// `t_v = s_v (g_v − Σ_u s_u g_u)/τ`
struct softmax_groups_backward_fn {
  const float* s;
  const float* g;
  float* t;
  index groups;
  index cells;
  float inv_tau;
  SELMASK_HOST_DEVICE void operator()(index k) const {
    float dot = 0.0f;
    for (index v = 0; v < groups; ++v) {
      dot += s[v * cells + k] * g[v * cells + k];
    }
    for (index v = 0; v < groups; ++v) {
      t[v * cells + k] = s[v * cells + k] * (g[v * cells + k] - dot) * inv_tau;
    }
  }
};

// ---- versions ------------------------------------------------------------------------------------------

/// `t[n, i] = Σ_v w_v a[n, v, i]` (`w` null: 1), versions added in order.
struct sum_versions_fn {
  const float* a;
  const float* w;
  float* t;
  index versions;
  index rest;
  SELMASK_HOST_DEVICE void operator()(index o) const {
    const index n = o / rest;
    const index i = o % rest;
    float acc = 0.0f;
    for (index v = 0; v < versions; ++v) {
      const float wv = w ? w[v] : 1.0f;
      acc += wv * a[(n * versions + v) * rest + i];
    }
    t[o] = acc;
  }
};

/// `t[n, v, i] = w_v a[n, i]` (`w` null: 1)
struct repeat_versions_fn {
  const float* a;
  const float* w;
  float* t;
  index versions;
  index rest;
  SELMASK_HOST_DEVICE void operator()(index o) const {
    const index i = o % rest;
    const index nv = o / rest;
    const index v = nv % versions;
    const index n = nv / versions;
    t[o] = (w ? w[v] : 1.0f) * a[n * rest + i];
  }
};

// ---- gather / scatter ------------------------------------------------------------------------------------

struct gather_fn {
  const float* a;
  const index* idx;
  float* t;
  SELMASK_HOST_DEVICE void operator()(index j) const { t[j] = a[idx[j]]; }
};

/// `t[dst[j]] = a[src[j]]` with distinct `dst` (the host removed repeated targets first).
struct scatter_fn {
  const float* a;
  const index* dst;
  const index* src;
  float* t;
  SELMASK_HOST_DEVICE void operator()(index j) const { t[dst[j]] = a[src[j]]; }
};

// ---- network kit ---------------------------------------------------------------------------------------

struct conv_geometry {
  index n, c, h, w, oh, ow, kh, kw, pad;
};

/// Column entry `e` of im2col: row `(c·kh + i)·kw + j`, column `(n·OH + oh)·OW + ow`.
struct im2col_fn {
  const float* x;
  float* col;
  conv_geometry d;
  SELMASK_HOST_DEVICE void operator()(index e) const {
    const index np = d.n * d.oh * d.ow;
    const index row = e / np;
    index q = e % np;
    const index ow = q % d.ow;
    q /= d.ow;
    const index oh = q % d.oh;
    const index n = q / d.oh;
    const index j = row % d.kw;
    const index i = (row / d.kw) % d.kh;
    const index c = row / (d.kw * d.kh);
    const index ih = oh + i; // input row + pad
    const index iw = ow + j;
    const bool inside = ih >= d.pad && ih - d.pad < d.h && iw >= d.pad && iw - d.pad < d.w;
    col[e] = inside ? x[((n * d.c + c) * d.h + (ih - d.pad)) * d.w + (iw - d.pad)] : 0.0f;
  }
};

/// Input value `e = (n, c, h, w)` of col2im: the sum, over (i, j) in order, of the column entries
/// that read it.
struct col2im_fn {
  const float* col;
  float* dx;
  conv_geometry d;
  SELMASK_HOST_DEVICE void operator()(index e) const {
    index q = e;
    const index w = q % d.w;
    q /= d.w;
    const index h = q % d.h;
    q /= d.h;
    const index c = q % d.c;
    const index n = q / d.c;
    const index np = d.n * d.oh * d.ow;
    float acc = 0.0f;
    for (index i = 0; i < d.kh; ++i) {
      const index oh = h + d.pad - i; // wraps around when negative: caught by oh < d.oh
      if (h + d.pad < i || oh >= d.oh) {
        continue;
      }
      for (index j = 0; j < d.kw; ++j) {
        const index ow = w + d.pad - j;
        if (w + d.pad < j || ow >= d.ow) {
          continue;
        }
        acc += col[((c * d.kh + i) * d.kw + j) * np + (n * d.oh + oh) * d.ow + ow];
      }
    }
    dx[e] = acc;
  }
};

/// `a: A×B×R → t: B×A×R`, output value `o`.
struct swap_leading_axes_fn {
  const float* a;
  float* t;
  index d0;
  index d1;
  index rest;
  SELMASK_HOST_DEVICE void operator()(index o) const {
    const index q = o % rest;
    const index ji = o / rest; // j·d0 + i
    const index i = ji % d0;
    const index j = ji / d0;
    t[o] = a[(i * d1 + j) * rest + q];
  }
};

/// `y[n, c, q] += b[c]`
struct add_bias_fn {
  float* y;
  const float* b;
  index channels;
  index rest;
  SELMASK_HOST_DEVICE void operator()(index e) const { y[e] += b[(e / rest) % channels]; }
};

/// `y = max(x, 0)`, NaN stays NaN (as `std::max(x, 0.0f)` on the CPU).
struct relu_forward_fn {
  const float* x;
  float* y;
  SELMASK_HOST_DEVICE void operator()(index i) const {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : v;
  }
};

/// `dx = g · [y > 0]`
struct relu_backward_fn {
  const float* y;
  const float* g;
  float* dx;
  SELMASK_HOST_DEVICE void operator()(index i) const { dx[i] = y[i] > 0.0f ? g[i] : 0.0f; }
};

/// 2×2 max-pool, output value `o = (p, r, q)`: the maximum and its window offset (first wins).
struct maxpool2_forward_fn {
  const float* x;
  float* y;
  float* at;
  index h;
  index w;
  index oh;
  index ow;
  SELMASK_HOST_DEVICE void operator()(index o) const {
    const index q = o % ow;
    const index r = (o / ow) % oh;
    const index p = o / (ow * oh);
    const float* top = x + p * h * w + 2 * r * w;
    const float* bottom = top + w;
    const formula::pool_pick pick = formula::pool_window(top + 2 * q, bottom + 2 * q, 0.0f);
    y[o] = pick.best;
    at[o] = pick.at;
  }
};

/// Routes output gradient `o` to its window's maximum (windows do not overlap: one writer per
/// input value; `dx` was zeroed first).
struct maxpool2_backward_fn {
  const float* g;
  const float* at;
  float* dx;
  index h;
  index w;
  index oh;
  index ow;
  SELMASK_HOST_DEVICE void operator()(index o) const {
    const index q = o % ow;
    const index r = (o / ow) % oh;
    const index p = o / (ow * oh);
    const auto k = static_cast<index>(at[o]) & 3u;
    dx[p * h * w + (2 * r + k / 2) * w + 2 * q + k % 2] = g[o];
  }
};

/// Sample `n` of a softmax cross-entropy: its loss (double), whether its first largest logit is
/// the label, and its row of `(softmax − onehot) / N`.
struct softmax_cross_entropy_fn {
  const float* logits;
  const std::int32_t* labels;
  float* grad;
  double* loss;
  std::int32_t* correct;
  index classes;
  float inv_n;
  SELMASK_HOST_DEVICE void operator()(index n) const {
    const float* row = logits + n * classes;
    float* grow = grad + n * classes;
    const auto label = static_cast<index>(labels[n]);
    index best = 0;
    for (index k = 1; k < classes; ++k) {
      if (row[k] > row[best]) {
        best = k;
      }
    }
    const float mx = row[best];
    double z = 0.0;
    for (index k = 0; k < classes; ++k) {
      const float e = std::exp(row[k] - mx);
      grow[k] = e;
      z += static_cast<double>(e);
    }
    loss[n] = std::log(z) - static_cast<double>(row[label] - mx);
    correct[n] = best == label ? 1 : 0;
    const auto scale = static_cast<float>(1.0 / z) * inv_n;
    for (index k = 0; k < classes; ++k) {
      grow[k] *= scale;
    }
    grow[label] -= inv_n;
  }
};

/// One AdamW (AMSGrad when `vmax` is not null) update of parameter value `i`.
struct adamw_fn {
  float* p;
  const float* g;
  float* m;
  float* v;
  float* vmax;
  float b1;
  float b2;
  float eps;
  float decay;
  float step_size;
  float inv_bc2_sqrt;
  SELMASK_HOST_DEVICE void operator()(index i) const {
    const float gi = g[i];
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float second = vi;
    if (vmax) {
      const float vm = vmax[i] < vi ? vi : vmax[i];
      vmax[i] = vm;
      second = vm;
    }
    const float denom = std::sqrt(second) * inv_bc2_sqrt + eps;
    p[i] = p[i] * decay - step_size * mi / denom;
  }
};

} // namespace selmask::detail::kernels
