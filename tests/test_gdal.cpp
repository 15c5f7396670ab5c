// Plans over tiled GeoTIFFs (transfer/gdal.hpp, transfer/tiles.hpp): files written by GDAL with
// several compressions, predictors, interleaves, tile sizes, data types and byte orders. The truth
// the plan is checked against is independent of the code under test: the tile byte counts come from
// libtiff (TIFFTAG_TILEBYTECOUNTS), the values from GDAL's own read of the same bands.
#include <catch2/catch.hpp>

#include <selmask/transfer/gdal.hpp>
#include <selmask/transfer/http.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <tiffio.h>

#include "nginx_server.hpp"
#include "support.hpp"

namespace tr = selmask::transfer;

namespace {

struct written {
  std::string path;
  std::size_t bands, height, width;
  std::vector<float> values; // C×H×W as written
};

/// Writes a C×H×W raster (smooth ramps plus noise, so that every codec has work) with `driver`
/// ("GTiff" or "COG") and creation options.
written write_tiff(const std::filesystem::path& path, const char* driver, GDALDataType type,
                   std::size_t bands, std::size_t height, std::size_t width,
                   const std::vector<std::string>& options, std::uint64_t seed = 1) {
  GDALAllRegister();
  GDALDriverH mem = GDALGetDriverByName("MEM");
  GDALDatasetH src = GDALCreate(mem, "", static_cast<int>(width), static_cast<int>(height),
                                static_cast<int>(bands), type, nullptr);
  REQUIRE(src != nullptr);
  written w{path.string(), bands, height, width, std::vector<float>(bands * height * width)};
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> noise(0, 9);
  const bool is_float = type == GDT_Float32 || type == GDT_Float64;
  const bool is_signed = type == GDT_Int16 || type == GDT_Int32;
  for (std::size_t b = 0; b < bands; ++b) {
    for (std::size_t y = 0; y < height; ++y) {
      for (std::size_t x = 0; x < width; ++x) {
        const double base = static_cast<double>((x * (b + 1) + 3 * y) % 200) + noise(rng);
        double v = is_float ? base * 0.37 - 20.0 : (is_signed ? base - 100.0 : base);
        if (type == GDT_UInt16) {
          v = base * 250.0;
        }
        w.values[(b * height + y) * width + x] = static_cast<float>(v);
      }
    }
    GDALRasterBandH band = GDALGetRasterBand(src, static_cast<int>(b + 1));
    REQUIRE(GDALRasterIO(band, GF_Write, 0, 0, static_cast<int>(width), static_cast<int>(height),
                         w.values.data() + b * height * width, static_cast<int>(width),
                         static_cast<int>(height), GDT_Float32, 0, 0) == CE_None);
  }
  std::vector<char*> opts;
  for (const std::string& o : options) {
    opts.push_back(const_cast<char*>(o.c_str()));
  }
  opts.push_back(nullptr);
  GDALDatasetH dst =
    GDALCreateCopy(GDALGetDriverByName(driver), w.path.c_str(), src, FALSE, opts.data(), nullptr, nullptr);
  REQUIRE(dst != nullptr);
  GDALClose(dst);
  GDALClose(src);
  return w;
}

/// The stored byte count of every tile of the full-resolution image, from libtiff (tile index as
/// libtiff numbers them: plane-major for band interleave, then row, then column).
std::vector<std::uint64_t> libtiff_tile_bytes(const std::string& path) {
  TIFF* t = TIFFOpen(path.c_str(), "r");
  REQUIRE(t != nullptr);
  REQUIRE(TIFFIsTiled(t));
  const std::size_t n = TIFFNumberOfTiles(t);
  toff_t* counts = nullptr;
  REQUIRE(TIFFGetField(t, TIFFTAG_TILEBYTECOUNTS, &counts) == 1);
  std::vector<std::uint64_t> out(counts, counts + n);
  TIFFClose(t);
  return out;
}

/// GDAL's own read of band b (0-based) as floats.
std::vector<float> gdal_band(const std::string& path, std::size_t b, std::size_t height, std::size_t width) {
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  REQUIRE(ds != nullptr);
  std::vector<float> out(height * width);
  REQUIRE(GDALRasterIO(GDALGetRasterBand(ds, static_cast<int>(b + 1)), GF_Read, 0, 0, static_cast<int>(width),
                       static_cast<int>(height), out.data(), static_cast<int>(width),
                       static_cast<int>(height), GDT_Float32, 0, 0) == CE_None);
  GDALClose(ds);
  return out;
}

/// Every value of `got` equals GDAL's read where the plan keeps band and tile, `fill` elsewhere.
void check_values(const tr::tile_values& got, const tr::tiled_raster& r, const tr::tile_plan& p,
                  const std::string& path, float fill) {
  REQUIRE(got.values.size() == r.bands * r.height * r.width);
  std::size_t mismatches = 0, kept = 0;
  for (std::size_t b = 0; b < r.bands; ++b) {
    const std::vector<float> truth = gdal_band(path, b, r.height, r.width);
    for (std::size_t y = 0; y < r.height; ++y) {
      for (std::size_t x = 0; x < r.width; ++x) {
        const bool keep = p.bands[b] && p.cells[(y / r.tile_height) * r.cols() + x / r.tile_width];
        const float want = keep ? truth[y * r.width + x] : fill;
        kept += keep ? 1 : 0;
        if (got.values[(b * r.height + y) * r.width + x] != want) {
          ++mismatches;
        }
      }
    }
  }
  CHECK(kept > 0);
  CHECK(mismatches == 0);
}

struct tiff_case {
  const char* name;
  const char* driver;
  GDALDataType type;
  std::size_t bands, height, width;
  std::vector<std::string> options;
  bool pixel;           // expected interleave
  tr::tile_codec codec; // expected codec
  int predictor;        // expected predictor
  bool little_endian;
};

std::vector<tiff_case> cases() {
  return {
    {"cog_lzw_pred2_u16",
     "COG",
     GDT_UInt16,
     3,
     300,
     200,
     {"COMPRESS=LZW", "BLOCKSIZE=128", "PREDICTOR=YES"},
     true,
     tr::tile_codec::lzw,
     2,
     true},
    {"cog_deflate_f32_pred3",
     "COG",
     GDT_Float32,
     2,
     260,
     140,
     {"COMPRESS=DEFLATE", "BLOCKSIZE=128", "PREDICTOR=YES"},
     true,
     tr::tile_codec::deflate,
     3,
     true},
    {"cog_none_u8_one_band",
     "COG",
     GDT_Byte,
     1,
     200,
     300,
     {"COMPRESS=NONE", "BLOCKSIZE=128"},
     false,
     tr::tile_codec::none,
     1,
     true},
    {"band_deflate_u8",
     "GTiff",
     GDT_Byte,
     4,
     150,
     130,
     {"TILED=YES", "COMPRESS=DEFLATE", "INTERLEAVE=BAND", "BLOCKXSIZE=64", "BLOCKYSIZE=64"},
     false,
     tr::tile_codec::deflate,
     1,
     true},
    {"band_lzw_i16_big_endian",
     "GTiff",
     GDT_Int16,
     3,
     100,
     90,
     {"TILED=YES", "COMPRESS=LZW", "PREDICTOR=2", "INTERLEAVE=BAND", "BLOCKXSIZE=32", "BLOCKYSIZE=48",
      "ENDIANNESS=BIG"},
     false,
     tr::tile_codec::lzw,
     2,
     false},
    {"band_none_f64_big_endian",
     "GTiff",
     GDT_Float64,
     2,
     70,
     50,
     {"TILED=YES", "INTERLEAVE=BAND", "BLOCKXSIZE=16", "BLOCKYSIZE=32", "ENDIANNESS=BIG"},
     false,
     tr::tile_codec::none,
     1,
     false},
    {"pixel_deflate_i32",
     "GTiff",
     GDT_Int32,
     3,
     90,
     100,
     {"TILED=YES", "COMPRESS=DEFLATE", "INTERLEAVE=PIXEL", "BLOCKXSIZE=48", "BLOCKYSIZE=32"},
     true,
     tr::tile_codec::deflate,
     1,
     true},
    {"band_lzw_f32_pred3_big_endian",
     "GTiff",
     GDT_Float32,
     2,
     64,
     80,
     {"TILED=YES", "COMPRESS=LZW", "PREDICTOR=3", "INTERLEAVE=BAND", "BLOCKXSIZE=32", "BLOCKYSIZE=32",
      "ENDIANNESS=BIG"},
     false,
     tr::tile_codec::lzw,
     3,
     false},
  };
}

/// Band flags {0, 2, …} (every other band) and a checkerboard of grid positions.
std::vector<bool> some_bands(std::size_t n) {
  std::vector<bool> b(n);
  for (std::size_t i = 0; i < n; i += 2) {
    b[i] = true;
  }
  return b;
}
std::vector<bool> checkerboard(const tr::tiled_raster& r) {
  std::vector<bool> c(r.rows() * r.cols());
  for (std::size_t y = 0; y < r.rows(); ++y) {
    for (std::size_t x = 0; x < r.cols(); ++x) {
      c[y * r.cols() + x] = (x + y) % 2 == 0;
    }
  }
  return c;
}

} // namespace

