#pragma once
/// \file transfer/tiles.hpp
/// Plans over rasters that other tools stored as compressed tiles: tiled (Cloud-Optimized)
/// GeoTIFFs and chunked HDF5 datasets. This file needs neither GDAL nor HDF5: the tile table is
/// read by `transfer/gdal.hpp` (`read_geotiff`) or `transfer/hdf5.hpp` (`read_hdf5_chunks`), and
/// everything after that — which tiles a mask selects, their byte ranges, the measured cost of a
/// band or a tile, decoding and assembling the values — is here.
///
/// **The model.** A `tiled_raster` is a C×H×W raster cut into tiles of `tile_height`×`tile_width`
/// pixels over a grid of rows×cols, each tile holding the values of `tile_bands` consecutive bands
/// (1 for a band-interleaved GeoTIFF or an HDF5 chunk of one band; C for a pixel-interleaved
/// GeoTIFF, where every tile carries all bands). A tile is stored somewhere in one file, `bytes`
/// bytes from `offset`, compressed on its own. Edge tiles are stored at full size (both TIFF and
/// HDF5 pad them); their values outside the raster are ignored. Inside a decoded tile the values
/// are in `tile_order`: band after band (b×th×tw), or pixel after pixel (th×tw×b, a TIFF
/// pixel-interleaved tile).
///
/// **What a mask selects.** A channel mask keeps bands; a block mask whose blocks are the tiles
/// keeps tiles. `make_tile_plan(raster, bands, tiles)` reads every stored tile that holds a kept
/// band at a kept grid position; its payload is exactly the sum of those tiles' stored (compressed)
/// byte counts. With a pixel-interleaved file no band can be left out (a tile carries them all):
/// selecting any band of a tile reads the whole tile.
///
/// **Costs from the file.** `band_costs()` and `tile_costs()` are the per-cell cost factors of a
/// channel or a tile-aligned block mask (cost/cost.hpp's `table_cost`): the cell's stored bytes
/// divided by the mean over cells, so that Q of a mask is exactly the fraction of the compressed
/// tile bytes its plan reads (the same idea as the measured JPEG costs of cost/measured.hpp).
///
/// **Decoding.** `decode_tile` undoes the codec and the predictor or filters named in the raster's
/// `tile_format`: no compression, DEFLATE (zlib streams: TIFF compression 8 and 32946, HDF5's
/// deflate filter) and LZW (TIFF compression 5, MSB-first codes with the early change); TIFF's
/// horizontal (2) and floating-point (3) predictors; HDF5's byte shuffle. Anything else is an
/// error naming it. Values may be stored in either byte order. Every decoder checks its output
/// length against the tile's size and reports a short, long or corrupt stream as `io_error`.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <zlib.h>

#include "../error.hpp"
#include "pack.hpp"
#include "plan.hpp"
#include "storage.hpp"
#include "wire.hpp"

