// Fuzz harness: weights and masks files (nn/weights_file.hpp: read_weights_bytes, the parser of
// read_weights_file; the trainer's .weights and .masks checkpoints are both such files).

#include <selmask/nn/weights_file.hpp>

#include "fuzz.hpp"

SELMASK_FUZZ_HARNESS(weights) {
  try {
    const auto tensors = selmask::nn::read_weights_bytes(std::span<const unsigned char>(data, size), "fuzz");
    for (const auto& t : tensors) {
      if (t.values.size() != t.dims.size()) {
        std::abort(); // a tensor whose values do not fill its shape
      }
    }
  } catch (const selmask::error&) {
  }
  return 0;
}