TEST_CASE("read_geotiff: layout, tile bytes and values of GeoTIFFs written by GDAL", "[gdal]") {
  selmask_test::temp_dir dir;
  for (const tiff_case& c : cases()) {
    DYNAMIC_SECTION(c.name) {
      const written w = write_tiff(dir / (std::string(c.name) + ".tif"), c.driver, c.type, c.bands, c.height,
                                   c.width, c.options);
      const tr::tiled_raster r = tr::read_geotiff(w.path);
      INFO(r.description);
      CHECK(r.bands == c.bands);
      CHECK(r.height == c.height);
      CHECK(r.width == c.width);
      CHECK(r.format.codec == c.codec);
      CHECK(r.format.predictor == c.predictor);
      CHECK(r.format.little_endian == c.little_endian);
      CHECK((r.format.order == tr::tile_order::pixel_interleaved) == (c.pixel && c.bands > 1));
      CHECK(r.tile_bands == (c.pixel ? c.bands : 1));
      CHECK(r.file_bytes == std::filesystem::file_size(w.path));

      // the tile table's byte counts are libtiff's, tile for tile (same numbering)
      const std::vector<std::uint64_t> truth = libtiff_tile_bytes(w.path);
      REQUIRE(truth.size() == r.tiles.size());
      for (std::size_t i = 0; i < truth.size(); ++i) {
        CHECK(r.tiles[i].bytes == truth[i]);
      }

      // the whole raster: every value equals GDAL's read
      const tr::tile_plan all = tr::make_tile_plan(r);
      CHECK(all.payload_bytes == r.tile_bytes());
      check_values(tr::read_tiles(w.path, r, all), r, all, w.path, 0.0f);

      // a selection of bands (where bands are stored apart) and of tiles
      const std::vector<bool> bands = some_bands(r.bands);
      const std::vector<bool> cells = checkerboard(r);
      const tr::tile_plan p = tr::make_tile_plan(r, bands, cells);
      std::uint64_t expected = 0;
      for (std::size_t i = 0; i < truth.size(); ++i) {
        const tr::stored_tile& t = r.tiles[i];
        const bool band_kept = r.tile_bands == 1 ? bands[t.band_group] : true;
        if (band_kept && cells[t.row * r.cols() + t.col]) {
          expected += truth[i];
        }
      }
      CHECK(p.payload_bytes == expected);
      CHECK(p.payload_bytes < all.payload_bytes);
      check_values(tr::read_tiles(w.path, r, p, -7.0f), r, p, w.path, -7.0f);

      // measured costs: Q of the selection is its fraction of the tile bytes
      if (r.tile_bands == 1) {
        const std::vector<float> bc = r.band_costs();
        double q = 0.0;
        for (std::size_t b = 0; b < r.bands; ++b) {
          q += bands[b] ? bc[b] : 0.0;
        }
        const tr::tile_plan bp = tr::make_tile_plan(r, bands);
        CHECK(
          q / static_cast<double>(r.bands) ==
          Approx(static_cast<double>(bp.payload_bytes) / static_cast<double>(r.tile_bytes())).epsilon(1e-5));
      } else if (r.bands > 1) {
        CHECK_THROWS_AS(r.band_costs(), selmask::value_error);
      }
      const std::vector<float> tc = r.tile_costs();
      double q = 0.0;
      for (std::size_t k = 0; k < tc.size(); ++k) {
        q += cells[k] ? tc[k] : 0.0;
      }
      const tr::tile_plan cp = tr::make_tile_plan(r, {}, cells);
      CHECK(
        q / static_cast<double>(tc.size()) ==
        Approx(static_cast<double>(cp.payload_bytes) / static_cast<double>(r.tile_bytes())).epsilon(1e-5));
    }
  }
}

