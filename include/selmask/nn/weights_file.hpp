#pragma once
/// \file nn/weights_file.hpp
/// The selmask weights file: a list of float32 tensors with their shapes, versioned and
/// checksummed, written atomically. `nn::sequential::save` / `load` use it; it is public so that
/// other owners of parameters (a user's model, a checkpoint of masks) can use it too.
///
/// Layout (every integer little-endian):
///
/// | bytes        | content                                                        |
/// |--------------|----------------------------------------------------------------|
/// | 8            | magic `SELMASKW`                                               |
/// | 4 (u32)      | format version (`weights_format_version`, now 1)               |
/// | 4 (u32)      | number of tensors T                                            |
/// | T times      | u32 rank r (≤ 6), r × u64 extents, then the values as f32 (row-major) |
/// | 4 (u32)      | CRC-32 (zlib's `crc32`) of every byte before it                |
///
/// `write_weights_file` writes to a temporary file in the target's directory and renames it over
/// the target, so the target is never seen half-written. `read_weights_file` throws
/// `selmask::io_error` naming the file and the problem: missing, wrong magic, unsupported
/// version, truncated or corrupt structure, trailing bytes, checksum mismatch.

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "../error.hpp"
#include "../io/atomic_file.hpp"
#include "../shape.hpp"

namespace selmask::nn {

inline constexpr char weights_magic[8] = {'S', 'E', 'L', 'M', 'A', 'S', 'K', 'W'};
inline constexpr std::uint32_t weights_format_version = 1;

/// One tensor of a weights file, on the host.
struct host_tensor {
  shape dims;
  std::vector<float> values;
};

namespace detail {

inline std::uint32_t crc32_of(const unsigned char* p, std::size_t n) {
  uLong c = ::crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
    c = ::crc32(c, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<std::uint32_t>(c);
}

template <class U>
void put_le(std::vector<unsigned char>& out, U v) {
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    out.push_back(static_cast<unsigned char>((v >> (8 * i)) & 0xffu));
  }
}

/// Reads little-endian integers from a byte buffer, reporting running past the end.
class byte_reader {
public:
  byte_reader(std::span<const unsigned char> bytes, std::size_t end) : b_(bytes), end_(end) {}
  [[nodiscard]] std::size_t left() const noexcept { return pos_ < end_ ? end_ - pos_ : 0; }
  /// Moves the end (e.g. to exclude a trailer); never past the buffer.
  void set_end(std::size_t end) noexcept { end_ = std::min(end, b_.size()); }
  [[nodiscard]] std::size_t position() const noexcept { return pos_; }
  template <class U>
  bool get(U& v) {
    if (left() < sizeof(U)) {
      return false;
    }
    v = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i) {
      v = static_cast<U>(v | static_cast<U>(static_cast<U>(b_[pos_ + i]) << (8 * i)));
    }
    pos_ += sizeof(U);
    return true;
  }
  void skip(std::size_t n) noexcept { pos_ += n; }

private:
  std::span<const unsigned char> b_;
  std::size_t end_;
  std::size_t pos_ = 0;
};

inline std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", static_cast<unsigned>(v));
  return buf;
}

} // namespace detail

