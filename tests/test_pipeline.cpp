// Pipelines: the product rule for Q on a hand-computed case, its gradient, and a 4-stage chain.
#include "support.hpp"

using namespace selmask;
using namespace selmask_test;

namespace {
using two_versions = identity_versions<2>;
using pipe = pipeline<extend<two_versions>, xor_mask<channel>, merge<sum>, any_mask<pixel>>;

template <class B>
typename pipe::template on<B> make(mask_mode mode) {
  extend<two_versions> e;
  e.op.version_costs = {1.0f, 0.25f};
  xor_mask<channel> xm;
  xm.mode = mode;
  any_mask<pixel> am;
  am.mode = mode;
  return pipe::on<B>(shape{2, 2, 2}, 3, e, xm, merge<sum>{}, am);
}
} // namespace

TEMPLATE_LIST_TEST_CASE("pipeline: Q multiplies the stages' costs per location (hand-computed)", "[pipeline]",
                        backends) {
  using B = TestType;
  auto p = make<B>(mask_mode::hard);
  // channel 0 → version 0 (cost 1), channel 1 → version 1 (cost 0.25); logits laid out V×C
  p.template stage<1>().set_logits(B::from_host(shape{2, 2, 1, 1}, std::vector<float>{5, 0, 0, 5}));
  // keep pixels (0,0) and (1,1)
  p.template stage<3>().set_logits(B::from_host(shape{1, 1, 2, 2}, std::vector<float>{3, -3, -3, 3}));
  const auto x = B::from_host(shape{1, 2, 2, 2}, std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8});
  const auto r = p.forward(x);
  // locations: channel 0 kept pixels cost 1·1 twice, channel 1 kept pixels 0.25·1 twice → 2.5 / 8
  CHECK(r.q == Approx(0.3125));
  CHECK(B::to_host(r.output) == std::vector<float>{1, 0, 0, 4, 5, 0, 0, 8});
}

TEMPLATE_LIST_TEST_CASE("pipeline: gradient of L + λQ through all masks matches finite differences",
                        "[pipeline][gradient]", backends) {
  using B = TestType;
  auto p = make<B>(mask_mode::soft);
  auto& xm = p.template stage<1>();
  auto& am = p.template stage<3>();
  xm.set_logits(B::from_host(shape{2, 2, 1, 1}, random_values(4, -1, 1)));
  am.set_logits(B::from_host(shape{1, 1, 2, 2}, random_values(4, -1, 1)));
  const shape bs{3, 2, 2, 2};
  const auto x = random_tensor<B>(bs);
  const auto rr = random_values(bs.size());
  const float lambda = 2.0f;
  p.zero_grad();
  p.forward(x);
  p.backward(B::from_host(bs, rr), lambda);
  const auto loss = [&](auto& m, const shape& ls) {
    return [&, ls](const std::vector<float>& w) {
      m.set_logits(B::from_host(ls, w));
      const auto res = p.forward(x);
      return dot(B::to_host(res.output), rr) + lambda * res.q;
    };
  };
  const auto w_xor = B::to_host(xm.logits());
  const auto w_any = B::to_host(am.logits());
  const auto c1 =
    testing::check_gradient(loss(xm, shape{2, 2, 1, 1}), w_xor, B::to_host(xm.grad()), {.eps = 1e-2});
  INFO("xor: " << c1.message);
  CHECK(c1.ok);
  xm.set_logits(B::from_host(shape{2, 2, 1, 1}, w_xor));
  const auto c2 =
    testing::check_gradient(loss(am, shape{1, 1, 2, 2}), w_any, B::to_host(am.grad()), {.eps = 1e-2});
  INFO("any: " << c2.message);
  CHECK(c2.ok);
}

TEMPLATE_LIST_TEST_CASE("pipeline: weighted merge and the input gradient through extend",
                        "[pipeline][gradient]", backends) {
  using B = TestType;
  using wpipe = pipeline<extend<identity_versions<3>>, merge<weighted_sum>, any_mask<subpixel>>;
  any_mask<subpixel> am;
  am.mode = mask_mode::soft;
  wpipe::on<B> p(shape{2, 3, 4}, 1, {}, merge<weighted_sum>{{{0.5f, -1.0f, 2.0f}}}, am);
  p.template stage<2>().set_logits(B::from_host(shape{1, 2, 3, 4}, random_values(24, -1, 1)));
  const shape bs{2, 2, 3, 4};
  const auto x = random_tensor<B>(bs);
  const auto rr = random_values(bs.size());
  p.forward(x);
  const auto gx = B::to_host(p.backward(B::from_host(bs, rr), 0.0f));
  const auto loss = [&](const std::vector<float>& xv) {
    return dot(B::to_host(p.forward(B::from_host(bs, xv)).output), rr);
  };
  const auto c = testing::check_gradient(loss, B::to_host(x), gx, {.eps = 1e-2});
  INFO(c.message);
  CHECK(c.ok);
  // forward: y = 1.5·x ⊙ s
  const auto y = B::to_host(p.forward(x).output);
  const auto s = B::to_host(p.template stage<2>().soft());
  const auto xv = B::to_host(x);
  for (std::size_t i = 0; i < xv.size(); ++i) {
    REQUIRE(y[i] == Approx(1.5 * xv[i] * s[i % 24]).margin(1e-5));
  }
}

