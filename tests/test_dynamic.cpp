// Dynamic any-masks (mask/dynamic.hpp) and their trainer (train/dynamic.hpp): a hand-computed
// forward, the gradient of the static prior and of the mask model against central finite
// differences (soft mode), the per-sample top-k projection, the client's decision from previews
// alone, errors, and a synthetic task that only a per-sample mask solves.
#include "support.hpp"

#include <selmask/io/dataset.hpp>
#include <selmask/mask/dynamic.hpp>
#include <selmask/nn/dense.hpp>
#include <selmask/nn/flatten.hpp>
#include <selmask/nn/sequential.hpp>
#include <selmask/selmask.hpp>
#include <selmask/train/budget.hpp>
#include <selmask/train/dynamic.hpp>

#include <cmath>
#include <vector>

using namespace selmask;
using namespace selmask_test;

namespace {

using B = cpu;
using linear = nn::sequential<B, nn::dense<B>>;

void set(tensor_t<B>& t, const std::vector<float>& v) { t = B::from_host(B::shape_of(t), v); }

linear make_linear(std::size_t p, std::size_t k, std::uint64_t seed = 3) {
  return linear(nn::sequential_options{.seed = seed}, nn::dense<B>(p, k));
}

} // namespace

TEST_CASE("dynamic mask: forward, Q and projection by hand", "[dynamic]") {
  // 1×2×2 samples, preview = cell 0, model logits = W·p with W = [1, -1, 2, 0], bias 0
  linear model = make_linear(1, 4);
  set(*model.params()[0], {1.0f, -1.0f, 2.0f, 0.0f});
  set(*model.params()[1], {0.0f, 0.0f, 0.0f, 0.0f});
  dynamic_mask_options opt;
  opt.costs = {1.0f, 2.0f, 3.0f, 4.0f};
  dynamic_any_mask<B, linear> mask(shape{1, 2, 2}, cell_preview{{0}}, model, opt);
  set(mask.prior_for_update(), {0.0f, 0.5f, -3.0f, 0.25f});
  CHECK(mask.preview_q() == Approx(0.1));

  const auto x = B::from_host(shape{2, 1, 2, 2}, std::vector<float>{2, 5, 7, 9, -1, 1, 1, 1});
  // sample 0: p = 2, w = [2, -2, 4, 0] + prior = [2, -1.5, 1, 0.25] → keep 0 (preview), 2, 3
  // sample 1: p = -1, w = [-1, 1, -2, 0] + prior = [-1, 1.5, -5, 0.25] → keep 0 (preview), 1, 3
  CHECK(B::to_host(mask.forward(x)) == std::vector<float>{2, 0, 7, 9, -1, 1, 0, 1});
  CHECK(B::to_host(mask.applied()) == std::vector<float>{1, 0, 1, 1, 1, 1, 0, 1});
  const auto q = mask.sample_q();
  REQUIRE(q.size() == 2);
  CHECK(q[0] == Approx(0.8)); // (1 + 3 + 4) / 10
  CHECK(q[1] == Approx(0.7)); // (1 + 2 + 4) / 10
  CHECK(mask.mean_q() == Approx(0.75));

  // the client's decision from the previews alone is the forward's
  CHECK(mask.choose(mask.previews_of(x)) == std::vector<std::vector<std::size_t>>{{0, 2, 3}, {0, 1, 3}});

  // exactly one cell besides the preview: the largest logit outside it
  mask.keep_per_sample(1);
  CHECK(B::to_host(mask.forward(x)) == std::vector<float>{2, 0, 7, 0, -1, 1, 0, 0});
  CHECK(mask.choose(mask.previews_of(x)) == std::vector<std::vector<std::size_t>>{{0, 2}, {0, 1}});
  CHECK_THROWS_WITH(mask.keep_per_sample(4),
                    Catch::Contains("4 cells asked, only 3 lie outside the preview"));

  // backward: ∂L/∂x = ∂L/∂y ⊙ m
  mask.keep_per_sample(std::nullopt);
  (void)mask.forward(x);
  const auto g = B::from_host(shape{2, 1, 2, 2}, std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(B::to_host(mask.backward(g, 0.5f)) == std::vector<float>{1, 0, 3, 4, 5, 6, 0, 8});

  // a fill value for the dropped cells
  opt.fill = -1.0f;
  dynamic_any_mask<B, linear> filled(shape{1, 2, 2}, cell_preview{{0}}, model, opt);
  filled.prior_for_update() = B::from_host(shape{4}, std::vector<float>{0.0f, 0.5f, -3.0f, 0.25f});
  CHECK(B::to_host(filled.forward(x)) == std::vector<float>{2, -1, 7, 9, -1, 1, -1, 1});
}

TEST_CASE("dynamic mask: prior and mask-model gradients match finite differences", "[dynamic]") {
  const std::size_t n = 3, k = 9;
  linear model = make_linear(2, k, 11);
  dynamic_mask_options opt;
  opt.mode = mask_mode::soft;
  opt.tau = 0.8f;
  opt.costs = random_values(k, 0.5f, 2.0f);
  opt.fill = -0.5f;
  dynamic_any_mask<B, linear> mask(shape{1, 3, 3}, cell_preview{{0, 4}}, model, opt);
  set(mask.prior_for_update(), random_values(k, -1.0f, 1.0f));
  const std::vector<float> xv = random_values(n * k), rv = random_values(n * k);
  const auto x = B::from_host(shape{n, 1, 3, 3}, xv);
  const auto r = B::from_host(shape{n, 1, 3, 3}, rv);
  const float lambda = 0.7f;

  // L = Σ r ⊙ y + λ · mean_n Q_n
  const auto loss = [&] {
    const auto y = B::to_host(mask.forward(x));
    double l = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i)
      l += static_cast<double>(rv[i]) * y[i];
    return l + lambda * mask.mean_q();
  };
  mask.zero_grad();
  (void)loss();
  const auto gx = B::to_host(mask.backward(r, lambda));
  const auto m = B::to_host(mask.applied());
  for (std::size_t i = 0; i < gx.size(); ++i)
    CHECK(gx[i] == Approx(rv[i] * m[i]));

  const auto check_fd = [&](tensor_t<B>& param, const tensor_t<B>& grad, const char* what) {
    const std::vector<float> analytic = B::to_host(grad);
    std::vector<float> p = B::to_host(param);
    const float eps = 1e-2f;
    for (std::size_t i = 0; i < p.size(); ++i) {
      const float keep = p[i];
      p[i] = keep + eps;
      set(param, p);
      const double up = loss();
      p[i] = keep - eps;
      set(param, p);
      const double down = loss();
      p[i] = keep;
      set(param, p);
      INFO(what << " " << i);
      CHECK(analytic[i] == Approx((up - down) / (2.0 * eps)).margin(2e-3).epsilon(1e-2));
    }
  };
  check_fd(mask.prior_for_update(), mask.prior_grad(), "prior");
  check_fd(*model.params()[0], *model.grads()[0], "mask model weight");
  check_fd(*model.params()[1], *model.grads()[1], "mask model bias");

  // λ adds c_k / (N Σc) per kept cell outside the preview: the prior's gradient grows by
  // λ · Σ_n σ'(w_nk/τ)/τ · c_k / (N Σc) — checked through the difference of two backward passes
  mask.zero_grad();
  (void)mask.forward(x);
  (void)mask.backward(r, 0.0f);
  const auto g0 = B::to_host(mask.prior_grad());
  mask.zero_grad();
  (void)mask.forward(x);
  (void)mask.backward(r, 1.0f);
  const auto g1 = B::to_host(mask.prior_grad());
  CHECK(g1[0] == Approx(g0[0])); // preview cells: no cost gradient
  CHECK(g1[4] == Approx(g0[4]));
  CHECK(g1[1] > g0[1]); // a positive cost pushes the logit down (gradient up)
}