namespace selmask::transfer {

static_assert(std::endian::native == std::endian::little,
              "selmask's tile decoder assumes a little-endian host");

/// How the stored tiles are compressed.
enum class tile_codec { none, deflate, lzw };

/// The largest decoded tile `tiled_raster::validate` and `decode_tile` accept: 4 GiB (HDF5's
/// limit on a chunk; GeoTIFF tiles are far smaller). A table that announces more is rejected
/// before anything is allocated.
inline constexpr std::uint64_t max_tile_raw_bytes = std::uint64_t{1} << 32;

constexpr const char* tile_codec_name(tile_codec c) noexcept {
  switch (c) {
    case tile_codec::none:
      return "none";
    case tile_codec::deflate:
      return "deflate";
    case tile_codec::lzw:
      return "lzw";
  }
  return "?";
}

/// The order of the values inside a decoded tile of b bands.
enum class tile_order {
  band_sequential,  ///< b×th×tw (a band-interleaved TIFF tile, an HDF5 chunk)
  pixel_interleaved ///< th×tw×b (a pixel-interleaved TIFF tile)
};

/// Everything about the bytes of one tile: element type, byte order, codec, predictor / filters.
struct tile_format {
  dtype type = dtype::uint8;
  bool little_endian = true;
  tile_codec codec = tile_codec::none;
  int predictor = 1;    ///< TIFF predictor: 1 none, 2 horizontal differencing, 3 floating point
  bool shuffle = false; ///< HDF5 byte shuffle (undone after decompression)
  tile_order order = tile_order::band_sequential;
};

/// One stored tile: the bands [band_group·tile_bands, …) at grid position (row, col).
struct stored_tile {
  std::size_t band_group = 0;
  std::size_t row = 0;
  std::size_t col = 0;
  std::uint64_t offset = 0; ///< in the file
  std::uint64_t bytes = 0;  ///< stored (compressed) size; 0: the tile is not stored (all fill)
};

/// A C×H×W raster stored as tiles in one file (see the file comment).
struct tiled_raster {
  std::size_t bands = 0;
  std::size_t height = 0;
  std::size_t width = 0;
  std::size_t tile_height = 0;
  std::size_t tile_width = 0;
  std::size_t tile_bands = 1; ///< bands in one tile
  tile_format format{};
  std::uint64_t file_bytes = 0; ///< size of the whole file
  std::string description;      ///< what the reader found (driver, compression, interleave)
  /// Every tile, indexed by `tile_index(group, row, col)` (group-major, then row, then column).
  std::vector<stored_tile> tiles;

  [[nodiscard]] std::size_t rows() const noexcept {
    return tile_height == 0 ? 0 : (height + tile_height - 1) / tile_height;
  }
  [[nodiscard]] std::size_t cols() const noexcept {
    return tile_width == 0 ? 0 : (width + tile_width - 1) / tile_width;
  }
  [[nodiscard]] std::size_t band_groups() const noexcept {
    return tile_bands == 0 ? 0 : (bands + tile_bands - 1) / tile_bands;
  }
  [[nodiscard]] std::size_t tile_index(std::size_t group, std::size_t row, std::size_t col) const noexcept {
    return (group * rows() + row) * cols() + col;
  }
  /// Values in one decoded tile: tile_bands·tile_height·tile_width.
  [[nodiscard]] std::size_t tile_values() const noexcept { return tile_bands * tile_height * tile_width; }
  [[nodiscard]] std::size_t tile_raw_bytes() const noexcept {
    return tile_values() * dtype_size(format.type);
  }
  /// Whether a decoded tile has 1 to `max_tile_raw_bytes` bytes (computed without overflow).
  [[nodiscard]] bool tile_size_fits() const noexcept {
    const std::uint64_t tb = tile_bands, th = tile_height, tw = tile_width, es = dtype_size(format.type);
    constexpr std::uint64_t m = max_tile_raw_bytes;
    return tb != 0 && th != 0 && tw != 0 && tb <= m && th <= m / tb && tw <= m / (tb * th) &&
           tb * th * tw <= m / es;
  }
  /// Sum of every stored tile's bytes.
  [[nodiscard]] std::uint64_t tile_bytes() const noexcept {
    std::uint64_t s = 0;
    for (const stored_tile& t : tiles) {
      s += t.bytes;
    }
    return s;
  }

