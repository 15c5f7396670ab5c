#pragma once
/// \file examples/pictures.hpp
/// Support code of the examples (and their tests), not part of the installed library: pictures of
/// masks and images, written as PNGs through libpng (selmask/io/png.hpp). They are images, not
/// plots: no axes and no text (the plots are gnuplot figures, see gnuplot.hpp).
///
/// `raster` is an RGB image with filled rectangles, all that the pictures need; `mask_image` draws
/// a mask in colour over a grey background (e.g. the data set's mean image) and `image_grid` many
/// grey images side by side. Every `render_*` returns the raster; the matching function without
/// `render_` writes it as a PNG, atomically.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <selmask/error.hpp>
#include <selmask/io/png.hpp>

#include "colours.hpp"

namespace selmask::io {

/// An RGB image, row-major, (0,0) the top-left pixel.
class raster {
public:
  raster(std::size_t width, std::size_t height, rgb background = colours::white)
    : width_(width), height_(height) {
    if (width == 0 || height == 0 || width > 16384 || height > 16384) {
      throw shape_error("selmask::io::raster: size " + std::to_string(width) + "×" + std::to_string(height) +
                        " (expected 1 to 16384 each)");
    }
    px_.resize(width * height * 3);
    fill_rect(0, 0, width, height, background);
  }

  [[nodiscard]] std::size_t width() const noexcept { return width_; }
  [[nodiscard]] std::size_t height() const noexcept { return height_; }
  /// RGB bytes, row-major.
  [[nodiscard]] const std::vector<std::uint8_t>& pixels() const noexcept { return px_; }

  /// The colour at (x, y); throws `value_error` outside the image.
  [[nodiscard]] rgb get(std::size_t x, std::size_t y) const {
    if (x >= width_ || y >= height_) {
      throw value_error("selmask::io::raster::get: (" + std::to_string(x) + ", " + std::to_string(y) +
                        ") is outside the image");
    }
    const std::size_t i = (y * width_ + x) * 3;
    return {px_[i], px_[i + 1], px_[i + 2]};
  }

  /// Fills [x0, x1) × [y0, y1), cut to the image.
  void fill_rect(std::size_t x0, std::size_t y0, std::size_t x1, std::size_t y1, rgb c) noexcept {
    for (std::size_t y = y0; y < std::min(y1, height_); ++y) {
      for (std::size_t x = x0; x < std::min(x1, width_); ++x) {
        const std::size_t i = (y * width_ + x) * 3;
        px_[i] = c.r;
        px_[i + 1] = c.g;
        px_[i + 2] = c.b;
      }
    }
  }

  /// Writes the image as an RGB PNG, atomically.
  void save_png(const std::filesystem::path& path) const { write_png(path, width_, height_, 3, px_); }

private:
  std::size_t width_;
  std::size_t height_;
  std::vector<std::uint8_t> px_;
};

/// Draws an H×W mask over an H×W background (e.g. the data set's mean image), each value as a
/// `scale`×`scale` square. The background is shown in grey, stretched to its own min..max; a
/// mask value m ∈ [0,1] blends towards `colour` shaded by the background (m = 1: kept, fully
/// coloured; m = 0: dropped, grey). Throws `shape_error` for sizes that do not match and
/// `value_error` for mask values outside [0,1] or non-finite background values.
inline raster render_mask_image(std::span<const float> mask, std::span<const float> background,
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
  const auto s = static_cast<std::size_t>(scale);
  raster img(width * s, height * s);
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
      img.fill_rect(x * s, y * s, (x + 1) * s, (y + 1) * s, rgb{mix(colour.r), mix(colour.g), mix(colour.b)});
    }
  }
  return img;
}

/// Writes `render_mask_image(...)` as a PNG (atomically).
inline void mask_image(const std::filesystem::path& path, std::span<const float> mask,
                       std::span<const float> background, std::size_t height, std::size_t width,
                       int scale = 8, rgb colour = colours::orange) {
  render_mask_image(mask, background, height, width, scale, colour).save_png(path);
}

/// Draws `n` grey H×W images (values in [0,1], clamped; `images` holds n·H·W values) in a grid
/// of `columns` columns, each pixel `scale`×`scale`, `pad` pixels of dark grey between them.
inline raster render_image_grid(std::span<const float> images, std::size_t n, std::size_t height,
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
  raster img(cols * (width * s + p) + p, rows * (height * s + p) + p, rgb{60, 60, 60});
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t ox = p + (k % cols) * (width * s + p);
    const std::size_t oy = p + (k / cols) * (height * s + p);
    for (std::size_t y = 0; y < height; ++y) {
      for (std::size_t x = 0; x < width; ++x) {
        const float v = images[(k * height + y) * width + x];
        const float c = std::isfinite(v) ? std::clamp(v, 0.0f, 1.0f) : 0.0f;
        const auto g = static_cast<std::uint8_t>(std::lround(c * 255.0f));
        img.fill_rect(ox + x * s, oy + y * s, ox + (x + 1) * s, oy + (y + 1) * s, rgb{g, g, g});
      }
    }
  }
  return img;
}

/// Writes `render_image_grid(...)` as a PNG (atomically).
inline void image_grid(const std::filesystem::path& path, std::span<const float> images, std::size_t n,
                       std::size_t height, std::size_t width, std::size_t columns, int scale = 2,
                       int pad = 2) {
  render_image_grid(images, n, height, width, columns, scale, pad).save_png(path);
}

} // namespace selmask::io
