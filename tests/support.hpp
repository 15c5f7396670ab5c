#pragma once
// Helpers shared by the test translation units: seeded random data, naive versions of the cell
// primitives written independently of any backend (nested loops over v, c, h, w), and the list
// of backends that the tests labelled `backends` run every test body on (cpu, reference and the
// CUDA backend's code on its host emulator).

#include <selmask/backend/cuda/host_emulator.hpp>
#include <selmask/backend/reference/reference.hpp>
#include <selmask/selmask.hpp>

#include <catch2/catch.hpp>

#include "temp_dir.hpp"

#include <cstddef>
#include <filesystem>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <unistd.h>

namespace selmask_test {

inline std::mt19937_64& rng() {
  static std::mt19937_64 r(Catch::rngSeed());
  return r;
}

inline std::vector<float> random_values(std::size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) {
    x = d(rng());
  }
  return v;
}

/// A tensor of backend `B` (the CPU by default) with uniform random values in [lo, hi).
template <class B = selmask::cpu>
selmask::tensor_t<B> random_tensor(const selmask::shape& s, float lo = -1.0f, float hi = 1.0f) {
  return B::from_host(s, random_values(s.size(), lo, hi));
}

// ---- the backends every `backends` test runs on ---------------------------------------------
//
// The three backends: the CPU (xtensor), the plain reference and `selmask::cuda_host_emulation`,
// the CUDA backend's own code (argument checks, launch sizes, kernel bodies, the row-major to
// column-major GEMM mapping) with the device replaced by the host. The emulator is plain C++
// (backend/cuda/host_emulator.hpp), so every build runs the test bodies on it; its tensors live
// in host memory, but the tests read them through `B::to_host` only, as they would a GPU's.
//
// Hook for more backends: a translation unit that defines SELMASK_TEST_EXTRA_BACKENDS before
// including this file (`#define SELMASK_TEST_EXTRA_BACKENDS , my_backend`) runs the same test
// bodies on those backends too; one that defines SELMASK_TEST_BACKENDS (`my_backend`) runs them on
// those backends only (tests/torch: the ATen backend). The real CUDA backend needs nvcc, and .cu files must
// not see xtensor, which this file includes (selmask.hpp, for the CPU backend); adding it takes a .cu test
// source that includes these test bodies with the CPU part of this file left out, not written yet. Give such
// a backend a `tolerance` specialisation below if its float results differ from the CPU's by more than the
// default.
#ifndef SELMASK_TEST_EXTRA_BACKENDS
#define SELMASK_TEST_EXTRA_BACKENDS
#endif
#if defined(SELMASK_TEST_BACKENDS) // the list replaced: e.g. tests/torch runs these bodies on selmask::aten
using backends = std::tuple<SELMASK_TEST_BACKENDS>;
#else
using backends =
  std::tuple<selmask::cpu, selmask::reference, selmask::cuda_host_emulation SELMASK_TEST_EXTRA_BACKENDS>;
#endif

/// The relative tolerance of backend `B`'s float results against an independent truth computed
/// in double (hand-computed values, naive loops). The backends sum in float in the same order or
/// in double, so one value serves all three.
template <class B>
struct tolerance {
  static constexpr double rel = 1e-5;
};

/// One test case's backend and its second parameter (a granularity, a layer, ...).
template <class B, class P>
struct on_backend {
  using backend = B;
  using param = P;
};

namespace detail {
template <class Backends, class... P>
struct product;
template <class... B, class... P>
struct product<std::tuple<B...>, P...> {
  template <class Bk>
  using row = std::tuple<on_backend<Bk, P>...>;
  using type = decltype(std::tuple_cat(std::declval<row<B>>()...));
};
} // namespace detail

/// `std::tuple<on_backend<B, P>...>` for every backend `B` of `backends` and every `P`: the type
/// list of a TEMPLATE_LIST_TEST_CASE over backends × parameters.
template <class... P>
using over_backends = typename detail::product<backends, P...>::type;

/// Naive cell index: explicit division per axis.
inline std::size_t naive_cell(const selmask::cell_geometry& g, std::size_t v, std::size_t c, std::size_t h,
                              std::size_t w) {
  const std::size_t gv = v / g.block[0], gc = c / g.block[1], gh = h / g.block[2], gw = w / g.block[3];
  return ((gv * g.grid[1] + gc) * g.grid[2] + gh) * g.grid[3] + gw;
}

/// Naive up(cells) applied to a batch.
inline std::vector<float> naive_scale(const std::vector<float>& x, const std::vector<float>& cells,
                                      const selmask::cell_geometry& g) {
  std::vector<float> y(x.size());
  const std::size_t per = g.values();
  for (std::size_t n = 0; n < x.size() / per; ++n) {
    std::size_t i = n * per;
    for (std::size_t v = 0; v < g.dims[0]; ++v)
      for (std::size_t c = 0; c < g.dims[1]; ++c)
        for (std::size_t h = 0; h < g.dims[2]; ++h)
          for (std::size_t w = 0; w < g.dims[3]; ++w, ++i)
            y[i] = x[i] * cells[naive_cell(g, v, c, h, w)];
  }
  return y;
}

/// Naive Σ_n Σ_{i in cell} a·b.
inline std::vector<double> naive_reduce(const std::vector<float>& a, const std::vector<float>& b,
                                        const selmask::cell_geometry& g) {
  std::vector<double> out(g.cells(), 0.0);
  const std::size_t per = g.values();
  for (std::size_t n = 0; n < a.size() / per; ++n) {
    std::size_t i = n * per;
    for (std::size_t v = 0; v < g.dims[0]; ++v)
      for (std::size_t c = 0; c < g.dims[1]; ++c)
        for (std::size_t h = 0; h < g.dims[2]; ++h)
          for (std::size_t w = 0; w < g.dims[3]; ++w, ++i)
            out[naive_cell(g, v, c, h, w)] += static_cast<double>(a[i]) * b[i];
  }
  return out;
}

/// Σ r·y as a double, the scalar loss used in gradient checks.
inline double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    s += static_cast<double>(a[i]) * b[i];
  }
  return s;
}

} // namespace selmask_test
