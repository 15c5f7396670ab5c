// Chunked HDF5 datasets (transfer/hdf5.hpp). The datasets are written here with the HDF5 C API:
// uint8, int16, uint16, int32, float32 and float64 values in either byte order; chunks of one band
// with edge chunks, and chunks of two bands; no filter, deflate, shuffle + deflate and shuffle
// alone; a dataset with chunks never written; a file with a user block; chunks written raw into a
// deflate dataset. For each: the tile table equals what HDF5's own chunk query reports (asked here
// by coordinate, not by index as the library does), a plan's payload is the sum of its chunks'
// sizes, and the decoded values equal HDF5's read (H5Dread into floats) at every kept band and
// position, the fill value elsewhere. The same plans fetched over HTTP from a private nginx on
// 127.0.0.1 (label nginx), with the bytes on the wire; and the errors.
#include <selmask/transfer/hdf5.hpp>
#if SELMASK_TEST_HTTP
#include "nginx_server.hpp"
#include "temp_dir.hpp"
#include <selmask/transfer/http.hpp>
#endif

#include <catch2/catch.hpp>

#include <hdf5.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include <unistd.h>

using Catch::Contains;
namespace tr = selmask::transfer;
namespace fs = std::filesystem;

namespace {

/// The test's own HDF5 handle, closed at the end of its scope.
class h5 {
public:
  h5(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) { REQUIRE(id >= 0); }
  ~h5() {
    if (id_ >= 0) {
      close_(id_);
    }
  }
  h5(const h5&) = delete;
  h5& operator=(const h5&) = delete;
  operator hid_t() const noexcept { return id_; }

private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

enum class filters { none, deflate, shuffle_deflate, shuffle, deflate_shuffle, fletcher32 };

/// A dataset to write: name, file type, extents and chunk extents (none: contiguous), filters,
/// and the rows of every band actually written (0: all).
struct dataset_spec {
  std::string name;
  hid_t type = -1;
  std::vector<hsize_t> dims, chunk;
  filters filter = filters::none;
  hsize_t written_rows = 0;
};

/// The value at index i of (b, h, w): integral for integer types, quarters for floats; varied
/// enough that deflate does not make every chunk the same size.
double value_of(hid_t type, std::size_t b, std::size_t h, std::size_t w) {
  const std::size_t k = b * 31 + h * 7 + w * 3 + (h * w) % 11 + ((b + 1) * h * w * 2654435761U) % 17;
  const std::size_t size = H5Tget_size(type);
  if (H5Tget_class(type) == H5T_FLOAT) {
    return static_cast<double>(k) * 0.25 - 40.0;
  }
  if (H5Tget_sign(type) == H5T_SGN_2) {
    return static_cast<double>(k % 2000) - 1000.0;
  }
  return static_cast<double>(size == 1 ? k % 256 : k * 13 % 60000);
}

void set_filters(hid_t dcpl, filters f) {
  switch (f) {
    case filters::none:
      break;
    case filters::deflate:
      REQUIRE(H5Pset_deflate(dcpl, 6) >= 0);
      break;
    case filters::shuffle_deflate:
      REQUIRE(H5Pset_shuffle(dcpl) >= 0);
      REQUIRE(H5Pset_deflate(dcpl, 6) >= 0);
      break;
    case filters::shuffle:
      REQUIRE(H5Pset_shuffle(dcpl) >= 0);
      break;
    case filters::deflate_shuffle:
      REQUIRE(H5Pset_deflate(dcpl, 6) >= 0);
      REQUIRE(H5Pset_shuffle(dcpl) >= 0);
      break;
    case filters::fletcher32:
      REQUIRE(H5Pset_fletcher32(dcpl) >= 0);
      break;
  }
}

/// Writes `d` into `file` (values from `value_of`; rank 2 has band 0 only).
void write_dataset(hid_t file, const dataset_spec& d, hid_t dcpl_in = H5P_DEFAULT) {
  const int rank = static_cast<int>(d.dims.size());
  h5 space(H5Screate_simple(rank, d.dims.data(), nullptr), H5Sclose);
  h5 dcpl(dcpl_in == H5P_DEFAULT ? H5Pcreate(H5P_DATASET_CREATE) : H5Pcopy(dcpl_in), H5Pclose);
  if (!d.chunk.empty()) {
    REQUIRE(H5Pset_chunk(dcpl, rank, d.chunk.data()) >= 0);
  }
  set_filters(dcpl, d.filter);
  h5 lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  REQUIRE(H5Pset_create_intermediate_group(lcpl, 1) >= 0);
  h5 dset(H5Dcreate2(file, d.name.c_str(), d.type, space, lcpl, dcpl, H5P_DEFAULT), H5Dclose);
  std::vector<hsize_t> count = d.dims;
  // rows: the second-last axis (a rank-1 dataset is one row)
  const std::size_t row_axis = rank >= 2 ? static_cast<std::size_t>(rank) - 2 : 0;
  if (d.written_rows != 0) {
    REQUIRE(rank >= 2);
    count[row_axis] = d.written_rows;
  }
  const std::size_t n = std::accumulate(count.begin(), count.end(), std::size_t{1}, std::multiplies<>());
  std::vector<double> v(n);
  const std::size_t hn = rank >= 2 ? static_cast<std::size_t>(count[row_axis]) : 1,
                    wn = static_cast<std::size_t>(count.back());
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = value_of(d.type, i / (hn * wn), i / wn % hn, i % wn);
  }
  h5 memory(H5Screate_simple(rank, count.data(), nullptr), H5Sclose);
  const std::vector<hsize_t> start(count.size(), 0);
  REQUIRE(H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) >= 0);
  REQUIRE(H5Dwrite(dset, H5T_NATIVE_DOUBLE, memory, space, H5P_DEFAULT, v.data()) >= 0);
}