TEST_CASE("dynamic mask: bad input is named", "[dynamic][errors]") {
  linear model = make_linear(1, 4);
  const shape s{1, 2, 2};
  CHECK_THROWS_WITH((dynamic_any_mask<B, linear>(s, cell_preview{}, model)),
                    Catch::Contains("preview is empty"));
  CHECK_THROWS_WITH((dynamic_any_mask<B, linear>(s, cell_preview{{4}}, model)),
                    Catch::Contains("out of range"));
  CHECK_THROWS_WITH((dynamic_any_mask<B, linear>(s, cell_preview{{2, 1}}, model)),
                    Catch::Contains("not ascending"));
  dynamic_mask_options bad_costs;
  bad_costs.costs = {1.0f, 2.0f};
  CHECK_THROWS_WITH((dynamic_any_mask<B, linear>(s, cell_preview{{0}}, model, bad_costs)),
                    Catch::Contains("2 cell costs for 4 cells"));
  dynamic_mask_options bad_tau;
  bad_tau.tau = -1.0f;
  CHECK_THROWS_WITH((dynamic_any_mask<B, linear>(s, cell_preview{{0}}, model, bad_tau)),
                    Catch::Contains("tau must be positive"));

  dynamic_any_mask<B, linear> mask(s, cell_preview{{0}}, model);
  CHECK_THROWS_WITH(mask.forward(B::zeros(shape{2, 1, 3, 3})),
                    Catch::Contains("does not match the sample shape"));
  CHECK_THROWS_WITH(mask.forward(B::zeros(shape{0, 1, 2, 2})), Catch::Contains("empty batch"));
  CHECK_THROWS_WITH(mask.forward(B::from_host(shape{1, 1, 2, 2}, std::vector<float>{0, NAN, 0, 0})),
                    Catch::Contains("NaN"));
  (void)mask.forward(B::zeros(shape{2, 1, 2, 2}));
  CHECK_THROWS_WITH(mask.backward(B::zeros(shape{2, 1, 2, 2}), -0.1f),
                    Catch::Contains("lambda must be finite and >= 0"));
  CHECK_THROWS_WITH(mask.backward(B::zeros(shape{3, 1, 2, 2}), 0.1f), Catch::Contains("gradient shape"));

  linear wrong = make_linear(1, 3); // 3 logits for 4 cells
  dynamic_any_mask<B, linear> wrong_mask(s, cell_preview{{0}}, wrong);
  CHECK_THROWS_WITH(wrong_mask.forward(B::zeros(shape{2, 1, 2, 2})), Catch::Contains("expected 2×4 logits"));
  CHECK_THROWS_WITH(cell_preview::strided(shape{28, 28}, 7), Catch::Contains("C×H×W"));
  CHECK(
    cell_preview::strided(shape{1, 28, 28}, 7).cells ==
    std::vector<std::size_t>{87, 94, 101, 108, 283, 290, 297, 304, 479, 486, 493, 500, 675, 682, 689, 696});
}

