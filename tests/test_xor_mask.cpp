// xOr-masks over versions: one-hot hard masks, initialisation, exact (soft) gradients, Q with costs.
#include "support.hpp"

using namespace selmask;
using namespace selmask_test;

namespace {
const shape sample{3, 5, 7};
const shape batch{2, 3, 5, 7};

/// Three distinct versions of a sample: v0 = x, v1 = 0.5·x + 0.1, v2 = −x.
struct three_versions {
  void operator()(std::size_t v, std::span<const float> in, std::span<float> out) const {
    for (std::size_t i = 0; i < in.size(); ++i) {
      out[i] = v == 0 ? in[i] : v == 1 ? 0.5f * in[i] + 0.1f : -in[i];
    }
  }
};
using versions3 = functor_versions<3, three_versions>;

versions3 make_versions() {
  versions3 e;
  e.version_costs = {1.0f, 0.4f, 0.1f};
  return e;
}

template <class G>
using xor_pipe = pipeline<extend<versions3>, xor_mask<G>, merge<sum>>;

template <class B, class G>
auto make_pipe(mask_mode mode, std::uint64_t seed) {
  xor_mask<G> cfg;
  cfg.mode = mode;
  cfg.tau = 0.8f;
  return
    typename xor_pipe<G>::template on<B>(sample, seed, extend<versions3>{make_versions()}, cfg, merge<sum>{});
}

/// naive version v of a value
float version_value(std::size_t v, float x) { return v == 0 ? x : v == 1 ? 0.5f * x + 0.1f : -x; }
} // namespace

using granularity_cases =
  over_backends<channel, pixel, subpixel, block<2, 3>, block<2, 3, all_channels>, version>;

TEMPLATE_LIST_TEST_CASE("xor_mask: starts with the best version everywhere", "[mask][xor]",
                        granularity_cases) {
  using G = typename TestType::param;
  using B = typename TestType::backend;
  auto p = make_pipe<B, G>(mask_mode::hard, 2);
  const auto x = random_tensor<B>(batch);
  const auto r = p.forward(x);
  CHECK(r.q == Approx(1.0));
  const auto yv = B::to_host(r.output), xv = B::to_host(x);
  for (std::size_t i = 0; i < xv.size(); ++i) {
    REQUIRE(yv[i] == xv[i]);
  }
}

TEMPLATE_LIST_TEST_CASE("xor_mask: hard mask is one-hot and picks the chosen version", "[mask][xor]",
                        granularity_cases) {
  using G = typename TestType::param;
  using B = typename TestType::backend;
  auto p = make_pipe<B, G>(mask_mode::hard, 4);
  auto& m = p.template stage<1>();
  const shape ls = B::shape_of(m.logits());
  const auto w = random_values(ls.size(), -2.0f, 2.0f);
  m.set_logits(B::from_host(ls, w));
  const auto x = random_tensor<B>(batch);
  const auto r = p.forward(x);
  const auto h = B::to_host(m.applied());
  const std::size_t k_count = ls.size() / 3;
  std::vector<std::size_t> choice(k_count);
  for (std::size_t k = 0; k < k_count; ++k) {
    float total = 0.0f;
    std::size_t best = 0;
    for (std::size_t v = 0; v < 3; ++v) {
      REQUIRE((h[v * k_count + k] == 0.0f || h[v * k_count + k] == 1.0f));
      total += h[v * k_count + k];
      if (w[v * k_count + k] > w[best * k_count + k]) {
        best = v;
      }
    }
    REQUIRE(total == 1.0f);
    REQUIRE(h[best * k_count + k] == 1.0f);
    choice[k] = best;
  }
  // output = chosen version of each value; Q = mean cost of the chosen versions per location
  const auto cost_geom = make_geometry<G>(1, 3, 5, 7, true);
  const std::array<double, 3> cost{1.0, 0.4, 0.1};
  const auto xv = B::to_host(x), yv = B::to_host(r.output);
  double q = 0.0;
  for (std::size_t i = 0; i < xv.size(); ++i) {
    const std::size_t k = cost_geom.cell_of(i % cost_geom.values());
    REQUIRE(yv[i] == Approx(version_value(choice[k], xv[i])).margin(1e-6));
    if (i < cost_geom.values()) {
      q += cost[choice[k]];
    }
  }
  CHECK(r.q == Approx(q / static_cast<double>(cost_geom.values())).epsilon(1e-5));
}

TEMPLATE_LIST_TEST_CASE("xor_mask: soft-path gradients match finite differences", "[mask][xor][gradient]",
                        granularity_cases) {
  using G = typename TestType::param;
  using B = typename TestType::backend;
  auto p = make_pipe<B, G>(mask_mode::soft, 9);
  auto& m = p.template stage<1>();
  const shape ls = B::shape_of(m.logits());
  m.set_logits(B::from_host(ls, random_values(ls.size(), -1.0f, 1.0f)));
  const auto x = random_tensor<B>(batch);
  const auto rr = random_values(batch.size());
  const float lambda = 1.3f;
  p.zero_grad();
  p.forward(x);
  p.backward(B::from_host(batch, rr), lambda);
  const auto gw = B::to_host(m.grad());
  const auto loss = [&](const std::vector<float>& w) {
    m.set_logits(B::from_host(ls, w));
    const auto res = p.forward(x);
    return dot(B::to_host(res.output), rr) + lambda * res.q;
  };
  const auto c = testing::check_gradient(loss, B::to_host(m.logits()), gw, {.eps = 1e-2});
  INFO(c.message);
  CHECK(c.ok);
}

TEMPLATE_LIST_TEST_CASE("xor_mask: initial_version overrides the default choice", "[mask][xor]", backends) {
  using B = TestType;
  xor_mask<channel> cfg;
  cfg.initial_version = 2;
  pipeline<extend<versions3>, xor_mask<channel>, merge<sum>>::on<B> p(sample, 1, {make_versions()}, cfg, {});
  const auto r = p.forward(random_tensor<B>(batch));
  CHECK(r.q == Approx(0.1));
}
