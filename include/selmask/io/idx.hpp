#pragma once
/// \file io/idx.hpp
/// IDX files, the format of MNIST and Fashion-MNIST: `read_idx`, `read_idx_header`, `write_idx`.
///
/// Layout (all integers big-endian): two zero bytes, one element-type byte, one byte `ndims`, then
/// `ndims` uint32 extents, then the elements in row-major order. Only element type 0x08
/// (unsigned byte) is supported, which is what (Fashion-)MNIST uses; other types are rejected
/// with a message naming the type. Files may be gzip-compressed or not: zlib's `gzread` reads
/// both transparently.
///
/// Every failure is a `selmask::io_error` whose message names the file and what is wrong:
/// a missing file, a bad magic number, an unsupported type, absurd extents (rank 0 or above 6,
/// more than `max_idx_bytes` of data), a truncated file ("expected N bytes, got M"), a corrupt gzip
/// stream, or data after the last element.

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "../error.hpp"
#include "../shape.hpp"
#include "atomic_file.hpp"

namespace selmask::io {

/// The element type byte of unsigned-byte IDX files.
inline constexpr std::uint8_t idx_type_ubyte = 0x08;
/// The largest amount of element data `read_idx` accepts (4 GiB); more is taken as a corrupt
/// header rather than a real data set.
inline constexpr std::uint64_t max_idx_bytes = std::uint64_t{1} << 32;

/// An IDX file's header: element type and extents (`extents.size()` elements follow).
struct idx_header {
  std::uint8_t type = idx_type_ubyte;
  shape extents;
};

/// An IDX array of unsigned bytes: its extents and its values in row-major order.
struct idx_array {
  shape extents;
  std::vector<std::uint8_t> values;
};

/// Whether a file is written gzip-compressed or raw.
enum class idx_compression { none, gzip };

namespace detail {

struct gz_closer {
  void operator()(gzFile f) const noexcept { gzclose(f); }
};
using gz_handle = std::unique_ptr<gzFile_s, gz_closer>;

inline std::string idx_where(std::string_view fn, const std::filesystem::path& path) {
  return "selmask::io::" + std::string(fn) + ": '" + path.string() + "': ";
}

inline std::string type_name(std::uint8_t t) {
  switch (t) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "unknown";
  }
}

inline std::string hex_byte(unsigned v) {
  static constexpr char hex[] = "0123456789abcdef";
  return std::string("0x") + hex[(v >> 4) & 0xfU] + hex[v & 0xfU];
}

inline gz_handle open_gz(const std::filesystem::path& path, std::string_view fn) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw io_error(idx_where(fn, path) + "no such file");
  }
  if (std::filesystem::is_directory(path, ec)) {
    throw io_error(idx_where(fn, path) + "is a directory, not a file");
  }
  gz_handle f(gzopen(path.string().c_str(), "rb"));
  if (!f) {
    throw io_error(idx_where(fn, path) + "cannot be opened for reading");
  }
  gzbuffer(f.get(), 1U << 17);
  return f;
}

/// Reads up to `n` bytes; returns how many were read. Throws on a corrupt stream.
inline std::size_t gz_read_some(gzFile f, std::uint8_t* out, std::size_t n, std::string_view fn,
                                const std::filesystem::path& path) {
  std::size_t got = 0;
  while (got < n) {
    const auto chunk = static_cast<unsigned>(std::min<std::size_t>(n - got, std::size_t{1} << 30));
    const int r = gzread(f, out + got, chunk);
    if (r < 0) {
      int code = 0;
      const char* msg = gzerror(f, &code);
      if (code == Z_BUF_ERROR) {
        break; // the compressed stream ends early: the caller reports the truncation
      }
      throw io_error(idx_where(fn, path) + "corrupt data (zlib: " + (msg ? msg : "?") + ")");
    }
    if (r == 0) {
      break;
    }
    got += static_cast<std::size_t>(r);
  }
  return got;
}

/// A description of why a read stopped early: "truncated: expected N bytes of <what>, got M".
inline std::string truncated(std::string_view what, std::uint64_t expected, std::uint64_t got) {
  return "truncated: expected " + std::to_string(expected) + " bytes of " + std::string(what) + ", got " +
         std::to_string(got);
}

/// "N entries of M bytes" for extents whose product may overflow (M saturates).
inline std::string claims(const shape& extents) {
  std::uint64_t per = 1;
  for (std::size_t i = 1; i < extents.rank(); ++i) {
    per = extents[i] != 0 && per > std::numeric_limits<std::uint64_t>::max() / extents[i]
            ? std::numeric_limits<std::uint64_t>::max()
            : per * extents[i];
  }
  return std::to_string(extents[0]) + " entries of " + std::to_string(per) + " bytes";
}