  /// Throws `shape_error` for zero extents or a tile table that does not have one entry per
  /// (group, row, col) in order, `io_error` for a tile that lies outside the file.
  void validate(const char* where) const {
    const std::string w = std::string(where) + ": ";
    if (bands == 0 || height == 0 || width == 0 || tile_height == 0 || tile_width == 0 || tile_bands == 0) {
      throw shape_error(w + "raster " + std::to_string(bands) + "x" + std::to_string(height) + "x" +
                        std::to_string(width) + " with tiles of " + std::to_string(tile_bands) + "x" +
                        std::to_string(tile_height) + "x" + std::to_string(tile_width) +
                        " (every extent must be positive)");
    }
    if (tile_bands != 1 && tile_bands != bands && format.order == tile_order::pixel_interleaved) {
      throw shape_error(w + "a pixel-interleaved tile holds every band (" + std::to_string(bands) +
                        "), not " + std::to_string(tile_bands));
    }
    // sizes the table announces, checked before anything is sized by them
    if (!tile_size_fits()) {
      throw shape_error(w + "tiles of " + std::to_string(tile_bands) + "x" + std::to_string(tile_height) +
                        "x" + std::to_string(tile_width) + " " + dtype_name(format.type) +
                        " values are more than the " + std::to_string(max_tile_raw_bytes) +
                        " bytes a decoded tile may have (max_tile_raw_bytes)");
    }
    if (rows() > tiles.size() || cols() > tiles.size() || band_groups() > tiles.size() ||
        (rows() * cols() != 0 && band_groups() > tiles.size() / (rows() * cols()))) {
      throw shape_error(w + std::to_string(tiles.size()) + " tiles in the table, the grid has more (" +
                        std::to_string(band_groups()) + " band groups x " + std::to_string(rows()) + " x " +
                        std::to_string(cols()) + ")");
    }
    const std::size_t n = band_groups() * rows() * cols();
    if (tiles.size() != n) {
      throw shape_error(w + std::to_string(tiles.size()) + " tiles in the table, the grid has " +
                        std::to_string(n) + " (" + std::to_string(band_groups()) + " band groups x " +
                        std::to_string(rows()) + " x " + std::to_string(cols()) + ")");
    }
    for (std::size_t i = 0; i < n; ++i) {
      const stored_tile& t = tiles[i];
      if (tile_index(t.band_group, t.row, t.col) != i || t.row >= rows() || t.col >= cols()) {
        throw shape_error(w + "tile table entry " + std::to_string(i) + " is out of order");
      }
      if (t.bytes != 0 && (t.offset > file_bytes || t.bytes > file_bytes - t.offset)) {
        throw io_error(w + "tile " + std::to_string(i) + " (" + std::to_string(t.bytes) + " bytes at " +
                       std::to_string(t.offset) + ") lies outside the file of " + std::to_string(file_bytes) +
                       " bytes");
      }
    }
  }

  /// Per band: the stored bytes of every tile that holds it, divided by the mean over bands (see
  /// the file comment). Throws `value_error` for a pixel-interleaved raster of several bands
  /// (its bands cannot be read apart) or one whose tiles hold no bytes at all.
  [[nodiscard]] std::vector<float> band_costs() const {
    if (tile_bands != 1) {
      throw value_error("selmask::transfer::tiled_raster::band_costs: every tile holds " +
                        std::to_string(tile_bands) + " bands (" + description +
                        "): a band cannot be read without the others; store the bands apart (band "
                        "interleave, or chunks of one band)");
    }
    std::vector<double> per(bands, 0.0);
    for (const stored_tile& t : tiles) {
      per[t.band_group] += static_cast<double>(t.bytes);
    }
    return relative(per, "band_costs");
  }

