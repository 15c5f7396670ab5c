#pragma once
/// \file examples/plot.hpp
/// Support code of the examples (and their tests), not part of the installed library: the pictures
/// of masks and fronts that the examples draw.
///
/// A tiny raster plotter that writes PNGs with no outside tool: `canvas` (an RGB raster with
/// lines, filled circles, markers, rectangles and text in a built-in 5×7 bitmap font),
/// `plot_xy` (line/scatter plots with axes, ticks, title, axis labels and a legend — e.g. test
/// accuracy vs the fraction of pixels kept), `mask_image` (a mask drawn in colour over a grey
/// average image) and `image_grid` (many grey images side by side).
///
/// Coordinates are pixels, x to the right and y down, (0,0) the top-left corner; drawing outside
/// the canvas (or outside the clip rectangle) is silently cut off. Every `render_*` returns the
/// canvas; the matching function without `render_` writes it as a PNG, atomically.
///
/// The font: printable ASCII (letters of both cases, digits, punctuation); glyphs are 5 pixels
/// wide and 7 tall (descenders of g, j, p, q, y, ',' and ';' use two rows below), advance 6 pixels,
/// lines 10 pixels apart, all times `scale`. Other bytes show as a hollow box.

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <selmask/error.hpp>
#include <selmask/io/png.hpp>

