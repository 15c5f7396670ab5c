#pragma once
/// \file transfer/hdf5.hpp
/// The tile table of a chunked HDF5 dataset, so that a plan (transfer/tiles.hpp) reads only the
/// chunks a mask selects, from a local file or over HTTP ranges, without HDF5 on the reading side.
///
/// **What.** `read_hdf5_chunks(path, dataset)` opens the file read-only with the HDF5 C library
/// and describes the dataset as a `tiled_raster`: a rank-3 dataset is bands×height×width (a
/// rank-2 one is a single band), each chunk of cb×th×tw elements is one tile of `tile_bands = cb`
/// bands in band-sequential order, at the byte offset and with the stored size that HDF5's
/// chunk-query API reports. The bytes of the chunks are then read by `read_tiles` / `fetch_tiles`
/// and decoded by tiles.hpp's own decoder, so that the side that moves the data needs no HDF5.
///
/// **Why.** HDF5 reads a chunk only as a whole, and stores each one compressed on its own; a chunk
/// is therefore the unit of a transfer, and a chunk of one band the unit of a band selection.
/// Knowing where every chunk lies is what lets a channel or block mask move only its bytes.
///
/// **What is supported.**
/// - Element types: 8-, 16- and 32-bit integers (signed or not) and IEEE 32- and 64-bit floats,
///   either byte order. 64-bit integers, N-bit or padded integers, and compound, string, enum,
///   array, variable-length or reference types are a `value_error`.
/// - Filters: none, deflate, and shuffle followed by deflate (or shuffle alone). Every other
///   filter (fletcher32, szip, nbit, scaleoffset, a plugin such as blosc or lz4), deflate applied
///   before shuffle, or the same filter twice is a `value_error` naming it.
/// - Chunks that were never written are not in the table (0 bytes): a plan skips them and they
///   read as the caller's `fill` (HDF5's own read would return the dataset's fill value, which
///   the description names when it is user-defined).
/// - HDF5 may record that a chunk skipped an optional filter (its filter mask). When every stored
///   chunk skips the same filters, the raster's format is the pipeline without them (e.g. chunks
///   written raw into a deflate dataset read as uncompressed). Chunks that differ in what they
///   skipped, and the option that leaves partial edge chunks unfiltered
///   (`H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS`), are a `value_error`: one raster has one format.
/// - A file with a user block: chunk addresses are relative to HDF5's base address; the offsets
///   here are file offsets. The first stored chunk is read both through HDF5 (its raw, still
///   filtered bytes) and from the file at the computed offset, and they must agree.
///
/// **Errors.** A missing or unreadable file, a missing dataset, or any failing HDF5 call is an
/// `io_error` naming the file and the dataset (with HDF5's innermost message); a dataset of
/// another rank is a `shape_error`; a contiguous, compact or virtual dataset is a `value_error`
/// that says how to rechunk it. HDF5's automatic printing of its error stack is switched off
/// while the function runs and restored afterwards; every handle is closed on every path.
///
/// **Cost.** The table is read with `H5Dget_chunk_info`, which in HDF5 1.10 walks the chunk index
/// for every call: reading the table is quadratic in the number of chunks (about a second for
/// 8000 chunks). That is paid once per file; keep the raster.

#include <hdf5.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "tiles.hpp"

