// Stochastic surrogates (surrogate/stochastic.hpp): the mean gradient over many fixed-seed draws
// against finite differences of the expected loss, the expected loss computed independently by
// quadrature over the noise (for two versions the Gumbel difference g0 − g1 is logistic, so both
// surrogates reduce to one integral over u ∈ (0, 1)); the frequencies of the draws against their
// closed forms; determinism; masks that draw in training and not in evaluation.
#include "support.hpp"

#include <selmask/nn/dense.hpp>
#include <selmask/nn/flatten.hpp>
#include <selmask/nn/sequential.hpp>
#include <selmask/surrogate/stochastic.hpp>
#include <selmask/train/trainer.hpp>

#include <algorithm>
#include <cmath>
#include <functional>

using namespace selmask;
using namespace selmask_test;

namespace {
using B = cpu;

/// ∫₀¹ f(log u − log(1 − u)) du by the midpoint rule (the logistic noise of both surrogates).
double expect_logistic(const std::function<double(double)>& f, std::size_t n = 400000) {
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double u = (static_cast<double>(i) + 0.5) / static_cast<double>(n);
    sum += f(std::log(u) - std::log1p(-u));
  }
  return sum / static_cast<double>(n);
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

/// Mean and standard error of the mean.
std::pair<double, double> mean_se(const std::vector<float>& v, std::size_t start = 0, std::size_t step = 1) {
  double s = 0.0, s2 = 0.0;
  std::size_t n = 0;
  for (std::size_t i = start; i < v.size(); i += step, ++n) {
    s += v[i];
    s2 += static_cast<double>(v[i]) * v[i];
  }
  const double m = s / static_cast<double>(n);
  return {m, std::sqrt(std::max(0.0, s2 / static_cast<double>(n) - m * m) / static_cast<double>(n))};
}

constexpr std::size_t draws = 200000;
} // namespace

TEST_CASE("hard_concrete: the mean pathwise gradient is the gradient of the expected loss",
          "[mask][stochastic]") {
  // L(z) = a·z + b·z², per cell; ∂L/∂z = a + 2bz
  const double a = 0.7, b = -1.3;
  const float tau = GENERATE(1.0f, 0.5f);
  const float w0 = GENERATE(-1.0f, 0.4f, 2.0f);
  CAPTURE(tau, w0);
  const double beta = 2.0 / 3.0 * tau;
  const auto expected_loss = [&](double w) {
    return expect_logistic([&](double n) {
      const double z = std::clamp(sigmoid((w + n) / beta) * 1.2 - 0.1, 0.0, 1.0);
      return a * z + b * z * z;
    });
  };
  const double h = 1e-3;
  const double fd = (expected_loss(w0 + h) - expected_loss(w0 - h)) / (2 * h);

  std::mt19937_64 rng(7);
  const auto w = B::full(shape{1, draws}, w0);
  B::tensor s, z, dz, dw;
  hard_concrete::forward<B>(w, 1, tau, mask_mode::hard, rng, s, z);
  std::vector<float> g = B::to_host(z);
  for (auto& x : g) {
    x = static_cast<float>(a + 2 * b * x);
  }
  hard_concrete::backward<B>(w, s, B::from_host(shape{1, draws}, g), 1, tau, dw);
  const auto [mean, se] = mean_se(B::to_host(dw));
  CHECK(std::abs(mean - fd) <= 4 * se + 1e-4);

  // the gate's atoms: P(z ≠ 0) by its closed form and by quadrature
  const auto zs = B::to_host(z);
  const double open =
    static_cast<double>(std::count_if(zs.begin(), zs.end(), [](float x) { return x > 0; })) / draws;
  const double p = hard_concrete::p_nonzero(w0, tau);
  CHECK(p == Approx(expect_logistic(
                      [&](double n) { return sigmoid((w0 + n) / beta) * 1.2 - 0.1 > 0 ? 1.0 : 0.0; }))
               .margin(1e-4));
  CHECK(std::abs(open - p) <= 4 * std::sqrt(p * (1 - p) / draws));
}

