#pragma once
/// \file io/npy.hpp
/// Float arrays as NumPy `.npy` files, so that masks and fronts load in Python in one line
/// (`numpy.load("mask_q0.050.npy")`): `write_npy(path, shape, values)` and `read_npy(path)`.
///
/// The format (NumPy's "NPY format version 1.0", numpy.lib.format): the 6 bytes `\x93NUMPY`, the
/// version bytes 1 and 0, a little-endian uint16 header length, then the header — a Python dict
/// literal `{'descr': '<f4', 'fortran_order': False, 'shape': (28, 28), }` padded with spaces and
/// ended by a newline so that the data start at a multiple of 64 bytes — then the values as
/// little-endian float32, row-major. `write_npy` writes through `write_file_atomically` (a
/// temporary, then a rename). `read_npy` reads what `write_npy` writes (little-endian float32, C
/// order) and refuses anything else — another type, Fortran order, a bad magic, a truncated or
/// oversized file — with an `io_error` naming the file and what is wrong.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "../shape.hpp"
#include "atomic_file.hpp"

namespace selmask::io {

static_assert(std::endian::native == std::endian::little, "selmask::io npy files: little-endian hosts only");

/// Writes `values` (row-major, `s.size()` of them) as a float32 `.npy` array of shape `s`.
inline void write_npy(const std::filesystem::path& path, const shape& s, std::span<const float> values) {
  if (values.size() != s.size()) {
    throw shape_error("selmask::io::write_npy: " + std::to_string(values.size()) + " values for shape " +
                      s.str() + " (" + path.string() + ")");
  }
  std::string dims; // a Python tuple: "28, 28"; a 1-tuple keeps its comma: "784,"
  for (std::size_t i = 0; i < s.rank(); ++i) {
    dims += (i == 0 ? "" : ", ") + std::to_string(s[i]);
  }
  if (s.rank() == 1) {
    dims += ',';
  }
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(values.data()), values.size_bytes());
  write_file_atomically(path, bytes);
}

/// An array read by `read_npy`.
struct npy_array {
  selmask::shape extents;
  std::vector<float> values;
};

/// Reads a float32, C-order `.npy` file (as `write_npy` writes them).
inline npy_array read_npy(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  const auto fail = [&](const std::string& what) -> npy_array {
    throw io_error("selmask::io::read_npy: " + path.string() + ": " + what);
  };
  if (bytes.size() < 10 || std::string_view(bytes).substr(0, 6) != std::string_view("\x93NUMPY", 6)) {
    return fail("not an .npy file (no \\x93NUMPY magic)");
  }
  if (bytes[6] != 1) {
    return fail("NPY format version " + std::to_string(static_cast<int>(bytes[6])) + " (only 1.0 is read)");
  }
  const std::size_t hlen = static_cast<unsigned char>(bytes[8]) |
                           (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
  if (bytes.size() < 10 + hlen) {
    return fail("truncated header (" + std::to_string(bytes.size()) + " bytes, header of " +
                std::to_string(hlen) + ")");
  }
  const std::string header = bytes.substr(10, hlen);
  if (header.find("'descr': '<f4'") == std::string::npos) {
    return fail("not little-endian float32 data (header " + header + ")");
  }
  if (header.find("'fortran_order': False") == std::string::npos) {
    return fail("Fortran-order data (only C order is read)");
  }
  const std::size_t open = header.find("'shape': (");
  const std::size_t close = open == std::string::npos ? open : header.find(')', open);
  if (close == std::string::npos) {
    return fail("no shape in the header");
  }
  std::vector<std::size_t> dims;
  const std::string list = header.substr(open + 10, close - open - 10);
  for (std::size_t i = 0; i < list.size();) {
    if (list[i] == ' ' || list[i] == ',') {
      ++i;
      continue;
    }
    if (list[i] < '0' || list[i] > '9') {
      return fail("bad shape (" + list + ")");
    }
    std::size_t v = 0;
    for (; i < list.size() && list[i] >= '0' && list[i] <= '9'; ++i) {
      if (v > (std::size_t{1} << 40)) {
        return fail("shape too large (" + list + ")");
      }
      v = v * 10 + static_cast<std::size_t>(list[i] - '0');
    }
    dims.push_back(v);
  }
  if (dims.size() > selmask::shape::max_rank) {
    return fail("rank " + std::to_string(dims.size()) + " (at most 6)");
  }
  const std::size_t data = bytes.size() - 10 - hlen;
  std::size_t n = 1;
  for (std::size_t d : dims) {
    if (d != 0 && n > data / d) {
      return fail("shape (" + list + ") needs more data than the file's " + std::to_string(data) + " bytes");
    }
    n *= d;
  }
  npy_array a{selmask::shape(dims.begin(), dims.end()), {}};
  if (data != n * sizeof(float)) {
    return fail(std::to_string(data) + " bytes of data for shape " + a.extents.str() + " (" +
                std::to_string(n * sizeof(float)) + " expected)");
  }
  a.values.resize(n);
  if (n != 0) {
    std::memcpy(a.values.data(), bytes.data() + 10 + hlen, data);
  }
  return a;
}

} // namespace selmask::io