namespace selmask::transfer {

namespace detail {

/// An HDF5 identifier, closed with its own close function when the handle goes.
class h5_id {
public:
  using closer = herr_t (*)(hid_t);
  h5_id() = default;
  h5_id(hid_t id, closer c) noexcept : id_(id), close_(c) {}
  h5_id(const h5_id&) = delete;
  h5_id& operator=(const h5_id&) = delete;
  h5_id(h5_id&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), close_(o.close_) {}
  h5_id& operator=(h5_id&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      close_ = o.close_;
    }
    return *this;
  }
  ~h5_id() { reset(); }
  void reset() noexcept {
    if (id_ >= 0 && close_ != nullptr) {
      close_(id_);
    }
    id_ = H5I_INVALID_HID;
  }
  [[nodiscard]] hid_t get() const noexcept { return id_; }

private:
  hid_t id_ = H5I_INVALID_HID;
  closer close_ = nullptr;
};

/// Switches HDF5's automatic error printing off for its lifetime, then restores what was set.
class h5_quiet {
public:
  h5_quiet() noexcept {
    if (H5Eget_auto2(H5E_DEFAULT, &func_, &data_) < 0) {
      func_ = nullptr;
      data_ = nullptr;
      restore_ = false;
    }
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  h5_quiet(const h5_quiet&) = delete;
  h5_quiet& operator=(const h5_quiet&) = delete;
  ~h5_quiet() {
    if (restore_) {
      H5Eset_auto2(H5E_DEFAULT, func_, data_);
    }
  }

private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
  bool restore_ = true;
};

/// The innermost (most specific) description on HDF5's current error stack; empty when none.
/// Must be called right after the failing call: the next HDF5 call clears the stack.
inline std::string h5_message() {
  std::string msg;
  H5Ewalk2(
    H5E_DEFAULT, H5E_WALK_DOWNWARD,
    [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
      try {
        if (e != nullptr && e->desc != nullptr && *e->desc != '\0') {
          *static_cast<std::string*>(out) = e->desc;
        }
      } catch (...) {
        return -1;
      }
      return 0;
    },
    &msg);
  return msg;
}

/// The file and dataset being read, for messages.
struct h5_site {
  std::string path, dataset;

  [[nodiscard]] std::string where() const {
    return "selmask::transfer::read_hdf5_chunks: " + path + ", dataset " + dataset + ": ";
  }
  /// An `io_error` for a failed HDF5 call, with HDF5's message.
  [[noreturn]] void fail(const std::string& what) const {
    const std::string m = h5_message();
    throw io_error(where() + what + (m.empty() ? std::string() : " (HDF5: " + m + ")"));
  }
  /// `id` as a handle closed by `c`, or `fail(what)` for a negative one.
  h5_id own(hid_t id, h5_id::closer c, const std::string& what) const {
    if (id < 0) {
      fail(what);
    }
    return {id, c};
  }
};

inline const char* h5_class_name(H5T_class_t c) noexcept {
  switch (c) {
    case H5T_TIME:
      return "time";
    case H5T_STRING:
      return "string";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_COMPOUND:
      return "compound";
    case H5T_REFERENCE:
      return "reference";
    case H5T_ENUM:
      return "enum";
    case H5T_VLEN:
      return "variable-length";
    case H5T_ARRAY:
      return "array";
    default:
      return "unknown";
  }
}

/// selmask's element type for the stored type `type`; its byte order into `little_endian`.
inline dtype h5_dtype(hid_t type, const h5_site& s, bool& little_endian) {
  const H5T_class_t cls = H5Tget_class(type);
  const std::size_t size = H5Tget_size(type);
  const H5T_order_t order = H5Tget_order(type);
  if (cls < 0 || size == 0) {
    s.fail("cannot read the element type");
  }
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
    throw value_error(s.where() + "elements of the " + h5_class_name(cls) +
                      " class (supported: integers of 8, 16 or 32 bits and IEEE floats of 32 or 64 bits)");
  }
  if (order == H5T_ORDER_LE || order == H5T_ORDER_BE) {
    little_endian = order == H5T_ORDER_LE;
  } else if (size == 1) {
    little_endian = true; // one byte has no order
  } else {
    throw value_error(s.where() + "elements in a byte order that is neither little- nor big-endian");
  }
  if (cls == H5T_FLOAT) {
    const auto is = [&](hid_t t) { return H5Tequal(type, t) > 0; };
    if (is(H5T_IEEE_F32LE) || is(H5T_IEEE_F32BE)) {
      return dtype::float32;
    }
    if (is(H5T_IEEE_F64LE) || is(H5T_IEEE_F64BE)) {
      return dtype::float64;
    }
    throw value_error(s.where() + "a " + std::to_string(size) +
                      "-byte floating-point type that is not IEEE float32 or float64");
  }
  const std::size_t precision = H5Tget_precision(type);
  if (precision != 8 * size || H5Tget_offset(type) != 0) {
    throw value_error(s.where() + std::to_string(precision) + "-bit integers in " + std::to_string(size) +
                      " bytes (only integers that fill their bytes are supported)");
  }
  const H5T_sign_t sign = H5Tget_sign(type);
  if (sign != H5T_SGN_NONE && sign != H5T_SGN_2) {
    s.fail("cannot read the sign of the integer type");
  }
  const bool is_signed = sign == H5T_SGN_2;
  switch (size) {
    case 1:
      return is_signed ? dtype::int8 : dtype::uint8;
    case 2:
      return is_signed ? dtype::int16 : dtype::uint16;
    case 4:
      return is_signed ? dtype::int32 : dtype::uint32;
    default:
      throw value_error(s.where() + std::to_string(8 * size) + "-bit " + (is_signed ? "signed" : "unsigned") +
                        " integers (selmask's element types go up to 32-bit integers)");
  }
}

/// One filter of a dataset's pipeline, in the order HDF5 applies them when writing.
struct h5_filter {
  H5Z_filter_t id = 0;
  std::string name;
  std::vector<unsigned> params;
};

inline std::vector<h5_filter> h5_pipeline(hid_t dcpl, const h5_site& s) {
  const int n = H5Pget_nfilters(dcpl);
  if (n < 0) {
    s.fail("cannot read the filter pipeline");
  }
  std::vector<h5_filter> out;
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0;
    std::array<unsigned, 16> cd{};
    std::size_t count = cd.size();
    std::array<char, 128> name{};
    const H5Z_filter_t id = H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &count, cd.data(),
                                           name.size(), name.data(), nullptr);
    if (id < 0) {
      s.fail("cannot read filter " + std::to_string(i) + " of the pipeline");
    }
    h5_filter f;
    f.id = id;
    f.name = name.data();
    f.params.assign(cd.begin(), cd.begin() + static_cast<std::ptrdiff_t>(std::min(count, cd.size())));
    if (f.name.empty()) {
      f.name = "filter " + std::to_string(id);
    }
    out.push_back(std::move(f));
  }
  return out;
}

