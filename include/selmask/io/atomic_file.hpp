#pragma once
/// \file io/atomic_file.hpp
/// Whole files: `selmask::io::write_file_atomically` replaces a file's content all at once or not
/// at all, and `read_file` reads a whole file into memory (with an `io_error` naming the file).
///
/// The content is written to a temporary file in the target's directory (so the final step is a
/// rename within one file system), flushed and checked, and only then renamed over the target.
/// A reader therefore sees either the old file or the complete new one, never a half-written
/// file; if the writer throws, or any write fails, the temporary is removed, the old file (if
/// any) is left untouched and the exception propagates (write failures become `io_error`).
/// Everything selmask writes (CSV tables, PNGs, IDX files, checkpoints, fronts) goes through
/// here. The temporary is named `.<name>.tmp-<random>` and lives next to the target.
///
/// Not provided: `fsync` (the standard library has none); the rename is atomic, durability after
/// a power cut is up to the file system.

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <ios>
#include <iterator>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "../error.hpp"

namespace selmask::io {

namespace detail {

/// A fresh temporary path next to `target`: `.<name>.tmp-<16 hex digits>`.
inline std::filesystem::path temporary_sibling(const std::filesystem::path& target) {
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t r = std::random_device{}();
  r = (r << 32) ^ static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  r ^= counter.fetch_add(1) * 0x9e3779b97f4a7c15ULL;
  static constexpr char hex[] = "0123456789abcdef";
  std::string suffix(16, '0');
  for (std::size_t i = 0; i < 16; ++i) {
    suffix[15 - i] = hex[(r >> (4 * i)) & 0xfU];
  }
  return target.parent_path() / ("." + target.filename().string() + ".tmp-" + suffix);
}

} // namespace detail

/// Writes `path` atomically: `write(os)` fills a temporary file through `os` (opened in binary
/// mode), which then replaces `path` by a rename.
///
/// Requires: `path` names a file (not a directory) in an existing directory.
/// Ensures: on return, `path` holds exactly what `write` wrote; on an exception (thrown by `write`,
/// or `io_error` for a failed open/write/rename) `path` is unchanged and no temporary remains.
template <class Write>
requires std::invocable<Write&, std::ostream&>
void write_file_atomically(const std::filesystem::path& path, Write&& write) {
  namespace fs = std::filesystem;
  const std::string where = "selmask::io::write_file_atomically: '" + path.string() + "': ";
  if (path.filename().empty()) {
    throw io_error(where + "the path does not name a file");
  }
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw io_error(where + "directory '" + dir.string() + "' does not exist");
  }
  if (fs::is_directory(path, ec)) {
    throw io_error(where + "is a directory");
  }

  fs::path tmp = detail::temporary_sibling(path);
  for (int tries = 0; fs::exists(tmp, ec) && tries < 16; ++tries) {
    tmp = detail::temporary_sibling(path);
  }
  try {
    {
      std::ofstream os(tmp, std::ios::binary | std::ios::trunc);
      if (!os) {
        throw io_error(where + "cannot create the temporary file '" + tmp.string() + "'");
      }
      write(static_cast<std::ostream&>(os));
      os.flush();
      if (!os) {
        throw io_error(where + "writing the temporary file '" + tmp.string() + "' failed");
      }
      os.close();
      if (os.fail()) {
        throw io_error(where + "closing the temporary file '" + tmp.string() + "' failed");
      }
    }
    fs::rename(tmp, path, ec);
    if (ec) {
      throw io_error(where + "renaming the temporary file over it failed: " + ec.message());
    }
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

/// Writes `bytes` as the whole content of `path`, atomically (see above).
inline void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  write_file_atomically(
    path, [bytes](std::ostream& os) { os.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); });
}

/// The whole content of `path` as bytes. Throws `io_error` naming the file when it is missing,
/// is a directory, or cannot be read.
inline std::string read_file(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  const std::string where = "selmask::io::read_file: '" + path.string() + "': ";
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw io_error(where + "no such file");
  }
  if (fs::is_directory(path, ec)) {
    throw io_error(where + "is a directory, not a file");
  }
  std::ifstream is(path, std::ios::binary);
  if (!is) {
    throw io_error(where + "cannot be opened for reading");
  }
  std::string bytes{std::istreambuf_iterator<char>(is), std::istreambuf_iterator<char>()};
  if (is.bad()) {
    throw io_error(where + "reading failed");
  }
  return bytes;
}

} // namespace selmask::io
