// Tests of the CUDA backend that need nvcc (the emulated parity test, which does not, is
// test_cuda_emulated.cpp).
//  [first_use]  the first use: cuda_error "no CUDA device found" without a device, a working
//               allocation with one (no GPU needed; runs everywhere)
//  [cuda]       the CUDA backend on the GPU against the CPU backend, every scenario (needs a
//               GPU: ctest label "cuda", fails without one)
#include <catch2/catch.hpp>

#include <selmask/backend/cuda/error.hpp>

#include <string>

#include "first_use.hpp"
#include "parity_check.hpp"
#include "parity_scenarios.hpp"

using namespace selmask_parity;

namespace {

std::uint64_t seed() { return Catch::rngSeed(); }

} // namespace

TEST_CASE("cuda backend on the GPU matches the cpu backend", "[cuda]") {
  REQUIRE(selmask_first_use::device_count() > 0); // never pass without a device
  for (const std::string& name : scenario_names()) {
    DYNAMIC_SECTION(name) { check_parity(run_cpu(name, seed()), run_device(name, seed())); }
  }
}

TEST_CASE("cuda backend: the first use throws cuda_error without a device and allocates with one",
          "[first_use]") {
  CHECK(selmask_first_use::empty_tensors() == 0); // no CUDA call: fine on every machine
  if (selmask_first_use::device_count() == 0) {
    WARN("no CUDA device: checking that the first use throws selmask::cuda_error");
    for (int attempt = 0; attempt < 2; ++attempt) { // and again on the next use
      try {
        (void)selmask_first_use::first_allocation();
        FAIL("selmask::cuda::zeros did not throw without a CUDA device");
      } catch (const selmask::cuda_error& e) {
        const std::string what = e.what();
        INFO(what);
        CHECK(what.rfind("selmask::cuda: no CUDA device found: ", 0) == 0);
        CHECK(what.size() > std::string("selmask::cuda: no CUDA device found: ").size());
      }
    }
    CHECK_THROWS_AS(selmask_first_use::first_allocation(), selmask::error); // a selmask::error
  } else {
    WARN("CUDA device present: checking that the first allocation works");
    CHECK(selmask_first_use::first_allocation() == std::vector<float>{0.0f, 0.0f, 0.0f});
  }
}
