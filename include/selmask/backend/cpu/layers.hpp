#pragma once
/// \file backend/cpu/layers.hpp
/// `detail::cpu_layer_ops`: the network kit's other primitives on `selmask::cpu` — axis swaps,
/// biases, ReLU, 2×2 max-pool, softmax cross-entropy and the AdamW step. Loops run on the pool's
/// threads above `elementwise_grain` values; AdamW uses xsimd batches because `std::sqrt` keeps
/// a plain loop scalar (it may set errno).

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../../error.hpp"
#include "../../shape.hpp"
#include "../nn_backend.hpp"
#include "../pool_window.hpp"
#include "common.hpp"
#include "parallel.hpp"
#include "rows.hpp"

namespace selmask::detail {

struct cpu_layer_ops : cpu_common {
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
          s += static_cast<double>(cpu_rows::sum_of(pg + (n * ch + c) * r, r));
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

protected:
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
};

} // namespace selmask::detail