namespace {

/// 1×4×4 samples: cell 0 holds a bit b; the label's sign ±1 sits in cell 5 when b = 1 and in
/// cell 10 when b = 0, the other of the two holds a random ±1, every other cell is 0. One cell
/// beside the preview is enough when it is the right one for the sample; a static choice of one
/// cell is right for half of the samples (75 % accuracy).
io::dataset switch_task(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  io::dataset d;
  d.sample = shape{1, 4, 4};
  d.classes = 2;
  d.images.assign(n * 16, 0.0f);
  for (std::size_t i = 0; i < n; ++i) {
    const bool b = (g() & 1) != 0;
    const int y = static_cast<int>(g() & 1);
    const float sign = y == 1 ? 1.0f : -1.0f, noise = (g() & 1) != 0 ? 1.0f : -1.0f;
    float* x = d.images.data() + i * 16;
    x[0] = b ? 1.0f : 0.0f;
    x[5] = b ? sign : noise;
    x[10] = b ? noise : sign;
    d.labels.push_back(y);
  }
  return d;
}

double switch_accuracy(bool dynamic) {
  const io::dataset train = switch_task(3000, 1), validation = switch_task(500, 2),
                    test = switch_task(1000, 3);
  using net_t = nn::sequential<B, nn::flatten<B>, nn::dense<B>>;
  net_t net(nn::sequential_options{.seed = 5, .optimizer = {.lr = 1e-2f}}, nn::flatten<B>{},
            nn::dense<B>(16, 2));
  linear model(nn::sequential_options{.seed = 6, .optimizer = {.lr = 2e-2f}}, nn::dense<B>(1, 16));
  dynamic_mask_options mo;
  mo.learn_dynamic = dynamic;
  mo.prior_optimizer.lr = 0.05f;
  dynamic_any_mask<B, linear> mask(train.sample, cell_preview{{0}}, model, mo, 7);
  dynamic_training_options opt;
  opt.warmup_epochs = 1;
  opt.mask_epochs = 12;
  opt.fixation_epochs = 3;
  opt.batch_size = 32;
  opt.keep_per_sample = 1;
  const budget_controller controller{.target_q = 2.0 / 16.0, .by_epoch = 12, .eta = 0.05f, .per_batch = true};
  const dynamic_result r = learn_dynamic_mask<B>(mask, net, train, validation, &test, opt, controller);
  REQUIRE(r.test);
  for (double q : r.test->sample_q)
    REQUIRE(q == Approx(2.0 / 16.0)); // preview + exactly one cell, every sample
  return r.test->accuracy;
}

} // namespace

