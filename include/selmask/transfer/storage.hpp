#pragma once
/// \file transfer/storage.hpp
/// How the server stores the data a selection plan reads: the element type (`dtype`), the order
/// of the values of one sample (`storage_layout`) and the whole description (`storage`).
///
/// A stored array holds `samples` samples one after another; each sample is the `C×H×W` values of
/// one input, `dtype_size(type)` bytes each, little-endian, in one of three orders:
///
/// | layout              | order of one sample's values                                          |
/// |---------------------|-----------------------------------------------------------------------|
/// | `band_sequential`   | C×H×W (planar: band after band; the network's own NCHW order)           |
/// | `pixel_interleaved` | H×W×C (all bands of a pixel together)                                   |
/// | `tiled(th, tw)`     | tiles of th×tw pixels, row-major over the tile grid, stored one after |
/// |                     | another; inside a tile band-sequential (C×th×tw). Edge tiles are NOT  |
/// |                     | padded: a tile in the last tile row/column holds only its real        |
/// |                     | min(th, H−h0)×min(tw, W−w0) pixels, so every layout stores exactly    |
/// |                     | C·H·W values per sample and a sample's byte size is the same in all.  |
///
/// With versions (an `extend` in the pipeline) every version is a separate array of this form,
/// `versions` arrays in all: version v of every sample lives in array ("stream") v.
///
/// `for_each_storage_location(s, f)` calls `f(location)` for the values of one sample in storage
/// order, where `location = (c·H + h)·W + w` is the value's position in the network's C×H×W
/// order. Everything else in transfer/ (byte ranges, pack, unpack) is derived from it.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "../error.hpp"
#include "../shape.hpp"

namespace selmask::transfer {

/// Element type of the stored data. Multi-byte types are little-endian in storage.
enum class dtype { uint8, int8, uint16, int16, uint32, int32, float32, float64 };

/// Bytes per element.
constexpr std::size_t dtype_size(dtype t) noexcept {
  switch (t) {
    case dtype::uint8:
    case dtype::int8:
      return 1;
    case dtype::uint16:
    case dtype::int16:
      return 2;
    case dtype::uint32:
    case dtype::int32:
    case dtype::float32:
      return 4;
    case dtype::float64:
      return 8;
  }
  return 0;
}

/// "uint8", "uint16", "float32", ... (the names used in plan files).
constexpr const char* dtype_name(dtype t) noexcept {
  switch (t) {
    case dtype::uint8:
      return "uint8";
    case dtype::int8:
      return "int8";
    case dtype::uint16:
      return "uint16";
    case dtype::int16:
      return "int16";
    case dtype::uint32:
      return "uint32";
    case dtype::int32:
      return "int32";
    case dtype::float32:
      return "float32";
    case dtype::float64:
      return "float64";
  }
  return "?";
}

/// The dtype called `name`; throws `value_error` naming the unknown name and the known ones.
inline dtype parse_dtype(std::string_view name) {
  for (dtype t : {dtype::uint8, dtype::int8, dtype::uint16, dtype::int16, dtype::uint32, dtype::int32,
                  dtype::float32, dtype::float64}) {
    if (name == dtype_name(t)) {
      return t;
    }
  }
  throw value_error("selmask::transfer::parse_dtype: unknown dtype '" + std::string(name) +
                    "' (expected uint8, int8, uint16, int16, uint32, int32, float32 or float64)");
}

enum class layout_kind { band_sequential, pixel_interleaved, tiled };

constexpr const char* layout_kind_name(layout_kind k) noexcept {
  switch (k) {
    case layout_kind::band_sequential:
      return "band_sequential";
    case layout_kind::pixel_interleaved:
      return "pixel_interleaved";
    case layout_kind::tiled:
      return "tiled";
  }
  return "?";
}

/// The order of one sample's values in storage (see the table at the top of this file).
struct storage_layout {
  layout_kind kind = layout_kind::band_sequential;
  std::size_t tile_height = 0; ///< tiled only (0 otherwise)
  std::size_t tile_width = 0;  ///< tiled only (0 otherwise)

  static constexpr storage_layout band_sequential() { return {layout_kind::band_sequential, 0, 0}; }
  static constexpr storage_layout pixel_interleaved() { return {layout_kind::pixel_interleaved, 0, 0}; }
  /// Tiles of `th`×`tw` pixels; throws `value_error` if either is 0.
  static storage_layout tiled(std::size_t th, std::size_t tw) {
    if (th == 0 || tw == 0) {
      throw value_error("selmask::transfer::storage_layout::tiled: tile extent must be positive, got " +
                        std::to_string(th) + "x" + std::to_string(tw));
    }
    return {layout_kind::tiled, th, tw};
  }