namespace selmask::io {

/// An 8-bit sRGB colour.
struct rgb {
  std::uint8_t r = 0;
  std::uint8_t g = 0;
  std::uint8_t b = 0;
  friend constexpr bool operator==(const rgb&, const rgb&) = default;
};

/// A few named colours and the series palette (Tableau 10, colour-blind friendlier than pure
/// primaries).
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

namespace detail {

/// One glyph: 9 rows of 5 bits (bit 4 is the leftmost column); rows 0–6 are the 5×7 body, rows
/// 7–8 the descender.
struct glyph {
  std::array<std::uint8_t, 9> rows{};
};

/// Builds a glyph from its picture: 7 or 9 rows of five '.'/'#' separated by single blanks.
/// A malformed picture fails to compile (the font is built at compile time).
constexpr glyph make_glyph(std::string_view art) {
  glyph g;
  std::size_t row = 0;
  std::size_t col = 0;
  for (char ch : art) {
    if (ch == ' ') {
      if (col != 5) {
        throw "selmask font: a glyph row must have 5 columns";
      }
      ++row;
      col = 0;
      continue;
    }
    if (col >= 5 || row >= 9 || (ch != '#' && ch != '.')) {
      throw "selmask font: malformed glyph";
    }
    if (ch == '#') {
      g.rows[row] = static_cast<std::uint8_t>(g.rows[row] | (1U << (4 - col)));
    }
    ++col;
  }
  if (col != 5 || (row != 6 && row != 8)) {
    throw "selmask font: a glyph has 7 or 9 rows";
  }
  return g;
}

/// The font, indexed by `byte − 32` for bytes 32..126; glyph 95 is the box for everything else.
consteval std::array<glyph, 96> build_font() {
  std::array<glyph, 96> f{};
  const glyph box = make_glyph("##### #...# #...# #...# #...# #...# #####");
  for (auto& g : f) {
    g = box;
  }
  auto set = [&f](char c, std::string_view art) { f[static_cast<std::size_t>(c - 32)] = make_glyph(art); };
  set(' ', "..... ..... ..... ..... ..... ..... .....");
  // digits
  set('0', ".###. #...# #..## #.#.# ##..# #...# .###.");
  set('1', "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.");
  set('2', ".###. #...# ....# ...#. ..#.. .#... #####");
  set('3', "##### ...#. ..#.. ...#. ....# #...# .###.");
  set('4', "...#. ..##. .#.#. #..#. ##### ...#. ...#.");
  set('5', "##### #.... ####. ....# ....# #...# .###.");
  set('6', "..##. .#... #.... ####. #...# #...# .###.");
  set('7', "##### ....# ...#. ..#.. .#... .#... .#...");
  set('8', ".###. #...# #...# .###. #...# #...# .###.");
  set('9', ".###. #...# #...# .#### ....# ...#. .##..");
  // capitals
  set('A', ".###. #...# #...# ##### #...# #...# #...#");
  set('B', "####. #...# #...# ####. #...# #...# ####.");
  set('C', ".###. #...# #.... #.... #.... #...# .###.");
  set('D', "###.. #..#. #...# #...# #...# #..#. ###..");
  set('E', "##### #.... #.... ####. #.... #.... #####");
  set('F', "##### #.... #.... ####. #.... #.... #....");
  set('G', ".###. #...# #.... #.### #...# #...# .####");
  set('H', "#...# #...# #...# ##### #...# #...# #...#");
  set('I', ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.");
  set('J', "..### ...#. ...#. ...#. ...#. #..#. .##..");
  set('K', "#...# #..#. #.#.. ##... #.#.. #..#. #...#");
  set('L', "#.... #.... #.... #.... #.... #.... #####");
  set('M', "#...# ##.## #.#.# #.#.# #...# #...# #...#");
  set('N', "#...# #...# ##..# #.#.# #..## #...# #...#");
  set('O', ".###. #...# #...# #...# #...# #...# .###.");
  set('P', "####. #...# #...# ####. #.... #.... #....");
  set('Q', ".###. #...# #...# #...# #.#.# #..#. .##.#");
  set('R', "####. #...# #...# ####. #.#.. #..#. #...#");
  set('S', ".#### #.... #.... .###. ....# ....# ####.");
  set('T', "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..");
  set('U', "#...# #...# #...# #...# #...# #...# .###.");
  set('V', "#...# #...# #...# #...# #...# .#.#. ..#..");
  set('W', "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.");
  set('X', "#...# #...# .#.#. ..#.. .#.#. #...# #...#");
  set('Y', "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..");
  set('Z', "##### ....# ...#. ..#.. .#... #.... #####");
  // small letters: x-height 5 rows, ascenders reach row 0, descenders rows 7–8
  set('a', "..... ..... .###. ....# .#### #...# .####");
  set('b', "#.... #.... #.##. ##..# #...# #...# ####.");
  set('c', "..... ..... .###. #.... #.... #...# .###.");
  set('d', "....# ....# .##.# #..## #...# #...# .####");
  set('e', "..... ..... .###. #...# ##### #.... .###.");
  set('f', "..##. .#..# .#... ###.. .#... .#... .#...");
  set('g', "..... ..... .#### #...# #...# #...# .#### ....# .###.");
  set('h', "#.... #.... #.##. ##..# #...# #...# #...#");
  set('i', "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.");
  set('j', "...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..");
  set('k', "#.... #.... #..#. #.#.. ##... #.#.. #..#.");
  set('l', ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.");
  set('m', "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#");
  set('n', "..... ..... #.##. ##..# #...# #...# #...#");
  set('o', "..... ..... .###. #...# #...# #...# .###.");
  set('p', "..... ..... ####. #...# #...# #...# ####. #.... #....");
  set('q', "..... ..... .#### #...# #...# #...# .#### ....# ....#");
  set('r', "..... ..... #.##. ##..# #.... #.... #....");
  set('s', "..... ..... .###. #.... .###. ....# ####.");
  set('t', ".#... .#... ###.. .#... .#... .#..# ..##.");
  set('u', "..... ..... #...# #...# #...# #..## .##.#");
  set('v', "..... ..... #...# #...# #...# .#.#. ..#..");
  set('w', "..... ..... #...# #...# #.#.# #.#.# .#.#.");
  set('x', "..... ..... #...# .#.#. ..#.. .#.#. #...#");
  set('y', "..... ..... #...# #...# #...# #...# .#### ....# .###.");
  set('z', "..... ..... ##### ...#. ..#.. .#... #####");
  // punctuation and signs
  set('.', "..... ..... ..... ..... ..... .##.. .##..");
  set(',', "..... ..... ..... ..... ..... .##.. .##.. ..#.. .#...");
  set(':', "..... .##.. .##.. ..... .##.. .##.. .....");
  set(';', "..... .##.. .##.. ..... .##.. .##.. ..#.. .#... .....");
  set('%', "##... ##..# ...#. ..#.. .#... #..## ...##");
  set('-', "..... ..... ..... .###. ..... ..... .....");
  set('+', "..... ..#.. ..#.. ##### ..#.. ..#.. .....");
  set('=', "..... ..... ##### ..... ##### ..... .....");
  set('(', "...#. ..#.. .#... .#... .#... ..#.. ...#.");
  set(')', ".#... ..#.. ...#. ...#. ...#. ..#.. .#...");
  set('[', ".###. .#... .#... .#... .#... .#... .###.");
  set(']', ".###. ...#. ...#. ...#. ...#. ...#. .###.");
  set('<', "...#. ..#.. .#... #.... .#... ..#.. ...#.");
  set('>', ".#... ..#.. ...#. ....# ...#. ..#.. .#...");
  set('/', "..... ....# ...#. ..#.. .#... #.... .....");
  set('\\', "..... #.... .#... ..#.. ...#. ....# .....");
  set('_', "..... ..... ..... ..... ..... ..... #####");
  set('|', "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..");
  set('!', "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..");
  set('?', ".###. #...# ....# ...#. ..#.. ..... ..#..");
  set('\'', "..#.. ..#.. .#... ..... ..... ..... .....");
  set('"', ".#.#. .#.#. ..... ..... ..... ..... .....");
  set('#', ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.");
  set('*', "..... ..#.. #.#.# .###. #.#.# ..#.. .....");
  set('^', "..#.. .#.#. #...# ..... ..... ..... .....");
  set('~', "..... ..... .#... #.#.# ...#. ..... .....");
  set('&', ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#");
  set('@', ".###. #...# #.### #.#.# #.### #.... .###.");
  set('$', "..#.. .#### #.#.. .###. ..#.# ####. ..#..");
  set('{', "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.");
  set('}', ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...");
  set('`', ".#... ..#.. ..... ..... ..... ..... .....");
  return f;
}

inline constexpr std::array<glyph, 96> font = build_font();

inline const glyph& glyph_for(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return font[u >= 32 && u <= 126 ? u - 32U : 95U];
}

} // namespace detail

/// Glyph metrics of the built-in font at scale 1 (multiply by the scale).
inline constexpr int glyph_width = 5;
inline constexpr int glyph_height = 7;
inline constexpr int glyph_advance = 6;
inline constexpr int line_height = 10;

/// Width in pixels of the widest line of `s` at `scale` (no trailing gap).
inline int text_width(std::string_view s, int scale = 1) {
  std::size_t widest = 0;
  std::size_t current = 0;
  for (char c : s) {
    if (c == '\n') {
      current = 0;
      continue;
    }
    ++current;
    widest = std::max(widest, current);
  }
  return widest == 0 ? 0 : (static_cast<int>(widest) * glyph_advance - 1) * scale;
}

/// Height in pixels of `s` at `scale`, from the top of the first line to the baseline of the
/// last (descenders go 2·scale further).
inline int text_height(std::string_view s, int scale = 1) {
  const auto lines = static_cast<int>(std::count(s.begin(), s.end(), '\n'));
  return (lines * line_height + glyph_height) * scale;
}

/// Marker shapes for `canvas::marker` and plot series.
enum class marker_shape { none, circle, square, diamond, triangle, cross };

/// An RGB raster to draw on.
class canvas {
public:
  canvas(std::size_t width, std::size_t height, rgb background = colours::white)
    : width_(static_cast<int>(width)), height_(static_cast<int>(height)) {
    if (width == 0 || height == 0 || width > 16384 || height > 16384) {
      throw shape_error("selmask::io::canvas: size " + std::to_string(width) + "×" + std::to_string(height) +
                        " (expected 1 to 16384 each)");
    }
    px_.resize(width * height * 3);
    for (std::size_t i = 0; i < width * height; ++i) {
      px_[3 * i] = background.r;
      px_[3 * i + 1] = background.g;
      px_[3 * i + 2] = background.b;
    }
    reset_clip();
  }

  [[nodiscard]] std::size_t width() const noexcept { return static_cast<std::size_t>(width_); }
  [[nodiscard]] std::size_t height() const noexcept { return static_cast<std::size_t>(height_); }
  /// RGB bytes, row-major.
  [[nodiscard]] const std::vector<std::uint8_t>& pixels() const noexcept { return px_; }

  /// The colour at (x, y); throws `value_error` outside the canvas.
  [[nodiscard]] rgb get(int x, int y) const {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) {
      throw value_error("selmask::io::canvas::get: (" + std::to_string(x) + ", " + std::to_string(y) +
                        ") is outside the canvas");
    }
    const std::size_t i = index(x, y);
    return {px_[i], px_[i + 1], px_[i + 2]};
  }

  /// Restricts drawing to the rectangle [x0, x1) × [y0, y1) (intersected with the canvas).
  void set_clip(int x0, int y0, int x1, int y1) noexcept {
    clip_ = {std::max(0, x0), std::max(0, y0), std::min(width_, x1), std::min(height_, y1)};
  }
  void reset_clip() noexcept { clip_ = {0, 0, width_, height_}; }

  /// Sets one pixel (ignored outside the clip rectangle).
  void set(int x, int y, rgb c) noexcept {
    if (x < clip_[0] || y < clip_[1] || x >= clip_[2] || y >= clip_[3]) {
      return;
    }
    const std::size_t i = index(x, y);
    px_[i] = c.r;
    px_[i + 1] = c.g;
    px_[i + 2] = c.b;
  }

  /// Fills [x0, x1) × [y0, y1).
  void fill_rect(int x0, int y0, int x1, int y1, rgb c) noexcept {
    for (int y = std::max(y0, clip_[1]); y < std::min(y1, clip_[3]); ++y) {
      for (int x = std::max(x0, clip_[0]); x < std::min(x1, clip_[2]); ++x) {
        set(x, y, c);
      }
    }
  }

  /// The outline of [x0, x1) × [y0, y1), `thickness` pixels wide, inside the rectangle.
  void rect(int x0, int y0, int x1, int y1, rgb c, int thickness = 1) noexcept {
    fill_rect(x0, y0, x1, y0 + thickness, c);
    fill_rect(x0, y1 - thickness, x1, y1, c);
    fill_rect(x0, y0, x0 + thickness, y1, c);
    fill_rect(x1 - thickness, y0, x1, y1, c);
  }

  /// A straight line from (x0, y0) to (x1, y1) (Bresenham), `thickness` pixels wide.
  void line(double x0, double y0, double x1, double y1, rgb c, int thickness = 1) noexcept {
    if (!std::isfinite(x0) || !std::isfinite(y0) || !std::isfinite(x1) || !std::isfinite(y1)) {
      return;
    }
    // keep far-away end points from overflowing int
    constexpr double lim = 1e6;
    int ax = static_cast<int>(std::lround(std::clamp(x0, -lim, lim)));
    int ay = static_cast<int>(std::lround(std::clamp(y0, -lim, lim)));
    const int bx = static_cast<int>(std::lround(std::clamp(x1, -lim, lim)));
    const int by = static_cast<int>(std::lround(std::clamp(y1, -lim, lim)));
    const int dx = std::abs(bx - ax);
    const int dy = -std::abs(by - ay);
    const int sx = ax < bx ? 1 : -1;
    const int sy = ay < by ? 1 : -1;
    int err = dx + dy;
    const int lo = -(thickness - 1) / 2;
    const int hi = lo + std::max(thickness, 1);
    for (;;) {
      if (thickness <= 1) {
        set(ax, ay, c);
      } else {
        fill_rect(ax + lo, ay + lo, ax + hi, ay + hi, c);
      }
      if (ax == bx && ay == by) {
        break;
      }
      const int e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        ax += sx;
      }
      if (e2 <= dx) {
        err += dx;
        ay += sy;
      }
    }
  }

  /// A filled disc of radius `r` around (cx, cy).
  void fill_circle(double cx, double cy, double r, rgb c) noexcept {
    if (!std::isfinite(cx) || !std::isfinite(cy) || !(r >= 0.0) || r > 1e5) {
      return;
    }
    const int y0 = static_cast<int>(std::floor(std::max(cy - r, -1.0)));
    const int y1 = static_cast<int>(std::ceil(std::min(cy + r, static_cast<double>(height_))));
    const int x0 = static_cast<int>(std::floor(std::max(cx - r, -1.0)));
    const int x1 = static_cast<int>(std::ceil(std::min(cx + r, static_cast<double>(width_))));
    for (int y = y0; y <= y1; ++y) {
      for (int x = x0; x <= x1; ++x) {
        const double ddx = x - cx;
        const double ddy = y - cy;
        if (ddx * ddx + ddy * ddy <= r * r + 0.25) {
          set(x, y, c);
        }
      }
    }
  }

  /// A marker of about `size` pixels across, centred on (cx, cy).
  void marker(double cx, double cy, marker_shape m, int size, rgb c) noexcept {
    const double h = size / 2.0;
    switch (m) {
      case marker_shape::none:
        break;
      case marker_shape::circle:
        fill_circle(cx, cy, h, c);
        break;
      case marker_shape::square:
        fill_rect(static_cast<int>(std::lround(cx - h)), static_cast<int>(std::lround(cy - h)),
                  static_cast<int>(std::lround(cx + h)) + 1, static_cast<int>(std::lround(cy + h)) + 1, c);
        break;
      case marker_shape::diamond:
      case marker_shape::triangle:
        for (int dy = -static_cast<int>(h); dy <= static_cast<int>(h); ++dy) {
          // diamond: half-width shrinks towards top and bottom; triangle: grows downwards
          const double half = m == marker_shape::diamond ? h - std::abs(dy) : (dy + h) / 2.0;
          line(cx - half, cy + dy, cx + half, cy + dy, c);
        }
        break;
      case marker_shape::cross:
        line(cx - h, cy - h, cx + h, cy + h, c, 2);
        line(cx - h, cy + h, cx + h, cy - h, c, 2);
        break;
    }
  }

  /// Draws `s` with its first line's top-left corner at (x, y); '\n' starts a new line.
  void text(int x, int y, std::string_view s, rgb c, int scale = 1) noexcept {
    int col = 0;
    int row = 0;
    for (char ch : s) {
      if (ch == '\n') {
        col = 0;
        ++row;
        continue;
      }
      const auto& g = detail::glyph_for(ch);
      for (int gy = 0; gy < 9; ++gy) {
        for (int gx = 0; gx < glyph_width; ++gx) {
          if ((g.rows[static_cast<std::size_t>(gy)] >> (4 - gx)) & 1U) {
            const int px = x + (col * glyph_advance + gx) * scale;
            const int py = y + (row * line_height + gy) * scale;
            fill_rect(px, py, px + scale, py + scale, c);
          }
        }
      }
      ++col;
    }
  }

  /// Draws one line of text turned 90° anticlockwise (reading upwards); (x, y) is the bottom-left
  /// corner of the first glyph as seen turned, i.e. the text occupies [x, x + 7·scale) ×
  /// (y − text_width, y].
  void text_up(int x, int y, std::string_view s, rgb c, int scale = 1) noexcept {
    int col = 0;
    for (char ch : s) {
      const auto& g = detail::glyph_for(ch);
      for (int gy = 0; gy < 9; ++gy) {
        for (int gx = 0; gx < glyph_width; ++gx) {
          if ((g.rows[static_cast<std::size_t>(gy)] >> (4 - gx)) & 1U) {
            const int px = x + gy * scale;
            const int py = y - (col * glyph_advance + gx + 1) * scale;
            fill_rect(px, py + 1, px + scale, py + 1 + scale, c);
          }
        }
      }
      ++col;
    }
  }

  /// The canvas as an RGB picture.
  [[nodiscard]] picture to_picture() const { return {width(), height(), 3, px_}; }
  /// Writes the canvas as an RGB PNG, atomically.
  void save_png(const std::filesystem::path& path) const { write_png(path, width(), height(), 3, px_); }

private:
  [[nodiscard]] std::size_t index(int x, int y) const noexcept {
    return (static_cast<std::size_t>(y) * static_cast<std::size_t>(width_) + static_cast<std::size_t>(x)) * 3;
  }

  int width_;
  int height_;
  std::array<int, 4> clip_{};
  std::vector<std::uint8_t> px_;
};

// ------------------------------------------------------------------------------------------------
// x–y plots

/// One series of a plot: points (x[i], y[i]) drawn with markers and, if `connect`, joined in the
/// given order. Non-finite points are skipped (and break the line). `colour` defaults to the
/// palette entry of the series' position.
struct plot_series {
  std::string label;
  std::vector<double> x;
  std::vector<double> y;
  std::optional<rgb> colour;
  marker_shape marker = marker_shape::circle;
  bool connect = true;
};

/// Where the legend box goes (inside the plotting area).
enum class legend_position { lower_right, lower_left, upper_right, upper_left, none };

/// Everything about a plot except its data. Axis ranges: `x_min`/`x_max` default to [0, 1] (a
/// fraction of the data kept); a NaN bound is taken from the data and widened to a tick.
struct plot_options {
  std::string title;
  std::string x_label = "fraction of pixels kept";
  std::string y_label = "test accuracy";
  std::size_t width = 800;
  std::size_t height = 560;
  double x_min = 0.0;
  double x_max = 1.0;
  double y_min = std::numeric_limits<double>::quiet_NaN();
  double y_max = std::numeric_limits<double>::quiet_NaN();
  legend_position legend = legend_position::lower_right;
  bool grid = true;
  int font_scale = 2;
  int marker_size = 9;
  int line_thickness = 2;
};

namespace detail {

/// A "nice" tick step (1, 2 or 5 × 10^k) giving about `target` intervals over `range`.
inline double nice_step(double range, int target) {
  const double raw = range / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * mag;
}

/// `v` with `decimals` digits after the point ("-0" becomes "0").
inline std::string tick_label(double v, int decimals) {
  if (std::abs(v) < 1e-12) {
    v = 0.0;
  }
  std::array<char, 64> buf{};
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed, decimals);
  return r.ec == std::errc{} ? std::string(buf.data(), r.ptr) : std::string("?");
}

struct axis_range {
  double lo;
  double hi;
  double step;
  int decimals;
};

/// Fills in a NaN bound from the data and picks the ticks.
inline axis_range make_axis(double lo, double hi, double data_lo, double data_hi) {
  const bool auto_lo = std::isnan(lo);
  const bool auto_hi = std::isnan(hi);
  if (auto_lo) {
    lo = std::isfinite(data_lo) ? data_lo : 0.0;
  }
  if (auto_hi) {
    hi = std::isfinite(data_hi) ? data_hi : 1.0;
  }
  if (!(hi > lo)) {
    const double pad = lo == 0.0 ? 0.5 : std::abs(lo) * 0.1;
    if (auto_lo || !auto_hi) {
      lo -= pad;
    }
    hi = lo + 2 * pad;
  }
  const double step = nice_step(hi - lo, 6);
  if (auto_lo) {
    lo = std::floor(lo / step + 1e-9) * step;
  }
  if (auto_hi) {
    hi = std::ceil(hi / step - 1e-9) * step;
  }
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  return {lo, hi, step, decimals};
}

} // namespace detail

/// Draws a plot of `series` (see `plot_options`). Throws `shape_error` for a series whose x and
/// y differ in length, `value_error` for a non-finite or empty explicit axis range.
inline canvas render_xy(std::span<const plot_series> series, const plot_options& opt = {}) {
  for (const auto& s : series) {
    if (s.x.size() != s.y.size()) {
      throw shape_error("selmask::io::plot_xy: series '" + s.label + "' has " + std::to_string(s.x.size()) +
                        " x values but " + std::to_string(s.y.size()) + " y values");
    }
  }
  auto check_bound = [](double v, const char* name) {
    if (std::isinf(v)) {
      throw value_error(std::string("selmask::io::plot_xy: ") + name + " is infinite");
    }
  };
  check_bound(opt.x_min, "x_min");
  check_bound(opt.x_max, "x_max");
  check_bound(opt.y_min, "y_min");
  check_bound(opt.y_max, "y_max");
  double xlo = std::numeric_limits<double>::infinity();
  double xhi = -xlo;
  double ylo = xlo;
  double yhi = -xlo;
  for (const auto& s : series) {
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        xlo = std::min(xlo, s.x[i]);
        xhi = std::max(xhi, s.x[i]);
        ylo = std::min(ylo, s.y[i]);
        yhi = std::max(yhi, s.y[i]);
      }
    }
  }
  const detail::axis_range ax = detail::make_axis(opt.x_min, opt.x_max, xlo, xhi);
  const detail::axis_range ay = detail::make_axis(opt.y_min, opt.y_max, ylo, yhi);
  if (!(ax.hi > ax.lo) || !(ay.hi > ay.lo)) {
    throw value_error("selmask::io::plot_xy: empty axis range");
  }

