#pragma once
/// \file backend/cpu/conv.hpp
/// `detail::cpu_conv_ops`: the convolutions of `selmask::cpu` — im2col / col2im, and the fused
/// conv2d (+ ReLU + 2×2 max-pool) forward and backward passes that lower, multiply and write back
/// the batch in cache-sized chunks on the pool's threads, so that nothing the size of the whole
/// batch's lowered input is ever written. Results are deterministic for a given thread count:
/// partial weight gradients are added in a fixed order.

#include <cblas.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "../../error.hpp"
#include "../../shape.hpp"
#include "../pool_window.hpp"
#include "blas.hpp"
#include "common.hpp"
#include "parallel.hpp"
#include "rows.hpp"

namespace selmask::detail {

struct cpu_conv_ops : cpu_common {
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
                               cpu_rows::copy_row(gcm + o * cols + (n - n0) * p, src, p);
                               pdb[o] += cpu_rows::sum_of(src, p);
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
                                 cpu_rows::unpool_rows(plane + 2 * r * d.ow, plane + (2 * r + 1) * d.ow,
                                                       yd + base + r * pw, gd + base + r * pw,
                                                       id + base + r * pw, pw);
                               }
                               pdb[o] += cpu_rows::sum_of(plane, p); // the window values plus zeros
                             }
                           }
                         });
  }

protected:
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
              cpu_rows::copy_rows(dst, src, d.oh, d.ow, d.w);
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
              cpu_rows::copy_row(dst + lo, src + lo, hi - lo);
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
              cpu_rows::add_rows(dst, src, d.oh, d.ow, d.w);
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
              cpu_rows::add_row(dst + lo, src + lo, hi - lo);
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
  /// core's L2 cache between the lowering and the GEMM. Narrow chunks suit GEMMs with few rows
  /// (LeNet's 20 or 50 output channels): for LeNet that is one sample (576 columns) in the first
  /// convolution and four (256 columns) in the second; benchmarks/bench_kernels measures widths.
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
};

} // namespace selmask::detail