TEST_CASE("read_geotiff: what it cannot plan over is a clear error", "[gdal][errors]") {
  selmask_test::temp_dir dir;
  SECTION("no such file") {
    CHECK_THROWS_WITH(tr::read_geotiff((dir / "missing.tif").string()), Catch::Contains("cannot open"));
  }
  SECTION("not a TIFF") {
    std::ofstream(dir / "junk.tif") << "this is not a TIFF file at all";
    CHECK_THROWS_AS(tr::read_geotiff((dir / "junk.tif").string()), selmask::io_error);
  }
  SECTION("a compression selmask does not decode") {
    const written w = write_tiff(dir / "zstd.tif", "GTiff", GDT_Byte, 1, 64, 64,
                                 {"TILED=YES", "COMPRESS=ZSTD", "BLOCKXSIZE=32", "BLOCKYSIZE=32"});
    CHECK_THROWS_WITH(tr::read_geotiff(w.path), Catch::Contains("compression ZSTD"));
  }
  SECTION("a striped TIFF with a short last strip") {
    const written w = write_tiff(dir / "strips.tif", "GTiff", GDT_Byte, 1, 101, 64, {"BLOCKYSIZE=10"});
    CHECK_THROWS_WITH(tr::read_geotiff(w.path), Catch::Contains("striped"));
  }
  SECTION("a corrupt tile is an io_error when it is decoded, never a crash") {
    for (const char* compress : {"COMPRESS=DEFLATE", "COMPRESS=LZW"}) {
      const written w = write_tiff(dir / "corrupt.tif", "GTiff", GDT_UInt16, 1, 64, 64,
                                   {"TILED=YES", compress, "BLOCKXSIZE=32", "BLOCKYSIZE=32"});
      const tr::tiled_raster r = tr::read_geotiff(w.path);
      {
        std::fstream f(w.path, std::ios::in | std::ios::out | std::ios::binary);
        const tr::stored_tile& t = r.tiles[1];
        f.seekp(static_cast<std::streamoff>(t.offset + t.bytes / 3));
        const std::string garbage(static_cast<std::size_t>(t.bytes / 2), '\xA5');
        f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
      }
      std::vector<bool> cells(r.rows() * r.cols(), false);
      cells[1] = true;
      CHECK_THROWS_AS(tr::read_tiles(w.path, r, tr::make_tile_plan(r, {}, cells)), selmask::io_error);
      // a truncated stream: the tile's first half only
      const tr::stored_tile& t = r.tiles[2];
      std::vector<std::byte> half(static_cast<std::size_t>(t.bytes / 2));
      std::ifstream in(w.path, std::ios::binary);
      in.seekg(static_cast<std::streamoff>(t.offset));
      in.read(reinterpret_cast<char*>(half.data()), static_cast<std::streamsize>(half.size()));
      CHECK_THROWS_WITH(tr::decode_tile(r, half), Catch::Contains("truncated") || Catch::Contains("corrupt"));
    }
  }
  SECTION("a tile table that points past the end of the file") {
    const written w = write_tiff(dir / "short.tif", "GTiff", GDT_Byte, 1, 64, 64,
                                 {"TILED=YES", "BLOCKXSIZE=32", "BLOCKYSIZE=32"});
    tr::tiled_raster r = tr::read_geotiff(w.path);
    r.file_bytes = r.tiles.back().offset + r.tiles.back().bytes - 1; // as if the file were cut short
    CHECK_THROWS_WITH(tr::make_tile_plan(r), Catch::Contains("outside the file"));
  }
  SECTION("selections of the wrong size and masks that are not the raster's bands or tiles") {
    const written w = write_tiff(dir / "ok.tif", "GTiff", GDT_Byte, 3, 64, 64,
                                 {"TILED=YES", "INTERLEAVE=BAND", "BLOCKXSIZE=32", "BLOCKYSIZE=32"});
    const tr::tiled_raster r = tr::read_geotiff(w.path);
    CHECK_THROWS_AS(tr::make_tile_plan(r, std::vector<bool>(2, true)), selmask::shape_error);
    CHECK_THROWS_AS(tr::make_tile_plan(r, {}, std::vector<bool>(3, true)), selmask::shape_error);
    const auto channel = selmask::make_geometry<selmask::channel>(1, 4, 64, 64, true);
    CHECK_THROWS_AS(tr::bands_of({channel, std::vector<float>(4, 1.0f)}, r), selmask::shape_error);
  }
}