  canvas cv(opt.width, opt.height);
  const int fs = std::max(1, opt.font_scale);
  const int w = static_cast<int>(opt.width);
  const int h = static_cast<int>(opt.height);

  // tick labels decide the left margin
  std::vector<double> yticks;
  for (double v = std::ceil(ay.lo / ay.step - 1e-9) * ay.step; v <= ay.hi + ay.step * 1e-9; v += ay.step) {
    yticks.push_back(v);
  }
  std::vector<double> xticks;
  for (double v = std::ceil(ax.lo / ax.step - 1e-9) * ax.step; v <= ax.hi + ax.step * 1e-9; v += ax.step) {
    xticks.push_back(v);
  }
  int ytick_w = 0;
  for (double v : yticks) {
    ytick_w = std::max(ytick_w, text_width(detail::tick_label(v, ay.decimals), fs));
  }
  const int gap = 4 * fs;
  const int tick_len = 3 * fs;
  const int left = gap + (opt.y_label.empty() ? 0 : glyph_height * fs + gap) + ytick_w + gap + tick_len;
  const int top = gap * 2 + (opt.title.empty() ? 0 : text_height(opt.title, fs) + gap);
  const int bottom =
    tick_len + gap + glyph_height * fs + gap + (opt.x_label.empty() ? 0 : glyph_height * fs + gap * 2);
  const int right = std::max(gap * 3, text_width(detail::tick_label(ax.hi, ax.decimals), fs) / 2 + 2 * gap);
  const int x0 = left;
  const int y0 = top;
  const int x1 = w - right;
  const int y1 = h - bottom;
  if (x1 - x0 < 20 + 2 * opt.marker_size || y1 - y0 < 20 + 2 * opt.marker_size) {
    throw shape_error("selmask::io::plot_xy: a " + std::to_string(w) + "×" + std::to_string(h) +
                      " canvas leaves no room for the plot");
  }
  // the axis ranges map to the frame less a margin, so markers on the bounds are drawn whole
  const int inset = std::max(opt.marker_size, opt.line_thickness) / 2 + 2;
  auto px = [&](double x) { return x0 + inset + (x - ax.lo) / (ax.hi - ax.lo) * (x1 - 1 - x0 - 2 * inset); };
  auto py = [&](double y) {
    return (y1 - 1 - inset) - (y - ay.lo) / (ay.hi - ay.lo) * (y1 - 1 - y0 - 2 * inset);
  };
  const rgb ink{40, 40, 40};

