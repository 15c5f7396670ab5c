#pragma once
/// \file backend/cpu/cell_ops.hpp
/// `detail::cpu_cell_ops`: the mask primitives of `selmask::cpu` — scaling a batch by per-cell
/// values and summing it per cell (any granularity, granularity/geometry.hpp), the grouped
/// softmax of xOr masks, and summing / repeating versions. The cell index arithmetic is done
/// once per row (`for_each_row`), not once per value.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "../../error.hpp"
#include "../../granularity/geometry.hpp"
#include "../../shape.hpp"
#include "common.hpp"
#include "parallel.hpp"

namespace selmask::detail {

struct cpu_cell_ops : cpu_common {
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

protected:
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

} // namespace selmask::detail
