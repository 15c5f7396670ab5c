#pragma once
// A small residual network written with libtorch's C++ frontend, for 1×28×28 images and 10 classes,
// and the model the main job trains when built with SELMASK_EXAMPLE_TORCH
// (fashion_mnist_pixels_torch): the network a user already has in libtorch, trained by a torch
// optimiser, its input masked by selmask (selmask::torch_model).
//
// stem conv 3×3 1→16, batch norm, ReLU; residual blocks of 16 (28×28), 32 (stride 2, 14×14) and
// 64 (stride 2, 7×7) channels, each conv → BN → ReLU → conv → BN plus the input (or its 1×1
// projection, with BN), then ReLU; global average pool; linear 64→10 (about 78,000 parameters).
// The trainer's validation and test passes call the adapter's infer, which runs the network in
// eval mode: batch normalisation then uses its running statistics, as it would in deployment.
#include <selmask/libtorch/model.hpp> // first: the libtorch headers (selmask/libtorch/glog_check.hpp)

#include <cstdint>

namespace example {

/// y = relu(bn2(conv2(relu(bn1(conv1(x))))) + skip(x)).
struct residual_blockImpl : torch::nn::Module {
  residual_blockImpl(std::int64_t in, std::int64_t out, std::int64_t stride)
    : conv1(register_module(
        "conv1",
        torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)))),
      bn1(register_module("bn1", torch::nn::BatchNorm2d(out))),
      conv2(register_module("conv2",
                            torch::nn::Conv2d(torch::nn::Conv2dOptions(out, out, 3).padding(1).bias(false)))),
      bn2(register_module("bn2", torch::nn::BatchNorm2d(out))) {
    if (in != out || stride != 1) {
      skip = register_module(
        "skip", torch::nn::Sequential(
                  torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)),
                  torch::nn::BatchNorm2d(out)));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor y = bn2(conv2(torch::relu(bn1(conv1(x)))));
    return torch::relu(y + (skip ? skip->forward(x) : x));
  }
  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  torch::nn::BatchNorm2d bn2;
  torch::nn::Sequential skip{nullptr};
};
TORCH_MODULE(residual_block);

struct small_resnetImpl : torch::nn::Module {
  small_resnetImpl()
    : stem(register_module(
        "stem",
        torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).padding(1).bias(false)),
                              torch::nn::BatchNorm2d(16), torch::nn::ReLU()))),
      blocks(
        register_module("blocks", torch::nn::Sequential(residual_block(16, 16, 1), residual_block(16, 32, 2),
                                                        residual_block(32, 64, 2)))),
      head(register_module("head", torch::nn::Linear(64, 10))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor h = blocks->forward(stem->forward(x));
    return head(h.mean({2, 3})); // global average pool
  }
  torch::nn::Sequential stem, blocks;
  torch::nn::Linear head;
};
TORCH_MODULE(small_resnet);

/// The network with parameters drawn from `seed`, and torch's AdamW with selmask's reference
/// settings (those of nn::sequential: lr 1e-3, β = (0.5, 0.999), eps 1e-8, weight decay 1e-4,
/// amsgrad), so that it trains under the main job's schedules as LeNet does.
template <class B>
selmask::torch_model<B, small_resnet> make_torch_resnet(std::uint64_t seed) {
  torch::manual_seed(seed);
  small_resnet net;
  return selmask::torch_model<B, small_resnet>(net, selmask::torch_adamw(net->parameters()));
}

} // namespace example