TEST_CASE("st_gumbel_softmax: the mean gradient through y is the gradient of E[L(y)]; one-hot draws follow "
          "softmax(w)",
          "[mask][stochastic]") {
  const float tau = GENERATE(1.0f, 0.5f);
  CAPTURE(tau);
  SECTION("two versions: y₀ = σ((w₀ − w₁ + n)/τ), n logistic") {
    const double a0 = 1.0, a1 = -0.5, b = 0.8; // L(y) = a0·y0 + a1·y1 + b·y0²
    const double w0 = 0.3, w1 = -0.2;
    const auto expected_loss = [&](double u0, double u1) {
      return expect_logistic([&](double n) {
        const double y0 = sigmoid((u0 - u1 + n) / tau);
        return a0 * y0 + a1 * (1 - y0) + b * y0 * y0;
      });
    };
    const double h = 1e-3;
    const double fd0 = (expected_loss(w0 + h, w1) - expected_loss(w0 - h, w1)) / (2 * h);
    const double fd1 = (expected_loss(w0, w1 + h) - expected_loss(w0, w1 - h)) / (2 * h);

    std::vector<float> wv(2 * draws);
    std::fill_n(wv.begin(), draws, static_cast<float>(w0));
    std::fill_n(wv.begin() + draws, draws, static_cast<float>(w1));
    const auto w = B::from_host(shape{2, draws}, wv);
    std::mt19937_64 rng(11);
    B::tensor y, soft, dw;
    st_gumbel_softmax::forward<B>(w, 2, tau, mask_mode::soft, rng, y, soft);
    const auto yv = B::to_host(soft);
    std::vector<float> g(2 * draws);
    for (std::size_t k = 0; k < draws; ++k) {
      g[k] = static_cast<float>(a0 + 2 * b * yv[k]);
      g[draws + k] = static_cast<float>(a1);
    }
    st_gumbel_softmax::backward<B>(w, y, B::from_host(shape{2, draws}, g), 2, tau, dw);
    const auto dv = B::to_host(dw);
    const std::vector<float> d0(dv.begin(), dv.begin() + draws), d1(dv.begin() + draws, dv.end());
    const auto [m0, se0] = mean_se(d0);
    const auto [m1, se1] = mean_se(d1);
    CHECK(std::abs(m0 - fd0) <= 4 * se0 + 1e-4);
    CHECK(std::abs(m1 - fd1) <= 4 * se1 + 1e-4);

    // hard mode: the same draw (same seed) gives one_hot(argmax y) forward, the same gradient
    std::mt19937_64 again(11);
    B::tensor y2, hard, dw2;
    st_gumbel_softmax::forward<B>(w, 2, tau, mask_mode::hard, again, y2, hard);
    CHECK(B::to_host(y2) == B::to_host(y)); // fixed seed → the same draws
    const auto hv = B::to_host(hard);
    for (std::size_t k = 0; k < 1000; ++k) {
      CHECK(hv[k] == (yv[k] >= yv[draws + k] ? 1.0f : 0.0f));
    }
    st_gumbel_softmax::backward<B>(w, y2, B::from_host(shape{2, draws}, g), 2, tau, dw2);
    CHECK(B::to_host(dw2) == dv);
  }
  SECTION("three versions: P(version v) = softmax(w)_v whatever τ (Gumbel-max)") {
    const float wv[3] = {0.5f, -1.0f, 1.2f};
    std::vector<float> w(3 * draws);
    for (std::size_t v = 0; v < 3; ++v) {
      std::fill_n(w.begin() + static_cast<std::ptrdiff_t>(v * draws), draws, wv[v]);
    }
    std::mt19937_64 rng(5);
    B::tensor y, hard;
    st_gumbel_softmax::forward<B>(B::from_host(shape{3, draws}, w), 3, tau, mask_mode::hard, rng, y, hard);
    const auto hv = B::to_host(hard);
    const double zsum = std::exp(0.5) + std::exp(-1.0) + std::exp(1.2);
    for (std::size_t v = 0; v < 3; ++v) {
      CAPTURE(v);
      const double p = std::exp(static_cast<double>(wv[v])) / zsum;
      const auto [freq, se] =
        mean_se(std::vector<float>(hv.begin() + static_cast<std::ptrdiff_t>(v * draws),
                                   hv.begin() + static_cast<std::ptrdiff_t>((v + 1) * draws)));
      CHECK(std::abs(freq - p) <= 4 * std::sqrt(p * (1 - p) / draws));
      (void)se;
    }
  }
}

