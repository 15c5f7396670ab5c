#pragma once
/// \file transfer/gdal.hpp
/// The tile table of a tiled GeoTIFF (Cloud-Optimized or not) read through GDAL, for the plans of
/// transfer/tiles.hpp. Needs GDAL (CMake target `selmask::gdal`; Debian `libgdal-dev`).
///
/// ```cpp
/// const auto scene = selmask::transfer::read_geotiff("scene.tif");  // or "/vsicurl/https://…"
/// const auto costs = scene.band_costs();           // compressed bytes per band / mean: table_cost
/// const auto p = selmask::transfer::make_tile_plan(scene, bands_of(channel_mask, scene));
/// const auto x = selmask::transfer::fetch_tiles(client, url, scene, p);  // only those tiles
/// ```
///
/// `read_geotiff(path)` opens the file with GDAL's GTiff driver (a COG is a GeoTIFF with its
/// header first and its tiles in a known order) and reads:
///  - bands, height, width, the data type (every band must have the same one) and the tile size
///    (GDAL's block size: a TIFF's tiles);
///  - `IMAGE_STRUCTURE` metadata: `INTERLEAVE` (BAND: every tile holds one band, PIXEL: every tile
///    holds all bands, pixel after pixel), `COMPRESSION` (absent: none; DEFLATE, LZW; anything
///    else is an error naming it: selmask's decoder in tiles.hpp would not read it) and
///    `PREDICTOR` (1, 2 or 3);
///  - the byte order from the file's first two bytes (`II` little-endian, `MM` big-endian);
///  - every tile's offset and stored byte count, from the `TIFF` metadata domain
///    (`BLOCK_OFFSET_x_y` and `BLOCK_SIZE_x_y` of each band; with PIXEL interleave band 1's
///    tiles hold all bands). A tile GDAL reports as absent (sparse files) has 0 bytes: read as fill.
///
/// Only the full-resolution image is planned over (not the overviews a COG also holds), and a
/// striped TIFF whose strips cannot be told from tiles (strips of the full width whose last one is
/// short) is rejected with a message saying how to rewrite it tiled (`gdal_translate -co TILED=YES`).
///
/// **Header reads.** To plan, the reader needs the image file directory (IFD) and its tile offset
/// and byte-count arrays. A COG puts them at the start of the file, so a client that reads the tile
/// table over HTTP (`read_geotiff("/vsicurl/" + url)`) pays GDAL's first read(s) of the header
/// (GDAL reads 16 KB blocks); the client can then plan any number of selections without reading
/// the header again. `header_bytes(raster)` is the part of the file outside the tiles (IFDs,
/// tag arrays, GeoTIFF keys, the COG's ghost area and its overviews).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_vsi.h>
#include <gdal.h>

#include "../error.hpp"
#include "tiles.hpp"