  /// Per grid position (row-major rows×cols): the stored bytes of its tiles over every band,
  /// divided by the mean over positions.
  [[nodiscard]] std::vector<float> tile_costs() const {
    std::vector<double> per(rows() * cols(), 0.0);
    for (const stored_tile& t : tiles) {
      per[t.row * cols() + t.col] += static_cast<double>(t.bytes);
    }
    return relative(per, "tile_costs");
  }

private:
  static std::vector<float> relative(const std::vector<double>& per, const char* what) {
    double total = 0.0;
    for (double v : per) {
      total += v;
    }
    if (!(total > 0.0)) {
      throw value_error(std::string("selmask::transfer::tiled_raster::") + what +
                        ": no tile holds any bytes");
    }
    const double mean = total / static_cast<double>(per.size());
    std::vector<float> out(per.size());
    for (std::size_t i = 0; i < per.size(); ++i) {
      out[i] = static_cast<float>(per[i] / mean);
    }
    return out;
  }
};

/// What a plan reads: the stored tiles (indices into `raster.tiles`, ascending file offset), their
/// byte ranges (the same order, adjacent ones merged) and the payload (the sum of their bytes).
struct tile_plan {
  std::vector<std::size_t> tiles;
  std::vector<byte_range> ranges;
  std::uint64_t payload_bytes = 0;
  std::vector<bool> bands; ///< the kept bands (C)
  std::vector<bool> cells; ///< the kept grid positions (rows×cols)
};

/// The plan that reads the bands `bands` (C flags; empty = all) at the grid positions `cells`
/// (rows×cols flags, row-major; empty = all). Throws `shape_error` for flag vectors of another
/// length; tiles that are not stored (0 bytes) are skipped.
inline tile_plan make_tile_plan(const tiled_raster& r, std::vector<bool> bands = {},
                                std::vector<bool> cells = {}) {
  const char* where = "selmask::transfer::make_tile_plan";
  r.validate(where);
  if (bands.empty()) {
    bands.assign(r.bands, true);
  }
  if (cells.empty()) {
    cells.assign(r.rows() * r.cols(), true);
  }
  if (bands.size() != r.bands || cells.size() != r.rows() * r.cols()) {
    throw shape_error(std::string(where) + ": " + std::to_string(bands.size()) + " band flags and " +
                      std::to_string(cells.size()) + " tile flags for a raster of " +
                      std::to_string(r.bands) + " bands and " + std::to_string(r.rows()) + "x" +
                      std::to_string(r.cols()) + " tiles");
  }
  tile_plan p;
  for (std::size_t i = 0; i < r.tiles.size(); ++i) {
    const stored_tile& t = r.tiles[i];
    if (t.bytes == 0 || !cells[t.row * r.cols() + t.col]) {
      continue;
    }
    const std::size_t b0 = t.band_group * r.tile_bands;
    const std::size_t b1 = std::min(b0 + r.tile_bands, r.bands);
    if (std::any_of(bands.begin() + static_cast<std::ptrdiff_t>(b0),
                    bands.begin() + static_cast<std::ptrdiff_t>(b1), [](bool b) { return b; })) {
      p.tiles.push_back(i);
    }
  }
  std::sort(p.tiles.begin(), p.tiles.end(),
            [&](std::size_t a, std::size_t b) { return r.tiles[a].offset < r.tiles[b].offset; });
  for (std::size_t i : p.tiles) {
    const stored_tile& t = r.tiles[i];
    p.payload_bytes += t.bytes;
    if (!p.ranges.empty() && p.ranges.back().offset + p.ranges.back().length == t.offset) {
      p.ranges.back().length += static_cast<std::size_t>(t.bytes);
    } else {
      if (!p.ranges.empty() && t.offset < p.ranges.back().offset + p.ranges.back().length) {
        throw io_error(std::string(where) + ": tiles overlap in the file (tile " + std::to_string(i) +
                       " at " + std::to_string(t.offset) + ")");
      }
      p.ranges.push_back({static_cast<std::size_t>(t.offset), static_cast<std::size_t>(t.bytes)});
    }
  }
  p.bands = std::move(bands);
  p.cells = std::move(cells);
  return p;
}

/// The kept bands of a host channel mask (`hard_mask` whose geometry has one cell per band).
inline std::vector<bool> bands_of(const hard_mask& m, const tiled_raster& r) {
  if (m.is_xor() || m.geometry.grid[1] != r.bands || m.geometry.grid[2] != 1 || m.geometry.grid[3] != 1) {
    throw shape_error("selmask::transfer::bands_of: the mask's cells are not the raster's " +
                      std::to_string(r.bands) + " bands (a channel any-mask over " + std::to_string(r.bands) +
                      " bands is expected)");
  }
  std::vector<bool> out(r.bands);
  for (std::size_t c = 0; c < r.bands; ++c) {
    out[c] = m.values[c] == 1.0f;
  }
  return out;
}

/// The kept grid positions of a host block mask over the whole raster whose blocks are the tiles
/// (one cell per tile position; a channel extent of 1: the same positions for every band).
inline std::vector<bool> cells_of(const hard_mask& m, const tiled_raster& r) {
  const cell_geometry& g = m.geometry;
  if (m.is_xor() || g.grid[1] != 1 || g.grid[2] != r.rows() || g.grid[3] != r.cols() ||
      g.block[2] != r.tile_height || g.block[3] != r.tile_width) {
    throw shape_error("selmask::transfer::cells_of: the mask's blocks are not the raster's " +
                      std::to_string(r.rows()) + "x" + std::to_string(r.cols()) + " tiles of " +
                      std::to_string(r.tile_height) + "x" + std::to_string(r.tile_width) +
                      " pixels (a block<tile height, tile width, all_channels> any-mask is expected)");
  }
  std::vector<bool> out(r.rows() * r.cols());
  for (std::size_t k = 0; k < out.size(); ++k) {
    out[k] = m.values[k] == 1.0f;
  }
  return out;
}

namespace detail {

inline void inflate_into(std::span<const std::byte> in, std::span<std::byte> out, const std::string& what) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) {
    throw io_error(what + ": zlib inflateInit failed");
  }
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&z, Z_FINISH);
  const std::size_t produced = out.size() - z.avail_out;
  inflateEnd(&z);
  if (rc == Z_STREAM_END && produced == out.size()) {
    return;
  }
  if (rc == Z_BUF_ERROR && z.avail_out == 0) {
    throw io_error(what + ": the DEFLATE stream holds more than the tile's " + std::to_string(out.size()) +
                   " bytes");
  }
  if (rc == Z_STREAM_END || rc == Z_BUF_ERROR) {
    throw io_error(what + ": the DEFLATE stream ends after " + std::to_string(produced) + " of the tile's " +
                   std::to_string(out.size()) + " bytes (truncated)");
  }
  throw io_error(what + ": corrupt DEFLATE stream (zlib: " + (z.msg != nullptr ? z.msg : "error") + ")");
}