/// The most uncompressed bytes a gzip file of `file_bytes` bytes can hold: DEFLATE expands at
/// most 1032:1 (a 258-byte match in 2 bits); the margin covers the gzip header and trailer.
inline std::uint64_t gzip_inflated_bound(std::uint64_t file_bytes) {
  return file_bytes > (std::uint64_t{1} << 52) ? std::numeric_limits<std::uint64_t>::max()
                                               : file_bytes * 1032 + 4096;
}

inline idx_header read_header(gzFile f, std::string_view fn, const std::filesystem::path& path) {
  std::array<std::uint8_t, 4> magic{};
  const std::size_t got = gz_read_some(f, magic.data(), magic.size(), fn, path);
  if (got < magic.size()) {
    throw io_error(idx_where(fn, path) + truncated("header", magic.size(), got));
  }
  if (magic[0] != 0 || magic[1] != 0) {
    throw io_error(idx_where(fn, path) + "bad magic number " + hex_byte(magic[0]) + " " + hex_byte(magic[1]) +
                   " " + hex_byte(magic[2]) + " " + hex_byte(magic[3]) +
                   " (an IDX file starts with 0x00 0x00 <type> <ndims>)");
  }
  idx_header h;
  h.type = magic[2];
  if (h.type != idx_type_ubyte) {
    throw io_error(idx_where(fn, path) + "element type " + hex_byte(h.type) + " (" + type_name(h.type) +
                   ") is not supported; only 0x08 (unsigned byte) is");
  }
  const std::size_t rank = magic[3];
  if (rank == 0 || rank > shape::max_rank) {
    throw io_error(idx_where(fn, path) + "absurd number of dimensions " + std::to_string(rank) +
                   " (expected 1 to " + std::to_string(shape::max_rank) + ")");
  }
  std::array<std::uint8_t, 4 * shape::max_rank> raw{};
  const std::size_t got_ext = gz_read_some(f, raw.data(), 4 * rank, fn, path);
  if (got_ext < 4 * rank) {
    throw io_error(idx_where(fn, path) + truncated("extents", 4 * rank, got_ext));
  }
  std::array<std::size_t, shape::max_rank> ext{};
  std::uint64_t total = 1;
  bool too_big = false;
  for (std::size_t i = 0; i < rank; ++i) {
    const std::uint32_t e = (std::uint32_t{raw[4 * i]} << 24) | (std::uint32_t{raw[4 * i + 1]} << 16) |
                            (std::uint32_t{raw[4 * i + 2]} << 8) | std::uint32_t{raw[4 * i + 3]};
    ext[i] = e;
    if (e != 0 && total > max_idx_bytes / e) {
      too_big = true;
    }
    total *= e;
  }
  h.extents = shape(ext.begin(), ext.begin() + static_cast<std::ptrdiff_t>(rank));
  if (too_big || total > max_idx_bytes) {
    throw io_error(idx_where(fn, path) + "absurd extents " + h.extents.str() + ": the header claims " +
                   claims(h.extents) + ", more than the " + std::to_string(max_idx_bytes) +
                   " bytes of data an IDX file may hold (max_idx_bytes)");
  }
  return h;
}

/// gzip-compresses `in` (a complete .gz stream).
inline std::string gzip_compress(std::string_view in, int level = Z_DEFAULT_COMPRESSION) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw io_error("selmask::io::gzip_compress: deflateInit2 failed");
  }
  std::string out;
  std::size_t out_used = 0;
  std::size_t in_pos = 0;
  constexpr std::size_t out_chunk = std::size_t{1} << 16;
  int flush = Z_NO_FLUSH;
  try {
    do {
      const std::size_t in_chunk = std::min<std::size_t>(in.size() - in_pos, std::size_t{1} << 30);
      // zlib's API takes a non-const pointer but does not write through it
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + in_pos));
      zs.avail_in = static_cast<uInt>(in_chunk);
      flush = in_pos + in_chunk == in.size() ? Z_FINISH : Z_NO_FLUSH;
      do {
        out.resize(out_used + out_chunk);
        zs.next_out = reinterpret_cast<Bytef*>(out.data() + out_used);
        zs.avail_out = static_cast<uInt>(out_chunk);
        if (deflate(&zs, flush) == Z_STREAM_ERROR) {
          throw io_error("selmask::io::gzip_compress: deflate failed");
        }
        out_used += out_chunk - zs.avail_out;
      } while (zs.avail_out == 0);
      in_pos += in_chunk;
    } while (flush != Z_FINISH);
  } catch (...) {
    deflateEnd(&zs);
    throw;
  }
  deflateEnd(&zs);
  out.resize(out_used);
  return out;
}

} // namespace detail

/// Reads only the header of an IDX file (raw or gzip).
inline idx_header read_idx_header(const std::filesystem::path& path) {
  auto f = detail::open_gz(path, "read_idx_header");
  return detail::read_header(f.get(), "read_idx_header", path);
}