TEST_CASE("masks to tile plans: a channel mask keeps bands, a tile-aligned block mask keeps tiles",
          "[gdal]") {
  selmask_test::temp_dir dir;
  const written w =
    write_tiff(dir / "scene.tif", "GTiff", GDT_UInt16, 4, 96, 64,
               {"TILED=YES", "COMPRESS=DEFLATE", "INTERLEAVE=BAND", "BLOCKXSIZE=32", "BLOCKYSIZE=32"});
  const tr::tiled_raster r = tr::read_geotiff(w.path);
  const auto channel = selmask::make_geometry<selmask::channel>(1, 4, 96, 64, true);
  const std::vector<bool> bands = tr::bands_of({channel, {0, 1, 1, 0}}, r);
  CHECK(bands == std::vector<bool>{false, true, true, false});
  const auto block =
    selmask::make_geometry<selmask::block<32, 32, selmask::all_channels>>(1, 4, 96, 64, true);
  std::vector<float> cells(6, 0.0f);
  cells[0] = cells[5] = 1.0f;
  const std::vector<bool> kept = tr::cells_of({block, cells}, r);
  CHECK(kept == std::vector<bool>{true, false, false, false, false, true});
  const tr::tile_plan p = tr::make_tile_plan(r, bands, kept);
  CHECK(p.tiles.size() == 4); // 2 bands × 2 positions
  check_values(tr::read_tiles(w.path, r, p), r, p, w.path, 0.0f);
  const auto small_block =
    selmask::make_geometry<selmask::block<16, 16, selmask::all_channels>>(1, 4, 96, 64, true);
  CHECK_THROWS_WITH(tr::cells_of({small_block, std::vector<float>(24, 1.0f)}, r),
                    Catch::Contains("tiles of 32x32"));
}

