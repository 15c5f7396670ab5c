#pragma once
/// \file granularity/granularity.hpp
/// Granularities: what one mask cell covers.
///
/// | tag                          | logits (cells)       | one cell covers                     |
/// |------------------------------|----------------------|-------------------------------------|
/// | `channel`                    | C                    | one channel (H·W values)            |
/// | `pixel`                      | H×W                  | one pixel in all channels           |
/// | `subpixel`                   | C×H×W                | one value                           |
/// | `block<bh, bw>`              | C×⌈H/bh⌉×⌈W/bw⌉      | one bh×bw tile of one channel       |
/// | `block<bh, bw, all_channels>`| 1×⌈H/bh⌉×⌈W/bw⌉      | one bh×bw tile in all channels      |
/// | `version`                    | 1                    | the whole input                     |
///
/// A granularity models `selmask::granularity`: a tag with a `name` and a static
/// `extent(C, H, W)` that returns the cell extent `{bc, bh, bw}`. Users may add their own.

#include <array>
#include <concepts>
#include <cstddef>
#include <string>

#include "geometry.hpp"

namespace selmask {

struct channel {
  static constexpr const char* name = "channel";
  static constexpr std::array<std::size_t, 3> extent(std::size_t, std::size_t h, std::size_t w) {
    return {1, h, w};
  }
};

struct pixel {
  static constexpr const char* name = "pixel";
  static constexpr std::array<std::size_t, 3> extent(std::size_t c, std::size_t, std::size_t) {
    return {c, 1, 1};
  }
};

struct subpixel {
  static constexpr const char* name = "subpixel";
  static constexpr std::array<std::size_t, 3> extent(std::size_t, std::size_t, std::size_t) {
    return {1, 1, 1};
  }
};

struct version {
  static constexpr const char* name = "version";
  static constexpr std::array<std::size_t, 3> extent(std::size_t c, std::size_t h, std::size_t w) {
    return {c, h, w};
  }
};

/// Channel policy of `block`: one tile per channel (default) or one tile across all channels.
struct per_channel {};
struct all_channels {};

template <std::size_t BH, std::size_t BW, class Channels = per_channel>
struct block {
  static_assert(BH > 0 && BW > 0, "selmask::block<BH, BW>: block extent must be positive");
  static_assert(std::same_as<Channels, per_channel> || std::same_as<Channels, all_channels>,
                "selmask::block<BH, BW, Channels>: Channels must be selmask::per_channel or "
                "selmask::all_channels");
  static constexpr const char* name = "block";
  static constexpr std::size_t height = BH;
  static constexpr std::size_t width = BW;
  static constexpr bool all = std::same_as<Channels, all_channels>;
  static constexpr std::array<std::size_t, 3> extent(std::size_t c, std::size_t, std::size_t) {
    return {all ? c : 1, BH, BW};
  }
};

/// A type usable as the granularity of a mask.
template <class G>
concept granularity = requires(std::size_t n) {
  { G::name } -> std::convertible_to<const char*>;
  { G::extent(n, n, n) } -> std::same_as<std::array<std::size_t, 3>>;
};

/// The tiling of a `V×C×H×W` sample by granularity `G`. `versions_in_cell` says whether one cell
/// covers all V versions (an any-mask over versioned data) or each version separately (an
/// xOr-mask's cells are then per version: its grid is V×cells).
template <granularity G>
cell_geometry make_geometry(std::size_t v, std::size_t c, std::size_t h, std::size_t w,
                            bool versions_in_cell) {
  const auto e = G::extent(c, h, w);
  if (e[1] > h || e[2] > w) {
    throw shape_error(std::string("selmask::") + G::name + ": cell extent " + std::to_string(e[1]) + "x" +
                      std::to_string(e[2]) + " is larger than the input's " + std::to_string(h) + "x" +
                      std::to_string(w));
  }
  return cell_geometry::make({v, c, h, w}, {versions_in_cell ? v : 1, e[0], e[1], e[2]});
}

} // namespace selmask
