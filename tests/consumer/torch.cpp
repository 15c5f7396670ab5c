// An outside project that uses selmask::torch (where the installed selmask has it): the same pixel
// mask as core.cpp on the ATen backend, then a frozen torch network's input gradient.
#include <selmask/libtorch/model.hpp>

#include <selmask/core.hpp>

#include <cstdio>
#include <vector>

int main() {
  using B = selmask::aten;
  using pixel_masks = selmask::pipeline<selmask::any_mask<selmask::pixel>>;
  pixel_masks::on<B> p(selmask::shape{2, 2, 2});
  p.stage<0>().set_logits(B::from_host(selmask::shape{1, 1, 2, 2}, std::vector<float>{3, -3, -3, 3}));
  const auto x = B::from_host(selmask::shape{1, 2, 2, 2}, std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8});
  const auto r = p.forward(x);
  const std::vector<float> expected{1, 0, 0, 4, 5, 0, 0, 8};
  // logits = Σ of the 8 inputs, so ∂logits/∂x is 1 everywhere
  torch::nn::Linear sum(torch::nn::LinearOptions(8, 1).bias(false));
  {
    const torch::NoGradGuard no_grad;
    sum->weight.fill_(1.0f);
  }
  selmask::torch_network<B, torch::nn::Sequential> net{torch::nn::Sequential(torch::nn::Flatten(), sum)};
  net.forward(r.output);
  const auto g = B::to_host(net.backward(B::from_host(selmask::shape{1, 1}, std::vector<float>{1})));
  if (r.q != 0.5 || B::to_host(r.output) != expected || g != std::vector<float>(8, 1.0f)) {
    std::printf("consumer_torch FAILED: q=%f\n", r.q);
    return 1;
  }
  std::printf("consumer_torch ok\n");
  return 0;
}
