#pragma once
/// \file backend/cpu/tensor_ops.hpp
/// `detail::cpu_tensor_ops`: the plain tensor operations of `selmask::cpu` — memory, elementwise
/// maps, whole-tensor reductions, gather and scatter (the `tensor_backend` operations that know
/// nothing of cells, versions or networks).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "../../error.hpp"
#include "../../shape.hpp"
#include "common.hpp"
#include "parallel.hpp"

namespace selmask::detail {

struct cpu_tensor_ops : cpu_common {
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
};

} // namespace selmask::detail
