#pragma once
/// \file examples/colours.hpp
/// Support code of the examples (and their tests), not part of the installed library: the colours
/// shared by the mask pictures (pictures.hpp) and the gnuplot figures (gnuplot.hpp).

#include <array>
#include <cstdint>

namespace selmask::io {

/// An 8-bit sRGB colour.
struct rgb {
  std::uint8_t r = 0;
  std::uint8_t g = 0;
  std::uint8_t b = 0;
  friend constexpr bool operator==(const rgb&, const rgb&) = default;
};

/// A few named colours and the series palette (Tableau 10, easier to tell apart for colour-blind
/// readers than pure primaries).
namespace colours {
inline constexpr rgb white{255, 255, 255};
inline constexpr rgb black{0, 0, 0};
inline constexpr rgb grey{128, 128, 128};
inline constexpr rgb light_grey{225, 225, 225};
inline constexpr rgb orange{245, 110, 20};
inline constexpr std::array<rgb, 10> palette = {{{31, 119, 180},
                                                 {255, 127, 14},
                                                 {44, 160, 44},
                                                 {214, 39, 40},
                                                 {148, 103, 189},
                                                 {140, 86, 75},
                                                 {227, 119, 194},
                                                 {127, 127, 127},
                                                 {188, 189, 34},
                                                 {23, 190, 207}}};
} // namespace colours

} // namespace selmask::io