/// Reads an unsigned-byte IDX file (raw or gzip).
///
/// `max_items`: when not 0, only the first `max_items` entries along the first axis are read
/// (the returned extents say how many); the rest of the file is then not checked. When 0, the
/// whole file is read and data after the last element is an error.
inline idx_array read_idx(const std::filesystem::path& path, std::size_t max_items = 0) {
  auto f = detail::open_gz(path, "read_idx");
  idx_array a;
  a.extents = detail::read_header(f.get(), "read_idx", path).extents;
  const bool limited = max_items != 0 && max_items < a.extents[0];
  if (limited) {
    a.extents[0] = max_items;
  }
  const std::size_t n = a.extents.size();
  // what the file can hold, checked before anything is allocated: exactly its bytes after the
  // header when raw, at most DEFLATE's ratio when compressed
  std::error_code ec;
  const std::uint64_t file_bytes = std::filesystem::file_size(path, ec);
  const std::uint64_t header_bytes = 4 + 4 * std::uint64_t{a.extents.rank()};
  if (!ec && gzdirect(f.get()) == 1) {
    const std::uint64_t held = file_bytes > header_bytes ? file_bytes - header_bytes : 0;
    if (n > held) {
      throw io_error(detail::idx_where("read_idx", path) + detail::truncated("data", n, held) + " (extents " +
                     a.extents.str() + ": the header claims " + detail::claims(a.extents) +
                     ", the file holds " + std::to_string(file_bytes) + " bytes)");
    }
  } else if (!ec && n > detail::gzip_inflated_bound(file_bytes)) {
    throw io_error(detail::idx_where("read_idx", path) + "the header claims " + detail::claims(a.extents) +
                   " (extents " + a.extents.str() + ", " + std::to_string(n) +
                   " bytes of data), but a gzip file of " + std::to_string(file_bytes) +
                   " bytes holds at most " + std::to_string(detail::gzip_inflated_bound(file_bytes)) +
                   " (corrupt header)");
  }
  // a compressed stream is read in growing steps, so memory follows the data that really come
  std::size_t got = 0;
  for (std::size_t step = std::min<std::size_t>(n, std::size_t{1} << 24); got < n;) {
    a.values.resize(got + step);
    const std::size_t r = detail::gz_read_some(f.get(), a.values.data() + got, step, "read_idx", path);
    got += r;
    if (r < step) {
      break;
    }
    step = std::min(n - got, std::max<std::size_t>(step, got));
  }
  if (got < n) {
    throw io_error(detail::idx_where("read_idx", path) + detail::truncated("data", n, got) + " (extents " +
                   a.extents.str() + ")");
  }
  if (!limited) {
    std::uint8_t extra = 0;
    if (detail::gz_read_some(f.get(), &extra, 1, "read_idx", path) != 0) {
      throw io_error(detail::idx_where("read_idx", path) + "trailing data after the " + std::to_string(n) +
                     " bytes that extents " + a.extents.str() + " announce");
    }
  }
  return a;
}

/// Writes an unsigned-byte IDX file (atomically), gzip-compressed or raw.
///
/// Requires: `1 ≤ extents.rank()`, every extent fits 32 bits, `values.size() == extents.size()`
/// (`shape_error`/`value_error` otherwise).
inline void write_idx(const std::filesystem::path& path, const shape& extents,
                      std::span<const std::uint8_t> values,
                      idx_compression compression = idx_compression::gzip) {
  const std::string where = "selmask::io::write_idx: '" + path.string() + "': ";
  if (extents.rank() == 0) {
    throw shape_error(where + "extents must have rank 1 to 6, got rank 0");
  }
  if (values.size() != extents.size()) {
    throw shape_error(where + std::to_string(values.size()) + " values for extents " + extents.str() +
                      " (expected " + std::to_string(extents.size()) + ")");
  }
  std::string bytes;
  bytes.reserve(4 + 4 * extents.rank() + values.size());
  bytes.push_back('\0');
  bytes.push_back('\0');
  bytes.push_back(static_cast<char>(idx_type_ubyte));
  bytes.push_back(static_cast<char>(extents.rank()));
  for (std::size_t e : extents) {
    if (e > std::numeric_limits<std::uint32_t>::max()) {
      throw value_error(where + "extent " + std::to_string(e) + " does not fit 32 bits");
    }
    for (int shift = 24; shift >= 0; shift -= 8) {
      bytes.push_back(static_cast<char>((e >> shift) & 0xffU));
    }
  }
  bytes.append(reinterpret_cast<const char*>(values.data()), values.size());
  if (compression == idx_compression::gzip) {
    bytes = detail::gzip_compress(bytes);
  }
  write_file_atomically(path, std::string_view(bytes));
}

/// Writes a gzip-compressed unsigned-byte IDX file (atomically); see `write_idx`.
inline void write_idx_gz(const std::filesystem::path& path, const shape& extents,
                         std::span<const std::uint8_t> values) {
  write_idx(path, extents, values, idx_compression::gzip);
}

} // namespace selmask::io