/// The raster's codec and shuffle from the filters of `pipe` that the chunks did not skip
/// (`skipped`: HDF5's filter mask, bit i for filter i); their names, joined by '+', into `names`.
inline void h5_apply_filters(const std::vector<h5_filter>& pipe, unsigned skipped, tile_format& f,
                             std::string& names, const h5_site& s) {
  for (std::size_t i = 0; i < pipe.size(); ++i) {
    const h5_filter& p = pipe[i];
    if (i < 32 && ((skipped >> i) & 1U) != 0) {
      continue;
    }
    const std::string label = "'" + p.name + "' (id " + std::to_string(p.id) + ")";
    if (p.id == H5Z_FILTER_SHUFFLE) {
      if (f.codec != tile_codec::none || f.shuffle) {
        throw value_error(
          s.where() + "filter " + label + " after " + (f.shuffle ? "shuffle" : "deflate") +
          " in the pipeline (supported: shuffle, then deflate); rewrite it with h5repack's -f");
      }
      if (!p.params.empty() && p.params[0] != dtype_size(f.type)) {
        throw value_error(s.where() + "shuffle over " + std::to_string(p.params[0]) +
                          "-byte elements, the type has " + std::to_string(dtype_size(f.type)));
      }
      f.shuffle = true;
      names += names.empty() ? "shuffle" : "+shuffle";
    } else if (p.id == H5Z_FILTER_DEFLATE) {
      if (f.codec != tile_codec::none) {
        throw value_error(s.where() + "deflate twice in the pipeline; rewrite it with h5repack's -f");
      }
      f.codec = tile_codec::deflate;
      names += names.empty() ? "deflate" : "+deflate";
    } else {
      throw value_error(
        s.where() + "filter " + label +
        " is not supported (supported: deflate, shuffle, shuffle then deflate, or none); rewrite "
        "the dataset without it with h5repack's -f");
    }
  }
  if (names.empty()) {
    names = "no filters";
  }
}