TEST_CASE("stochastic masks draw in training, apply their expected mask otherwise", "[mask][stochastic]") {
  using hc_pipe = pipeline<any_mask<channel, hard_concrete>>;
  hc_pipe::on<B> masks(shape{6, 2, 2}, 3,
                       any_mask<channel, hard_concrete>{.init_mean = 0.0f, .init_std = 1.0f});
  auto& m = masks.stage<0>();
  const auto x = B::full(shape{4, 6, 2, 2}, 1.0f);
  masks.forward(x);
  const auto first = B::to_host(m.applied());
  masks.forward(x);
  CHECK(B::to_host(m.applied()) != first); // a fresh draw per forward pass
  const auto w = B::to_host(m.logits());
  const auto h = B::to_host(m.hard());
  for (std::size_t i = 0; i < w.size(); ++i) {
    CHECK(h[i] == (w[i] >= 0.0f ? 1.0f : 0.0f)); // the expected gate ≥ 1/2
  }
  m.set_sampling(false);
  masks.forward(x);
  CHECK(B::to_host(m.applied()) == h);
  m.set_sampling(true);
  m.freeze();
  masks.forward(x);
  CHECK(B::to_host(m.applied()) == h); // frozen (fixation): no draw

  // the same seed, the same draws
  hc_pipe::on<B> twin(shape{6, 2, 2}, 3,
                      any_mask<channel, hard_concrete>{.init_mean = 0.0f, .init_std = 1.0f});
  twin.forward(x);
  CHECK(B::to_host(twin.stage<0>().applied()) == first);
}

TEST_CASE("learn_selection_masks with hard-concrete gates keeps the informative channel",
          "[mask][stochastic][train]") {
  // 4 channels of 2×2: the class is the sign of channel 2's mean, the others are noise
  const auto make = [](std::size_t n, std::uint64_t seed) {
    io::dataset d;
    d.sample = shape{4, 2, 2};
    d.classes = 2;
    std::mt19937_64 r(seed);
    std::normal_distribution<float> noise(0.0f, 1.0f);
    for (std::size_t i = 0; i < n; ++i) {
      const auto y = static_cast<std::int32_t>(r() % 2);
      d.labels.push_back(y);
      for (std::size_t c = 0; c < 4; ++c) {
        for (std::size_t p = 0; p < 4; ++p) {
          d.images.push_back((c == 2 ? (y == 1 ? 1.5f : -1.5f) : 0.0f) + noise(r));
        }
      }
    }
    return d;
  };
  const auto train = make(400, 1), val = make(200, 2);
  using hc_pipe = pipeline<any_mask<channel, hard_concrete>>;
  hc_pipe::on<B> masks(train.sample, 2);
  nn::sequential_options so;
  so.seed = 3;
  so.optimizer.lr = 0.05f;
  nn::sequential<B, nn::flatten<B>, nn::dense<B>> net(so, nn::flatten<B>{}, nn::dense<B>(16, 2));
  trainer_options o;
  o.lambda = 1.0f;
  o.warmup_epochs = 1;
  o.mask_epochs = 12;
  o.batch_size = 40;
  o.mask_optimizer.lr = 0.1f;
  o.seed = 4;
  const auto r = learn_selection_masks(masks, net, train, val, nullptr, o, plateau_schedule{});
  const auto h = B::to_host(masks.stage<0>().hard());
  CHECK(h == std::vector<float>{0.0f, 0.0f, 1.0f, 0.0f});
  const auto* best = r.front.best_within(0.25);
  REQUIRE(best != nullptr);
  CHECK(best->val_accuracy > 0.9);
}