/// Writes `tensors` to `path` (atomically: temporary file + rename). Throws `io_error` naming
/// the file when it cannot be written, `shape_error` when a tensor's values do not fill its shape.
inline void write_weights_file(const std::filesystem::path& path, const std::vector<host_tensor>& tensors) {
  const std::string where = "selmask::nn::write_weights_file: " + path.string() + ": ";
  std::vector<unsigned char> bytes(std::begin(weights_magic), std::end(weights_magic));
  detail::put_le<std::uint32_t>(bytes, weights_format_version);
  detail::put_le<std::uint32_t>(bytes, static_cast<std::uint32_t>(tensors.size()));
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    const host_tensor& h = tensors[t];
    if (h.values.size() != h.dims.size()) {
      throw shape_error(where + "tensor " + std::to_string(t) + " has " + std::to_string(h.values.size()) +
                        " values for shape " + h.dims.str());
    }
    detail::put_le<std::uint32_t>(bytes, static_cast<std::uint32_t>(h.dims.rank()));
    for (std::size_t e : h.dims) {
      detail::put_le<std::uint64_t>(bytes, static_cast<std::uint64_t>(e));
    }
    bytes.reserve(bytes.size() + 4 * h.values.size() + 4);
    for (float v : h.values) {
      detail::put_le<std::uint32_t>(bytes, std::bit_cast<std::uint32_t>(v));
    }
  }
  detail::put_le<std::uint32_t>(bytes, detail::crc32_of(bytes.data(), bytes.size()));

  io::write_file_atomically(path,
                            std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

/// The tensors of the bytes of a weights file (see `read_weights_file`); `name` (e.g. the
/// file's path) is named in error messages. Every extent is checked against the bytes that are
/// left before anything is allocated, so a header that announces more values than the bytes hold
/// fails at once.
inline std::vector<host_tensor> read_weights_bytes(std::span<const unsigned char> bytes,
                                                   const std::string& name = "<memory>") {
  const std::string where = "selmask::nn::read_weights_file: " + name + ": ";
  if (bytes.size() < sizeof weights_magic) {
    throw io_error(where + "truncated: " + std::to_string(bytes.size()) +
                   " bytes, not even the 8-byte magic \"SELMASKW\"");
  }
  if (!std::equal(std::begin(weights_magic), std::end(weights_magic), bytes.begin(),
                  [](char m, unsigned char b) { return static_cast<unsigned char>(m) == b; })) {
    throw io_error(where + "wrong magic: not a selmask weights file (expected \"SELMASKW\")");
  }
  detail::byte_reader r(bytes, bytes.size());
  r.skip(sizeof weights_magic);
  std::uint32_t version = 0;
  std::uint32_t count = 0;
  if (!r.get(version)) {
    throw io_error(where + "truncated: the file ends before the format version");
  }
  if (version != weights_format_version) {
    throw io_error(where + "unsupported format version " + std::to_string(version) +
                   " (this build reads version " + std::to_string(weights_format_version) + ")");
  }
  r.set_end(bytes.size() - 4); // the tensors end where the checksum begins
  if (!r.get(count)) {
    throw io_error(where + "truncated: the file ends before the number of tensors");
  }
  if (count > r.left() / 4) { // every tensor has at least its 4-byte rank
    throw io_error(where + "truncated or corrupt: the number of tensors is " + std::to_string(count) +
                   ", more than the " + std::to_string(r.left()) + " bytes left in the file can hold");
  }
  std::vector<host_tensor> out;
  for (std::uint32_t t = 0; t < count; ++t) {
    const std::string tname = "tensor " + std::to_string(t) + " of " + std::to_string(count);
    std::uint32_t rank = 0;
    if (!r.get(rank)) {
      throw io_error(where + "truncated or corrupt: the file ends before " + tname);
    }
    if (rank > shape::max_rank) {
      throw io_error(where + "corrupt: " + tname + " has rank " + std::to_string(rank) + " (at most " +
                     std::to_string(shape::max_rank) + ")");
    }
    std::vector<std::size_t> ext(rank);
    std::size_t n = 1;
    for (std::uint32_t a = 0; a < rank; ++a) {
      std::uint64_t e = 0;
      if (!r.get(e)) {
        throw io_error(where + "truncated or corrupt: the file ends inside the shape of " + tname);
      }
      // checked before anything is allocated: 4 bytes per value must be left in the file
      if (e > std::numeric_limits<std::size_t>::max() / 4 || (e != 0 && n > r.left() / 4 / e)) {
        throw io_error(where + "truncated or corrupt: extent " + std::to_string(a) + " of the shape of " +
                       tname + " is " + std::to_string(e) + ", more float32 values than the " +
                       std::to_string(r.left()) + " bytes left in the file hold");
      }
      ext[a] = static_cast<std::size_t>(e);
      n *= ext[a];
    }
    if (r.left() < 4 * n) {
      throw io_error(where + "truncated or corrupt: " + tname + " needs " + std::to_string(4 * n) +
                     " bytes, " + std::to_string(r.left()) + " left");
    }
    host_tensor h{shape(ext.begin(), ext.end()), std::vector<float>(n)};
    for (float& v : h.values) {
      std::uint32_t u = 0;
      r.get(u);
      v = std::bit_cast<float>(u);
    }
    out.push_back(std::move(h));
  }
  if (r.left() != 0) {
    throw io_error(where + "corrupt: " + std::to_string(r.left()) +
                   " unexpected bytes after the last tensor");
  }
  detail::byte_reader tail(bytes, bytes.size());
  tail.skip(bytes.size() - 4);
  std::uint32_t stored = 0;
  tail.get(stored);
  const std::uint32_t computed = detail::crc32_of(bytes.data(), bytes.size() - 4);
  if (stored != computed) {
    throw io_error(where + "checksum mismatch (stored " + detail::hex32(stored) + ", computed " +
                   detail::hex32(computed) + "): the file is corrupt");
  }
  return out;
}

/// Reads a weights file written by `write_weights_file`; every problem is an `io_error` whose
/// message names the file and what is wrong.
inline std::vector<host_tensor> read_weights_file(const std::filesystem::path& path) {
  const std::string where = "selmask::nn::read_weights_file: " + path.string() + ": ";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw io_error(where + "cannot open the file");
  }
  const std::vector<unsigned char> bytes{std::istreambuf_iterator<char>(in),
                                         std::istreambuf_iterator<char>()};
  if (in.bad()) {
    throw io_error(where + "read error");
  }
  return read_weights_bytes(bytes, path.string());
}

} // namespace selmask::nn
