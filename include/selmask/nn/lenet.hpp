#pragma once
/// \file nn/lenet.hpp
/// `nn::lenet<B>`: the LeNet-5 variant of the paper's MNIST / Fashion-MNIST experiments, for a
/// 1×28×28 input and 10 classes:
/// conv 1→20 5×5, ReLU, max-pool 2, conv 20→50 5×5, ReLU, max-pool 2, flatten,
/// dense 800→500, ReLU, dense 500→10 (431,080 parameters).
/// Each conv → ReLU → max-pool triple is one `conv_relu_pool` layer (same function, same
/// parameters; one pass over memory on the CPU), so the sequential has 6 layers.
///
/// ```cpp
/// nn::lenet<cpu> net(/*seed=*/7);
/// const auto& logits = net.forward(x);  // x: N×1×28×28 → N×10
/// ```

#include <cstdint>

#include "conv_relu_pool.hpp"
#include "dense.hpp"
#include "flatten.hpp"
#include "relu.hpp"
#include "sequential.hpp"

namespace selmask::nn {

/// The layer types of `lenet<B>`.
template <nn_backend B>
using lenet_sequential =
  sequential<B, conv_relu_pool<B>, conv_relu_pool<B>, flatten<B>, dense<B>, relu<B>, dense<B>>;

template <nn_backend B>
class lenet : public lenet_sequential<B> {
public:
  explicit lenet(const sequential_options& options = {})
    : lenet_sequential<B>(options, conv_relu_pool<B>(1, 20, 5), conv_relu_pool<B>(20, 50, 5), flatten<B>{},
                          dense<B>(800, 500), relu<B>{}, dense<B>(500, 10)) {}
  explicit lenet(std::uint64_t seed) : lenet(sequential_options{.seed = seed}) {}

  /// The shape of one input sample.
  [[nodiscard]] static shape input_shape() { return shape{1, 28, 28}; }
  static constexpr std::size_t classes = 10;
};

} // namespace selmask::nn