/// HDF5's own view of a dataset of rank 2 or 3: its values as floats (H5Dread) and every chunk's
/// stored size (H5Dget_chunk_info_by_coord; 0 for a chunk never written), indexed like the
/// raster's tiles (band group, row, column).
struct reference {
  std::size_t bands = 1, height = 0, width = 0, cb = 1, th = 0, tw = 0;
  std::vector<float> values;
  std::vector<std::uint64_t> sizes;
  [[nodiscard]] std::size_t groups() const { return (bands + cb - 1) / cb; }
  [[nodiscard]] std::size_t rows() const { return (height + th - 1) / th; }
  [[nodiscard]] std::size_t cols() const { return (width + tw - 1) / tw; }
  [[nodiscard]] std::size_t chunk_of(std::size_t b, std::size_t h, std::size_t w) const {
    return (b / cb * rows() + h / th) * cols() + w / tw;
  }
};

reference read_reference(const std::string& path, const std::string& name) {
  h5 file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  h5 dset(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  h5 space(H5Dget_space(dset), H5Sclose);
  h5 dcpl(H5Dget_create_plist(dset), H5Pclose);
  const int rank = H5Sget_simple_extent_ndims(space);
  REQUIRE((rank == 2 || rank == 3));
  std::vector<hsize_t> dims(3, 1), chunk(3, 1);
  const std::size_t skip = rank == 2 ? 1 : 0;
  REQUIRE(H5Sget_simple_extent_dims(space, dims.data() + skip, nullptr) == rank);
  REQUIRE(H5Pget_chunk(dcpl, rank, chunk.data() + skip) == rank);
  reference r;
  r.bands = static_cast<std::size_t>(dims[0]);
  r.height = static_cast<std::size_t>(dims[1]);
  r.width = static_cast<std::size_t>(dims[2]);
  r.cb = static_cast<std::size_t>(chunk[0]);
  r.th = static_cast<std::size_t>(chunk[1]);
  r.tw = static_cast<std::size_t>(chunk[2]);
  r.values.resize(r.bands * r.height * r.width);
  REQUIRE(H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, r.values.data()) >= 0);
  r.sizes.assign(r.groups() * r.rows() * r.cols(), 0);
  for (std::size_t g = 0; g < r.groups(); ++g)
    for (std::size_t y = 0; y < r.rows(); ++y)
      for (std::size_t x = 0; x < r.cols(); ++x) {
        const std::vector<hsize_t> at3{g * r.cb, y * r.th, x * r.tw};
        unsigned mask = 0;
        haddr_t addr = 0;
        hsize_t size = 0;
        REQUIRE(H5Dget_chunk_info_by_coord(dset, at3.data() + skip, &mask, &addr, &size) >= 0);
        r.sizes[(g * r.rows() + y) * r.cols() + x] =
          addr == HADDR_UNDEF ? 0 : static_cast<std::uint64_t>(size);
      }
  return r;
}