/// One stored chunk: its first element (band, row, column), filter mask, address and size.
struct h5_chunk {
  std::array<hsize_t, 3> start{};
  unsigned mask = 0;
  haddr_t addr = 0;
  hsize_t size = 0;
};

/// Every stored chunk of `dset` (rank 2 or 3; a rank-2 chunk's band is 0).
inline std::vector<h5_chunk> h5_chunks(hid_t dset, hid_t space, int rank, const h5_site& s) {
  hsize_t n = 0;
  if (H5Dget_num_chunks(dset, space, &n) < 0) {
    s.fail("cannot count the stored chunks");
  }
  std::vector<h5_chunk> out(static_cast<std::size_t>(n));
  for (hsize_t i = 0; i < n; ++i) {
    h5_chunk& c = out[static_cast<std::size_t>(i)];
    std::array<hsize_t, 3> at{};
    if (H5Dget_chunk_info(dset, space, i, at.data(), &c.mask, &c.addr, &c.size) < 0) {
      s.fail("cannot read the address of stored chunk " + std::to_string(i));
    }
    c.start = rank == 3 ? at : std::array<hsize_t, 3>{0, at[0], at[1]};
  }
  return out;
}

/// The filters the stored chunks skipped (the same for all of them, else a `value_error`).
inline unsigned h5_common_mask(const std::vector<h5_chunk>& chunks, std::size_t filters, const h5_site& s) {
  const unsigned used = filters >= 32 ? ~0U : (1U << filters) - 1U;
  const auto at = [](const h5_chunk& c) {
    return std::to_string(c.start[0]) + "," + std::to_string(c.start[1]) + "," + std::to_string(c.start[2]);
  };
  for (std::size_t i = 1; i < chunks.size(); ++i) {
    if ((chunks[i].mask & used) != (chunks[0].mask & used)) {
      throw value_error(s.where() + "the chunk at (" + at(chunks[i]) + ") has filter mask " +
                        std::to_string(chunks[i].mask & used) + ", the chunk at (" + at(chunks[0]) + ") " +
                        std::to_string(chunks[0].mask & used) +
                        ": chunks that skipped different filters are not supported (one format per raster); "
                        "rewrite the dataset with h5repack");
    }
  }
  return chunks.empty() ? 0U : chunks[0].mask & used;
}

/// The file offset of HDF5 address 0: the user block's size, checked on the first stored chunk
/// (its raw bytes through HDF5 must be the file's bytes at the offset).
inline std::uint64_t h5_base_offset(hid_t file, hid_t dset, const std::vector<h5_chunk>& chunks,
                                    const int rank, const h5_site& s) {
  const h5_id fcpl = s.own(H5Fget_create_plist(file), H5Pclose, "cannot read the file creation properties");
  hsize_t userblock = 0;
  if (H5Pget_userblock(fcpl.get(), &userblock) < 0) {
    s.fail("cannot read the user block size");
  }
  if (chunks.empty()) {
    return userblock;
  }
  const h5_chunk& c = chunks.front();
  std::vector<char> through(static_cast<std::size_t>(c.size));
  std::uint32_t skipped = 0;
  const hsize_t* start = rank == 3 ? c.start.data() : c.start.data() + 1;
  if (H5Dread_chunk(dset, H5P_DEFAULT, start, &skipped, through.data()) < 0) {
    s.fail("cannot read the raw bytes of the first stored chunk");
  }
  std::ifstream in(s.path, std::ios::binary);
  std::vector<char> direct(through.size());
  for (const hsize_t base : {userblock, hsize_t{0}}) {
    in.clear();
    in.seekg(static_cast<std::streamoff>(base + c.addr));
    in.read(direct.data(), static_cast<std::streamsize>(direct.size()));
    if (in && direct == through) {
      return base;
    }
  }
  throw io_error(s.where() + "the bytes at the first chunk's address (" + std::to_string(c.addr) +
                 ", user block " + std::to_string(userblock) + ") are not the chunk's bytes");
}

