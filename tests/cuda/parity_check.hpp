#pragma once
// check_parity: every output of a scenario on one backend against the same output on another
// (names, shapes, and values within the output's tolerance). Shared by test_cuda_emulated.cpp and
// test_cuda.cpp.
#include <catch2/catch.hpp>

#include <cstddef>

#include "parity_scenarios.hpp"

namespace selmask_parity {

inline void check_parity(const outputs& expected, const outputs& actual) {
  REQUIRE(expected.size() == actual.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const output& e = expected[i];
    const output& a = actual[i];
    INFO("output " << e.name);
    REQUIRE(e.name == a.name);
    CHECK(e.dims.str() == a.dims.str());
    const auto report = selmask::testing::compare_values(e.values, a.values, e.tolerance);
    INFO(report.message);
    CHECK(report.ok);
  }
}

} // namespace selmask_parity