namespace selmask::transfer {

namespace detail {

struct gdal_closer {
  void operator()(void* ds) const noexcept {
    if (ds != nullptr) {
      GDALClose(ds);
    }
  }
};

inline dtype dtype_of_gdal(GDALDataType t, const std::string& where) {
  switch (t) {
    case GDT_Byte:
      return dtype::uint8;
    case GDT_UInt16:
      return dtype::uint16;
    case GDT_Int16:
      return dtype::int16;
    case GDT_UInt32:
      return dtype::uint32;
    case GDT_Int32:
      return dtype::int32;
    case GDT_Float32:
      return dtype::float32;
    case GDT_Float64:
      return dtype::float64;
    default:
      throw value_error(where + "GDAL data type " + GDALGetDataTypeName(t) +
                        " (supported: Byte, UInt16, Int16, UInt32, Int32, Float32, Float64)");
  }
}

inline std::uint64_t tiff_item(GDALRasterBandH band, const std::string& key, const std::string& where) {
  const char* v = GDALGetMetadataItem(band, key.c_str(), "TIFF");
  if (v == nullptr) {
    return 0; // a tile that is not stored (sparse file)
  }
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  if (end == v || *end != '\0') {
    throw io_error(where + "GDAL reports " + key + " = '" + v + "' (not a byte count)");
  }
  return static_cast<std::uint64_t>(n);
}

} // namespace detail

/// The tile table of the tiled GeoTIFF at `path` (a local path or any GDAL virtual path such as
/// `/vsicurl/http://…`); see the file comment. Throws `io_error` when GDAL cannot open it as a
/// GeoTIFF, `value_error` for what selmask cannot plan over (a compression, data type or layout it
/// does not read), `shape_error` for bands of different types.
inline tiled_raster read_geotiff(const std::string& path) {
  const std::string where = "selmask::transfer::read_geotiff: " + path + ": ";
  GDALAllRegister();
  const char* const drivers[] = {"GTiff", nullptr};
  CPLErrorReset();
  CPLPushErrorHandler(CPLQuietErrorHandler);
  std::unique_ptr<void, detail::gdal_closer> ds(
    GDALOpenEx(path.c_str(), GDAL_OF_RASTER | GDAL_OF_READONLY, drivers, nullptr, nullptr));
  CPLPopErrorHandler();
  if (!ds) {
    const char* msg = CPLGetLastErrorMsg();
    throw io_error(where + "GDAL cannot open it as a GeoTIFF" +
                   (msg != nullptr && *msg != '\0' ? std::string(" (") + msg + ")" : std::string()));
  }
  GDALDatasetH h = ds.get();
  tiled_raster r;
  r.bands = static_cast<std::size_t>(GDALGetRasterCount(h));
  r.width = static_cast<std::size_t>(GDALGetRasterXSize(h));
  r.height = static_cast<std::size_t>(GDALGetRasterYSize(h));
  if (r.bands == 0) {
    throw shape_error(where + "no raster bands");
  }
  GDALRasterBandH first = GDALGetRasterBand(h, 1);
  int bx = 0, by = 0;
  GDALGetBlockSize(first, &bx, &by);
  r.tile_width = static_cast<std::size_t>(bx);
  r.tile_height = static_cast<std::size_t>(by);
  if (r.tile_width == r.width && r.height % r.tile_height != 0) {
    throw value_error(
      where + "blocks of " + std::to_string(bx) + "x" + std::to_string(by) +
      " pixels spanning the full width with a short last one: a striped TIFF; selmask plans over "
      "tiled TIFFs (rewrite it: gdal_translate -co TILED=YES in.tif out.tif)");
  }
  const GDALDataType t = GDALGetRasterDataType(first);
  r.format.type = detail::dtype_of_gdal(t, where);
  for (std::size_t b = 2; b <= r.bands; ++b) {
    if (GDALGetRasterDataType(GDALGetRasterBand(h, static_cast<int>(b))) != t) {
      throw shape_error(where + "band " + std::to_string(b) + " has another data type than band 1");
    }
  }
  auto structure = [&](const char* key) {
    const char* v = GDALGetMetadataItem(h, key, "IMAGE_STRUCTURE");
    return v == nullptr ? std::string() : std::string(v);
  };
  const std::string interleave = structure("INTERLEAVE");
  const std::string compression = structure("COMPRESSION");
  const std::string predictor = structure("PREDICTOR");
  const bool pixel = r.bands > 1 && interleave != "BAND";
  r.tile_bands = pixel ? r.bands : 1;
  r.format.order = pixel ? tile_order::pixel_interleaved : tile_order::band_sequential;
  if (compression.empty() || compression == "NONE") {
    r.format.codec = tile_codec::none;
  } else if (compression == "DEFLATE") {
    r.format.codec = tile_codec::deflate;
  } else if (compression == "LZW") {
    r.format.codec = tile_codec::lzw;
  } else {
    throw value_error(where + "compression " + compression +
                      " (selmask's tile decoder reads NONE, DEFLATE and LZW; rewrite it: gdal_translate -co "
                      "TILED=YES -co COMPRESS=DEFLATE in.tif out.tif)");
  }
  r.format.predictor = predictor.empty() ? 1 : std::atoi(predictor.c_str());
  if (r.format.predictor < 1 || r.format.predictor > 3) {
    throw value_error(where + "predictor '" + predictor + "' (known: 1, 2, 3)");
  }
  VSIStatBufL st;
  if (VSIStatL(path.c_str(), &st) != 0) {
    throw io_error(where + "GDAL cannot tell the file's size");
  }
  r.file_bytes = static_cast<std::uint64_t>(st.st_size);
  {
    VSILFILE* f = VSIFOpenL(path.c_str(), "rb");
    char order[2] = {0, 0};
    const bool ok = f != nullptr && VSIFReadL(order, 1, 2, f) == 2;
    if (f != nullptr) {
      VSIFCloseL(f);
    }
    if (!ok || !((order[0] == 'I' && order[1] == 'I') || (order[0] == 'M' && order[1] == 'M'))) {
      throw io_error(where + "the file does not start with a TIFF byte-order mark (II or MM)");
    }
    r.format.little_endian = order[0] == 'I';
  }
  r.description =
    std::string("GeoTIFF") + (structure("LAYOUT") == "COG" ? " (COG)" : "") + ", " +
    (pixel ? "PIXEL" : "BAND") + " interleave, " + (compression.empty() ? "NONE" : compression) +
    (r.format.predictor != 1 ? ", predictor " + std::to_string(r.format.predictor) : "") + ", tiles " +
    std::to_string(r.tile_width) + "x" + std::to_string(r.tile_height) + ", " + dtype_name(r.format.type);
  const std::size_t groups = r.band_groups();
  r.tiles.resize(groups * r.rows() * r.cols());
  for (std::size_t g = 0; g < groups; ++g) {
    GDALRasterBandH band = GDALGetRasterBand(h, static_cast<int>(g + 1));
    for (std::size_t row = 0; row < r.rows(); ++row) {
      for (std::size_t col = 0; col < r.cols(); ++col) {
        const std::string xy = std::to_string(col) + "_" + std::to_string(row);
        stored_tile& tile = r.tiles[r.tile_index(g, row, col)];
        tile.band_group = g;
        tile.row = row;
        tile.col = col;
        tile.offset = detail::tiff_item(band, "BLOCK_OFFSET_" + xy, where);
        tile.bytes = tile.offset == 0 ? 0 : detail::tiff_item(band, "BLOCK_SIZE_" + xy, where);
      }
    }
  }
  r.validate("selmask::transfer::read_geotiff");
  return r;
}

/// The bytes of the file outside every tile: its IFDs and tag arrays, GeoTIFF keys, a COG's ghost
/// area, and overviews (see the file comment).
inline std::uint64_t header_bytes(const tiled_raster& r) noexcept {
  const std::uint64_t tiles = r.tile_bytes();
  return r.file_bytes > tiles ? r.file_bytes - tiles : 0;
}

} // namespace selmask::transfer