TEST_CASE("dynamic mask: a per-sample choice solves what no static choice can", "[dynamic][train]") {
  const double dynamic = switch_accuracy(true);
  const double fixed = switch_accuracy(false); // the same, mask model off: a static mask
  INFO("dynamic " << dynamic << ", static " << fixed);
  CHECK(dynamic >= 0.97);
  CHECK(fixed <= 0.85);
}

TEST_CASE("dynamic trainer: planned steps that cannot change a static prior are named",
          "[dynamic][train][errors]") {
  const io::dataset train = switch_task(64, 1), validation = switch_task(32, 2);
  using net_t = nn::sequential<B, nn::flatten<B>, nn::dense<B>>;
  net_t net(nn::sequential_options{.seed = 5}, nn::flatten<B>{}, nn::dense<B>(16, 2));
  linear model = make_linear(1, 16);
  dynamic_mask_options mo;
  mo.learn_dynamic = false;
  mo.prior_optimizer.lr = 0.01f; // 2 epochs x 2 batches x 0.01 = 0.04, far from the initial 3
  dynamic_any_mask<B, linear> mask(train.sample, cell_preview{{0}}, model, mo);
  dynamic_training_options opt;
  opt.mask_epochs = 2;
  opt.batch_size = 32;
  const budget_controller controller{.target_q = 0.5, .by_epoch = 2};
  CHECK_THROWS_WITH(learn_dynamic_mask<B>(mask, net, train, validation, nullptr, opt, controller),
                    Catch::Contains("cannot move the prior's logits") &&
                      Catch::Contains("raise prior_optimizer.lr to >= 0.75") &&
                      Catch::Contains("or train >= 300 exploration steps"));
  // with the mask model on, or enough steps, it trains
  opt.mask_epochs = 1;
  opt.fixation_epochs = 0;
  mask.prior_for_update() = B::from_host(shape{16}, std::vector<float>(16, 0.01f));
  dynamic_mask_options near = mo;
  near.init_mean = 0.01f;
  dynamic_any_mask<B, linear> close(train.sample, cell_preview{{0}}, model, near);
  CHECK_NOTHROW(learn_dynamic_mask<B>(close, net, train, validation, nullptr, opt, controller));
}