/// The plan of `bands` and `cells` (empty: all) over `r`: its payload must be the sum of the
/// sizes HDF5 reports for the chunks that hold a kept band at a kept position, and the values
/// read from the file must be HDF5's at every kept band and position of a stored chunk, `fill`
/// everywhere else. Returns the plan and what was read.
std::pair<tr::tile_plan, tr::tile_values> check_plan(const std::string& path, const tr::tiled_raster& r,
                                                     const reference& ref, std::vector<bool> bands,
                                                     std::vector<bool> cells, float fill) {
  tr::tile_plan plan = tr::make_tile_plan(r, bands, cells);
  if (bands.empty()) {
    bands.assign(ref.bands, true);
  }
  if (cells.empty()) {
    cells.assign(ref.rows() * ref.cols(), true);
  }
  std::uint64_t payload = 0;
  std::size_t chunks = 0;
  for (std::size_t g = 0; g < ref.groups(); ++g) {
    bool any = false;
    for (std::size_t b = g * ref.cb; b < std::min(ref.bands, (g + 1) * ref.cb); ++b) {
      any = any || bands[b];
    }
    for (std::size_t k = 0; any && k < cells.size(); ++k) {
      const std::uint64_t s = ref.sizes[g * cells.size() + k];
      if (cells[k] && s != 0) {
        payload += s;
        ++chunks;
      }
    }
  }
  REQUIRE(plan.payload_bytes == payload);
  REQUIRE(plan.tiles.size() == chunks);
  REQUIRE(plan.ranges.size() <= chunks);
  tr::tile_values got = tr::read_tiles(path, r, plan, fill);
  REQUIRE(got.bands == ref.bands);
  REQUIRE(got.height == ref.height);
  REQUIRE(got.width == ref.width);
  REQUIRE(got.values.size() == ref.values.size());
  std::size_t wrong = 0, kept = 0;
  std::string first;
  for (std::size_t b = 0; b < ref.bands; ++b)
    for (std::size_t h = 0; h < ref.height; ++h)
      for (std::size_t w = 0; w < ref.width; ++w) {
        const std::size_t i = (b * ref.height + h) * ref.width + w;
        const bool keep = bands[b] && cells[h / ref.th * ref.cols() + w / ref.tw];
        const bool stored = ref.sizes[ref.chunk_of(b, h, w)] != 0;
        const float expected = keep && stored ? ref.values[i] : fill;
        kept += keep && stored ? 1 : 0;
        if (got.values[i] != expected) {
          if (wrong++ == 0) {
            first = "(" + std::to_string(b) + "," + std::to_string(h) + "," + std::to_string(w) + "): got " +
                    std::to_string(got.values[i]) + ", expected " + std::to_string(expected);
          }
        }
      }
  INFO("first wrong value at " << first);
  CHECK(wrong == 0);
  CHECK((kept > 0) == (payload > 0));
  return {std::move(plan), std::move(got)};
}

/// The datasets of "rasters.h5" (created after HDF5 is initialised: the type ids are run-time).
std::vector<dataset_spec> raster_specs() {
  const std::vector<hsize_t> d3{3, 50, 70};
  return {
    {"u8_plain", H5T_STD_U8LE, d3, {1, 16, 16}, filters::none, 0},
    {"u16_deflate", H5T_STD_U16LE, d3, {1, 32, 24}, filters::deflate, 0},
    {"f32_shuffle_deflate", H5T_IEEE_F32LE, d3, {1, 16, 16}, filters::shuffle_deflate, 0},
    {"u16_two_bands", H5T_STD_U16LE, d3, {2, 16, 16}, filters::shuffle_deflate, 0},
    {"i16be_shuffle", H5T_STD_I16BE, d3, {1, 32, 24}, filters::shuffle, 0},
    {"f64be_shuffle_deflate", H5T_IEEE_F64BE, d3, {1, 16, 16}, filters::shuffle_deflate, 0},
    {"f32_sparse", H5T_IEEE_F32LE, d3, {1, 16, 16}, filters::deflate, 32}, // rows 32..49 never written
    {"group/i32_2d", H5T_STD_I32LE, {50, 70}, {16, 16}, filters::deflate, 0},
  };
}

/// Writes every dataset of `raster_specs` into `path`.
void write_rasters(const std::string& path) {
  h5 file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  for (const dataset_spec& d : raster_specs()) {
    write_dataset(file, d);
  }
}

/// Bands {0, 2} of three (band 0 of one).
std::vector<bool> two_bands(const tr::tiled_raster& r) {
  return r.bands == 1 ? std::vector<bool>{true} : std::vector<bool>{true, false, true};
}

/// About two thirds of the grid positions.
std::vector<bool> some_cells(const tr::tiled_raster& r) {
  std::vector<bool> c(r.rows() * r.cols());
  for (std::size_t k = 0; k < c.size(); ++k) {
    c[k] = k % 3 != 1;
  }
  return c;
}

