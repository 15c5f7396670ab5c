#pragma once
// The entry point of a fuzz harness. Built on its own (scripts/fuzz.sh, clang's libFuzzer) a
// harness defines libFuzzer's LLVMFuzzerTestOneInput; built with SELMASK_FUZZ_REPLAY (the
// fuzz_replay program of the test suite) it defines selmask_fuzz_<name> and registers it by
// name, so that one program replays the corpora of every harness (tests/fuzz/replay_main.cpp).
//
// A harness feeds the bytes to one parser and swallows only selmask::error (the library's
// documented exceptions); anything else — another exception, a crash, a sanitizer report, a
// hang or an allocation beyond the fuzzer's limit — is a finding.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>

namespace selmask_fuzz {

using harness = int (*)(const std::uint8_t*, std::size_t);

inline std::map<std::string, harness>& harnesses() {
  static std::map<std::string, harness> all;
  return all;
}

inline bool add_harness(const char* name, harness h) {
  harnesses()[name] = h;
  return true;
}

/// A directory of this process for scratch files (in /dev/shm where there is one), made once.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::error_code ec;
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec)
                                         ? std::filesystem::path("/dev/shm")
                                         : std::filesystem::temp_directory_path();
    const std::filesystem::path d = base / ("selmask-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

/// Writes `bytes` to the scratch file `name` (replacing it) and returns its path.
inline std::filesystem::path scratch_file(const std::string& name, std::string_view bytes) {
  const std::filesystem::path p = scratch_dir() / name;
  std::ofstream os(p, std::ios::binary | std::ios::trunc);
  os.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  os.close();
  if (!os) {
    std::abort(); // the harness cannot work without its scratch file
  }
  return p;
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// Splits off the text up to the first '\n' of `rest` (the rest after it stays in `rest`).
inline std::string_view take_line(std::string_view& rest) {
  const std::size_t nl = rest.find('\n');
  const std::string_view line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  return line;
}

} // namespace selmask_fuzz

#ifdef SELMASK_FUZZ_REPLAY
#define SELMASK_FUZZ_HARNESS(name)                                                                           \
  static int selmask_fuzz_##name(const std::uint8_t* data, std::size_t size);                                \
  [[maybe_unused]] static const bool selmask_fuzz_added_##name =                                             \
    selmask_fuzz::add_harness(#name, &selmask_fuzz_##name);                                                  \
  static int selmask_fuzz_##name(const std::uint8_t* data, std::size_t size)
#else
#define SELMASK_FUZZ_HARNESS(name)                                                                           \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
#endif