TEST_CASE("xor_mask with st_gumbel_softmax: one version per cell per draw, the argmax in evaluation",
          "[mask][stochastic]") {
  using gp = pipeline<extend<identity_versions<3>>, xor_mask<pixel, st_gumbel_softmax>, merge<sum>>;
  xor_mask<pixel, st_gumbel_softmax> cfg;
  cfg.init_mean = 0.5f;
  cfg.init_std = 0.2f;
  gp::on<B> p(shape{1, 4, 4}, 5, {}, cfg, {});
  auto& m = p.stage<1>();
  const auto x = B::full(shape{2, 1, 4, 4}, 1.0f);
  p.forward(x);
  const auto first = B::to_host(m.applied());
  p.forward(x);
  const auto second = B::to_host(m.applied());
  CHECK(second != first);
  for (const auto* h : {&first, &second}) {
    for (std::size_t k = 0; k < 16; ++k) {
      CHECK((*h)[k] + (*h)[16 + k] + (*h)[32 + k] == 1.0f); // one-hot per cell
    }
  }
  const auto w = B::to_host(m.logits());
  const auto hard = B::to_host(m.hard());
  for (std::size_t k = 0; k < 16; ++k) {
    std::size_t best = 0;
    for (std::size_t v = 1; v < 3; ++v) {
      best = w[v * 16 + k] > w[best * 16 + k] ? v : best;
    }
    CHECK(hard[best * 16 + k] == 1.0f);
  }
  m.set_sampling(false);
  p.forward(x);
  CHECK(B::to_host(m.applied()) == hard);
}

namespace {
/// One concrete_top_k<K> draw of s (soft) or h (hard) for logits w with a fresh rng(seed).
template <std::size_t K>
std::vector<float> top_k_draw(const std::vector<float>& w, float tau, mask_mode mode, std::uint64_t seed,
                              B::tensor* s_out = nullptr) {
  std::mt19937_64 rng(seed);
  B::tensor s, h;
  concrete_top_k<K>::template forward<B>(B::from_host(shape{1, w.size()}, w), 1, tau, mode, rng, s, h);
  if (s_out != nullptr) {
    *s_out = s;
  }
  return B::to_host(h);
}
} // namespace

TEST_CASE("concrete_top_k: exactly K cells per hard draw, Gumbel-top-k frequencies", "[mask][stochastic]") {
  SECTION("every hard draw keeps K cells; the relaxed mask sums to K") {
    const std::vector<float> w = {0.3f, -1.0f, 2.0f, 0.0f, 0.7f, -0.4f, 1.1f};
    std::mt19937_64 rng(17);
    const auto wt = B::from_host(shape{1, w.size()}, w);
    for (int d = 0; d < 200; ++d) {
      B::tensor s, h;
      concrete_top_k<3>::forward<B>(wt, 1, 0.5f, mask_mode::hard, rng, s, h);
      const auto hv = B::to_host(h);
      const auto sv = B::to_host(s);
      CHECK(std::count(hv.begin(), hv.end(), 1.0f) == 3);
      CHECK(std::count(hv.begin(), hv.end(), 0.0f) == 4);
      double sum = 0.0;
      for (const float x : sv) {
        CHECK(x >= 0.0f); // (Xie and Ermon's relaxation does not bound s_i by 1)
        sum += x;
      }
      CHECK(sum == Approx(3.0).margin(1e-5));
    }
    // expect: the K largest logits (hard), the zero-noise relaxation (soft)
    B::tensor s, h;
    concrete_top_k<3>::expect<B>(wt, 1, 0.5f, mask_mode::hard, s, h);
    CHECK(B::to_host(h) == std::vector<float>{0, 0, 1, 0, 1, 0, 1});
    concrete_top_k<3>::expect<B>(wt, 1, 0.5f, mask_mode::soft, s, h);
    CHECK(B::to_host(h) == B::to_host(s));
    const auto sv = B::to_host(s);
    CHECK(sv[2] > sv[6]);
    CHECK(sv[6] > sv[4]);
    CHECK(sv[4] > sv[0]);
  }
  SECTION("P(cell i kept) by enumerating the orderings of sampling without replacement") {
    const std::vector<float> w = {0.5f, -1.0f, 1.2f};
    const double z = std::exp(0.5) + std::exp(-1.0) + std::exp(1.2);
    std::vector<double> p(3);
    for (std::size_t i = 0; i < 3; ++i) {
      p[i] = std::exp(static_cast<double>(w[i])) / z;
    }
    // K = 2: i is kept unless it is drawn last; P(order a, b, c) = p_a · p_b/(1 − p_a)
    std::vector<double> p2(3, 0.0);
    for (std::size_t a = 0; a < 3; ++a) {
      for (std::size_t b = 0; b < 3; ++b) {
        if (a != b) {
          const double po = p[a] * p[b] / (1 - p[a]);
          p2[a] += po;
          p2[b] += po;
        }
      }
    }
    CHECK(p2[0] + p2[1] + p2[2] == Approx(2.0));
    constexpr std::size_t n = 60000;
    std::vector<double> c1(3, 0.0), c2(3, 0.0);
    std::mt19937_64 rng(23);
    const auto wt = B::from_host(shape{1, 3}, w);
    for (std::size_t d = 0; d < n; ++d) {
      B::tensor s, h;
      concrete_top_k<1>::forward<B>(wt, 1, 0.7f, mask_mode::hard, rng, s, h);
      const auto h1 = B::to_host(h);
      concrete_top_k<2>::forward<B>(wt, 1, 0.7f, mask_mode::hard, rng, s, h);
      const auto h2 = B::to_host(h);
      for (std::size_t i = 0; i < 3; ++i) {
        c1[i] += h1[i];
        c2[i] += h2[i];
      }
    }
    for (std::size_t i = 0; i < 3; ++i) {
      CAPTURE(i, p[i], p2[i]);
      CHECK(std::abs(c1[i] / n - p[i]) <= 4 * std::sqrt(p[i] * (1 - p[i]) / n));
      CHECK(std::abs(c2[i] / n - p2[i]) <= 4 * std::sqrt(p2[i] * (1 - p2[i]) / n));
    }
  }
  SECTION("K above the number of cells is a value_error") {
    std::mt19937_64 rng(1);
    const auto wt = B::full(shape{1, 3}, 0.0f);
    B::tensor s, h;
    CHECK_THROWS_AS(concrete_top_k<4>::forward<B>(wt, 1, 1.0f, mask_mode::hard, rng, s, h), value_error);
    CHECK_THROWS_AS(concrete_top_k<4>::expect<B>(wt, 1, 1.0f, mask_mode::soft, s, h), value_error);
    CHECK_NOTHROW(concrete_top_k<3>::forward<B>(wt, 1, 1.0f, mask_mode::hard, rng, s, h));
    CHECK(B::to_host(h) == std::vector<float>{1, 1, 1});
  }
}

