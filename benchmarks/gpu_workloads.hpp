#pragma once
// The workloads of bench_gpu, written once over a backend B: bench_gpu_cpu.cpp instantiates them
// for selmask::cpu (host compiler, xtensor), bench_gpu.cu for selmask::cuda (nvcc). This header
// includes neither xtensor nor CUDA.
//
//  - epoch: LeNet + a pixel(any) mask on Fashion-MNIST-sized synthetic data (1×28×28, 10
//    classes), batch 128, the workload of bench_epoch / pytorch_epoch.py: AdamW with AMSGrad for
//    the network (lr 1e-3) and the mask (lr 5e-3), loss = cross-entropy + λ·Q, λ = 0.05;
//  - mask: forward + backward (λ > 0, so Q's gradient too) of a mask pipeline alone, for a few
//    pipelines and input sizes.
// Times are wall-clock with the device synchronised before the clock is read.

#include <selmask/backend/nn_backend.hpp>
#include <selmask/granularity/granularity.hpp>
#include <selmask/io/dataset.hpp>
#include <selmask/mask/mask.hpp>
#include <selmask/nn/adamw.hpp>
#include <selmask/nn/lenet.hpp>
#include <selmask/ops/extend.hpp>
#include <selmask/ops/merge.hpp>
#include <selmask/pipeline/pipeline.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace selmask_bench {

struct settings {
  std::size_t epoch_images = 60000; ///< images of the synthetic training set (one epoch)
  std::size_t max_batches = 0;      ///< stop the epoch after this many batches (0: whole epoch)
  std::size_t mask_iterations = 200;
  std::uint64_t seed = 1;
};

struct result {
  std::string name;
  double seconds = 0.0; ///< wall time measured
  double items = 0.0;   ///< images (or batches) processed in that time
  std::string unit;     ///< "img/s", ...
  [[nodiscard]] double rate() const { return seconds > 0.0 ? items / seconds : 0.0; }
};

template <class B>
void synchronize() {
  if constexpr (requires { B::synchronize(); }) {
    B::synchronize();
  }
}

/// Fashion-MNIST-sized synthetic images: a class-dependent bright patch plus noise, in [0, 1].
inline selmask::io::dataset synthetic_fashion(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  selmask::io::dataset d;
  d.sample = selmask::shape{1, 28, 28};
  d.classes = 10;
  d.labels.resize(n);
  d.images.resize(n * 784);
  std::uniform_real_distribution<float> noise(0.0f, 0.3f);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<std::int32_t>(rng() % 10);
    d.labels[i] = c;
    const std::size_t r0 = 2 + static_cast<std::size_t>(c / 5) * 12;
    const std::size_t c0 = 2 + static_cast<std::size_t>(c % 5) * 5;
    float* img = d.images.data() + i * 784;
    for (std::size_t h = 0; h < 28; ++h) {
      for (std::size_t w = 0; w < 28; ++w) {
        const bool lit = h >= r0 && h < r0 + 6 && w >= c0 && w < c0 + 6;
        img[h * 28 + w] = std::min(1.0f, noise(rng) + (lit ? 0.7f : 0.0f));
      }
    }
  }
  return d;
}

