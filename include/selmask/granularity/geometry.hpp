#pragma once
/// \file granularity/geometry.hpp
/// `cell_geometry`: how a grid of mask cells covers the values of one sample.
///
/// A sample is seen as a 4-d array `V×C×H×W` (V = 1 without versions). A granularity tiles it
/// with boxes of extent `bv×bc×bh×bw`; the cell grid is `⌈V/bv⌉×⌈C/bc⌉×⌈H/bh⌉×⌈W/bw⌉`, edge
/// boxes are smaller where an extent does not divide. Every granularity of the paper is such a
/// tiling, so a backend needs only two primitives to serve all of them: scale every value by its
/// cell's number, and sum (a product of) values into their cells.

#include <array>
#include <cstddef>
#include <string>

#include "../detail/config.hpp"
#include "../error.hpp"
#include "../shape.hpp"

namespace selmask {

struct cell_geometry {
  std::array<std::size_t, 4> dims{1, 1, 1, 1};  ///< V, C, H, W of one sample
  std::array<std::size_t, 4> block{1, 1, 1, 1}; ///< extent of one cell along each axis
  std::array<std::size_t, 4> grid{1, 1, 1, 1};  ///< number of cells along each axis

  static cell_geometry make(std::array<std::size_t, 4> dims, std::array<std::size_t, 4> block) {
    cell_geometry g;
    g.dims = dims;
    g.block = block;
    for (std::size_t i = 0; i < 4; ++i) {
      if (dims[i] == 0) {
        throw shape_error("selmask::cell_geometry: sample extent along axis " + std::to_string(i) + " is 0");
      }
      if (block[i] == 0) {
        throw shape_error("selmask::cell_geometry: cell extent along axis " + std::to_string(i) + " is 0");
      }
      g.grid[i] = (dims[i] + block[i] - 1) / block[i];
    }
    return g;
  }

  /// Number of cells.
  [[nodiscard]] SELMASK_HOST_DEVICE std::size_t cells() const {
    return grid[0] * grid[1] * grid[2] * grid[3];
  }
  /// Number of values of one sample.
  [[nodiscard]] SELMASK_HOST_DEVICE std::size_t values() const {
    return dims[0] * dims[1] * dims[2] * dims[3];
  }
  /// Cell index of the value at (v, c, h, w).
  [[nodiscard]] SELMASK_HOST_DEVICE std::size_t cell_of(std::size_t v, std::size_t c, std::size_t h,
                                                        std::size_t w) const {
    return ((v / block[0] * grid[1] + c / block[1]) * grid[2] + h / block[2]) * grid[3] + w / block[3];
  }
  /// Cell index of the value at flat offset `i` of a sample.
  [[nodiscard]] SELMASK_HOST_DEVICE std::size_t cell_of(std::size_t i) const {
    const std::size_t w = i % dims[3];
    i /= dims[3];
    const std::size_t h = i % dims[2];
    i /= dims[2];
    const std::size_t c = i % dims[1];
    const std::size_t v = i / dims[1];
    return cell_of(v, c, h, w);
  }
  /// Number of values covered by cell `k` (edge cells cover fewer).
  [[nodiscard]] SELMASK_HOST_DEVICE std::size_t cell_size(std::size_t k) const {
    std::size_t idx[4];
    for (int a = 3; a >= 0; --a) {
      idx[a] = k % grid[a];
      k /= grid[a];
    }
    std::size_t n = 1;
    for (int a = 0; a < 4; ++a) {
      const std::size_t lo = idx[a] * block[a];
      const std::size_t hi = lo + block[a] < dims[a] ? lo + block[a] : dims[a];
      n *= hi - lo;
    }
    return n;
  }
  /// The shape of the cell grid as a tensor: [gv, gc, gh, gw].
  [[nodiscard]] shape grid_shape() const { return shape{grid[0], grid[1], grid[2], grid[3]}; }

  friend bool operator==(const cell_geometry& a, const cell_geometry& b) {
    return a.dims == b.dims && a.block == b.block;
  }
};

} // namespace selmask