void check_table(const std::string& path, const tr::tiled_raster& r, const reference& ref,
                 const dataset_spec& d) {
  CHECK(r.bands == ref.bands);
  CHECK(r.height == ref.height);
  CHECK(r.width == ref.width);
  CHECK(r.tile_bands == ref.cb);
  CHECK(r.tile_height == ref.th);
  CHECK(r.tile_width == ref.tw);
  CHECK(r.format.order == tr::tile_order::band_sequential);
  CHECK(r.format.little_endian == (H5Tget_order(d.type) == H5T_ORDER_LE));
  const bool deflated = d.filter == filters::deflate || d.filter == filters::shuffle_deflate;
  CHECK(r.format.codec == (deflated ? tr::tile_codec::deflate : tr::tile_codec::none));
  CHECK(r.format.shuffle == (d.filter == filters::shuffle || d.filter == filters::shuffle_deflate));
  CHECK(r.format.predictor == 1);
  CHECK(tr::dtype_size(r.format.type) == H5Tget_size(d.type));
  CHECK(r.file_bytes == fs::file_size(path));
  REQUIRE(r.tiles.size() == ref.sizes.size());
  for (std::size_t i = 0; i < r.tiles.size(); ++i) {
    INFO("tile " << i);
    CHECK(r.tiles[i].bytes == ref.sizes[i]);
  }
  CHECK(r.tile_bytes() == std::accumulate(ref.sizes.begin(), ref.sizes.end(), std::uint64_t{0}));
  CHECK_THAT(r.description, Contains("HDF5 dataset " + d.name));
  const std::string chunks =
    std::to_string(ref.cb) + "x" + std::to_string(ref.th) + "x" + std::to_string(ref.tw);
  CHECK_THAT(r.description, Contains("chunks " + chunks));
}

} // namespace

TEST_CASE("hdf5: tile tables are HDF5's chunks; plans read the selected chunks, values equal H5Dread's",
          "[hdf5]") {
  selmask_test::temp_dir dir;
  const std::string path = (dir / "rasters.h5").string();
  write_rasters(path);
  const float fill = -7.5f;
  for (const dataset_spec& d : raster_specs()) {
    INFO("dataset " << d.name);
    const tr::tiled_raster r = tr::read_hdf5_chunks(path, d.name);
    const reference ref = read_reference(path, d.name);
    check_table(path, r, ref, d);
    const std::vector<bool> one_band =
      r.bands == 1 ? std::vector<bool>{true} : std::vector<bool>{false, true, false};
    check_plan(path, r, ref, {}, {}, fill);
    check_plan(path, r, ref, two_bands(r), {}, fill);
    check_plan(path, r, ref, two_bands(r), some_cells(r), fill);
    check_plan(path, r, ref, one_band, some_cells(r), fill);
    const auto none = check_plan(path, r, ref, std::vector<bool>(r.bands, false), {}, fill);
    CHECK(none.first.payload_bytes == 0);
    CHECK(none.first.ranges.empty());
    if (r.tile_bands == 1) {
      const std::vector<float> costs = r.band_costs();
      REQUIRE(costs.size() == r.bands);
      CHECK(std::accumulate(costs.begin(), costs.end(), 0.0) == Approx(static_cast<double>(r.bands)));
    } else {
      CHECK_THROWS_AS(r.band_costs(), selmask::value_error);
    }
  }
}

TEST_CASE("hdf5: the tables in numbers (sizes by hand, not only HDF5's)", "[hdf5]") {
  selmask_test::temp_dir dir;
  const std::string path = (dir / "rasters.h5").string();
  write_rasters(path);

  // 3x50x70 uint8 in 1x16x16 chunks, no filter: 3 x 4 x 5 chunks of 256 bytes, edge chunks too
  const tr::tiled_raster plain = tr::read_hdf5_chunks(path, "u8_plain");
  CHECK(plain.tiles.size() == 60);
  CHECK(plain.tile_bytes() == 60 * 256);
  CHECK(plain.format.type == tr::dtype::uint8);
  CHECK(tr::make_tile_plan(plain, {true, false, true}).payload_bytes == 2 * 20 * 256);
  CHECK_THAT(plain.description, Contains("no filters"));

  // 1x32x24 chunks over 50x70: 2 x 3 per band; 2x16x16 chunks: 2 band groups (bands 0-1, band 2)
  const tr::tiled_raster u16 = tr::read_hdf5_chunks(path, "u16_deflate");
  CHECK(u16.tiles.size() == 3 * 2 * 3);
  CHECK(u16.format.type == tr::dtype::uint16);
  CHECK_THAT(u16.description, Contains("deflate"));
  const tr::tiled_raster two = tr::read_hdf5_chunks(path, "u16_two_bands");
  CHECK(two.band_groups() == 2);
  CHECK(two.tiles.size() == 2 * 4 * 5);
  CHECK_THAT(two.description, Contains("shuffle+deflate"));
  // band 1 alone reads band group 0 (bands 0 and 1), band 2 alone group 1
  const tr::tile_plan p1 = tr::make_tile_plan(two, {false, true, false});
  CHECK(p1.tiles.size() == 20);
  for (std::size_t i : p1.tiles) {
    CHECK(two.tiles[i].band_group == 0);
  }

  const tr::tiled_raster be = tr::read_hdf5_chunks(path, "i16be_shuffle");
  CHECK(be.format.type == tr::dtype::int16);
  CHECK_FALSE(be.format.little_endian);
  CHECK(be.tile_bytes() == 3 * 2 * 3 * 32 * 24 * 2); // shuffle alone does not compress
  CHECK(tr::read_hdf5_chunks(path, "f64be_shuffle_deflate").format.type == tr::dtype::float64);

  // rows 32..49 never written: chunk rows 2 and 3 (of 4) are not stored
  const tr::tiled_raster sparse = tr::read_hdf5_chunks(path, "f32_sparse");
  std::size_t stored = 0;
  for (const tr::stored_tile& t : sparse.tiles) {
    CHECK((t.bytes != 0) == (t.row < 2));
    stored += t.bytes != 0 ? 1 : 0;
  }
  CHECK(stored == 3 * 2 * 5);
  CHECK_THAT(sparse.description, Contains("30 of 60 chunks stored"));
  // with fill 0 (HDF5's default fill value) the whole tensor is H5Dread's
  const reference ref = read_reference(path, "f32_sparse");
  CHECK(tr::read_tiles(path, sparse, tr::make_tile_plan(sparse)).values == ref.values);
  CHECK(ref.values[(0 * 50 + 40) * 70 + 3] == 0.0f);

  // rank 2: one band
  const tr::tiled_raster flat = tr::read_hdf5_chunks(path, "group/i32_2d");
  CHECK(flat.bands == 1);
  CHECK(flat.format.type == tr::dtype::int32);
  CHECK(flat.tiles.size() == 4 * 5);
}

