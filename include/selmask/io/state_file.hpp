#pragma once
/// \file io/state_file.hpp
/// `io::state_file`: named records of bytes, written atomically with a checksum — the file a
/// training run keeps its whole state in (train/resume.hpp), so that a run killed at any moment
/// continues where its last state was written. Records hold raw values (floats and doubles as
/// their bytes), so a state read back restores every number bit for bit.
///
/// Layout (integers little-endian; the values inside a record are the host's, which must be a
/// little-endian machine — checked on write and read):
///
/// | bytes     | content                                                      |
/// |-----------|--------------------------------------------------------------|
/// | 8         | magic `SELMASKS`                                             |
/// | 4 (u32)   | format version (`state_format_version`, now 1)               |
/// | 4 (u32)   | number of records R (≤ `max_state_records`)                  |
/// | R times   | u32 name length (1..255), the name, u64 length L, L bytes    |
/// | 4 (u32)   | CRC-32 (zlib's `crc32`) of every byte before it              |
///
/// `record_writer` / `record_reader` build and take apart one record from numbers, strings and
/// float arrays; a reader that runs past its record's end, or a record left with bytes unread when
/// the owner expected none, throws `io_error` naming the record.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "../error.hpp"
#include "../nn/weights_file.hpp"
#include "../shape.hpp"
#include "atomic_file.hpp"