TEST_CASE("concrete_top_k: the backward is the vector-Jacobian product of the relaxed mask s(w) of the draw",
          "[mask][stochastic]") {
  const float tau = GENERATE(1.0f, 0.5f);
  const mask_mode mode = GENERATE(mask_mode::soft, mask_mode::hard);
  CAPTURE(tau, mode == mask_mode::hard);
  const std::vector<float> w = {0.4f, -0.3f, 1.0f, 0.1f, -0.8f};
  const std::size_t n = w.size();
  const double step = 3e-3;
  for (const std::uint64_t seed : {31u, 32u, 33u}) {
    CAPTURE(seed);
    // the Jacobian by central differences, the noise fixed by re-seeding
    std::vector<double> jac(n * n); // jac[k·n + i] = ∂s_k/∂w_i
    for (std::size_t i = 0; i < n; ++i) {
      auto wp = w, wm = w;
      wp[i] += static_cast<float>(step);
      wm[i] -= static_cast<float>(step);
      B::tensor sp, sm;
      top_k_draw<2>(wp, tau, mode, seed, &sp);
      top_k_draw<2>(wm, tau, mode, seed, &sm);
      const auto vp = B::to_host(sp), vm = B::to_host(sm);
      for (std::size_t k = 0; k < n; ++k) {
        jac[k * n + i] = (static_cast<double>(vp[k]) - vm[k]) / (static_cast<double>(wp[i]) - wm[i]);
      }
    }
    B::tensor s;
    top_k_draw<2>(w, tau, mode, seed, &s);
    const auto wt = B::from_host(shape{1, n}, w);
    double largest = 0.0;
    for (std::size_t k = 0; k < n; ++k) {
      std::vector<float> e(n, 0.0f);
      e[k] = 1.0f;
      B::tensor dw;
      concrete_top_k<2>::backward<B>(wt, s, B::from_host(shape{1, n}, e), 1, tau, dw);
      const auto row = B::to_host(dw);
      for (std::size_t i = 0; i < n; ++i) {
        CAPTURE(k, i);
        CHECK(row[i] == Approx(jac[k * n + i]).margin(1e-3).epsilon(1e-2));
        largest = std::max(largest, std::abs(jac[k * n + i]));
      }
    }
    CHECK(largest > 0.05); // the check is not vacuous
  }
}