  // grid, ticks and tick labels
  for (double v : xticks) {
    const int x = static_cast<int>(std::lround(px(v)));
    if (opt.grid) {
      cv.fill_rect(x, y0, x + 1, y1, colours::light_grey);
    }
    cv.fill_rect(x, y1, x + 1, y1 + tick_len, ink);
    const std::string label = detail::tick_label(v, ax.decimals);
    cv.text(x - text_width(label, fs) / 2, y1 + tick_len + gap, label, ink, fs);
  }
  for (double v : yticks) {
    const int y = static_cast<int>(std::lround(py(v)));
    if (opt.grid) {
      cv.fill_rect(x0, y, x1, y + 1, colours::light_grey);
    }
    cv.fill_rect(x0 - tick_len, y, x0, y + 1, ink);
    const std::string label = detail::tick_label(v, ay.decimals);
    cv.text(x0 - tick_len - gap - text_width(label, fs), y - glyph_height * fs / 2, label, ink, fs);
  }
  cv.rect(x0 - 1, y0 - 1, x1 + 1, y1 + 1, ink);

  // title and axis labels
  if (!opt.title.empty()) {
    cv.text((w - text_width(opt.title, fs)) / 2, gap * 2, opt.title, colours::black, fs);
  }
  if (!opt.x_label.empty()) {
    cv.text((x0 + x1 - text_width(opt.x_label, fs)) / 2, h - gap * 2 - glyph_height * fs, opt.x_label, ink,
            fs);
  }
  if (!opt.y_label.empty()) {
    cv.text_up(gap, (y0 + y1 + text_width(opt.y_label, fs)) / 2, opt.y_label, ink, fs);
  }