TEST_CASE("hdf5: a user block, chunks written raw into a deflate dataset, partial edge chunks unfiltered",
          "[hdf5]") {
  selmask_test::temp_dir dir;
  const float fill = 3.25f;

  SECTION("a user block of 512 bytes: offsets are file offsets") {
    const std::string path = (dir / "userblock.h5").string();
    {
      h5 fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
      REQUIRE(H5Pset_userblock(fcpl, 512) >= 0);
      h5 file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl, H5P_DEFAULT), H5Fclose);
      write_dataset(file, {"x", H5T_STD_U16LE, {2, 40, 40}, {1, 16, 16}, filters::shuffle_deflate, 0});
    }
    const tr::tiled_raster r = tr::read_hdf5_chunks(path, "x");
    const reference ref = read_reference(path, "x");
    for (const tr::stored_tile& t : r.tiles) {
      CHECK(t.offset >= 512);
    }
    check_plan(path, r, ref, {}, {}, fill);
    check_plan(path, r, ref, {false, true}, {true, false, false, true, true, false, false, true, true}, fill);
  }

  SECTION(
    "a user-defined fill value: named in the description; chunks never written read as the caller's fill") {
    const std::string path = (dir / "fill.h5").string();
    {
      h5 file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
      h5 dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
      const float seven = 7.0f;
      REQUIRE(H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &seven) >= 0);
      write_dataset(file, {"x", H5T_IEEE_F32LE, {2, 40, 40}, {1, 16, 16}, filters::deflate, 20}, dcpl);
    }
    const tr::tiled_raster r = tr::read_hdf5_chunks(path, "x");
    CHECK_THAT(r.description, Contains("fill value 7") && Contains("12 of 18 chunks stored"));
    const reference ref = read_reference(path, "x");
    CHECK(ref.values[(1 * 40 + 39) * 40 + 39] == 7.0f);
    CHECK(tr::read_tiles(path, r, tr::make_tile_plan(r), 7.0f).values == ref.values);
  }

  // a 1x32x32 uint8 dataset with deflate in its pipeline, 16x16 chunks written with H5Dwrite_chunk
  const auto write_raw_chunks = [](const std::string& path, bool all_raw) {
    h5 file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    const std::vector<hsize_t> dims{1, 32, 32}, chunk{1, 16, 16};
    h5 space(H5Screate_simple(3, dims.data(), nullptr), H5Sclose);
    h5 dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    REQUIRE(H5Pset_chunk(dcpl, 3, chunk.data()) >= 0);
    REQUIRE(H5Pset_deflate(dcpl, 6) >= 0);
    h5 dset(H5Dcreate2(file, "x", H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), H5Dclose);
    for (hsize_t y = 0; y < 32; y += 16)
      for (hsize_t x = 0; x < 32; x += 16) {
        std::vector<unsigned char> raw(256);
        for (std::size_t i = 0; i < raw.size(); ++i) {
          raw[i] = static_cast<unsigned char>((y * 3 + x * 5 + i) % 251);
        }
        const std::vector<hsize_t> at{0, y, x};
        if (all_raw || x == 16) { // filter 0 (deflate) skipped: the chunk is stored as is
          REQUIRE(H5Dwrite_chunk(dset, H5P_DEFAULT, 1, at.data(), raw.size(), raw.data()) >= 0);
        } else {
          h5 mem(H5Screate_simple(3, chunk.data(), nullptr), H5Sclose);
          h5 fsel(H5Scopy(space), H5Sclose);
          REQUIRE(H5Sselect_hyperslab(fsel, H5S_SELECT_SET, at.data(), nullptr, chunk.data(), nullptr) >= 0);
          REQUIRE(H5Dwrite(dset, H5T_NATIVE_UCHAR, mem, fsel, H5P_DEFAULT, raw.data()) >= 0);
        }
      }
  };
  SECTION("every chunk skipped deflate: read as uncompressed") {
    const std::string path = (dir / "raw.h5").string();
    write_raw_chunks(path, true);
    const tr::tiled_raster r = tr::read_hdf5_chunks(path, "x");
    CHECK(r.format.codec == tr::tile_codec::none);
    CHECK(r.tile_bytes() == 4 * 256);
    check_plan(path, r, read_reference(path, "x"), {}, {true, false, true, true}, fill);
  }
  SECTION("some chunks skipped deflate, others not: an error") {
    const std::string path = (dir / "mixed.h5").string();
    write_raw_chunks(path, false);
    CHECK_THROWS_WITH(tr::read_hdf5_chunks(path, "x"), Contains("filter mask") && Contains("h5repack"));
    CHECK_THROWS_AS(tr::read_hdf5_chunks(path, "x"), selmask::value_error);
  }

  SECTION("partial edge chunks stored unfiltered: an error where there are any") {
    const std::string path = (dir / "partial.h5").string();
    {
      h5 fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
      REQUIRE(H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) >= 0);
      h5 file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), H5Fclose);
      h5 dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
      const std::vector<hsize_t> chunk{1, 16, 16};
      REQUIRE(H5Pset_chunk(dcpl, 3, chunk.data()) >= 0); // the option needs a chunked layout
      REQUIRE(H5Pset_chunk_opts(dcpl, H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS) >= 0);
      // no chunk extents in the spec: H5Pset_chunk again would clear the option
      write_dataset(file, {"edges", H5T_STD_U8LE, {1, 40, 40}, {}, filters::deflate, 0}, dcpl);
      write_dataset(file, {"whole", H5T_STD_U8LE, {1, 32, 32}, {}, filters::deflate, 0}, dcpl);
    }
    CHECK_THROWS_WITH(tr::read_hdf5_chunks(path, "edges"), Contains("H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS"));
    CHECK_THROWS_AS(tr::read_hdf5_chunks(path, "edges"), selmask::value_error);
    const tr::tiled_raster r = tr::read_hdf5_chunks(path, "whole"); // no partial chunk: fine
    check_plan(path, r, read_reference(path, "whole"), {}, {}, fill);
  }
}