namespace selmask::io {

inline constexpr char state_magic[8] = {'S', 'E', 'L', 'M', 'A', 'S', 'K', 'S'};
inline constexpr std::uint32_t state_format_version = 1;
inline constexpr std::uint32_t max_state_records = 1u << 20;

/// Appends numbers, strings and arrays to one record's bytes.
class record_writer {
public:
  template <class T>
  requires std::is_trivially_copyable_v<T> record_writer& put(const T& v) {
    const auto* p = reinterpret_cast<const char*>(&v);
    bytes_.append(p, sizeof(T));
    return *this;
  }
  record_writer& put_string(std::string_view s) {
    put(static_cast<std::uint64_t>(s.size()));
    bytes_.append(s.data(), s.size());
    return *this;
  }
  template <class T>
  requires std::is_trivially_copyable_v<T> record_writer& put_array(std::span<const T> v) {
    put(static_cast<std::uint64_t>(v.size()));
    bytes_.append(reinterpret_cast<const char*>(v.data()), v.size_bytes());
    return *this;
  }
  record_writer& put_shape(const shape& s) {
    put(static_cast<std::uint32_t>(s.rank()));
    for (const std::size_t e : s) {
      put(static_cast<std::uint64_t>(e));
    }
    return *this;
  }
  /// A tensor of backend `B`: its shape, then its values.
  template <class B, class Tensor>
  record_writer& put_tensor(const Tensor& t) {
    put_shape(B::shape_of(t));
    const std::vector<float> v = B::to_host(t);
    return put_array(std::span<const float>(v));
  }
  [[nodiscard]] const std::string& bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::string take() { return std::move(bytes_); }

private:
  std::string bytes_;
};

/// Takes one record apart in the order it was written; every read is bounds-checked.
class record_reader {
public:
  record_reader(std::string_view bytes, std::string name) : bytes_(bytes), name_(std::move(name)) {}
  template <class T>
  requires std::is_trivially_copyable_v<T> T get() {
    need(sizeof(T), "a value");
    T v;
    std::memcpy(&v, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::string get_string() {
    const auto n = get<std::uint64_t>();
    need(n, "a string");
    std::string s(bytes_.substr(at_, n));
    at_ += n;
    return s;
  }
  template <class T>
  requires std::is_trivially_copyable_v<T> std::vector<T> get_array() {
    const auto n = get<std::uint64_t>();
    if (n > (bytes_.size() - at_) / sizeof(T)) {
      fail("an array of " + std::to_string(n) + " values runs past the record's end");
    }
    std::vector<T> v(n);
    std::memcpy(v.data(), bytes_.data() + at_, n * sizeof(T));
    at_ += n * sizeof(T);
    return v;
  }
  shape get_shape() {
    const auto rank = get<std::uint32_t>();
    if (rank > shape::max_rank) {
      fail("a shape of rank " + std::to_string(rank) + " (at most " + std::to_string(shape::max_rank) + ")");
    }
    std::vector<std::size_t> extents(rank);
    for (auto& e : extents) {
      e = static_cast<std::size_t>(get<std::uint64_t>());
    }
    return shape(extents.begin(), extents.end());
  }
  /// Reads a tensor written by `put_tensor<B>` into `t`, which must have the stored shape
  /// (`what` names it in the error).
  template <class B, class Tensor>
  void get_tensor_into(Tensor& t, const std::string& what) {
    const shape s = get_shape();
    const std::vector<float> v = get_array<float>();
    if (!(s == B::shape_of(t)) || v.size() != s.size()) {
      fail(what + " has shape " + s.str() + " (" + std::to_string(v.size()) + " values) in the state, " +
           B::shape_of(t).str() + " here");
    }
    B::copy(B::from_host(s, v), t);
  }
  /// Throws unless every byte was read.
  void finish() const {
    if (at_ != bytes_.size()) {
      fail(std::to_string(bytes_.size() - at_) + " bytes left over");
    }
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw io_error("selmask::io::state_file: record '" + name_ + "': " + what);
  }

private:
  void need(std::uint64_t n, const char* what) const {
    if (n > bytes_.size() - at_) {
      fail(std::string(what) + " of " + std::to_string(n) + " bytes runs past the record's end");
    }
  }
  std::string_view bytes_;
  std::string name_;
  std::size_t at_ = 0;
};

/// Named records of bytes (sorted by name), read from and written to one file.
class state_file {
public:
  void put(const std::string& name, std::string bytes) {
    if (name.empty() || name.size() > 255) {
      throw value_error("selmask::io::state_file: a record name has 1..255 characters, got '" + name + "'");
    }
    records_[name] = std::move(bytes);
  }
  void put(const std::string& name, record_writer&& w) { put(name, w.take()); }
  [[nodiscard]] bool has(const std::string& name) const { return records_.count(name) != 0; }
  /// The bytes of record `name`; `io_error` when the file has none of that name.
  [[nodiscard]] const std::string& bytes(const std::string& name) const {
    const auto it = records_.find(name);
    if (it == records_.end()) {
      throw io_error("selmask::io::state_file: " + where_ + "no record '" + name + "'");
    }
    return it->second;
  }
  [[nodiscard]] record_reader reader(const std::string& name) const { return {bytes(name), name}; }
  [[nodiscard]] const std::map<std::string, std::string>& records() const noexcept { return records_; }

  /// The file's bytes (layout above).
  [[nodiscard]] std::string serialise() const {
    check_host();
    std::vector<unsigned char> out(state_magic, state_magic + 8);
    nn::detail::put_le(out, state_format_version);
    nn::detail::put_le(out, static_cast<std::uint32_t>(records_.size()));
    for (const auto& [name, value] : records_) {
      nn::detail::put_le(out, static_cast<std::uint32_t>(name.size()));
      out.insert(out.end(), name.begin(), name.end());
      nn::detail::put_le(out, static_cast<std::uint64_t>(value.size()));
      out.insert(out.end(), value.begin(), value.end());
    }
    nn::detail::put_le(out, nn::detail::crc32_of(out.data(), out.size()));
    return {out.begin(), out.end()};
  }
  /// Writes the state atomically: `path` holds the old state or the new one, never a mixture.
  void write(const std::filesystem::path& path) const { write_file_atomically(path, serialise()); }

  /// Parses a state file's bytes; `io_error` naming `source` and what is wrong (magic, version,
  /// counts or lengths past the end, trailing bytes, checksum).
  static state_file parse(std::string_view b, const std::string& source = "state") {
    check_host();
    const std::string where = "selmask::io::state_file: " + source + ": ";
    std::size_t at = 0;
    std::size_t limit = b.size(); // the checksum's 4 bytes once the header is read
    const auto need = [&](std::uint64_t n, const std::string& what) {
      if (at > limit || n > limit - at) {
        throw io_error(where + "truncated: " + what + " needs " + std::to_string(n) + " bytes, " +
                       std::to_string(at > limit ? 0 : limit - at) + " are left");
      }
    };
    const auto u32 = [&](const char* what) {
      need(4, what);
      std::uint32_t v = 0;
      for (int i = 3; i >= 0; --i) {
        v = (v << 8) | static_cast<unsigned char>(b[at + static_cast<std::size_t>(i)]);
      }
      at += 4;
      return v;
    };
    const auto u64 = [&](const char* what) {
      const std::uint64_t lo = u32(what);
      return lo | (static_cast<std::uint64_t>(u32(what)) << 32);
    };
    need(8, "the magic");
    if (std::memcmp(b.data(), state_magic, 8) != 0) {
      throw io_error(where + "not a selmask state file (wrong magic)");
    }
    at = 8;
    const std::uint32_t version = u32("the version");
    if (version != state_format_version) {
      throw io_error(where + "format version " + std::to_string(version) + ", this selmask reads version " +
                     std::to_string(state_format_version));
    }
    if (b.size() < 8 + at) {
      throw io_error(where + "truncated: no record count and checksum");
    }
    limit = b.size() - 4;
    const auto* data = reinterpret_cast<const unsigned char*>(b.data());
    std::uint32_t stored = 0;
    for (int i = 3; i >= 0; --i) {
      stored = (stored << 8) | data[b.size() - 4 + static_cast<std::size_t>(i)];
    }
    if (nn::detail::crc32_of(data, b.size() - 4) != stored) {
      throw io_error(where + "checksum mismatch (the file is corrupt or was cut short)");
    }
    const std::uint32_t records = u32("the record count");
    if (records > max_state_records) {
      throw io_error(where + "record count " + std::to_string(records) + " exceeds " +
                     std::to_string(max_state_records));
    }
    const std::string_view body = b.substr(0, b.size() - 4);
    state_file s;
    s.where_ = source + ": ";
    for (std::uint32_t r = 0; r < records; ++r) {
      const std::string what = "record " + std::to_string(r);
      const std::uint32_t name_length = u32("a record's name length");
      if (name_length == 0 || name_length > 255) {
        throw io_error(where + what + " has a name of " + std::to_string(name_length) + " bytes (1..255)");
      }
      need(name_length, what + "'s name");
      std::string name(b.substr(at, name_length));
      at += name_length;
      const std::uint64_t length = u64("a record's length");
      need(length, "record '" + name + "'");
      if (s.records_.count(name) != 0) {
        throw io_error(where + "record '" + name + "' appears twice");
      }
      s.records_[name] = std::string(b.substr(at, length));
      at += length;
    }
    if (at != body.size()) {
      throw io_error(where + std::to_string(body.size() - at) + " unexpected bytes after the last record");
    }
    return s;
  }
  static state_file read(const std::filesystem::path& path) { return parse(read_file(path), path.string()); }

private:
  static void check_host() {
    if constexpr (std::endian::native != std::endian::little) {
      throw io_error("selmask::io::state_file: state files are written and read on little-endian hosts");
    }
  }
  std::map<std::string, std::string> records_;
  std::string where_;
};

} // namespace selmask::io
