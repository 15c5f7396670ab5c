// The parity scenarios on selmask::cuda_host_emulation: the CUDA backend's code (argument
// checks, launch sizes, kernel bodies, the GEMM mapping) run on the host. Compiled by the host
// compiler: needs no GPU and no CUDA toolkit, so it runs in the sanitizer build too.
#include <selmask/backend/cuda/host_emulator.hpp>

#include "parity_scenarios.hpp"

namespace selmask_parity {

outputs run_emulated(const std::string& name, std::uint64_t seed) {
  return run<selmask::cuda_host_emulation>(name, seed);
}

} // namespace selmask_parity
