// The parity scenarios on selmask::cuda, the GPU. Instantiating them here also proves that
// the masks, pipelines, nn::lenet and learn_selection_masks compile for the CUDA backend.
#include <selmask/cuda.cuh>

#include "parity_scenarios.hpp"

namespace selmask_parity {

outputs run_device(const std::string& name, std::uint64_t seed) {
  auto out = run<selmask::cuda>(name, seed);
  selmask::cuda::synchronize(); // surface asynchronous errors inside the scenario's section
  return out;
}

} // namespace selmask_parity