  // the data, clipped to the plotting area
  cv.set_clip(x0, y0, x1, y1);
  for (std::size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const rgb c = s.colour.value_or(colours::palette[k % colours::palette.size()]);
    if (s.connect) {
      for (std::size_t i = 1; i < s.x.size(); ++i) {
        if (std::isfinite(s.x[i - 1]) && std::isfinite(s.y[i - 1]) && std::isfinite(s.x[i]) &&
            std::isfinite(s.y[i])) {
          cv.line(px(s.x[i - 1]), py(s.y[i - 1]), px(s.x[i]), py(s.y[i]), c, opt.line_thickness);
        }
      }
    }
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        cv.marker(px(s.x[i]), py(s.y[i]), s.marker, opt.marker_size, c);
      }
    }
  }

  // the legend
  std::size_t labelled = 0;
  int label_w = 0;
  for (const auto& s : series) {
    if (!s.label.empty()) {
      ++labelled;
      label_w = std::max(label_w, text_width(s.label, fs));
    }
  }
  if (opt.legend != legend_position::none && labelled > 0) {
    const int entry_h = line_height * fs + gap;
    const int sample_w = 8 * fs + opt.marker_size;
    const int box_w = gap + sample_w + gap + label_w + gap;
    const int box_h = gap + static_cast<int>(labelled) * entry_h;
    const bool at_right =
      opt.legend == legend_position::lower_right || opt.legend == legend_position::upper_right;
    const bool at_bottom =
      opt.legend == legend_position::lower_right || opt.legend == legend_position::lower_left;
    const int bx = at_right ? x1 - gap * 2 - box_w : x0 + gap * 2;
    const int by = at_bottom ? y1 - gap * 2 - box_h : y0 + gap * 2;
    cv.fill_rect(bx, by, bx + box_w, by + box_h, colours::white);
    cv.rect(bx, by, bx + box_w, by + box_h, colours::grey);
    int ey = by + gap;
    for (std::size_t k = 0; k < series.size(); ++k) {
      const auto& s = series[k];
      if (s.label.empty()) {
        continue;
      }
      const rgb c = s.colour.value_or(colours::palette[k % colours::palette.size()]);
      const double mid = ey + glyph_height * fs / 2.0;
      if (s.connect) {
        cv.line(bx + gap, mid, bx + gap + sample_w, mid, c, opt.line_thickness);
      }
      cv.marker(bx + gap + sample_w / 2.0, mid, s.marker, opt.marker_size, c);
      cv.text(bx + gap + sample_w + gap, ey, s.label, ink, fs);
      ey += entry_h;
    }
  }
  cv.reset_clip();
  return cv;
}

