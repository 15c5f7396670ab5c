// The CUDA backend's code on the host emulator (selmask::cuda_host_emulation) against the CPU
// backend, every scenario of parity_scenarios.hpp. Plain C++: built and run in every build, the
// sanitizer build included, with or without the CUDA toolkit (ctest test_cuda_emulated).
#include <catch2/catch.hpp>

#include <string>

#include "parity_check.hpp"
#include "parity_scenarios.hpp"

using namespace selmask_parity;

TEST_CASE("cuda backend on the host emulator matches the cpu backend", "[emulated]") {
  const std::uint64_t seed = Catch::rngSeed();
  for (const std::string& name : scenario_names()) {
    DYNAMIC_SECTION(name) { check_parity(run_cpu(name, seed), run_emulated(name, seed)); }
  }
}