/// TIFF LZW (MSB-first codes of 9–12 bits, clear 256, end 257, the code width growing one code
/// early as libtiff writes it). The whole tile must come out.
inline void lzw_into(std::span<const std::byte> in, std::span<std::byte> out, const std::string& what) {
  if (in.size() >= 2 && in[0] == std::byte{0} && (std::to_integer<unsigned>(in[1]) & 1U) != 0) {
    throw io_error(what + ": old-style (LSB-first) LZW is not supported");
  }
  constexpr std::size_t max_codes = 4096;
  std::vector<std::uint16_t> prefix(max_codes);
  std::vector<std::uint8_t> last(max_codes);
  std::vector<std::uint16_t> length(max_codes);
  for (std::size_t i = 0; i < 256; ++i) {
    prefix[i] = 0xFFFF;
    last[i] = static_cast<std::uint8_t>(i);
    length[i] = 1;
  }
  std::size_t next = 258, width = 9, pos = 0, bitpos = 0;
  const std::size_t bits = in.size() * 8;
  int prev = -1;
  auto read = [&]() -> int {
    if (bitpos + width > bits) {
      return -1;
    }
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < width; ++k, ++bitpos) {
      v = (v << 1) | ((std::to_integer<unsigned>(in[bitpos / 8]) >> (7 - bitpos % 8)) & 1U);
    }
    return static_cast<int>(v);
  };
  auto emit = [&](std::size_t code) {
    const std::size_t n = length[code];
    if (pos + n > out.size()) {
      throw io_error(what + ": the LZW stream holds more than the tile's " + std::to_string(out.size()) +
                     " bytes");
    }
    std::size_t c = code;
    for (std::size_t k = n; k-- > 0;) {
      out[pos + k] = std::byte{last[c]};
      c = prefix[c];
    }
    pos += n;
  };
  auto first_byte = [&](std::size_t code) {
    while (prefix[code] != 0xFFFF) {
      code = prefix[code];
    }
    return last[code];
  };
  while (true) {
    const int code = read();
    if (code < 0 || code == 257) {
      break;
    }
    if (code == 256) {
      next = 258;
      width = 9;
      prev = -1;
      continue;
    }
    const auto c = static_cast<std::size_t>(code);
    if (prev < 0) {
      if (c > 255) {
        throw io_error(what + ": corrupt LZW stream (code " + std::to_string(c) + " after a clear)");
      }
      emit(c);
    } else {
      if (c > next || next >= max_codes) {
        throw io_error(what + ": corrupt LZW stream (code " + std::to_string(c) + " with " +
                       std::to_string(next) + " table entries)");
      }
      const auto p = static_cast<std::size_t>(prev);
      const std::uint8_t head = c < next ? first_byte(c) : first_byte(p);
      prefix[next] = static_cast<std::uint16_t>(p);
      last[next] = head;
      length[next] = static_cast<std::uint16_t>(length[p] + 1);
      ++next;
      emit(c);
    }
    prev = code;
    if (next + 1 >= (std::size_t{1} << width) && width < 12) {
      ++width;
    }
  }
  if (pos != out.size()) {
    throw io_error(what + ": the LZW stream ends after " + std::to_string(pos) + " of the tile's " +
                   std::to_string(out.size()) + " bytes (truncated)");
  }
}