TEST_CASE("hdf5: errors name the file, the dataset and what to do", "[hdf5]") {
  selmask_test::temp_dir dir;
  const std::string path = (dir / "bad.h5").string();
  {
    h5 file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    write_dataset(file, {"contiguous", H5T_STD_U8LE, {2, 20, 20}, {}, filters::none, 0});
    h5 dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    REQUIRE(H5Pset_layout(dcpl, H5D_COMPACT) >= 0);
    write_dataset(file, {"compact", H5T_STD_U8LE, {2, 8, 8}, {}, filters::none, 0}, dcpl);
    write_dataset(file, {"rank4", H5T_STD_U8LE, {2, 2, 8, 8}, {1, 1, 4, 4}, filters::none, 0});
    write_dataset(file, {"rank1", H5T_STD_U8LE, {64}, {16}, filters::none, 0});
    write_dataset(file, {"fletcher", H5T_STD_U16LE, {2, 20, 20}, {1, 8, 8}, filters::fletcher32, 0});
    write_dataset(
      file, {"deflate_then_shuffle", H5T_STD_U16LE, {2, 20, 20}, {1, 8, 8}, filters::deflate_shuffle, 0});
    write_dataset(file, {"int64", H5T_STD_I64LE, {2, 20, 20}, {1, 8, 8}, filters::none, 0});
    write_dataset(file, {"good", H5T_STD_U16LE, {3, 20, 20}, {1, 8, 8}, filters::deflate, 0});
  }
  using selmask::io_error;
  using selmask::shape_error;
  using selmask::value_error;

  // HDF5's automatic error printing is restored after a failure
  H5E_auto2_t before = nullptr;
  void* before_data = nullptr;
  REQUIRE(H5Eget_auto2(H5E_DEFAULT, &before, &before_data) >= 0);

  const std::string missing = (dir / "missing.h5").string();
  CHECK_THROWS_AS(tr::read_hdf5_chunks(missing, "x"), io_error);
  CHECK_THROWS_WITH(tr::read_hdf5_chunks(missing, "x"), Contains(missing));
  const std::string text = (dir / "text.h5").string();
  std::ofstream(text) << "not an HDF5 file\n";
  CHECK_THROWS_AS(tr::read_hdf5_chunks(text, "x"), io_error);
  CHECK_THROWS_WITH(tr::read_hdf5_chunks(text, "x"), Contains(text) && Contains("cannot open the file"));
  CHECK_THROWS_AS(tr::read_hdf5_chunks(path, "nope"), io_error);
  CHECK_THROWS_WITH(tr::read_hdf5_chunks(path, "nope"), Contains(path) && Contains("dataset nope"));
  CHECK_THROWS_WITH(tr::read_hdf5_chunks(path, "no/such/x"), Contains("cannot open the dataset"));

  CHECK_THROWS_AS(tr::read_hdf5_chunks(path, "contiguous"), value_error);
  CHECK_THROWS_WITH(tr::read_hdf5_chunks(path, "contiguous"),
                    Contains("contiguous") && Contains("h5repack -l contiguous:CHUNK="));
  CHECK_THROWS_WITH(tr::read_hdf5_chunks(path, "compact"), Contains("compact") && Contains("rechunk"));
  CHECK_THROWS_AS(tr::read_hdf5_chunks(path, "rank4"), shape_error);
  CHECK_THROWS_WITH(tr::read_hdf5_chunks(path, "rank4"),
                    Contains("rank 4") && Contains("bands x height x width"));
  CHECK_THROWS_AS(tr::read_hdf5_chunks(path, "rank1"), shape_error);
  CHECK_THROWS_AS(tr::read_hdf5_chunks(path, "fletcher"), value_error);
  CHECK_THROWS_WITH(tr::read_hdf5_chunks(path, "fletcher"),
                    Contains("fletcher32") && Contains("not supported"));
  CHECK_THROWS_AS(tr::read_hdf5_chunks(path, "deflate_then_shuffle"), value_error);
  CHECK_THROWS_WITH(tr::read_hdf5_chunks(path, "deflate_then_shuffle"),
                    Contains("shuffle") && Contains("after"));
  CHECK_THROWS_AS(tr::read_hdf5_chunks(path, "int64"), value_error);
  CHECK_THROWS_WITH(tr::read_hdf5_chunks(path, "int64"), Contains("64-bit signed integers"));

  H5E_auto2_t after = nullptr;
  void* after_data = nullptr;
  REQUIRE(H5Eget_auto2(H5E_DEFAULT, &after, &after_data) >= 0);
  CHECK(after == before);
  CHECK(after_data == before_data);

  // flag vectors of the wrong length
  const tr::tiled_raster good = tr::read_hdf5_chunks(path, "good");
  CHECK_THROWS_AS(tr::make_tile_plan(good, {true, false}), shape_error);
  CHECK_THROWS_AS(tr::make_tile_plan(good, {true, false, true, true}), shape_error);
  CHECK_THROWS_AS(tr::make_tile_plan(good, {}, std::vector<bool>(good.rows() * good.cols() + 1, true)),
                  shape_error);

  // a corrupt chunk in a copy of the file: the table still reads, the chunk's decoding is an io_error
  const std::string corrupt = (dir / "corrupt.h5").string();
  fs::copy_file(path, corrupt);
  const tr::tiled_raster r = tr::read_hdf5_chunks(corrupt, "good");
  const tr::stored_tile& middle = r.tiles[r.tile_index(1, 1, 1)];
  const tr::stored_tile& head = r.tiles[r.tile_index(2, 0, 0)];
  REQUIRE(middle.bytes > 16);
  {
    std::fstream f(corrupt, std::ios::in | std::ios::out | std::ios::binary);
    const auto flip = [&](std::uint64_t at, std::size_t n) {
      std::vector<char> b(n);
      f.seekg(static_cast<std::streamoff>(at));
      f.read(b.data(), static_cast<std::streamsize>(n));
      for (char& c : b) {
        c = static_cast<char>(~c);
      }
      f.seekp(static_cast<std::streamoff>(at));
      f.write(b.data(), static_cast<std::streamsize>(n));
    };
    flip(middle.offset + middle.bytes / 2, 8); // inside the DEFLATE stream
    flip(head.offset, 2);                      // the zlib header
    REQUIRE(f.good());
  }
  const std::vector<bool> everywhere(r.rows() * r.cols(), true);
  std::vector<bool> only_middle(everywhere.size(), false);
  only_middle[r.cols() + 1] = true;
  CHECK_THROWS_AS(tr::read_tiles(corrupt, r, tr::make_tile_plan(r, {false, true, false}, only_middle)),
                  io_error);
  CHECK_THROWS_WITH(tr::read_tiles(corrupt, r, tr::make_tile_plan(r, {false, false, true})),
                    Contains("band group 2, row 0, column 0"));
  CHECK_THROWS_AS(tr::read_tiles(corrupt, r, tr::make_tile_plan(r)), io_error);
  // the other chunks still read
  const reference ref = read_reference(path, "good");
  std::vector<bool> others = everywhere;
  others[0] = false;
  check_plan(corrupt, r, ref, {true, false, false}, others, 0.0f);
  // a file shorter than its tile table says
  const tr::tile_plan all = tr::make_tile_plan(r);
  fs::resize_file(corrupt, r.tiles.back().offset + 1);
  CHECK_THROWS_AS(tr::read_tiles(corrupt, r, all), io_error);
}

