#pragma once
/// \file io/png.hpp
/// `selmask::io::picture` (an 8-bit grey or RGB raster) and PNG files: `write_png`, `read_png`,
/// `encode_png`, `decode_png`, through libpng's simplified API.
///
/// Pixels are row-major, top row first, channels interleaved (RGBRGB…), sRGB-encoded bytes.
/// Files are written atomically (see `atomic_file.hpp`). `read_png` returns grey for grey files
/// and RGB for colour ones (palette files are expanded, 16-bit samples reduced to 8 bits, alpha
/// composited onto white). Errors are `io_error`s naming the file and libpng's reason, or
/// `shape_error` for a pixel buffer that does not fit the given size.

#include <png.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "atomic_file.hpp"

namespace selmask::io {

/// The largest picture `decode_png` accepts (1 GiB of pixels); a header that announces more is
/// rejected before anything is allocated.
inline constexpr std::uint64_t max_picture_bytes = std::uint64_t{1} << 30;

/// An 8-bit raster: `height` rows of `width` pixels of `channels` (1: grey, 3: RGB) bytes.
struct picture {
  std::size_t width = 0;
  std::size_t height = 0;
  std::size_t channels = 1;
  std::vector<std::uint8_t> pixels; ///< `height · width · channels` bytes, row-major

  /// Channel `c` of the pixel in column `x`, row `y` (unchecked).
  [[nodiscard]] std::uint8_t at(std::size_t x, std::size_t y, std::size_t c = 0) const {
    return pixels[(y * width + x) * channels + c];
  }
};

/// The bytes of a PNG file holding the given pixels (`channels` 1 or 3).
inline std::string encode_png(std::size_t width, std::size_t height, std::size_t channels,
                              std::span<const std::uint8_t> pixels) {
  const std::string where = "selmask::io::encode_png: ";
  if (channels != 1 && channels != 3) {
    throw shape_error(where + std::to_string(channels) + " channels (expected 1 or 3)");
  }
  if (width == 0 || height == 0 || width > 0x7fffffffU || height > 0x7fffffffU) {
    throw shape_error(where + "image size " + std::to_string(width) + "×" + std::to_string(height) +
                      " (expected 1 to 2^31−1 each)");
  }
  if (pixels.size() != width * height * channels) {
    throw shape_error(where + std::to_string(pixels.size()) + " bytes for a " + std::to_string(width) + "×" +
                      std::to_string(height) + "×" + std::to_string(channels) + " image (expected " +
                      std::to_string(width * height * channels) + ")");
  }
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(width);
  img.height = static_cast<png_uint_32>(height);
  img.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  // an upper bound on the stream (deflate's worst case plus chunk overheads); libpng says how
  // much it needs should the bound ever be too small
  const std::size_t raw = height * (width * channels + 1);
  std::string out(raw + raw / 8 + raw / 64 + 12 * (raw / 8192 + 1) + 1024, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    png_alloc_size_t size = out.size();
    const png_image saved = img;
    if (png_image_write_to_memory(&img, out.data(), &size, 0, pixels.data(), 0, nullptr) != 0) {
      out.resize(size);
      return out;
    }
    if (size <= out.size()) {
      throw io_error(where + "libpng: " + img.message);
    }
    png_image_free(&img);
    img = saved;
    img.opaque = nullptr;
    out.assign(size, '\0');
  }
  throw io_error(where + "libpng kept asking for more memory");
}

/// Writes a PNG file (atomically): `channels` 1 (grey) or 3 (RGB).
inline void write_png(const std::filesystem::path& path, std::size_t width, std::size_t height,
                      std::size_t channels, std::span<const std::uint8_t> pixels) {
  std::string bytes;
  try {
    bytes = encode_png(width, height, channels, pixels);
  } catch (const io_error& e) {
    throw io_error("selmask::io::write_png: '" + path.string() + "': " + e.what());
  }
  write_file_atomically(path, std::string_view(bytes));
}

/// Writes `p` as a PNG file (atomically).
inline void write_png(const std::filesystem::path& path, const picture& p) {
  write_png(path, p.width, p.height, p.channels, p.pixels);
}

/// Writes an 8-bit grey PNG (atomically).
inline void write_png_gray(const std::filesystem::path& path, std::size_t width, std::size_t height,
                           std::span<const std::uint8_t> pixels) {
  write_png(path, width, height, 1, pixels);
}

/// Writes an 8-bit RGB PNG (atomically).
inline void write_png_rgb(const std::filesystem::path& path, std::size_t width, std::size_t height,
                          std::span<const std::uint8_t> pixels) {
  write_png(path, width, height, 3, pixels);
}

/// Decodes PNG bytes; `name` is used in error messages.
inline picture decode_png(std::string_view bytes, std::string_view name = "<memory>") {
  const std::string where = "selmask::io::read_png: '" + std::string(name) + "': ";
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  if (png_image_begin_read_from_memory(&img, bytes.data(), bytes.size()) == 0) {
    const std::string msg = img.message;
    png_image_free(&img);
    throw io_error(where + "not a readable PNG (libpng: " + msg + ")");
  }
  picture p;
  p.width = img.width;
  p.height = img.height;
  p.channels = (img.format & PNG_FORMAT_FLAG_COLOR) != 0 ? 3 : 1;
  img.format = p.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  // the size the header (IHDR) announces, checked before the pixels are allocated: the image data
  // are DEFLATE-compressed (at most 1032:1) and a pixel takes at least 1 bit of them, expanding to
  // at most 3 bytes (a 1-bit palette image read as RGB)
  const std::uint64_t want = std::uint64_t{img.width} * img.height * p.channels;
  const std::uint64_t can = std::uint64_t{bytes.size()} * 1032 * 8 * 3;
  if (want > max_picture_bytes || want > can) {
    png_image_free(&img);
    throw io_error(where + "the header (IHDR) claims " + std::to_string(p.width) + "x" +
                   std::to_string(p.height) + " pixels (" + std::to_string(want) + " bytes), more than " +
                   (want > max_picture_bytes ? "the " + std::to_string(max_picture_bytes) +
                                                 " bytes a picture may have (max_picture_bytes)"
                                             : std::to_string(bytes.size()) + " bytes of PNG can hold"));
  }
  p.pixels.assign(p.width * p.height * p.channels, 0);
  const png_color white{255, 255, 255};
  if (png_image_finish_read(&img, &white, p.pixels.data(), 0, nullptr) == 0) {
    const std::string msg = img.message;
    png_image_free(&img);
    throw io_error(where + "corrupt PNG data (libpng: " + msg + ")");
  }
  return p;
}

/// Reads a PNG file as grey (grey files) or RGB (colour files); see the file comment.
inline picture read_png(const std::filesystem::path& path) {
  return decode_png(read_file(path), path.string()); // read_file names the file when missing
}

} // namespace selmask::io