/// Reverses the bytes of every `size`-byte value of `raw` (big-endian storage to the host's order).
inline void to_little_endian(std::span<std::byte> raw, std::size_t size) {
  if (size < 2) {
    return;
  }
  for (std::size_t i = 0; i + size <= raw.size(); i += size) {
    std::reverse(raw.begin() + static_cast<std::ptrdiff_t>(i),
                 raw.begin() + static_cast<std::ptrdiff_t>(i + size));
  }
}

template <class U>
void undo_horizontal(std::byte* row, std::size_t count, std::size_t stride) {
  for (std::size_t i = stride; i < count; ++i) {
    U a, b;
    std::memcpy(&a, row + (i - stride) * sizeof(U), sizeof(U));
    std::memcpy(&b, row + i * sizeof(U), sizeof(U));
    b = static_cast<U>(a + b);
    std::memcpy(row + i * sizeof(U), &b, sizeof(U));
  }
}

} // namespace detail

/// The raw values of one tile (`r.tile_raw_bytes()` bytes, little-endian, in `r.format.order`)
/// from its `stored` bytes. Throws `io_error` for a stream that is corrupt, short or long, and
/// `value_error` for a predictor that does not fit the element type.
inline std::vector<std::byte> decode_tile(const tiled_raster& r, std::span<const std::byte> stored,
                                          const std::string& what = "selmask::transfer::decode_tile") {
  const tile_format& f = r.format;
  const std::size_t size = dtype_size(f.type);
  // what the stored bytes can decode to, checked before the tile is allocated: DEFLATE expands at
  // most 1032:1, a TIFF LZW code (9 bits or more) to at most 4096 bytes
  const std::uint64_t in = stored.size();
  const std::uint64_t can = f.codec == tile_codec::none      ? in
                            : f.codec == tile_codec::deflate ? in * 1032 + 64
                                                             : (in * 8 / 9 + 1) * 4096;
  if (!r.tile_size_fits()) {
    throw value_error(what + ": tiles of " + std::to_string(r.tile_bands) + "x" +
                      std::to_string(r.tile_height) + "x" + std::to_string(r.tile_width) +
                      " values (expected 1 to " + std::to_string(max_tile_raw_bytes) +
                      " bytes, max_tile_raw_bytes)");
  }
  const std::uint64_t want = r.tile_raw_bytes();
  if (want > can) {
    if (f.codec == tile_codec::none) {
      throw io_error(what + ": an uncompressed tile of " + std::to_string(stored.size()) +
                     " bytes, expected " + std::to_string(want) + " (truncated)");
    }
    throw io_error(what + ": a " + tile_codec_name(f.codec) + " tile of " + std::to_string(in) +
                   " stored bytes cannot hold the " + std::to_string(want) + " bytes of a " +
                   std::to_string(r.tile_bands) + "x" + std::to_string(r.tile_height) + "x" +
                   std::to_string(r.tile_width) + " tile (corrupt tile or tile table)");
  }
  std::vector<std::byte> raw(want);
  switch (f.codec) {
    case tile_codec::none:
      std::memcpy(raw.data(), stored.data(), raw.size());
      break;
    case tile_codec::deflate:
      detail::inflate_into(stored, raw, what);
      break;
    case tile_codec::lzw:
      detail::lzw_into(stored, raw, what);
      break;
  }
  if (f.shuffle && size > 1) {
    const std::vector<std::byte> s = raw;
    const std::size_t n = raw.size() / size;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t b = 0; b < size; ++b) {
        raw[i * size + b] = s[b * n + i];
      }
    }
  }
  // rows of a tile: th rows of tw·spp samples each (per band for a band-sequential tile)
  const std::size_t spp = f.order == tile_order::pixel_interleaved ? r.tile_bands : 1;
  const std::size_t row_values = r.tile_width * spp;
  const std::size_t row_count = raw.size() / size / row_values;
  const bool is_float = f.type == dtype::float32 || f.type == dtype::float64;
  if (f.predictor == 3) {
    if (!is_float) {
      throw value_error(what + ": floating-point predictor (3) on " + dtype_name(f.type) + " values");
    }
    // per row: bytes differenced with stride spp, then the bytes of each value stored as
    // planes, most significant first; undone into host (little-endian) order
    const std::size_t row_bytes = row_values * size;
    std::vector<std::byte> tmp(row_bytes);
    for (std::size_t y = 0; y < row_count; ++y) {
      std::byte* row = raw.data() + y * row_bytes;
      for (std::size_t i = spp; i < row_bytes; ++i) {
        row[i] = std::byte{static_cast<std::uint8_t>(std::to_integer<unsigned>(row[i]) +
                                                     std::to_integer<unsigned>(row[i - spp]))};
      }
      std::memcpy(tmp.data(), row, row_bytes);
      for (std::size_t i = 0; i < row_values; ++i) {
        for (std::size_t b = 0; b < size; ++b) {
          row[i * size + b] = tmp[(size - b - 1) * row_values + i];
        }
      }
    }
    return raw;
  }
  if (!f.little_endian) {
    detail::to_little_endian(raw, size);
  }
  if (f.predictor == 2) {
    if (is_float) {
      throw value_error(what + ": horizontal predictor (2) on " + std::string(dtype_name(f.type)) +
                        " values (TIFF uses predictor 3 for floating point)");
    }
    for (std::size_t y = 0; y < row_count; ++y) {
      std::byte* row = raw.data() + y * row_values * size;
      switch (size) {
        case 1:
          detail::undo_horizontal<std::uint8_t>(row, row_values, spp);
          break;
        case 2:
          detail::undo_horizontal<std::uint16_t>(row, row_values, spp);
          break;
        default:
          detail::undo_horizontal<std::uint32_t>(row, row_values, spp);
          break;
      }
    }
  } else if (f.predictor != 1) {
    throw value_error(what + ": TIFF predictor " + std::to_string(f.predictor) + " (known: 1, 2, 3)");
  }
  return raw;
}

