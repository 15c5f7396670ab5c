// any-masks: hard masks, forward, straight-through and exact (soft) gradients, Q, upscaling.
#include "support.hpp"

using namespace selmask;
using namespace selmask_test;

namespace {
const shape sample{3, 5, 7};
const shape batch{2, 3, 5, 7};

template <class G>
using any_pipe = pipeline<any_mask<G>>;

template <class G>
auto soft_config() {
  any_mask<G> cfg;
  cfg.mode = mask_mode::soft;
  cfg.tau = 0.7f;
  return cfg;
}

/// Random logits around 0 so that sigmoid slopes are far from zero.
template <class B, class P>
void randomise_logits(P& p, float scale = 1.5f) {
  auto& m = p.template stage<0>();
  const shape ls = B::shape_of(m.logits());
  m.set_logits(B::from_host(ls, random_values(ls.size(), -scale, scale)));
}
} // namespace

using granularity_cases =
  over_backends<channel, pixel, subpixel, block<2, 3>, block<2, 3, all_channels>, version>;

TEMPLATE_LIST_TEST_CASE("any_mask: initial mask keeps everything", "[mask][any]", granularity_cases) {
  using G = typename TestType::param;
  using B = typename TestType::backend;
  typename any_pipe<G>::template on<B> p(sample, 7);
  const auto& m = p.template stage<0>();
  const auto w = B::to_host(m.logits());
  double mean = 0.0;
  for (float v : w) {
    mean += v;
  }
  mean /= static_cast<double>(w.size());
  CHECK(mean == Approx(3.0).margin(0.05));
  const auto x = random_tensor<B>(batch);
  const auto r = p.forward(x);
  CHECK(r.q == 1.0);
  CHECK(B::to_host(r.output) == B::to_host(x));
}

TEMPLATE_LIST_TEST_CASE("any_mask: hard forward is x times the upsampled 0/1 mask", "[mask][any]",
                        granularity_cases) {
  using G = typename TestType::param;
  using B = typename TestType::backend;
  typename any_pipe<G>::template on<B> p(sample, 3);
  randomise_logits<B>(p);
  const auto x = random_tensor<B>(batch);
  const auto r = p.forward(x);
  auto& m = p.template stage<0>();
  const auto h = B::to_host(m.applied());
  for (float v : h) {
    REQUIRE((v == 0.0f || v == 1.0f));
  }
  // h = [sigmoid(w/τ) ≥ 0.5] = [w ≥ 0]
  const auto w = B::to_host(m.logits());
  for (std::size_t k = 0; k < w.size(); ++k) {
    REQUIRE(h[k] == (w[k] >= 0.0f ? 1.0f : 0.0f));
  }
  const auto ref = naive_scale(B::to_host(x), h, m.geometry());
  CHECK(B::to_host(r.output) == ref);
  // Q with uniform costs = the exact fraction of kept values
  std::size_t kept = 0;
  const auto& g = m.geometry();
  for (std::size_t i = 0; i < g.values(); ++i) {
    kept += h[g.cell_of(i)] == 1.0f ? 1 : 0;
  }
  CHECK(r.q == Approx(static_cast<double>(kept) / static_cast<double>(g.values())).epsilon(1e-6));
  CHECK(m.kept_fraction() == Approx(r.q).epsilon(1e-6));
}

TEMPLATE_LIST_TEST_CASE("any_mask: soft-path gradients match finite differences", "[mask][any][gradient]",
                        granularity_cases) {
  using G = typename TestType::param;
  using B = typename TestType::backend;
  typename any_pipe<G>::template on<B> p(sample, 11, soft_config<G>());
  randomise_logits<B>(p);
  auto& m = p.template stage<0>();
  const auto x = random_tensor<B>(batch);
  const auto rr = random_values(batch.size());
  const auto r = B::from_host(batch, rr);
  const float lambda = 0.8f;

  p.zero_grad();
  p.forward(x);
  const auto gx = B::to_host(p.backward(r, lambda));
  const auto gw = B::to_host(m.grad());

  const shape ls = B::shape_of(m.logits());
  const auto loss_w = [&](const std::vector<float>& w) {
    m.set_logits(B::from_host(ls, w));
    const auto res = p.forward(x);
    return dot(B::to_host(res.output), rr) + lambda * res.q;
  };
  const auto w0 = B::to_host(m.logits());
  const auto cw = testing::check_gradient(loss_w, w0, gw, {.eps = 1e-2});
  INFO("logits: " << cw.message);
  CHECK(cw.ok);
  m.set_logits(B::from_host(ls, w0));

  const auto loss_x = [&](const std::vector<float>& xv) {
    return dot(B::to_host(p.forward(B::from_host(batch, xv)).output), rr);
  };
  const auto cx = testing::check_gradient(loss_x, B::to_host(x), gx, {.eps = 1e-2});
  INFO("input: " << cx.message);
  CHECK(cx.ok);
}

