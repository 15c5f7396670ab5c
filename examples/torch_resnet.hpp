#pragma once
// A small residual network written with libtorch's C++ frontend, for 1×28×28 images and 10 classes,
// and the model the main job trains when built with SELMASK_EXAMPLE_TORCH
// (fashion_mnist_pixels_torch): the network a user already has in libtorch, trained by a torch
// optimiser, its input masked by selmask (selmask::torch_model).
//
// stem conv 3×3 1→16, ReLU; residual blocks 16 (28×28), 32 (stride 2, 14×14), 64 (stride 2, 7×7);
// global average pool; linear 64→10 (about 76,000 parameters). No batch normalisation: the trainer
// evaluates validation and test batches with the same forward as training, and batch statistics
// would differ between the two; instead, as in Fixup (Zhang, Dauphin & Ma, ICLR 2019), the second
// convolution of every block starts at zero, so that each block starts as the identity (or its
// 1×1 projection) and the network trains stably without normalisation.
#include <selmask/libtorch/model.hpp> // first: the libtorch headers (selmask/libtorch/glog_check.hpp)

#include <cstdint>
#include <memory>

namespace example {

/// y = relu(conv2(relu(conv1(x))) + skip(x)), conv2 initialised to zero.
struct residual_blockImpl : torch::nn::Module {
  residual_blockImpl(std::int64_t in, std::int64_t out, std::int64_t stride)
    : conv1(register_module(
        "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1)))),
      conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(out, out, 3).padding(1)))) {
    if (in != out || stride != 1) {
      skip = register_module("skip", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).stride(stride)));
    }
    const torch::NoGradGuard no_grad;
    conv2->weight.zero_();
    conv2->bias.zero_();
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor y = conv2(torch::relu(conv1(x)));
    return torch::relu(y + (skip ? skip(x) : x));
  }
  torch::nn::Conv2d conv1, conv2;
  torch::nn::Conv2d skip{nullptr};
};
TORCH_MODULE(residual_block);

struct small_resnetImpl : torch::nn::Module {
  small_resnetImpl()
    : stem(register_module("stem", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).padding(1)))),
      blocks(
        register_module("blocks", torch::nn::Sequential(residual_block(16, 16, 1), residual_block(16, 32, 2),
                                                        residual_block(32, 64, 2)))),
      head(register_module("head", torch::nn::Linear(64, 10))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor h = blocks->forward(torch::relu(stem(x)));
    return head(h.mean({2, 3})); // global average pool
  }
  torch::nn::Conv2d stem;
  torch::nn::Sequential blocks;
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
  const selmask::adamw_hyper h;
  auto opt = std::make_unique<torch::optim::AdamW>(net->parameters(), torch::optim::AdamWOptions(h.lr)
                                                                        .betas({h.beta1, h.beta2})
                                                                        .eps(h.eps)
                                                                        .weight_decay(h.weight_decay)
                                                                        .amsgrad(h.amsgrad));
  return selmask::torch_model<B, small_resnet>(net, std::move(opt));
}

} // namespace example
