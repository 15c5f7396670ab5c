// fuzz_replay HARNESS PATH...: runs the fuzz harness HARNESS (tests/fuzz/fuzz_HARNESS.cpp) on
// every file of the given directories (and on the given files), as libFuzzer replays a corpus,
// without libFuzzer: the test suite replays the corpora of tests/fuzz/corpus/ this way, in the
// release and the sanitizer builds. A finding shows as a crash, a sanitizer report or an
// exception other than selmask::error (which ends the program); an empty corpus is an error.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz.hpp"

namespace {

std::vector<std::uint8_t> read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

int main(int argc, char** argv) {
  const auto& all = selmask_fuzz::harnesses();
  if (argc < 3 || all.find(argv[1]) == all.end()) {
    std::fprintf(stderr, "usage: fuzz_replay HARNESS DIR_OR_FILE...\nharnesses:");
    for (const auto& [name, h] : all) {
      std::fprintf(stderr, " %s", name.c_str());
    }
    std::fprintf(stderr, "\n");
    return 2;
  }
  const selmask_fuzz::harness run = all.at(argv[1]);
  std::vector<std::filesystem::path> inputs;
  for (int i = 2; i < argc; ++i) {
    const std::filesystem::path p = argv[i];
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p)) {
        if (e.is_regular_file()) {
          inputs.push_back(e.path());
        }
      }
    } else if (std::filesystem::is_regular_file(p)) {
      inputs.push_back(p);
    } else {
      std::fprintf(stderr, "fuzz_replay: %s: no such file or directory\n", p.c_str());
      return 2;
    }
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    std::fprintf(stderr, "fuzz_replay: %s: no inputs to replay\n", argv[1]);
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t bytes = 0;
  for (const auto& p : inputs) {
    const std::vector<std::uint8_t> data = read_all(p);
    bytes += data.size();
    std::fprintf(stderr, "%s\n", p.filename().c_str()); // the input a finding belongs to
    run(data.data(), data.size());
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("fuzz_replay %s: %zu inputs (%zu bytes) in %.1f ms, no finding\n", argv[1], inputs.size(),
              bytes, ms);
  std::filesystem::remove_all(selmask_fuzz::scratch_dir());
  return 0;
}