TEMPLATE_LIST_TEST_CASE("any_mask: hard-path gradient is the straight-through estimator",
                        "[mask][any][gradient]", granularity_cases) {
  using G = typename TestType::param;
  using B = typename TestType::backend;
  any_mask<G> cfg;
  cfg.tau = 0.5f;
  typename any_pipe<G>::template on<B> p(sample, 5, cfg);
  randomise_logits<B>(p);
  auto& m = p.template stage<0>();
  const auto x = random_tensor<B>(batch);
  const auto r = random_tensor<B>(batch);
  p.zero_grad();
  p.forward(x);
  const auto gx = B::to_host(p.backward(r, 0.0f));
  const auto& g = m.geometry();
  // ∂L/∂w = Σ_covered(∂L/∂y ⊙ x) · s(1−s)/τ;  ∂L/∂x = ∂L/∂y ⊙ up(h)
  const auto red = naive_reduce(B::to_host(r), B::to_host(x), g);
  const auto w = B::to_host(m.logits());
  const auto gw = B::to_host(m.grad());
  for (std::size_t k = 0; k < w.size(); ++k) {
    const double s = 1.0 / (1.0 + std::exp(-w[k] / 0.5));
    REQUIRE(gw[k] == Approx(red[k] * s * (1 - s) / 0.5).margin(1e-5));
  }
  CHECK(gx == naive_scale(B::to_host(r), B::to_host(m.applied()), g));
  // gradients accumulate until zero_grad
  p.forward(x);
  p.backward(r, 0.0f);
  const auto gw2 = B::to_host(m.grad());
  for (std::size_t k = 0; k < w.size(); ++k) {
    REQUIRE(gw2[k] == Approx(2 * gw[k]).margin(1e-5));
  }
  p.zero_grad();
  CHECK(B::sum(m.grad()) == 0.0);
}

TEMPLATE_LIST_TEST_CASE("any_mask: frozen masks apply their mask and collect no gradient", "[mask][any]",
                        backends) {
  using B = TestType;
  pipeline<any_mask<pixel>>::on<B> p(sample, 1);
  randomise_logits<B>(p);
  p.freeze_masks();
  const auto x = random_tensor<B>(batch);
  const auto r = random_tensor<B>(batch);
  const auto y = p.forward(x);
  const auto gx = B::to_host(p.backward(r, 1.0f));
  auto& m = p.template stage<0>();
  CHECK(B::sum(m.grad()) == 0.0);
  CHECK(gx == naive_scale(B::to_host(r), B::to_host(m.applied()), m.geometry()));
  CHECK(y.q < 1.0);
}

TEMPLATE_LIST_TEST_CASE("any_mask: input-drop upscaling divides by the kept fraction", "[mask][any]",
                        backends) {
  using B = TestType;
  any_mask<channel> cfg;
  cfg.upscale = true;
  pipeline<any_mask<channel>>::on<B> p(sample, 1, cfg);
  auto& m = p.template stage<0>();
  // keep channels 0 and 2 of 3: kept fraction 2/3, kept values scaled by 3/2
  m.set_logits(B::from_host(shape{1, 3, 1, 1}, std::vector<float>{2, -2, 4}));
  const auto x = random_tensor<B>(batch);
  const auto r = p.forward(x);
  const auto xv = B::to_host(x), yv = B::to_host(r.output);
  for (std::size_t i = 0; i < xv.size(); ++i) {
    const std::size_t c = (i / 35) % 3;
    REQUIRE(yv[i] == Approx(c == 1 ? 0.0 : 1.5 * xv[i]).margin(1e-6));
  }
  CHECK(r.q == Approx(2.0 / 3.0));
}

TEMPLATE_LIST_TEST_CASE("any_mask: a user cost table weights Q per cell", "[mask][any][cost]", backends) {
  using B = TestType;
  any_mask<channel, st_sigmoid, table_cost> cfg;
  cfg.cost = table_cost{{1.0f, 2.0f, 0.5f, 4.0f}};
  const shape s4{4, 2, 2};
  pipeline<any_mask<channel, st_sigmoid, table_cost>>::on<B> p(s4, 1, cfg);
  p.template stage<0>().set_logits(B::from_host(shape{1, 4, 1, 1}, std::vector<float>{1, 1, -1, 1}));
  const auto r = p.forward(random_tensor<B>(shape{1, 4, 2, 2}));
  // kept channels 0, 1, 3 with costs 1, 2, 4 over 4 channels of equal size
  CHECK(r.q == Approx((1.0 + 2.0 + 4.0) / 4.0));
}
