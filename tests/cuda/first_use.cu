// The first use of selmask::cuda, for test_cuda.cpp's "[first_use]" test (which runs on every
// machine): without a device it must throw selmask::cuda_error, with one it must allocate.
#include <selmask/backend/cuda/cuda.cuh>

#include <utility>

#include "first_use.hpp"

namespace selmask_first_use {

int device_count() { return selmask::cuda::device_count(); }

std::vector<float> first_allocation() {
  const auto t = selmask::cuda::zeros(selmask::shape{3});
  return selmask::cuda::to_host(t);
}

std::size_t empty_tensors() {
  selmask::cuda::tensor a;
  selmask::cuda::tensor b = a;
  selmask::cuda::tensor c = std::move(b);
  a = c;
  return a.size() + c.size();
}

} // namespace selmask_first_use
