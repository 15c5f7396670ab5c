#pragma once
/// \file shape.hpp
/// `selmask::shape`: the extents of a tensor, row-major (the last axis is contiguous), rank ≤ 6.
///
/// Batches are NCHW (`N×C×H×W`); data with versions are `N×V×C×H×W`.

#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>

#include "error.hpp"

namespace selmask {

class shape {
public:
  static constexpr std::size_t max_rank = 6;

  constexpr shape() = default;
  constexpr shape(std::initializer_list<std::size_t> extents) {
    if (extents.size() > max_rank) {
      throw shape_error("selmask::shape: rank " + std::to_string(extents.size()) +
                        " exceeds the maximum of 6");
    }
    for (std::size_t e : extents) {
      d_[rank_++] = e;
    }
  }
  template <class It>
  constexpr shape(It first, It last) {
    for (; first != last; ++first) {
      if (rank_ == max_rank) {
        throw shape_error("selmask::shape: rank exceeds the maximum of 6");
      }
      d_[rank_++] = static_cast<std::size_t>(*first);
    }
  }

  [[nodiscard]] constexpr std::size_t rank() const noexcept { return rank_; }
  [[nodiscard]] constexpr std::size_t operator[](std::size_t i) const noexcept { return d_[i]; }
  [[nodiscard]] constexpr std::size_t& operator[](std::size_t i) noexcept { return d_[i]; }
  /// Number of elements (1 for rank 0).
  [[nodiscard]] constexpr std::size_t size() const noexcept {
    std::size_t n = 1;
    for (std::size_t i = 0; i < rank_; ++i) {
      n *= d_[i];
    }
    return n;
  }
  [[nodiscard]] constexpr const std::size_t* begin() const noexcept { return d_.data(); }
  [[nodiscard]] constexpr const std::size_t* end() const noexcept { return d_.data() + rank_; }

  /// The shape without its first axis (a batch's per-sample shape).
  [[nodiscard]] constexpr shape drop_front() const {
    shape s;
    for (std::size_t i = 1; i < rank_; ++i) {
      s.d_[s.rank_++] = d_[i];
    }
    return s;
  }
  /// The shape with `e` put in front (e.g. a batch size).
  [[nodiscard]] constexpr shape prepend(std::size_t e) const {
    shape s{e};
    for (std::size_t i = 0; i < rank_; ++i) {
      s.d_[s.rank_++] = d_[i];
    }
    return s;
  }

  friend constexpr bool operator==(const shape& a, const shape& b) noexcept {
    if (a.rank_ != b.rank_) {
      return false;
    }
    for (std::size_t i = 0; i < a.rank_; ++i) {
      if (a.d_[i] != b.d_[i]) {
        return false;
      }
    }
    return true;
  }

  /// "[8,1,28,28]"
  [[nodiscard]] std::string str() const {
    // appended piece by piece: `"," + std::to_string(...)` makes GCC 12 warn -Wrestrict in every
    // user translation unit built with -Wall in Release (a false positive, GCC bug 105651)
    std::string s = "[";
    for (std::size_t i = 0; i < rank_; ++i) {
      if (i != 0) {
        s += ',';
      }
      s += std::to_string(d_[i]);
    }
    s += ']';
    return s;
  }

private:
  std::array<std::size_t, max_rank> d_{};
  std::size_t rank_ = 0;
};

} // namespace selmask