/// Writes a plot of `series` as a PNG (atomically); see `render_xy`.
inline void plot_xy(const std::filesystem::path& path, std::span<const plot_series> series,
                    const plot_options& opt = {}) {
  render_xy(series, opt).save_png(path);
}

/// Same, for a braced list of series.
inline void plot_xy(const std::filesystem::path& path, std::initializer_list<plot_series> series,
                    const plot_options& opt = {}) {
  plot_xy(path, std::span<const plot_series>(series.begin(), series.size()), opt);
}

// ------------------------------------------------------------------------------------------------
// pictures of masks and images

/// Draws an H×W mask over an H×W background (e.g. the data set's mean image), each value as a
/// `scale`×`scale` square. The background is shown in grey, stretched to its own min..max; a
/// mask value m ∈ [0,1] blends towards `colour` shaded by the background (m = 1: kept, fully
/// coloured; m = 0: dropped, grey). Throws `shape_error` for sizes that do not match and
/// `value_error` for mask values outside [0,1] or non-finite background values.
inline canvas render_mask_image(std::span<const float> mask, std::span<const float> background,
                                std::size_t height, std::size_t width, int scale = 8,
                                rgb colour = colours::orange) {
  const std::string where = "selmask::io::mask_image: ";
  if (height == 0 || width == 0 || scale < 1) {
    throw shape_error(where + "size " + std::to_string(height) + "×" + std::to_string(width) + " at scale " +
                      std::to_string(scale) + " (expected positive)");
  }
  if (mask.size() != height * width || background.size() != height * width) {
    throw shape_error(where + std::to_string(mask.size()) + " mask and " + std::to_string(background.size()) +
                      " background values for " + std::to_string(height) + "×" + std::to_string(width) +
                      " (expected " + std::to_string(height * width) + " each)");
  }
  float lo = std::numeric_limits<float>::infinity();
  float hi = -lo;
  for (std::size_t i = 0; i < mask.size(); ++i) {
    if (!(mask[i] >= 0.0f && mask[i] <= 1.0f)) {
      throw value_error(where + "mask value " + std::to_string(mask[i]) + " at index " + std::to_string(i) +
                        " is outside [0, 1]");
    }
    if (!std::isfinite(background[i])) {
      throw value_error(where + "background value at index " + std::to_string(i) + " is not finite");
    }
    lo = std::min(lo, background[i]);
    hi = std::max(hi, background[i]);
  }
  const int s = scale;
  canvas cv(width * static_cast<std::size_t>(s), height * static_cast<std::size_t>(s));
  for (std::size_t y = 0; y < height; ++y) {
    for (std::size_t x = 0; x < width; ++x) {
      const std::size_t i = y * width + x;
      const float g = hi > lo ? (background[i] - lo) / (hi - lo) : 0.5f;
      const float m = mask[i];
      const float grey = 30.0f + 190.0f * g;
      const float shade = 0.45f + 0.55f * g;
      auto mix = [&](std::uint8_t channel) {
        const float v = (1.0f - m) * grey + m * static_cast<float>(channel) * shade;
        return static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      };
      const rgb c{mix(colour.r), mix(colour.g), mix(colour.b)};
      const int px = static_cast<int>(x) * s;
      const int py = static_cast<int>(y) * s;
      cv.fill_rect(px, py, px + s, py + s, c);
    }
  }
  return cv;
}

