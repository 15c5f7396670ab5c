#pragma once
/// \file backend/cpu/cpu.hpp
/// `selmask::cpu`: the CPU tensor backend. Tensors are `xt::xarray<float>` (row-major), so CPU
/// users can hand selmask their xtensor arrays directly and read results back as xtensor arrays.
/// The primitives are written as plain loops over contiguous memory where that is what xtensor
/// would generate anyway and the cell index arithmetic would otherwise dominate.
///
/// This is the header to include. `selmask::cpu` is a struct of static member functions, put
/// together from one part per concern:
/// | header            | part                     | operations                                       |
/// |-------------------|--------------------------|--------------------------------------------------|
/// | common.hpp        | `detail::cpu_common`     | `tensor`, `shape_of`, `ensure_shape`             |
/// | tensor_ops.hpp    | `detail::cpu_tensor_ops` | memory, elementwise maps, sums, gather / scatter |
/// | cell_ops.hpp      | `detail::cpu_cell_ops`   | cell grids, grouped softmax, versions            |
/// | gemm.hpp          | `detail::cpu_gemm_ops`   | `gemm` on the thread pool                        |
/// | conv.hpp          | `detail::cpu_conv_ops`   | im2col / col2im, fused conv2d (+ ReLU + pool)    |
/// | layers.hpp        | `detail::cpu_layer_ops`  | bias, ReLU, max-pool, cross-entropy, AdamW       |
/// | rows.hpp          | `detail::cpu_rows`       | vectorisable row helpers of the convolutions     |
/// | parallel.hpp      | `cpu_parallel`           | the thread pool                                  |
/// | blas.hpp          | `blas`                   | what the backend checks about the BLAS library   |
///
/// The network kit's operations (`nn_backend`, backend/nn_backend.hpp documents each one) take
/// their workspaces as outputs and resize them only when their shape changes, so a training loop
/// allocates nothing per batch once the first batch has set the shapes.

#include <string_view>

#include "../backend.hpp"
#include "../nn_backend.hpp"
#include "cell_ops.hpp"
#include "common.hpp"
#include "conv.hpp"
#include "gemm.hpp"
#include "layers.hpp"
#include "tensor_ops.hpp"

namespace selmask {

struct cpu
  : detail::cpu_tensor_ops
  , detail::cpu_cell_ops
  , detail::cpu_gemm_ops
  , detail::cpu_conv_ops
  , detail::cpu_layer_ops {
  static constexpr std::string_view name = "cpu";
};

static_assert(tensor_backend<cpu>, "selmask::cpu must model selmask::tensor_backend");
static_assert(nn_backend<cpu>, "selmask::cpu must model selmask::nn_backend");

} // namespace selmask
