#pragma once
/// \file backend/cpu/cpu.hpp
/// `selmask::cpu`: the CPU tensor backend. Tensors are `xt::xarray<float>` (row-major), so CPU
/// users can hand selmask their xtensor arrays directly and read results back as xtensor arrays.
/// The primitives are written as plain loops over contiguous memory where that is what xtensor
/// would generate anyway and the cell index arithmetic would otherwise dominate.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../../error.hpp"
#include "../../granularity/geometry.hpp"
#include "../../shape.hpp"
#include "../backend.hpp"
#include "xtensor.hpp"

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
                        " values given for shape " + s.str() + " (" + std::to_string(s.size()) +
                        " values)");
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
    std::copy(a.data(), a.data() + a.size(), t.data());
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
    std::vector<std::size_t> wcell(g.dims[3]);
    for (std::size_t w = 0; w < g.dims[3]; ++w) {
      wcell[w] = w / g.block[3];
    }
    const float* pc = c.data();
    for (std::size_t n = 0; n < batch; ++n) {
      const float* pa = a.data() + n * per;
      float* pt = t.data() + n * per;
      for_each_row(g, [&](std::size_t row, std::size_t base) {
        const float* ra = pa + row * g.dims[3];
        float* rt = pt + row * g.dims[3];
        const float* rc = pc + base;
        for (std::size_t w = 0; w < g.dims[3]; ++w) {
          rt[w] = ra[w] * rc[wcell[w]];
        }
      });
    }
  }
  /// `t[k] = Σ_n Σ_{i in cell k} a[n, i] · b[n, i]` (`b == nullptr`: `Σ a`); `t` gets the grid shape.
  static void reduce_cells(const tensor& a, const tensor* b, const cell_geometry& g, tensor& t) {
    const std::size_t per = g.values();
    if (per == 0 || a.size() % per != 0) {
      throw shape_error("selmask::cpu::reduce_cells: tensor of shape " + shape_of(a).str() +
                        " is not a batch of samples of " + std::to_string(per) + " values");
    }
    if (b && b->size() != a.size()) {
      throw shape_error("selmask::cpu::reduce_cells: operands have shapes " + shape_of(a).str() +
                        " and " + shape_of(*b).str());
    }
    ensure_shape(t, g.grid_shape());
    std::vector<double> acc(g.cells(), 0.0);
    std::vector<std::size_t> wcell(g.dims[3]);
    for (std::size_t w = 0; w < g.dims[3]; ++w) {
      wcell[w] = w / g.block[3];
    }
    const std::size_t batch = a.size() / per;
    for (std::size_t n = 0; n < batch; ++n) {
      const float* pa = a.data() + n * per;
      const float* pb = b ? b->data() + n * per : nullptr;
      for_each_row(g, [&](std::size_t row, std::size_t base) {
        const float* ra = pa + row * g.dims[3];
        double* rc = acc.data() + base;
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
    float* pt = t.data();
    for (std::size_t k = 0; k < acc.size(); ++k) {
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
  static void softmax_groups_backward(const tensor& s, const tensor& g, std::size_t groups,
                                      float inv_tau, tensor& t) {
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
      throw shape_error("selmask::cpu::sum_versions: " + std::to_string(w->size()) +
                        " weights for " + std::to_string(versions) + " versions");
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
      throw shape_error("selmask::cpu::repeat_versions: " + std::to_string(w->size()) +
                        " weights for " + std::to_string(versions) + " versions");
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
        throw shape_error("selmask::cpu::gather: index " + std::to_string(idx[j]) +
                          " out of range for " + std::to_string(a.size()) + " values");
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
        throw shape_error("selmask::cpu::scatter: index " + std::to_string(idx[j]) +
                          " out of range for " + std::to_string(t.size()) + " values");
      }
      t.data()[idx[j]] = a.data()[j];
    }
  }

private:
  static std::size_t check_cells(const char* op, const tensor& a, const tensor& c,
                                 const cell_geometry& g) {
    const std::size_t per = g.values();
    if (per == 0 || a.size() % per != 0) {
      throw shape_error(std::string("selmask::cpu::") + op + ": tensor of shape " +
                        shape_of(a).str() + " is not a batch of samples of " +
                        std::to_string(per) + " values");
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

} // namespace selmask