/// The raster's tile table (`r`'s extents set): every grid position, the stored chunks at theirs
/// (file offset = `base` + HDF5 address).
inline void h5_place_chunks(tiled_raster& r, const std::vector<h5_chunk>& chunks,
                            const std::array<hsize_t, 3>& chunk, std::uint64_t base, const h5_site& s) {
  r.tiles.resize(r.band_groups() * r.rows() * r.cols());
  for (std::size_t i = 0; i < r.tiles.size(); ++i) {
    stored_tile& t = r.tiles[i];
    t.band_group = i / (r.rows() * r.cols());
    t.row = i / r.cols() % r.rows();
    t.col = i % r.cols();
  }
  for (const h5_chunk& c : chunks) {
    const auto g = static_cast<std::size_t>(c.start[0] / chunk[0]),
               y = static_cast<std::size_t>(c.start[1] / chunk[1]),
               x = static_cast<std::size_t>(c.start[2] / chunk[2]);
    const bool aligned =
      c.start[0] % chunk[0] == 0 && c.start[1] % chunk[1] == 0 && c.start[2] % chunk[2] == 0;
    if (!aligned || g >= r.band_groups() || y >= r.rows() || x >= r.cols() || c.addr == HADDR_UNDEF ||
        c.size == 0 || r.tiles[r.tile_index(g, y, x)].bytes != 0) {
      throw io_error(s.where() + "the chunk index lists a chunk at (" + std::to_string(c.start[0]) + "," +
                     std::to_string(c.start[1]) + "," + std::to_string(c.start[2]) +
                     ") that is misaligned, outside the dataset, empty or listed twice");
    }
    stored_tile& t = r.tiles[r.tile_index(g, y, x)];
    t.offset = base + static_cast<std::uint64_t>(c.addr);
    t.bytes = static_cast<std::uint64_t>(c.size);
  }
}

/// "HDF5 dataset /x (uint16, little-endian), chunks 1x64x64, shuffle+deflate, 12 of 12 chunks
/// stored[, fill value v]" (the fill value when the dataset defines one).
inline std::string h5_description(const tiled_raster& r, const std::string& dataset,
                                  const std::string& filters, std::size_t stored, hid_t dcpl) {
  std::ostringstream d;
  d << "HDF5 dataset " << dataset << " (" << dtype_name(r.format.type)
    << (r.format.little_endian ? ", little-endian" : ", big-endian") << "), chunks " << r.tile_bands << "x"
    << r.tile_height << "x" << r.tile_width << ", " << filters << ", " << stored << " of " << r.tiles.size()
    << " chunks stored";
  H5D_fill_value_t fill = H5D_FILL_VALUE_UNDEFINED;
  double value = 0.0;
  if (H5Pfill_value_defined(dcpl, &fill) >= 0 && fill == H5D_FILL_VALUE_USER_DEFINED &&
      H5Pget_fill_value(dcpl, H5T_NATIVE_DOUBLE, &value) >= 0) {
    d << ", fill value " << value;
  }
  return d.str();
}

} // namespace detail

