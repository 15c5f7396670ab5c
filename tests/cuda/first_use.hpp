#pragma once
// What first_use.cu exposes to the host-compiled test: the CUDA backend's first use, with or
// without a device.

#include <cstddef>
#include <vector>

namespace selmask_first_use {

/// selmask::cuda::device_count().
int device_count();
/// selmask::cuda::zeros({3}) brought back to the host: the first operation that touches CUDA.
std::vector<float> first_allocation();
/// Default-constructs, copies and moves selmask::cuda tensors; returns the copy's size. Makes no
/// CUDA call, so it works without a device.
std::size_t empty_tensors();

} // namespace selmask_first_use