/// One training epoch of LeNet + pixel(any) (see the file comment).
template <class B>
result lenet_pixel_epoch(const selmask::io::dataset& train, const settings& s) {
  using pipe = selmask::pipeline<selmask::any_mask<selmask::pixel>>;
  typename pipe::template on<B> mask(train.sample, s.seed);
  selmask::nn::lenet<B> net(s.seed);
  selmask::nn::adamw<B> mask_opt(selmask::adamw_hyper{5e-3f, 0.5f, 0.999f, 1e-8f, 1e-7f, true});
  mask.for_each_mask([&](auto& m) { mask_opt.add(m.logits_for_update(), m.grad_for_update()); });
  const float lambda = 0.05f;
  selmask::io::batch_sampler sampler(train.size(), 128, true, s.seed);
  const std::size_t batches = s.max_batches ? std::min(s.max_batches, sampler.batches()) : sampler.batches();
  std::vector<float> xh;
  std::vector<std::int32_t> yh;
  typename B::tensor dlogits;
  double loss = 0.0;
  std::size_t images = 0;
  // one batch untimed: first-use costs (CUDA context, cuBLAS handle, memory pool) stay out
  const auto step = [&](std::size_t b) {
    const auto idx = sampler.batch(b);
    const selmask::shape xs = selmask::io::gather_batch(train, idx, xh, yh); // fills xh first
    const auto x = B::from_host(xs, xh);
    mask_opt.zero_grad();
    net.zero_grad();
    const auto fr = mask.forward(x);
    const auto& logits = net.forward(fr.output);
    loss += B::softmax_cross_entropy(logits, yh, dlogits).loss_sum;
    const auto& gx = net.backward(dlogits);
    mask.backward(gx, lambda);
    mask_opt.step();
    net.step();
    return idx.size();
  };
  step(0);
  synchronize<B>();
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t b = 0; b < batches; ++b) {
    images += step(b);
  }
  synchronize<B>();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {"LeNet + pixel(any) training, batch 128", seconds, static_cast<double>(images), "img/s"};
}

/// Forward + backward of pipeline `P` on batches of shape `batch` (random values in [0, 1]).
template <class B, class P, class... Configs>
result mask_pass(const std::string& name, const selmask::shape& batch, const settings& s,
                 const Configs&... configs) {
  typename P::template on<B> p(batch.drop_front(), s.seed, configs...);
  std::mt19937_64 rng(s.seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> xv(batch.size());
  for (float& v : xv) {
    v = u(rng);
  }
  const auto x = B::from_host(batch, xv);
  for (float& v : xv) {
    v = u(rng) - 0.5f;
  }
  const auto gy = B::from_host(batch, xv);
  double q = 0.0;
  const auto one = [&] {
    p.zero_grad();
    q += p.forward(x).q; // Q comes back to the host: one synchronisation per pass, as in training
    p.backward(gy, 0.05f);
  };
  one();
  synchronize<B>();
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < s.mask_iterations; ++i) {
    one();
  }
  synchronize<B>();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {name, seconds, static_cast<double>(s.mask_iterations * batch[0]), "img/s"};
}

/// Every workload on backend B.
template <class B>
std::vector<result> run_all(const settings& s) {
  using namespace selmask;
  std::vector<result> out;
  const io::dataset train = synthetic_fashion(s.epoch_images, s.seed);
  out.push_back(lenet_pixel_epoch<B>(train, s));
  out.push_back(mask_pass<B, pipeline<any_mask<pixel>>>("mask pixel(any) fwd+bwd, 128x1x28x28",
                                                        shape{128, 1, 28, 28}, s));
  out.push_back(mask_pass<B, pipeline<any_mask<channel>>>("mask channel(any) fwd+bwd, 64x32x64x64",
                                                          shape{64, 32, 64, 64}, s));
  out.push_back(mask_pass<B, pipeline<any_mask<block<8, 8>>>>("mask block<8,8>(any) fwd+bwd, 64x32x64x64",
                                                              shape{64, 32, 64, 64}, s));
  using ext = extend<identity_versions<3>>;
  ext e{};
  e.op.version_costs = {1.0f, 0.5f, 0.25f};
  out.push_back(mask_pass<B, pipeline<ext, xor_mask<channel>, merge<sum>, any_mask<pixel>>>(
    "extend(3)+xor(channel)+merge+pixel(any), 64x16x64x64", shape{64, 16, 64, 64}, s, e, xor_mask<channel>{},
    merge<sum>{}, any_mask<pixel>{}));
  return out;
}

// Defined by bench_gpu_cpu.cpp (CPU) and bench_gpu.cu (GPU).
std::vector<result> run_cpu(const settings& s);

} // namespace selmask_bench