#if SELMASK_TEST_HTTP
TEST_CASE("hdf5 over HTTP: plans fetched from nginx decode to the local read, the wire carries the payload",
          "[hdf5][nginx]") {
  selmask_test::temp_dir dir;
  const std::string path = (dir / "rasters.h5").string();
  write_rasters(path);
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                          fs::perms::others_read);
  selmask::testing::nginx_server server(dir.path);
  const std::string url = server.url("/rasters.h5");
  const float fill = -1.0f;
  tr::http_client multi({.strategy = tr::range_strategy::multi_range});
  tr::http_client single({.strategy = tr::range_strategy::per_range});
  for (const dataset_spec& d : raster_specs()) {
    INFO("dataset " << d.name);
    const tr::tiled_raster r = tr::read_hdf5_chunks(path, d.name);
    const reference ref = read_reference(path, d.name);
    for (const auto& [bands, cells] :
         {std::pair{std::vector<bool>{}, std::vector<bool>{}}, std::pair{two_bands(r), some_cells(r)}}) {
      const auto [plan, local] = check_plan(path, r, ref, bands, cells, fill);
      REQUIRE(plan.payload_bytes > 0);

      const tr::tile_values m = tr::fetch_tiles(multi, url, r, plan, fill);
      CHECK(m.values == local.values);
      CHECK(m.wire.range_bytes == plan.payload_bytes);
      CHECK(m.wire.read_bytes == plan.payload_bytes);
      CHECK(m.wire.discarded_bytes == 0);
      CHECK(m.wire.requests == 1);
      if (plan.ranges.size() == 1) {
        CHECK(m.wire.body_bytes == plan.payload_bytes);
      } else { // multipart framing around every part
        CHECK(m.wire.body_bytes > plan.payload_bytes);
        CHECK(m.wire.body_bytes < plan.payload_bytes + 200 * plan.ranges.size());
      }
      CHECK(m.wire.header_bytes > 0);
      CHECK(m.wire.request_bytes > 0);
      CHECK(m.wire.total() > plan.payload_bytes);
      CHECK(m.wire.total() < r.file_bytes);

      const tr::tile_values s = tr::fetch_tiles(single, url, r, plan, fill);
      CHECK(s.values == local.values);
      CHECK(s.wire.requests == plan.ranges.size());
      CHECK(s.wire.range_bytes == plan.payload_bytes);
      CHECK(s.wire.body_bytes == plan.payload_bytes);
      CHECK(s.wire.total() > plan.payload_bytes + 100 * plan.ranges.size());
    }
    // nothing selected: no request, every value the fill
    const tr::tile_values none =
      tr::fetch_tiles(multi, url, r, tr::make_tile_plan(r, std::vector<bool>(r.bands, false)), fill);
    CHECK(none.wire.requests == 0);
    CHECK(none.wire.total() == 0);
    CHECK(std::all_of(none.values.begin(), none.values.end(), [&](float v) { return v == fill; }));
  }

  // a corrupt chunk over HTTP is an io_error too
  const std::string corrupt = (dir / "corrupt.h5").string();
  fs::copy_file(path, corrupt);
  fs::permissions(corrupt, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                             fs::perms::others_read);
  const tr::tiled_raster r = tr::read_hdf5_chunks(corrupt, "u16_deflate");
  {
    std::fstream f(corrupt, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(r.tiles[0].offset));
    f.write("\xff\xff\xff\xff", 4);
    REQUIRE(f.good());
  }
  CHECK_THROWS_AS(tr::fetch_tiles(multi, server.url("/corrupt.h5"), r, tr::make_tile_plan(r)),
                  selmask::io_error);
}
#endif
