// Google Benchmark micro-benchmarks of selmask's CPU kernels (batch 128 unless noted):
//  - mask forward+backward per kind and granularity (values/s and bytes/s of the input),
//  - Q, and a mask backward pass with and without the gradient of λ·Q,
//  - conv2d and dense forward+backward of LeNet's shapes in GFLOP/s, beside a plain cblas_sgemm of
//    the GEMM shapes those layers run (the machine's practical peak),
//  - one GEMM of the dense layer's shapes two ways, side by side: cblas_sgemm called directly and
//    xt::blas::gemm over adapted views (what selmask::cpu::gemm runs for whole products),
//  - LeNet inference and a full training step (images/s).
// Every rate is per wall-clock second (UseRealTime): the work runs on several threads, and the
// calling thread's CPU time would leave out what the others did.
#include <selmask/nn/lenet.hpp>
#include <selmask/selmask.hpp>

#include <benchmark/benchmark.h>

#include <random>

namespace {
using B = selmask::cpu;

B::tensor random_tensor(const selmask::shape& s, std::uint64_t seed = 1) {
  std::mt19937_64 r(seed);
  std::uniform_real_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(s.size());
  for (auto& x : v)
    x = d(r);
  return B::from_host(s, v);
}

template <class Mask>
void bm_mask(benchmark::State& st, selmask::shape sample) {
  using pipe = selmask::pipeline<Mask>;
  typename pipe::template on<B> p(sample, 1);
  const auto x = random_tensor(sample.prepend(128));
  const auto g = random_tensor(sample.prepend(128), 2);
  for (auto _ : st) {
    const auto r = p.forward(x);
    benchmark::DoNotOptimize(r.q);
    benchmark::DoNotOptimize(p.backward(g, 0.05f).data());
  }
  const auto values = static_cast<std::int64_t>(x.size());
  st.SetItemsProcessed(st.iterations() * values);
  st.SetBytesProcessed(st.iterations() * values * 4);
}
#define SELMASK_BENCH_MASK(name, mask, ...)                                                                  \
  void bm_mask_##name(benchmark::State& st) { bm_mask<mask>(st, selmask::shape{__VA_ARGS__}); }              \
  BENCHMARK(bm_mask_##name)->UseRealTime()
SELMASK_BENCH_MASK(pixel_1x28x28, selmask::any_mask<selmask::pixel>, 1, 28, 28);
SELMASK_BENCH_MASK(channel_64x32x32, selmask::any_mask<selmask::channel>, 64, 32, 32);
SELMASK_BENCH_MASK(pixel_64x32x32, selmask::any_mask<selmask::pixel>, 64, 32, 32);
SELMASK_BENCH_MASK(subpixel_64x32x32, selmask::any_mask<selmask::subpixel>, 64, 32, 32);
using block4x4_mask = selmask::any_mask<selmask::block<4, 4>>;
SELMASK_BENCH_MASK(block4x4_64x32x32, block4x4_mask, 64, 32, 32);

void bm_xor_versions(benchmark::State& st) {
  using pipe = selmask::pipeline<selmask::extend<selmask::identity_versions<4>>,
                                 selmask::xor_mask<selmask::channel>, selmask::merge<selmask::sum>>;
  pipe::on<B> p(selmask::shape{3, 32, 32}, 1);
  const auto x = random_tensor(selmask::shape{128, 3, 32, 32});
  const auto g = random_tensor(selmask::shape{128, 3, 32, 32}, 2);
  for (auto _ : st) {
    benchmark::DoNotOptimize(p.forward(x).q);
    benchmark::DoNotOptimize(p.backward(g, 0.05f).data());
  }
  st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(x.size()));
}
BENCHMARK(bm_xor_versions)->UseRealTime();

void bm_q(benchmark::State& st) {
  using pipe = selmask::pipeline<selmask::any_mask<selmask::pixel>, selmask::any_mask<selmask::channel>>;
  pipe::on<B> p(selmask::shape{16, 32, 32}, 1);
  const auto x = random_tensor(selmask::shape{1, 16, 32, 32});
  p.forward(x);
  for (auto _ : st) {
    benchmark::DoNotOptimize(p.q());
  }
}
BENCHMARK(bm_q)->UseRealTime();

// The gradient of λ·Q: the same two-mask pipeline's backward pass with λ = 0 (task gradient only)
// and λ = 0.05 (plus ∂Q/∂logits of both masks); the difference is what Q's gradient costs.
void bm_backward_with_q(benchmark::State& st) {
  using pipe = selmask::pipeline<selmask::any_mask<selmask::pixel>, selmask::any_mask<selmask::channel>>;
  pipe::on<B> p(selmask::shape{16, 32, 32}, 1);
  const auto x = random_tensor(selmask::shape{128, 16, 32, 32});
  const auto g = random_tensor(selmask::shape{128, 16, 32, 32}, 2);
  const float lambda = st.range(0) == 0 ? 0.0f : 0.05f;
  p.forward(x);
  for (auto _ : st) {
    p.zero_grad();
    benchmark::DoNotOptimize(p.backward(g, lambda).data());
  }
  st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(x.size()));
}
BENCHMARK(bm_backward_with_q)->Arg(0)->Arg(1)->UseRealTime();