  /// "band_sequential", "pixel_interleaved", "tiled(16x16)".
  [[nodiscard]] std::string str() const {
    std::string s = layout_kind_name(kind);
    if (kind == layout_kind::tiled) {
      s += "(" + std::to_string(tile_height) + "x" + std::to_string(tile_width) + ")";
    }
    return s;
  }

  friend constexpr bool operator==(const storage_layout& a, const storage_layout& b) noexcept {
    return a.kind == b.kind && a.tile_height == b.tile_height && a.tile_width == b.tile_width;
  }
};

/// What the server stores: `versions` arrays ("streams"), each of `samples` samples of shape
/// `sample` (C×H×W), element type `type`, in layout `layout`.
struct storage {
  shape sample;                ///< C×H×W of one sample
  std::size_t samples = 1;     ///< N: samples stored one after another
  dtype type = dtype::float32; ///< element type
  storage_layout layout{};     ///< order of a sample's values
  std::size_t versions = 1;    ///< number of streams (V of an extend stage; 1 without)

  [[nodiscard]] std::size_t channels() const { return sample[0]; }
  [[nodiscard]] std::size_t height() const { return sample[1]; }
  [[nodiscard]] std::size_t width() const { return sample[2]; }
  /// Values of one sample (C·H·W).
  [[nodiscard]] std::size_t sample_values() const { return sample.size(); }
  /// Bytes of one sample in one stream.
  [[nodiscard]] std::size_t sample_bytes() const { return sample.size() * dtype_size(type); }
  /// Bytes of one whole stream (all samples of one version).
  [[nodiscard]] std::size_t stream_bytes() const { return samples * sample_bytes(); }
  /// The shape of the dense tensor unpack produces: N×C×H×W.
  [[nodiscard]] shape batch_shape() const { return sample.prepend(samples); }

  /// Throws unless the description is usable: `shape_error` for a sample shape that is not
  /// C×H×W with positive extents, for 0 samples or 0 versions; `value_error` for a tiled layout
  /// with a zero tile extent or tile extents on a non-tiled layout.
  void validate(const char* where) const {
    const std::string w = std::string(where) + ": ";
    if (sample.rank() != 3 || sample.size() == 0) {
      throw shape_error(w + "storage sample shape must be C x H x W with positive extents, got " +
                        sample.str());
    }
    if (samples == 0) {
      throw shape_error(w + "storage holds 0 samples (expected at least 1)");
    }
    if (versions == 0) {
      throw shape_error(w + "storage has 0 versions (expected at least 1)");
    }
    if (layout.kind == layout_kind::tiled && (layout.tile_height == 0 || layout.tile_width == 0)) {
      throw value_error(w + "tiled layout with tile extent " + std::to_string(layout.tile_height) + "x" +
                        std::to_string(layout.tile_width) + " (expected positive extents)");
    }
    if (layout.kind != layout_kind::tiled && (layout.tile_height != 0 || layout.tile_width != 0)) {
      throw value_error(w + "layout " + std::string(layout_kind_name(layout.kind)) +
                        " with a tile extent (only a tiled layout has one)");
    }
  }

  friend bool operator==(const storage& a, const storage& b) noexcept {
    return a.sample == b.sample && a.samples == b.samples && a.type == b.type && a.layout == b.layout &&
           a.versions == b.versions;
  }
};

/// Calls `f(location)` for every value of one sample, in storage order; `location` is the
/// value's index in C×H×W order. `s` must be valid (see `storage::validate`).
template <class F>
void for_each_storage_location(const storage& s, F&& f) {
  const std::size_t c_n = s.channels(), h_n = s.height(), w_n = s.width();
  const std::size_t plane = h_n * w_n;
  switch (s.layout.kind) {
    case layout_kind::band_sequential:
      for (std::size_t i = 0; i < c_n * plane; ++i) {
        f(i);
      }
      break;
    case layout_kind::pixel_interleaved:
      for (std::size_t p = 0; p < plane; ++p) {
        for (std::size_t c = 0; c < c_n; ++c) {
          f(c * plane + p);
        }
      }
      break;
    case layout_kind::tiled: {
      const std::size_t th = s.layout.tile_height, tw = s.layout.tile_width;
      for (std::size_t h0 = 0; h0 < h_n; h0 += th) {
        const std::size_t h1 = std::min(h0 + th, h_n);
        for (std::size_t w0 = 0; w0 < w_n; w0 += tw) {
          const std::size_t w1 = std::min(w0 + tw, w_n);
          for (std::size_t c = 0; c < c_n; ++c) {
            for (std::size_t h = h0; h < h1; ++h) {
              for (std::size_t w = w0; w < w1; ++w) {
                f(c * plane + h * w_n + w);
              }
            }
          }
        }
      }
      break;
    }
  }
}

} // namespace selmask::transfer
