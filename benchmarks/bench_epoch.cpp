// One workload, timed the way benchmarks/pytorch_epoch.py times the same workload in PyTorch:
// LeNet + a pixel(any) mask (straight-through sigmoid) on Fashion-MNIST, batch 128, AdamW with
// AMSGrad for the network (lr 1e-3, betas 0.5/0.999, weight decay 1e-4) and the mask (lr 5e-3,
// weight decay 1e-7), loss = cross-entropy + λ·Q with λ = 0.05, data pre-loaded in memory.
// Prints one line per epoch and a final `key=value` summary that scripts/bench.py reads.
// bench_epoch_torch compiles this file with SELMASK_BENCH_TORCH defined: the same workload with
// the same LeNet written in libtorch's C++ frontend, trained by torch's AdamW (same settings),
// through selmask::torch_model — the cost of bringing a libtorch network to selmask.
//
//   bench_epoch [--epochs E] [--train-limit N] [--seed S]
#if defined(SELMASK_BENCH_TORCH)
#include <selmask/libtorch/model.hpp> // the libtorch headers first (selmask/libtorch/glog_check.hpp)
#endif
#include <selmask/io/fashion_mnist.hpp>
#include <selmask/nn/adamw.hpp>
#include <selmask/nn/lenet.hpp>
#include <selmask/selmask.hpp>

#include <chrono>
#include <cstdio>
#include <string>

#if defined(SELMASK_BENCH_TORCH)
namespace {
/// LeNet in the C++ frontend, torch's default initialisation, AdamW as selmask's network kit has it.
auto torch_lenet(std::uint64_t seed) {
  namespace tn = torch::nn;
  torch::manual_seed(seed);
  tn::Sequential net(tn::Conv2d(tn::Conv2dOptions(1, 20, 5)), tn::ReLU(), tn::MaxPool2d(2),
                     tn::Conv2d(tn::Conv2dOptions(20, 50, 5)), tn::ReLU(), tn::MaxPool2d(2), tn::Flatten(),
                     tn::Linear(800, 500), tn::ReLU(), tn::Linear(500, 10));
  return selmask::torch_model<selmask::cpu, tn::Sequential>(net, selmask::torch_adamw(net->parameters()));
}
} // namespace
#endif

int main(int argc, char** argv) try {
  using B = selmask::cpu;
  std::size_t epochs = 1, limit = 0;
  std::uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--epochs")
      epochs = std::stoul(argv[i + 1]);
    else if (k == "--train-limit")
      limit = std::stoul(argv[i + 1]);
    else if (k == "--seed")
      seed = std::stoull(argv[i + 1]);
  }
  const auto data = selmask::io::load_fashion_mnist(selmask::io::fashion_mnist_default_dir, limit);
  const auto& train = data.train;

  using pipe = selmask::pipeline<selmask::any_mask<selmask::pixel>>;
  pipe::on<B> mask(train.sample, seed);
#if defined(SELMASK_BENCH_TORCH)
  auto net = torch_lenet(seed);
  const char* side = "torch adapter";
#else
  selmask::nn::lenet<B> net(seed);
  const char* side = "selmask";
#endif
  selmask::nn::adamw<B> mask_opt(selmask::adamw_hyper{5e-3f, 0.5f, 0.999f, 1e-8f, 1e-7f, true});
  mask.for_each_mask([&](auto& m) { mask_opt.add(m.logits_for_update(), m.grad_for_update()); });
  const float lambda = 0.05f;

  selmask::io::batch_sampler sampler(train.size(), 128, true, seed);
  std::vector<float> xh;
  std::vector<std::int32_t> yh;
  B::tensor dlogits;
  double total = 0.0, mask_seconds = 0.0;
  double loss = 0.0;
  for (std::size_t e = 0; e < epochs; ++e) {
    sampler.set_epoch(e);
    const auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0.0;
    for (std::size_t b = 0; b < sampler.batches(); ++b) {
      const auto idx = sampler.batch(b);
      const selmask::shape bs = selmask::io::gather_batch(train, idx, xh, yh); // fills xh first
      const auto x = B::from_host(bs, xh);
      mask_opt.zero_grad();
      net.zero_grad();
      const auto m0 = std::chrono::steady_clock::now();
      const auto fr = mask.forward(x);
      const auto m1 = std::chrono::steady_clock::now();
      const auto& logits = net.forward(fr.output);
      loss_sum += B::softmax_cross_entropy(logits, yh, dlogits).loss_sum;
      const auto& gx = net.backward(dlogits);
      const auto m2 = std::chrono::steady_clock::now();
      mask.backward(gx, lambda);
      mask_opt.step();
      const auto m3 = std::chrono::steady_clock::now();
      net.step();
      mask_seconds +=
        std::chrono::duration<double>(m1 - m0).count() + std::chrono::duration<double>(m3 - m2).count();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    total += s;
    loss = loss_sum / static_cast<double>(train.size());
    std::printf("%s epoch %zu: %.2f s, %.0f images/s, train loss %.4f\n", side, e + 1, s,
                static_cast<double>(train.size()) / s, loss);
  }
  // test accuracy through the hard mask
  const auto [acc, q] = selmask::evaluate(mask, net, data.test, 500);
  std::printf("epoch_seconds=%.4f\nimages_per_second=%.1f\ntest_accuracy=%.4f\nq=%.4f\nmask_share=%.4f\n",
              total / static_cast<double>(epochs), static_cast<double>(train.size() * epochs) / total, acc, q,
              mask_seconds / total);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_epoch: %s\n", e.what());
  return 1;
}