// ---- layers against the GEMM they run -----------------------------------------------------------
void bm_sgemm(benchmark::State& st) {
  const auto m = static_cast<int>(st.range(0)), n = static_cast<int>(st.range(1)),
             k = static_cast<int>(st.range(2));
  std::vector<float> a(static_cast<std::size_t>(m * k), 0.5f), b(static_cast<std::size_t>(k * n), 0.25f),
    c(static_cast<std::size_t>(m * n));
  // OpenBLAS with as many threads as selmask's pool has (the pool sets OpenBLAS to one thread
  // per call when it starts, since it splits the GEMMs itself)
  const int pool_threads = static_cast<int>(selmask::cpu_parallel::threads()); // starts the pool first
  const int saved = selmask::blas::threads();
  selmask::blas::set_threads(pool_threads);
  for (auto _ : st) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f,
                c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  selmask::blas::set_threads(saved);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k * static_cast<double>(st.iterations()),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
// conv1: 20 × 25 · (128·24·24); conv2: 50 × 500 · (128·8·8); dense1: 128 × 800 → 500
BENCHMARK(bm_sgemm)
  ->Args({20, 128 * 24 * 24, 25})
  ->Args({50, 128 * 8 * 8, 500})
  ->Args({128, 500, 800})
  ->UseRealTime();

// c = op(a)·b on one thread: range(0) 0 = cblas_sgemm, 1 = xt::blas::gemm over xt::adapt views;
// range(4) 1 = a transposed (the dense layer's weight gradient: xᵀ·g)
void bm_gemm_binding(benchmark::State& st) {
  const bool via_xtensor_blas = st.range(0) == 1;
  const auto m = static_cast<std::size_t>(st.range(1)), n = static_cast<std::size_t>(st.range(2)),
             k = static_cast<std::size_t>(st.range(3));
  const bool ta = st.range(4) == 1;
  std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n);
  (void)selmask::cpu_parallel::threads(); // the pool starts first (it sets the BLAS thread count)
  const int saved = selmask::blas::threads();
  selmask::blas::set_threads(1);
  using extents = std::array<std::size_t, 2>;
  const auto va = xt::adapt(static_cast<const float*>(a.data()), m * k, xt::no_ownership(),
                            ta ? extents{k, m} : extents{m, k});
  const auto vb = xt::adapt(static_cast<const float*>(b.data()), k * n, xt::no_ownership(), extents{k, n});
  auto vc = xt::adapt(c.data(), m * n, xt::no_ownership(), extents{m, n});
  const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  for (auto _ : st) {
    if (via_xtensor_blas) {
      xt::blas::gemm(va, vb, vc, ta, false, 1.0f, 0.0f);
    } else {
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, CblasNoTrans, mi, ni, ki, 1.0f, a.data(),
                  ta ? mi : ki, b.data(), ni, 0.0f, c.data(), ni);
    }
    benchmark::DoNotOptimize(c.data());
  }
  selmask::blas::set_threads(saved);
  st.counters["GFLOP/s"] =
    benchmark::Counter(2.0 * static_cast<double>(m * n * k) * static_cast<double>(st.iterations()),
                       benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
// dense1 forward (128 × 800 · 800 × 500) and weight gradient (800 × 128 transposed · 128 × 500)
BENCHMARK(bm_gemm_binding)
  ->Args({0, 128, 500, 800, 0})
  ->Args({1, 128, 500, 800, 0})
  ->Args({0, 800, 500, 128, 1})
  ->Args({1, 800, 500, 128, 1})
  ->UseRealTime();

template <class Layer>
void bm_layer(benchmark::State& st, Layer layer, selmask::shape in, double flops_forward) {
  std::mt19937_64 r(1);
  layer.reset_parameters(r);
  const auto x = random_tensor(in);
  const auto y = layer.forward(x);
  const auto g = random_tensor(B::shape_of(y), 3);
  for (auto _ : st) {
    benchmark::DoNotOptimize(layer.forward(x).data());
    benchmark::DoNotOptimize(layer.backward(g).data());
  }
  // backward costs two GEMMs of the forward's size
  st.counters["GFLOP/s"] = benchmark::Counter(3.0 * flops_forward * static_cast<double>(st.iterations()),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK_CAPTURE(bm_layer, conv1, selmask::nn::conv2d<B>(1, 20, 5), selmask::shape{128, 1, 28, 28},
                  2.0 * 20 * 25 * 128 * 24 * 24)
  ->UseRealTime();
BENCHMARK_CAPTURE(bm_layer, conv2, selmask::nn::conv2d<B>(20, 50, 5), selmask::shape{128, 20, 12, 12},
                  2.0 * 50 * 500 * 128 * 8 * 8)
  ->UseRealTime();
// LeNet's actual layers: conv → ReLU → max-pool fused (the same GEMMs as conv1 / conv2)
BENCHMARK_CAPTURE(bm_layer, conv_relu_pool1, selmask::nn::conv_relu_pool<B>(1, 20, 5),
                  selmask::shape{128, 1, 28, 28}, 2.0 * 20 * 25 * 128 * 24 * 24)
  ->UseRealTime();
BENCHMARK_CAPTURE(bm_layer, conv_relu_pool2, selmask::nn::conv_relu_pool<B>(20, 50, 5),
                  selmask::shape{128, 20, 12, 12}, 2.0 * 50 * 500 * 128 * 8 * 8)
  ->UseRealTime();
BENCHMARK_CAPTURE(bm_layer, dense1, selmask::nn::dense<B>(800, 500), selmask::shape{128, 800},
                  2.0 * 128 * 800 * 500)
  ->UseRealTime();

// ---- whole network ------------------------------------------------------------------------------
void bm_lenet_inference(benchmark::State& st) {
  selmask::nn::lenet<B> net(1);
  const auto x = random_tensor(selmask::shape{128, 1, 28, 28});
  for (auto _ : st) {
    benchmark::DoNotOptimize(net.forward(x).data());
  }
  st.SetItemsProcessed(st.iterations() * 128);
}
BENCHMARK(bm_lenet_inference)->Unit(benchmark::kMillisecond)->UseRealTime();

void bm_lenet_train_step(benchmark::State& st) {
  using pipe = selmask::pipeline<selmask::any_mask<selmask::pixel>>;
  pipe::on<B> mask(selmask::shape{1, 28, 28}, 1);
  selmask::nn::lenet<B> net(1);
  const auto x = random_tensor(selmask::shape{128, 1, 28, 28});
  std::vector<std::int32_t> labels(128);
  for (std::size_t i = 0; i < 128; ++i)
    labels[i] = static_cast<std::int32_t>(i % 10);
  B::tensor dlogits;
  for (auto _ : st) {
    net.zero_grad();
    mask.zero_grad();
    const auto fr = mask.forward(x);
    B::softmax_cross_entropy(net.forward(fr.output), labels, dlogits);
    mask.backward(net.backward(dlogits), 0.05f);
    net.step();
  }
  st.SetItemsProcessed(st.iterations() * 128);
}
BENCHMARK(bm_lenet_train_step)->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