TEST_CASE("tile plans over HTTP: nginx serves the file, the client fetches only the selected tiles",
          "[gdal][nginx]") {
  selmask_test::temp_dir dir;
  const written w = write_tiff(
    dir / "scene.tif", "GTiff", GDT_UInt16, 6, 200, 160,
    {"TILED=YES", "COMPRESS=DEFLATE", "PREDICTOR=2", "INTERLEAVE=BAND", "BLOCKXSIZE=64", "BLOCKYSIZE=64"});
  const written cog =
    write_tiff(dir / "cog.tif", "COG", GDT_Byte, 3, 300, 260, {"COMPRESS=LZW", "BLOCKSIZE=128"});
  selmask::testing::nginx_server server(dir.path);
  tr::http_client client;
  for (const written* f : {&w, &cog}) {
    const std::string name = std::filesystem::path(f->path).filename().string();
    const std::string url = server.url("/" + name);
    const tr::tiled_raster r = tr::read_geotiff(f->path);
    INFO(name << ": " << r.description);
    const tr::tile_plan p = tr::make_tile_plan(r, some_bands(r.bands), checkerboard(r));
    const tr::tile_values got = tr::fetch_tiles(client, url, r, p, 0.0f);
    check_values(got, r, p, f->path, 0.0f);
    CHECK(got.wire.range_bytes == p.payload_bytes);
    CHECK(got.wire.total() > p.payload_bytes); // framing and headers on top
    CHECK(got.wire.requests >= 1);
    CHECK(got.wire.body_bytes < r.file_bytes);

    // GDAL's own HTTP reader (/vsicurl/) reads the same tile table from the server
    CPLSetConfigOption("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR");
    const tr::tiled_raster remote = tr::read_geotiff("/vsicurl/" + url);
    CPLSetConfigOption("GDAL_DISABLE_READDIR_ON_OPEN", nullptr);
    REQUIRE(remote.tiles.size() == r.tiles.size());
    for (std::size_t i = 0; i < r.tiles.size(); ++i) {
      CHECK(remote.tiles[i].offset == r.tiles[i].offset);
      CHECK(remote.tiles[i].bytes == r.tiles[i].bytes);
    }
    CHECK(remote.file_bytes == r.file_bytes);
    CHECK(remote.format.codec == r.format.codec);
  }
}
