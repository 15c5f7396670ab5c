#pragma once
/// \file tests/temp_dir.hpp (support code of the tests; not installed)
/// `selmask_test::temp_dir`: a scratch directory for one test, with no selmask header behind it,
/// so that light test files need not include support.hpp.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include <unistd.h>

namespace selmask_test {

/// A fresh directory under the system's temporary directory, removed with its content at the end
/// of the scope. The name holds the process id: test programs run in parallel by ctest share the
/// random seed, and a name from the seeded generator alone made two of them use (and remove) the
/// same directory. An existing directory is never reused.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    static std::uint64_t counter = 0;
    const std::string stem = "selmask_test_" + std::to_string(::getpid()) + "_";
    do {
      path = std::filesystem::temp_directory_path() / (stem + std::to_string(counter++));
    } while (!std::filesystem::create_directory(path));
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::filesystem::path operator/(const std::string& name) const { return path / name; }
  /// Writes `bytes` to the file `name` in the directory and returns its path.
  std::filesystem::path put(const std::string& name, std::string_view bytes) const {
    std::ofstream os(path / name, std::ios::binary);
    os.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path / name;
  }
};

} // namespace selmask_test
