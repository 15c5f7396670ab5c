// The CUDA backend's code on the host emulator (selmask::cuda_host_emulation) against the CPU
// backend, every scenario of parity_scenarios.hpp. Plain C++: built and run in every build, the
// sanitizer build included, with or without the CUDA toolkit (ctest test_cuda_emulated). Also the
// text of the "no kernel image" cuda_error (plain C++ in backend/cuda/error.hpp).
#include <catch2/catch.hpp>

#include <selmask/backend/cuda/error.hpp>

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

TEST_CASE("cuda_error: a missing kernel image names the device's and the compiled architectures",
          "[cuda_error]") {
  const int archs[] = {750, 800, 1200};
  const std::string compiled = selmask::detail::cuda_architectures_text(archs);
  CHECK(compiled == "sm_75, sm_80, sm_120");
  CHECK(selmask::detail::cuda_architectures_text({}) == "unknown architectures");
  const std::string what = selmask::detail::no_kernel_image_text("NVIDIA GeForce GTX 1080", 6, 1, compiled);
  INFO(what);
  CHECK(what.find("NVIDIA GeForce GTX 1080 is sm_61 (compute capability 6.1)") != std::string::npos);
  CHECK(what.find("compiled for sm_75, sm_80, sm_120") != std::string::npos);
  CHECK(what.find("-DCMAKE_CUDA_ARCHITECTURES=61") != std::string::npos);
}
