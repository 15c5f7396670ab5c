// The CPU side of the parity tests: the scenarios of parity_scenarios.hpp on selmask::cpu
// (compiled by the host compiler, the only translation unit of test_cuda that sees xtensor).
// GCC 12 reports a mask's empty cost policy (uniform_cost, no members) as "may be used
// uninitialized" when a configured mask is passed down inlined constructors: a false positive.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <selmask/backend/cpu/cpu.hpp>

#include "parity_scenarios.hpp"

namespace selmask_parity {

std::vector<std::string> scenario_names() {
  std::vector<std::string> names;
  for (const auto& s : scenarios<selmask::cpu>()) {
    names.push_back(s.first);
  }
  return names;
}

outputs run_cpu(const std::string& name, std::uint64_t seed) { return run<selmask::cpu>(name, seed); }

} // namespace selmask_parity