TEMPLATE_LIST_TEST_CASE("pipeline: stage and mask counts are compile-time facts", "[pipeline]", backends) {
  using B = TestType;
  STATIC_REQUIRE(pipe::stage_count == 4);
  STATIC_REQUIRE(pipe::mask_count == 2);
  STATIC_REQUIRE(pipeline<any_mask<pixel>>::mask_count == 1);
  auto p = make<B>(mask_mode::hard);
  std::size_t n = 0;
  p.for_each_mask([&](auto&) { ++n; });
  CHECK(n == 2);
  // without masks Q is 1 and the data pass unchanged
  pipeline<extend<identity_versions<2>>, merge<weighted_sum>>::on<B> q(shape{1, 2, 2}, 0, {},
                                                                       merge<weighted_sum>{{{0.5f, 0.5f}}});
  const auto x = random_tensor<B>(shape{2, 1, 2, 2});
  const auto r = q.forward(x);
  CHECK(r.q == 1.0);
  const auto xv = B::to_host(x), yv = B::to_host(r.output);
  for (std::size_t i = 0; i < xv.size(); ++i) {
    REQUIRE(yv[i] == Approx(xv[i]));
  }
}

// ---- stages of the user's own, and the empty pipeline ----------------------------------------------
#include "../examples/channel_affine.hpp"

TEST_CASE("pipeline<>: the identity, with Q = 1", "[pipeline]") {
  pipeline<>::on<cpu> p(shape{2, 2, 2});
  STATIC_REQUIRE(pipeline<>::mask_count == 0);
  const auto x = random_tensor(shape{3, 2, 2, 2});
  const auto r = p.forward(x);
  CHECK(r.q == 1.0);
  CHECK(cpu::to_host(r.output) == cpu::to_host(x));
  const auto g = random_tensor(shape{3, 2, 2, 2});
  CHECK(cpu::to_host(p.backward(g, 0.5f)) == cpu::to_host(g));
}

TEST_CASE("pipeline: a user's transform stage between masks (hand-computed, finite differences)",
          "[pipeline]") {
  using user_pipe = pipeline<any_mask<channel>, user::channel_affine, any_mask<pixel>>;
  STATIC_REQUIRE(user_pipe::mask_count == 2);
  STATIC_REQUIRE(pipeline_stage<user::channel_affine, cpu>);
  STATIC_REQUIRE_FALSE(is_mask_stage<user::channel_affine>);
  STATIC_REQUIRE(mask_stage<any_mask<pixel>, cpu>);
  any_mask<channel> cm;
  cm.mode = mask_mode::soft;
  any_mask<pixel> pm;
  pm.mode = mask_mode::soft;
  user_pipe::on<cpu> p(shape{2, 1, 2}, 1, cm, user::channel_affine{{2.0f, -1.0f}, {0.5f, 3.0f}}, pm);
  std::size_t masks = 0;
  p.for_each_mask([&](auto&) { ++masks; });
  CHECK(masks == 2);

  SECTION("hard masks: channel 1 and pixel 0 dropped") {
    p.set_mode(mask_mode::hard);
    p.stage<0>().set_logits(cpu::from_host(shape{1, 2, 1, 1}, std::vector<float>{3, -3}));
    p.stage<2>().set_logits(cpu::from_host(shape{1, 1, 1, 2}, std::vector<float>{-3, 3}));
    const auto x = cpu::from_host(shape{1, 2, 1, 2}, std::vector<float>{1, 2, 3, 4});
    const auto r = p.forward(x);
    // channel 0: 1·2+0.5, 2·2+0.5; channel 1 dropped → 0·(−1)+3; then pixel 0 dropped
    CHECK(cpu::to_host(r.output) == std::vector<float>{0.0f, 4.5f, 0.0f, 3.0f});
    CHECK(r.q == Approx(0.25)); // one of two channels × one of two pixels
  }
  SECTION("∂L/∂x through the stage matches finite differences (L = Σ c ⊙ y)") {
    const shape xs{2, 2, 1, 2};
    const auto base = random_values(xs.size());
    const auto c = random_values(xs.size());
    const auto loss = [&](const std::vector<float>& xv) {
      const auto r = p.forward(cpu::from_host(xs, xv));
      const auto y = cpu::to_host(r.output);
      double s = 0.0;
      for (std::size_t i = 0; i < y.size(); ++i) {
        s += static_cast<double>(c[i]) * y[i];
      }
      return s;
    };
    p.forward(cpu::from_host(xs, base));
    p.zero_grad();
    const auto gx = cpu::to_host(p.backward(cpu::from_host(xs, c), 0.0f));
    const float h = 1e-2f;
    for (std::size_t i = 0; i < base.size(); ++i) {
      auto up = base, down = base;
      up[i] += h;
      down[i] -= h;
      CHECK(gx[i] == Approx((loss(up) - loss(down)) / (2 * h)).margin(1e-3));
    }
  }
  SECTION("a bad configuration is named") {
    CHECK_THROWS_WITH(user_pipe::on<cpu>(shape{2, 1, 2}, 1, cm, user::channel_affine{{1.0f}, {0.0f}}, pm),
                      Catch::Contains("1 scales and 1 shifts for 2 channels"));
  }
}
