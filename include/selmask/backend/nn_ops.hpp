#pragma once
/// \file backend/nn_ops.hpp
/// The network kit's operations beyond the `nn_backend` layers (core + `gemm`), each with a
/// generic default on the core; `bk::f<B>(...)` calls `B::f(...)` when the backend has it
/// (detected with `requires`) and the default otherwise, as in backend/ops.hpp.
///
/// Functions (default written as: H = host round trip, or the core functions named):
///  - `bk::im2col<B>(x, kh, kw, pad, t)` (H): `x: N×C×H×W → t: (C·kh·kw) × (N·OH·OW)`,
///    OH = H + 2·pad − kh + 1 (stride 1, zero padding); row `(c·kh+i)·kw+j`, column
///    `(n·OH+oh)·OW+ow` holds `x[n, c, oh+i−pad, ow+j−pad]` (0 outside).
///  - `bk::col2im<B>(col, s, kh, kw, pad, t)` (H): the adjoint of im2col; `t` (shape `s`,
///    N×C×H×W) is the sum of the column entries that read each input value.
///  - `bk::swap_leading_axes<B>(a, t)` (H): `a: A×B×R… → t: B×A×R…`.
///  - `bk::add_bias<B>(t, b)` (H): `t[n, c, …] += b[c]`, in place on `t`.
///  - `bk::bias_grad<B>(g, t)` (H): `t[c] += Σ_{n,…} g[n, c, …]` (accumulates).
///  - `bk::relu_forward<B>(a, t)` (`map`): `t = max(a, 0)` (NaN stays NaN).
///  - `bk::relu_backward<B>(y, g, t)` (`map2`): `t = g · [y > 0]`, `y` the forward output.
///  - `bk::maxpool2_forward<B>(x, t, u)` (H): 2×2 max-pool, stride 2, odd edges dropped:
///    `t: N×C×⌊H/2⌋×⌊W/2⌋`; `u` (same shape) the window offset 0…3 of each maximum
///    (row-major in the window, the first maximum wins).
///  - `bk::maxpool2_backward<B>(g, u, s, t)` (H): `t` (shape `s`, the forward input's) gets `g`
///    routed to the maxima, 0 elsewhere.
///  - `bk::softmax_cross_entropy<B>(a, y, t)` (H): logits N×K, labels N values in [0, K); returns
///    `{Σ_n −log softmax(a_n)[y_n], #argmax = y}`; `t = (softmax(a) − onehot(y)) / N`.
///  - `bk::adamw_step<B>(p, g, m, v, vmax, h, k)` (H): one AdamW update of `p` (see `adamw_hyper`),
///    moments `m`, `v`, running maximum `vmax` (AMSGrad only; may be empty without), step `k ≥ 1`.
///
/// The host round trips (`to_host` → plain loops → `from_host`) are the honest generic form of
/// operations that move values between indices or update several tensors at once; the CPU and
/// CUDA backends override every one of them. Outputs must not be inputs (aliasing rule of
/// backend/backend.hpp; `value_error` naming the function), bad shapes throw `shape_error`.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../shape.hpp"
#include "backend.hpp"
#include "nn_backend.hpp"
#include "pool_window.hpp"