/// Values of a raster read through a `tile_plan`: C×H×W floats, the kept bands at the kept tile
/// positions, `fill` everywhere else.
struct tile_values {
  std::vector<float> values;
  std::size_t bands = 0, height = 0, width = 0;
  wire_stats wire; ///< bytes on the wire (HTTP reads; zero for a local read)
};

/// Decodes the plan's tiles from `payload` (their stored bytes one after another in the plan's
/// order, exactly `p.payload_bytes` bytes) into a C×H×W tensor. Throws `shape_error` for a payload
/// of another size, `io_error` for a tile that does not decode.
inline tile_values assemble_tiles(const tiled_raster& r, const tile_plan& p,
                                  std::span<const std::byte> payload, float fill = 0.0f) {
  const std::string where = "selmask::transfer::assemble_tiles";
  if (payload.size() != p.payload_bytes) {
    throw shape_error(where + ": payload of " + std::to_string(payload.size()) + " bytes, the plan reads " +
                      std::to_string(p.payload_bytes));
  }
  tile_values out;
  out.bands = r.bands;
  out.height = r.height;
  out.width = r.width;
  out.values.assign(r.bands * r.height * r.width, fill);
  std::vector<float> decoded(r.tile_values());
  std::size_t at = 0;
  const std::size_t th = r.tile_height, tw = r.tile_width, tb = r.tile_bands;
  for (std::size_t i : p.tiles) {
    const stored_tile& t = r.tiles[i];
    const auto bytes = static_cast<std::size_t>(t.bytes);
    const std::vector<std::byte> raw =
      decode_tile(r, payload.subspan(at, bytes),
                  where + ": tile " + std::to_string(i) + " (band group " + std::to_string(t.band_group) +
                    ", row " + std::to_string(t.row) + ", column " + std::to_string(t.col) + ")");
    at += bytes;
    detail::convert_values(r.format.type, raw.data(), decoded.data(), decoded.size(), 1.0f);
    const std::size_t b0 = t.band_group * tb, h0 = t.row * th, w0 = t.col * tw;
    const std::size_t b1 = std::min(b0 + tb, r.bands), h1 = std::min(h0 + th, r.height),
                      w1 = std::min(w0 + tw, r.width);
    for (std::size_t b = b0; b < b1; ++b) {
      if (!p.bands[b]) {
        continue;
      }
      for (std::size_t h = h0; h < h1; ++h) {
        float* dst = out.values.data() + (b * r.height + h) * r.width;
        for (std::size_t w = w0; w < w1; ++w) {
          const std::size_t y = h - h0, x = w - w0, k = b - b0;
          dst[w] = r.format.order == tile_order::band_sequential ? decoded[(k * th + y) * tw + x]
                                                                 : decoded[(y * tw + x) * tb + k];
        }
      }
    }
  }
  return out;
}

