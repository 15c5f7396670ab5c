#pragma once
/// \file backend/cpu/common.hpp
/// `detail::cpu_common`: what every part of the CPU backend `selmask::cpu` shares — the tensor
/// type (`xt::xarray<float>`, row-major), shapes, output resizing, the grain below which loops
/// stay on one thread, and the check that a size fits BLAS's `int`. Each part (tensor_ops.hpp,
/// cell_ops.hpp, gemm.hpp, conv.hpp, layers.hpp) derives from it; `selmask::cpu` (cpu.hpp)
/// derives from the parts.

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "../../error.hpp"
#include "../../shape.hpp"
#include "xtensor.hpp"

namespace selmask::detail {

struct cpu_common {
  using tensor = xt::xarray<float>;

  static shape shape_of(const tensor& t) { return shape(t.shape().begin(), t.shape().end()); }
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

protected:
  /// Elementwise loops shorter than this run on one thread (the split would cost more than it saves).
  static constexpr std::size_t elementwise_grain = 16384;
  static int blas_int(const char* op, std::size_t n) {
    if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      throw shape_error(std::string("selmask::cpu::") + op + ": dimension " + std::to_string(n) +
                        " exceeds the BLAS integer range");
    }
    return static_cast<int>(n);
  }
};

} // namespace selmask::detail