namespace selmask::bk {

namespace detail {
struct relu_op {
  SELMASK_HOST_DEVICE float operator()(float x) const { return x < 0.0f ? 0.0f : x; }
};
struct relu_grad_op {
  SELMASK_HOST_DEVICE float operator()(float y, float g) const { return y > 0.0f ? g : 0.0f; }
};

struct conv_extent {
  std::size_t n, c, h, w, oh, ow;
};
inline conv_extent conv_extent_of(const char* who, const shape& x, std::size_t kh, std::size_t kw,
                                  std::size_t pad) {
  if (x.rank() != 4) {
    throw shape_error(std::string(who) + ": expected an N×C×H×W input, got " + x.str());
  }
  if (kh == 0 || kw == 0 || x[2] + 2 * pad < kh || x[3] + 2 * pad < kw) {
    throw shape_error(std::string(who) + ": a " + std::to_string(kh) + "x" + std::to_string(kw) +
                      " kernel with padding " + std::to_string(pad) + " does not fit input " + x.str());
  }
  return {x[0], x[1], x[2], x[3], x[2] + 2 * pad - kh + 1, x[3] + 2 * pad - kw + 1};
}

/// Calls `f(col_index, x_index)` for every column entry that reads an input value (padding
/// entries skipped): the one index map behind both im2col and col2im.
template <class F>
void for_each_lowered(const conv_extent& d, std::size_t kh, std::size_t kw, std::size_t pad, F&& f) {
  const std::size_t np = d.n * d.oh * d.ow;
  for (std::size_t c = 0; c < d.c; ++c)
    for (std::size_t i = 0; i < kh; ++i)
      for (std::size_t j = 0; j < kw; ++j)
        for (std::size_t n = 0; n < d.n; ++n)
          for (std::size_t oh = 0; oh < d.oh; ++oh)
            for (std::size_t ow = 0; ow < d.ow; ++ow) {
              const std::size_t y = oh + i, xx = ow + j; // input row / column + pad
              if (y < pad || xx < pad || y - pad >= d.h || xx - pad >= d.w) {
                continue;
              }
              const std::size_t row = (c * kh + i) * kw + j;
              const std::size_t col = (n * d.oh + oh) * d.ow + ow;
              f(row * np + col, ((n * d.c + c) * d.h + (y - pad)) * d.w + (xx - pad));
            }
}

struct channel_extent {
  std::size_t batch, channels, rest;
};
inline channel_extent channel_extent_of(const char* who, const shape& y, std::size_t bias_values) {
  if (y.rank() < 2) {
    throw shape_error(std::string(who) + ": expected N×C×…, got " + y.str());
  }
  if (bias_values != y[1]) {
    throw shape_error(std::string(who) + ": " + std::to_string(bias_values) + " bias values for " +
                      std::to_string(y[1]) + " channels (tensor " + y.str() + ")");
  }
  const std::size_t nc = y[0] * y[1];
  return {y[0], y[1], nc == 0 ? 0 : y.size() / nc};
}
} // namespace detail

/// conv2d lowering (stride 1, zero padding `pad`) of `x: N×C×H×W` into `col`.
template <nn_backend B>
void im2col(const tensor_t<B>& x, std::size_t kh, std::size_t kw, std::size_t pad, tensor_t<B>& col) {
  if constexpr (requires { B::im2col(x, kh, kw, pad, col); }) {
    B::im2col(x, kh, kw, pad, col);
  } else {
    constexpr const char* who = "selmask::bk::im2col";
    selmask::detail::check_distinct(who, col, "col", x, "x");
    const detail::conv_extent d = detail::conv_extent_of(who, B::shape_of(x), kh, kw, pad);
    const std::vector<float> px = B::to_host(x);
    std::vector<float> pc(d.c * kh * kw * d.n * d.oh * d.ow, 0.0f);
    detail::for_each_lowered(d, kh, kw, pad, [&](std::size_t ci, std::size_t xi) { pc[ci] = px[xi]; });
    col = B::from_host(shape{d.c * kh * kw, d.n * d.oh * d.ow}, pc);
  }
}

/// The adjoint of `im2col`: `dx` (shape `x_shape`) gets the sum of the entries that read each value.
template <nn_backend B>
void col2im(const tensor_t<B>& col, const shape& x_shape, std::size_t kh, std::size_t kw, std::size_t pad,
            tensor_t<B>& dx) {
  if constexpr (requires { B::col2im(col, x_shape, kh, kw, pad, dx); }) {
    B::col2im(col, x_shape, kh, kw, pad, dx);
  } else {
    constexpr const char* who = "selmask::bk::col2im";
    selmask::detail::check_distinct(who, dx, "dx", col, "col");
    const detail::conv_extent d = detail::conv_extent_of(who, x_shape, kh, kw, pad);
    const std::vector<float> pc = B::to_host(col);
    if (pc.size() != d.c * kh * kw * d.n * d.oh * d.ow) {
      throw shape_error(std::string(who) + ": columns of shape " + B::shape_of(col).str() +
                        " do not fit an input of shape " + x_shape.str() + " (expected [" +
                        std::to_string(d.c * kh * kw) + "," + std::to_string(d.n * d.oh * d.ow) + "])");
    }
    std::vector<float> px(x_shape.size(), 0.0f);
    detail::for_each_lowered(d, kh, kw, pad, [&](std::size_t ci, std::size_t xi) { px[xi] += pc[ci]; });
    dx = B::from_host(x_shape, px);
  }
}

/// `a: A×B×R… → t: B×A×R…`.
template <nn_backend B>
void swap_leading_axes(const tensor_t<B>& a, tensor_t<B>& t) {
  if constexpr (requires { B::swap_leading_axes(a, t); }) {
    B::swap_leading_axes(a, t);
  } else {
    constexpr const char* who = "selmask::bk::swap_leading_axes";
    selmask::detail::check_distinct(who, t, "t", a, "a");
    shape s = B::shape_of(a);
    if (s.rank() < 2) {
      throw shape_error(std::string(who) + ": expected rank >= 2, got " + s.str());
    }
    const std::size_t d0 = s[0], d1 = s[1];
    const std::size_t r = d0 * d1 == 0 ? 0 : s.size() / (d0 * d1);
    const std::vector<float> pa = B::to_host(a);
    std::vector<float> pt(pa.size());
    for (std::size_t i = 0; i < d0; ++i)
      for (std::size_t j = 0; j < d1; ++j)
        std::copy_n(pa.begin() + static_cast<std::ptrdiff_t>((i * d1 + j) * r), r,
                    pt.begin() + static_cast<std::ptrdiff_t>((j * d0 + i) * r));
    std::swap(s[0], s[1]);
    t = B::from_host(s, pt);
  }
}

/// `y[n, c, …] += b[c]`.
template <nn_backend B>
void add_bias(tensor_t<B>& y, const tensor_t<B>& b) {
  if constexpr (requires { B::add_bias(y, b); }) {
    B::add_bias(y, b);
  } else {
    constexpr const char* who = "selmask::bk::add_bias";
    selmask::detail::check_distinct(who, y, "y", b, "b");
    const shape s = B::shape_of(y);
    const std::vector<float> pb = B::to_host(b);
    const auto [batch, ch, r] = detail::channel_extent_of(who, s, pb.size());
    std::vector<float> py = B::to_host(y);
    for (std::size_t t = 0; t < batch * ch; ++t)
      for (std::size_t i = 0; i < r; ++i)
        py[t * r + i] += pb[t % ch];
    y = B::from_host(s, py);
  }
}

/// `db[c] += Σ_{n, …} g[n, c, …]`.
template <nn_backend B>
void bias_grad(const tensor_t<B>& g, tensor_t<B>& db) {
  if constexpr (requires { B::bias_grad(g, db); }) {
    B::bias_grad(g, db);
  } else {
    constexpr const char* who = "selmask::bk::bias_grad";
    selmask::detail::check_distinct(who, db, "db", g, "g");
    std::vector<float> pb = B::to_host(db);
    const auto [batch, ch, r] = detail::channel_extent_of(who, B::shape_of(g), pb.size());
    const std::vector<float> pg = B::to_host(g);
    for (std::size_t c = 0; c < ch; ++c) {
      double s = 0.0;
      for (std::size_t n = 0; n < batch; ++n)
        for (std::size_t i = 0; i < r; ++i)
          s += static_cast<double>(pg[(n * ch + c) * r + i]);
      pb[c] += static_cast<float>(s);
    }
    db = B::from_host(B::shape_of(db), pb);
  }
}

/// `y = max(x, 0)`.
template <nn_backend B>
void relu_forward(const tensor_t<B>& x, tensor_t<B>& y) {
  if constexpr (requires { B::relu_forward(x, y); }) {
    B::relu_forward(x, y);
  } else {
    selmask::detail::check_distinct("selmask::bk::relu_forward", y, "y", x, "x");
    B::map(x, y, detail::relu_op{});
  }
}

/// `dx = g · [y > 0]`.
template <nn_backend B>
void relu_backward(const tensor_t<B>& y, const tensor_t<B>& g, tensor_t<B>& dx) {
  if constexpr (requires { B::relu_backward(y, g, dx); }) {
    B::relu_backward(y, g, dx);
  } else {
    constexpr const char* who = "selmask::bk::relu_backward";
    selmask::detail::check_distinct(who, dx, "dx", y, "y");
    selmask::detail::check_distinct(who, dx, "dx", g, "g");
    if (!(B::shape_of(y) == B::shape_of(g))) {
      throw shape_error(std::string(who) + ": gradient shape " + B::shape_of(g).str() +
                        " differs from the output shape " + B::shape_of(y).str());
    }
    B::map2(y, g, dx, detail::relu_grad_op{});
  }
}

/// 2×2 max-pool, stride 2, with the offset of each window's maximum in `idx`.
template <nn_backend B>
void maxpool2_forward(const tensor_t<B>& x, tensor_t<B>& y, tensor_t<B>& idx) {
  if constexpr (requires { B::maxpool2_forward(x, y, idx); }) {
    B::maxpool2_forward(x, y, idx);
  } else {
    constexpr const char* who = "selmask::bk::maxpool2_forward";
    selmask::detail::check_distinct(who, y, "y", x, "x");
    selmask::detail::check_distinct(who, idx, "idx", x, "x");
    selmask::detail::check_distinct(who, idx, "idx", y, "y");
    const shape s = B::shape_of(x);
    if (s.rank() != 4) {
      throw shape_error(std::string(who) + ": expected N×C×H×W, got " + s.str());
    }
    const std::size_t h = s[2], w = s[3], oh = h / 2, ow = w / 2;
    const std::vector<float> px = B::to_host(x);
    std::vector<float> py(s[0] * s[1] * oh * ow), pi(py.size());
    for (std::size_t p = 0; p < s[0] * s[1]; ++p)
      for (std::size_t r = 0; r < oh; ++r)
        for (std::size_t q = 0; q < ow; ++q) {
          const float* top = px.data() + (p * h + 2 * r) * w + 2 * q;
          const auto [best, at] = formula::pool_window(top, top + w, 0.0f);
          py[(p * oh + r) * ow + q] = best;
          pi[(p * oh + r) * ow + q] = at;
        }
    const shape out{s[0], s[1], oh, ow};
    y = B::from_host(out, py);
    idx = B::from_host(out, pi);
  }
}

/// `dx` (shape `x_shape`) gets `g` at the maxima recorded in `idx`, 0 elsewhere.
template <nn_backend B>
void maxpool2_backward(const tensor_t<B>& g, const tensor_t<B>& idx, const shape& x_shape, tensor_t<B>& dx) {
  if constexpr (requires { B::maxpool2_backward(g, idx, x_shape, dx); }) {
    B::maxpool2_backward(g, idx, x_shape, dx);
  } else {
    constexpr const char* who = "selmask::bk::maxpool2_backward";
    selmask::detail::check_distinct(who, dx, "dx", g, "g");
    selmask::detail::check_distinct(who, dx, "dx", idx, "idx");
    if (x_shape.rank() != 4) {
      throw shape_error(std::string(who) + ": expected an N×C×H×W input shape, got " + x_shape.str());
    }
    const std::size_t h = x_shape[2], w = x_shape[3], oh = h / 2, ow = w / 2;
    const shape out{x_shape[0], x_shape[1], oh, ow};
    if (!(B::shape_of(g) == out) || !(B::shape_of(idx) == out)) {
      throw shape_error(std::string(who) + ": gradient " + B::shape_of(g).str() + " and indices " +
                        B::shape_of(idx).str() + " must have the pooled shape " + out.str() + " of input " +
                        x_shape.str());
    }
    const std::vector<float> pg = B::to_host(g);
    const std::vector<float> pi = B::to_host(idx);
    std::vector<float> pd(x_shape.size(), 0.0f);
    for (std::size_t p = 0; p < x_shape[0] * x_shape[1]; ++p)
      for (std::size_t r = 0; r < oh; ++r)
        for (std::size_t q = 0; q < ow; ++q) {
          const std::size_t o = (p * oh + r) * ow + q;
          const auto k = static_cast<std::size_t>(pi[o]) & 3u;
          pd[(p * h + 2 * r + k / 2) * w + 2 * q + k % 2] += pg[o];
        }
    dx = B::from_host(x_shape, pd);
  }
}

/// Softmax cross-entropy of logits N×K against `labels`; `grad` gets the mean loss's gradient.
template <nn_backend B>
cross_entropy_result softmax_cross_entropy(const tensor_t<B>& logits, std::span<const std::int32_t> labels,
                                           tensor_t<B>& grad) {
  if constexpr (requires { B::softmax_cross_entropy(logits, labels, grad); }) {
    return B::softmax_cross_entropy(logits, labels, grad);
  } else {
    constexpr const char* who = "selmask::bk::softmax_cross_entropy";
    selmask::detail::check_distinct(who, grad, "grad", logits, "logits");
    const shape s = B::shape_of(logits);
    if (s.rank() != 2 || s[1] == 0) {
      throw shape_error(std::string(who) + ": expected logits N×K with K > 0, got " + s.str());
    }
    const std::size_t batch = s[0], kc = s[1];
    if (labels.size() != batch) {
      throw shape_error(std::string(who) + ": " + std::to_string(labels.size()) +
                        " labels for logits of shape " + s.str());
    }
    const std::vector<float> pl = B::to_host(logits);
    std::vector<float> pg(pl.size());
    cross_entropy_result r;
    const float inv_n = batch == 0 ? 0.0f : 1.0f / static_cast<float>(batch);
    for (std::size_t n = 0; n < batch; ++n) {
      const std::int32_t y = labels[n];
      if (y < 0 || static_cast<std::size_t>(y) >= kc) {
        throw value_error(std::string(who) + ": label " + std::to_string(y) + " of sample " +
                          std::to_string(n) + " is outside [0, " + std::to_string(kc) + ")");
      }
      const float* row = pl.data() + n * kc;
      float* grow = pg.data() + n * kc;
      const std::size_t best = static_cast<std::size_t>(std::max_element(row, row + kc) - row);
      double z = 0.0;
      for (std::size_t k = 0; k < kc; ++k) {
        grow[k] = std::exp(row[k] - row[best]);
        z += static_cast<double>(grow[k]);
      }
      r.loss_sum += std::log(z) - static_cast<double>(row[y] - row[best]);
      r.correct += best == static_cast<std::size_t>(y) ? 1 : 0;
      for (std::size_t k = 0; k < kc; ++k) {
        grow[k] *= static_cast<float>(1.0 / z) * inv_n;
      }
      grow[y] -= inv_n;
    }
    grad = B::from_host(s, pg);
    return r;
  }
}

/// One AdamW update (PyTorch's semantics, see `adamw_hyper`).
template <nn_backend B>
void adamw_step(tensor_t<B>& param, const tensor_t<B>& grad, tensor_t<B>& m, tensor_t<B>& v,
                tensor_t<B>& vmax, const adamw_hyper& h, std::size_t step) {
  if constexpr (requires { B::adamw_step(param, grad, m, v, vmax, h, step); }) {
    B::adamw_step(param, grad, m, v, vmax, h, step);
  } else {
    constexpr const char* who = "selmask::bk::adamw_step";
    selmask::detail::check_distinct(who, param, "param", grad, "grad");
    selmask::detail::check_distinct(who, m, "m", grad, "grad");
    selmask::detail::check_distinct(who, v, "v", grad, "grad");
    selmask::detail::check_distinct(who, m, "m", v, "v");
    std::vector<float> pp = B::to_host(param), pm = B::to_host(m), pv = B::to_host(v);
    std::vector<float> pvm = h.amsgrad ? B::to_host(vmax) : std::vector<float>{};
    const std::vector<float> pg = B::to_host(grad);
    const std::size_t n = pp.size();
    if (pg.size() != n || pm.size() != n || pv.size() != n || (h.amsgrad && pvm.size() != n)) {
      throw shape_error(std::string(who) + ": parameter " + B::shape_of(param).str() + ", gradient " +
                        B::shape_of(grad).str() + ", moments " + B::shape_of(m).str() + " / " +
                        B::shape_of(v).str() + (h.amsgrad ? " / " + B::shape_of(vmax).str() : "") +
                        " must have the same size");
    }
    if (step == 0) {
      throw value_error(std::string(who) + ": step counts from 1, got 0");
    }
    const double t = static_cast<double>(step);
    const auto step_size =
      static_cast<float>(static_cast<double>(h.lr) / (1.0 - std::pow(double{h.beta1}, t)));
    const auto inv_bc2_sqrt = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(double{h.beta2}, t)));
    const float decay = 1.0f - h.lr * h.weight_decay;
    for (std::size_t i = 0; i < n; ++i) {
      pm[i] = h.beta1 * pm[i] + (1.0f - h.beta1) * pg[i];
      pv[i] = h.beta2 * pv[i] + (1.0f - h.beta2) * pg[i] * pg[i];
      float second = pv[i];
      if (h.amsgrad) {
        pvm[i] = std::max(pvm[i], pv[i]);
        second = pvm[i];
      }
      pp[i] = pp[i] * decay - step_size * pm[i] / (std::sqrt(second) * inv_bc2_sqrt + h.eps);
    }
    param = B::from_host(B::shape_of(param), pp);
    m = B::from_host(B::shape_of(m), pm);
    v = B::from_host(B::shape_of(v), pv);
    if (h.amsgrad) {
      vmax = B::from_host(B::shape_of(vmax), pvm);
    }
  }
}

} // namespace selmask::bk