/// Writes `render_mask_image(...)` as a PNG (atomically).
inline void mask_image(const std::filesystem::path& path, std::span<const float> mask,
                       std::span<const float> background, std::size_t height, std::size_t width,
                       int scale = 8, rgb colour = colours::orange) {
  render_mask_image(mask, background, height, width, scale, colour).save_png(path);
}

/// Draws `n` grey H×W images (values in [0,1], clamped; `images` holds n·H·W values) in a grid
/// of `columns` columns, each pixel `scale`×`scale`, `pad` pixels of dark grey between them.
inline canvas render_image_grid(std::span<const float> images, std::size_t n, std::size_t height,
                                std::size_t width, std::size_t columns, int scale = 2, int pad = 2) {
  const std::string where = "selmask::io::image_grid: ";
  if (n == 0 || height == 0 || width == 0 || columns == 0 || scale < 1 || pad < 0) {
    throw shape_error(where + "n, height, width, columns and scale must be positive");
  }
  if (images.size() != n * height * width) {
    throw shape_error(where + std::to_string(images.size()) + " values for " + std::to_string(n) +
                      " images of " + std::to_string(height) + "×" + std::to_string(width) + " (expected " +
                      std::to_string(n * height * width) + ")");
  }
  const std::size_t cols = std::min(columns, n);
  const std::size_t rows = (n + cols - 1) / cols;
  const auto s = static_cast<std::size_t>(scale);
  const auto p = static_cast<std::size_t>(pad);
  canvas cv(cols * (width * s + p) + p, rows * (height * s + p) + p, rgb{60, 60, 60});
  for (std::size_t k = 0; k < n; ++k) {
    const int ox = static_cast<int>(p + (k % cols) * (width * s + p));
    const int oy = static_cast<int>(p + (k / cols) * (height * s + p));
    for (std::size_t y = 0; y < height; ++y) {
      for (std::size_t x = 0; x < width; ++x) {
        const float v = images[(k * height + y) * width + x];
        const float c = std::isfinite(v) ? std::clamp(v, 0.0f, 1.0f) : 0.0f;
        const auto g = static_cast<std::uint8_t>(std::lround(c * 255.0f));
        const int px = ox + static_cast<int>(x) * scale;
        const int py = oy + static_cast<int>(y) * scale;
        cv.fill_rect(px, py, px + scale, py + scale, rgb{g, g, g});
      }
    }
  }
  return cv;
}

/// Writes `render_image_grid(...)` as a PNG (atomically).
inline void image_grid(const std::filesystem::path& path, std::span<const float> images, std::size_t n,
                       std::size_t height, std::size_t width, std::size_t columns, int scale = 2,
                       int pad = 2) {
  render_image_grid(images, n, height, width, columns, scale, pad).save_png(path);
}

} // namespace selmask::io