/// The tile table of the chunked dataset `dataset` (a path inside the file, e.g. "/x" or
/// "group/x") of the HDF5 file `path` (see the file comment for what is supported and the errors).
inline tiled_raster read_hdf5_chunks(const std::string& path, const std::string& dataset) {
  using namespace detail;
  const h5_site s{path, dataset};
  std::error_code ec;
  const std::uintmax_t file_bytes = std::filesystem::file_size(path, ec);
  if (ec) {
    throw io_error(s.where() + "cannot open the file (" + ec.message() + ")");
  }
  const h5_quiet quiet;
  const h5_id file =
    s.own(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose, "cannot open the file");
  const h5_id dset =
    s.own(H5Dopen2(file.get(), dataset.c_str(), H5P_DEFAULT), H5Dclose, "cannot open the dataset");
  const h5_id space = s.own(H5Dget_space(dset.get()), H5Sclose, "cannot read the dataspace");
  const h5_id type = s.own(H5Dget_type(dset.get()), H5Tclose, "cannot read the element type");
  const h5_id dcpl = s.own(H5Dget_create_plist(dset.get()), H5Pclose, "cannot read the creation properties");

  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) {
    s.fail("cannot read the rank");
  }
  if (rank != 2 && rank != 3) {
    throw shape_error(s.where() + "a dataset of rank " + std::to_string(rank) +
                      " (expected rank 3, bands x height x width, or rank 2, height x width)");
  }
  std::array<hsize_t, 3> dims{1, 1, 1}, chunk{1, 1, 1};
  const std::size_t skip = rank == 2 ? 1 : 0;
  if (H5Sget_simple_extent_dims(space.get(), dims.data() + skip, nullptr) < 0) {
    s.fail("cannot read the extents");
  }
  const H5D_layout_t layout = H5Pget_layout(dcpl.get());
  if (layout != H5D_CHUNKED) {
    const char* kind = layout == H5D_CONTIGUOUS ? "contiguous"
                       : layout == H5D_COMPACT  ? "compact"
                                                : "virtual";
    throw value_error(s.where() + "the dataset is " + kind +
                      ", not chunked: there are no chunks to select; rechunk it, e.g. h5repack -l " +
                      dataset + (rank == 3 ? ":CHUNK=1x64x64" : ":CHUNK=64x64") + " in.h5 out.h5");
  }
  if (H5Pget_chunk(dcpl.get(), rank, chunk.data() + skip) != rank) {
    s.fail("cannot read the chunk dimensions");
  }

  tiled_raster r;
  r.bands = static_cast<std::size_t>(dims[0]);
  r.height = static_cast<std::size_t>(dims[1]);
  r.width = static_cast<std::size_t>(dims[2]);
  r.tile_bands = static_cast<std::size_t>(chunk[0]);
  r.tile_height = static_cast<std::size_t>(chunk[1]);
  r.tile_width = static_cast<std::size_t>(chunk[2]);
  r.file_bytes = static_cast<std::uint64_t>(file_bytes);
  r.format.order = tile_order::band_sequential;
  r.format.type = h5_dtype(type.get(), s, r.format.little_endian);

  const std::vector<h5_filter> pipe = h5_pipeline(dcpl.get(), s);
  const std::vector<h5_chunk> chunks = h5_chunks(dset.get(), space.get(), rank, s);
  std::string filters;
  h5_apply_filters(pipe, h5_common_mask(chunks, pipe.size(), s), r.format, filters, s);
  unsigned opts = 0;
  if (H5Pget_chunk_opts(dcpl.get(), &opts) < 0) {
    s.fail("cannot read the chunk options");
  }
  const bool partial =
    r.bands % r.tile_bands != 0 || r.height % r.tile_height != 0 || r.width % r.tile_width != 0;
  const bool filtered = r.format.codec != tile_codec::none || r.format.shuffle;
  if ((opts & H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS) != 0 && partial && filtered) {
    throw value_error(
      s.where() + "partial edge chunks are stored without the filters " +
      "(H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS), the others with them: not supported (one format "
      "per raster); rewrite the dataset with h5repack");
  }
  const std::uint64_t base = h5_base_offset(file.get(), dset.get(), chunks, rank, s);

  h5_place_chunks(r, chunks, chunk, base, s);
  r.description = h5_description(r, dataset, filters, chunks.size(), dcpl.get());
  r.validate("selmask::transfer::read_hdf5_chunks");
  return r;
}

} // namespace selmask::transfer