/// Reads the plan's tiles from the local file `path` (which must be the raster's file) and
/// assembles them (`assemble_tiles`).
inline tile_values read_tiles(const std::string& path, const tiled_raster& r, const tile_plan& p,
                              float fill = 0.0f) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw io_error("selmask::transfer::read_tiles: cannot open " + path);
  }
  std::vector<std::byte> payload(static_cast<std::size_t>(p.payload_bytes));
  std::size_t at = 0;
  for (const byte_range& q : p.ranges) {
    in.seekg(static_cast<std::streamoff>(q.offset));
    in.read(reinterpret_cast<char*>(payload.data() + at), static_cast<std::streamsize>(q.length));
    if (!in) {
      throw io_error("selmask::transfer::read_tiles: " + path + " ends before byte " +
                     std::to_string(q.offset + q.length) + " (the tile table says it holds them)");
    }
    at += q.length;
  }
  return assemble_tiles(r, p, payload, fill);
}

/// Fetches the plan's tiles from `url` with `client` (transfer/http.hpp's `http_client`, or any
/// client with its `fetch_ranges_into`) and assembles them; `wire` counts the bytes on the wire.
template <class Client>
tile_values fetch_tiles(Client& client, const std::string& url, const tiled_raster& r, const tile_plan& p,
                        float fill = 0.0f) {
  std::vector<std::byte> payload(static_cast<std::size_t>(p.payload_bytes));
  wire_stats wire;
  if (!p.ranges.empty()) {
    wire = client.fetch_ranges_into(url, p.ranges, static_cast<std::size_t>(r.file_bytes), payload);
  }
  tile_values out = assemble_tiles(r, p, payload, fill);
  out.wire = wire;
  return out;
}

} // namespace selmask::transfer