TEST_CASE("concrete_top_k: the mean gradient over fixed-seed draws is the gradient of the mean relaxed loss",
          "[mask][stochastic]") {
  // L = c·s; common random numbers: the same seed for the draws at w and at w ± h·e_i
  const float tau = GENERATE(1.0f, 0.5f);
  CAPTURE(tau);
  const std::vector<float> w = {0.2f, -0.5f, 0.9f, 0.0f};
  const std::vector<float> c = {1.0f, -0.7f, 0.4f, 2.0f};
  const std::size_t n = w.size();
  constexpr std::size_t d = 2000;
  const auto wt = B::from_host(shape{1, n}, w);
  const auto ct = B::from_host(shape{1, n}, c);
  std::vector<double> mean(n, 0.0);
  std::mt19937_64 rng(41);
  for (std::size_t t = 0; t < d; ++t) {
    B::tensor s, h, dw;
    concrete_top_k<2>::forward<B>(wt, 1, tau, mask_mode::hard, rng, s, h);
    concrete_top_k<2>::backward<B>(wt, s, ct, 1, tau, dw);
    const auto g = B::to_host(dw);
    for (std::size_t i = 0; i < n; ++i) {
      mean[i] += g[i] / static_cast<double>(d);
    }
  }
  const auto mean_loss = [&](const std::vector<float>& wv) {
    std::mt19937_64 r(41);
    const auto x = B::from_host(shape{1, n}, wv);
    double sum = 0.0;
    for (std::size_t t = 0; t < d; ++t) {
      B::tensor s, h;
      concrete_top_k<2>::forward<B>(x, 1, tau, mask_mode::soft, r, s, h);
      const auto sv = B::to_host(s);
      for (std::size_t k = 0; k < n; ++k) {
        sum += static_cast<double>(c[k]) * sv[k];
      }
    }
    return sum / static_cast<double>(d);
  };
  double gap = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    auto wp = w, wm = w;
    wp[i] += 3e-3f;
    wm[i] -= 3e-3f;
    const double fd = (mean_loss(wp) - mean_loss(wm)) / (static_cast<double>(wp[i]) - wm[i]);
    CAPTURE(i);
    CHECK(mean[i] == Approx(fd).margin(1e-3).epsilon(1e-2));
    gap = std::max(gap, std::abs(fd));
  }
  CHECK(gap > 0.05);
}

TEST_CASE("any_mask with concrete_top_k: K cells per training draw, the top-K logits in evaluation",
          "[mask][stochastic]") {
  using tk_pipe = pipeline<any_mask<channel, concrete_top_k<2>>>;
  tk_pipe::on<B> masks(shape{6, 2, 2}, 3,
                       any_mask<channel, concrete_top_k<2>>{.init_mean = 0.0f, .init_std = 1.0f});
  auto& m = masks.stage<0>();
  const auto x = B::full(shape{4, 6, 2, 2}, 1.0f);
  masks.forward(x);
  const auto first = B::to_host(m.applied());
  CHECK(std::count(first.begin(), first.end(), 1.0f) == 2);
  bool changed = false;
  for (int t = 0; t < 20 && !changed; ++t) {
    masks.forward(x);
    const auto again = B::to_host(m.applied());
    CHECK(std::count(again.begin(), again.end(), 1.0f) == 2);
    changed = again != first;
  }
  CHECK(changed); // fresh draws
  // a backward through the pipeline reaches the logits
  masks.zero_grad();
  masks.forward(x);
  masks.backward(B::full(shape{4, 6, 2, 2}, 1.0f), 0.0f);
  const auto g = B::to_host(m.grad());
  CHECK(std::any_of(g.begin(), g.end(), [](float v) { return v != 0.0f; }));
  const auto w = B::to_host(m.logits());
  std::vector<std::size_t> order = {0, 1, 2, 3, 4, 5};
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return w[a] > w[b]; });
  const auto h = B::to_host(m.hard());
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(h[i] == (i == order[0] || i == order[1] ? 1.0f : 0.0f));
  }
  m.set_sampling(false);
  masks.forward(x);
  CHECK(B::to_host(m.applied()) == h);
}
