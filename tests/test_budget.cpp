// Budgets a user states (train/budget.hpp) and the check that planned mask steps can change a
// mask (train/mask_reach.hpp): the dual-ascent update and the projections by hand, a budget
// reached on the synthetic bands task, exactly k cells kept, bad input named, and the "no silent
// no-op" message on a tiny data set but not at the main job's settings.
#include "support.hpp"
#include "train_support.hpp"

#include <selmask/nn/dense.hpp>
#include <selmask/nn/flatten.hpp>
#include <selmask/nn/sequential.hpp>
#include <selmask/train/trainer.hpp>

#include <cmath>
#include <numeric>

using namespace selmask;
using namespace selmask_test;
using Catch::Contains;

namespace {
using B = cpu;
using net_t = nn::sequential<B, nn::flatten<B>, nn::dense<B>>;
using channel_pipe = pipeline<any_mask<channel>>;
using costly_pipe = pipeline<any_mask<channel, st_sigmoid, table_cost>>;

net_t make_net(std::uint64_t seed, float lr = 2e-2f) {
  nn::sequential_options o;
  o.seed = seed;
  o.optimizer.lr = lr;
  return net_t(o, nn::flatten<B>{}, nn::dense<B>(108, 3));
}

/// Phase, validation Q and the number of kept cells of the first mask after every epoch.
struct mask_probe {
  std::vector<std::tuple<phase, double, float>>* seen;
  void on_epoch_end(const epoch_info& e) {
    const auto& m = e.masks.at(0);
    seen->emplace_back(e.current, e.q, std::accumulate(m.begin(), m.end(), 0.0f));
  }
};

float kept(const front_point& p) { return std::accumulate(p.masks.at(0).begin(), p.masks.at(0).end(), 0.0f); }
} // namespace

TEST_CASE("budget_controller: dual ascent on λ (hand-computed)", "[train][budget]") {
  budget_controller c{.target_q = 0.2, .by_epoch = 4, .eta = 0.5f, .glide = false};
  c.validate();
  float lambda = 0.1f;
  CHECK_FALSE(c.end_epoch(0, 0.6, lambda));    // τ keeps annealing
  CHECK(lambda == Approx(0.1f + 0.5f * 0.4f)); // Q above the target: λ grows
  c.end_epoch(1, 0.1, lambda);
  CHECK(lambda == Approx(0.3f - 0.5f * 0.1f)); // below: λ shrinks
  lambda = 0.05f;
  c.end_epoch(2, 0.0, lambda);
  CHECK(lambda == 0.0f); // never negative: max(0, 0.05 − 0.1)
  c.end_batch(0.9, lambda);
  CHECK(lambda == 0.0f); // per-epoch controller: batches change nothing

  SECTION("per batch: the batch's Q, λ unchanged at the epoch's end") {
    c.per_batch = true;
    lambda = 0.1f;
    c.end_batch(0.6, lambda);
    CHECK(lambda == Approx(0.3f));
    c.end_epoch(0, 0.6, lambda);
    CHECK(lambda == Approx(0.3f));
  }
  SECTION("the glide path falls geometrically to the target") {
    budget_controller g{.target_q = 0.01, .by_epoch = 4, .eta = 1.0f, .reach_fraction = 0.5};
    CHECK(g.path_q(0) == Approx(0.1)); // 0.01^(1/2): reached after ⌈0.5·4⌉ = 2 epochs
    CHECK(g.path_q(1) == Approx(0.01));
    CHECK(g.path_q(7) == Approx(0.01));
    float l = 1.0f;
    g.end_epoch(0, 0.3, l);
    CHECK(l == Approx(1.0f + (0.3f - 0.1f)));
  }
  SECTION("phases, and when the masks are final") {
    CHECK(c.phase_of(3) == phase::exploration);
    CHECK(c.phase_of(4) == phase::fixation);
    CHECK(c.masks_final(0, 0.198)); // within [0.195, 0.2]
    CHECK(c.masks_final(0, 0.2));
    CHECK_FALSE(c.masks_final(0, 0.21));
    CHECK_FALSE(c.masks_final(0, 0.19));
    CHECK(c.masks_final(3, 0.9)); // by_epoch reached
  }
}

TEST_CASE("keep_best_cells: the k largest logits, or a cost budget by σ(w)/cost (hand-computed)",
          "[train][budget]") {
  const std::vector<float> uniform(4, 0.25f);
  SECTION("k cells; ties go to the lower index") {
    const std::vector<float> w{1.0f, 3.0f, 3.0f, -2.0f};
    CHECK(keep_best_cells(w, uniform, 2, std::nullopt) == std::vector<bool>{false, true, true, false});
    CHECK(keep_best_cells(w, uniform, 1, std::nullopt) == std::vector<bool>{false, true, false, false});
    CHECK(keep_best_cells(w, uniform, 4, std::nullopt) == std::vector<bool>(4, true));
  }
  SECTION("a cost budget") {
    // σ(w)/cost: σ(2)/0.5 = 1.76, σ(1)/0.1 = 7.31, σ(0.5)/0.1 = 6.22, σ(−1)/0.3 = 0.90
    const std::vector<float> w{2.0f, 1.0f, 0.5f, -1.0f};
    const std::vector<float> cost{0.5f, 0.1f, 0.1f, 0.3f};
    // 0.35: cells 1, 2 (0.2); cell 0 (0.7) and cell 3 (0.5) do not fit
    CHECK(keep_best_cells(w, cost, std::nullopt, 0.35) == std::vector<bool>{false, true, true, false});
    // 0.5: cells 1, 2; cell 0 does not fit, cell 3 does (0.5)
    CHECK(keep_best_cells(w, cost, std::nullopt, 0.5) == std::vector<bool>{false, true, true, true});
    // equal costs: the budget keeps the largest logits
    CHECK(keep_best_cells(w, uniform, std::nullopt, 0.5) == std::vector<bool>{true, true, false, false});
  }
  SECTION("logits that make the kept cells the hard mask") {
    const std::vector<float> w{1.0f, -3.0f, 0.0f, 2.0f};
    const auto v = logits_keeping(w, {true, true, false, false});
    CHECK(v == std::vector<float>{1.0f, 0.5f, -0.5f, -0.5f});
  }
  SECTION("bad input is named") {
    const std::vector<float> w{1.0f, 2.0f, 3.0f, 4.0f};
    CHECK_THROWS_WITH(keep_best_cells(w, uniform, 0, std::nullopt),
                      Contains("k must lie in 1..4") && Contains("got 0"));
    CHECK_THROWS_WITH(keep_best_cells(w, uniform, 5, std::nullopt), Contains("got 5"));
    CHECK_THROWS_WITH(keep_best_cells(w, uniform, std::nullopt, 1.5), Contains("q_budget"));
    CHECK_THROWS_WITH(keep_best_cells(w, uniform, 2, 0.5), Contains("exactly one"));
  }
}

TEST_CASE("budget_controller: bad settings are named", "[train][budget][errors]") {
  CHECK_THROWS_WITH((budget_controller{.target_q = -0.1}.validate()),
                    Contains("target_q") && Contains("-0.1"));
  CHECK_THROWS_WITH((budget_controller{.target_q = 1.5}.validate()), Contains("target_q") && Contains("1.5"));
  CHECK_THROWS_WITH((budget_controller{.eta = -1.0f}.validate()), Contains("eta") && Contains("-1"));
  CHECK_THROWS_WITH((budget_controller{.by_epoch = 0}.validate()), Contains("by_epoch"));
  CHECK_THROWS_AS((budget_controller{.tolerance = NAN}.validate()), value_error);

  const auto train = bands(80, 1), val = bands(40, 2);
  channel_pipe::on<B> masks(train.sample, 1);
  auto net = make_net(1);
  auto o = quick_options();
  o.mask_epochs = 2;
  o.final_fixation_epochs = 1;
  CHECK_THROWS_WITH(
    learn_selection_masks(masks, net, train, val, nullptr, o, budget_controller{.eta = -2.0f}),
    Contains("eta"));
  o.keep_cells = 0;
  CHECK_THROWS_WITH(learn_selection_masks(masks, net, train, val, nullptr, o),
                    Contains("keep_cells must lie in 1..12") && Contains("got 0"));
  o.keep_cells = 13;
  CHECK_THROWS_WITH(learn_selection_masks(masks, net, train, val, nullptr, o), Contains("got 13"));
  o.keep_cells = std::nullopt;
  o.keep_q = 1.5;
  CHECK_THROWS_WITH(learn_selection_masks(masks, net, train, val, nullptr, o),
                    Contains("keep_q") && Contains("1.5"));
  o.keep_q = std::nullopt;
  o.keep_cells = 3;
  o.final_fixation_epochs = 0; // round_schedule: the masks never become final
  CHECK_THROWS_WITH(learn_selection_masks(masks, net, train, val, nullptr, o),
                    Contains("final_fixation_epochs"));
  // a budget controller whose end is the last epoch: nothing to project in; the run says so
  const auto r = learn_selection_masks(masks, net, train, val, nullptr, o,
                                       budget_controller{.target_q = 0.01, .by_epoch = 2, .eta = 0.0f});
  REQUIRE_FALSE(r.notes.empty());
  CHECK_THAT(r.notes.back(), Contains("never applied"));
  CHECK_FALSE(r.final_point.has_value());
}

TEST_CASE("budget_controller: the bands task ends within the tolerance of the stated Q", "[train][budget]") {
  const auto train = bands(600, 1), val = bands(300, 2), test = bands(300, 3);
  channel_pipe::on<B> masks(train.sample, 4);
  auto net = make_net(5);
  auto o = quick_options();
  o.lambda = 0.0f; // λ from the controller alone
  const budget_controller c{.target_q = 0.25, .by_epoch = 9, .eta = 2.0f};
  std::vector<std::tuple<phase, double, float>> seen;
  const auto r = learn_selection_masks(masks, net, train, val, &test, o, c, mask_probe{&seen});
  REQUIRE(r.final_point.has_value());
  CHECK(std::abs(r.final_point->q - 0.25) <= 0.005); // 3 of 12 bands
  CHECK(std::get<1>(seen.back()) == r.final_point->q);
  CHECK(r.final_point->test_accuracy > 0.8); // the informative bands, not any three
}

TEST_CASE("keep_cells keeps exactly k cells in every final epoch and the final point", "[train][budget]") {
  const auto train = bands(240, 1), val = bands(120, 2);
  for (const std::size_t k : {std::size_t{2}, std::size_t{5}}) {
    CAPTURE(k);
    channel_pipe::on<B> masks(train.sample, 4);
    auto net = make_net(4);
    auto o = quick_options();
    o.mask_epochs = 8;
    o.final_fixation_epochs = 3;
    o.keep_cells = k;
    std::vector<std::tuple<phase, double, float>> seen;
    const auto r = learn_selection_masks(masks, net, train, val, nullptr, o, round_schedule{2, 1, 1.5f},
                                         mask_probe{&seen});
    REQUIRE(seen.size() == 10);
    for (std::size_t e = 7; e < 10; ++e) {
      CAPTURE(e);
      CHECK(std::get<0>(seen[e]) == phase::fixation);
      CHECK(std::get<2>(seen[e]) == static_cast<float>(k));
      CHECK(std::get<1>(seen[e]) == Approx(static_cast<double>(k) / 12.0));
    }
    REQUIRE(r.final_point.has_value());
    CHECK(kept(*r.final_point) == static_cast<float>(k));
  }
}

TEST_CASE("keep_q with non-uniform costs spends at most the budget", "[train][budget]") {
  const auto train = bands(240, 1), val = bands(120, 2);
  // per band: informative bands 1, 6, 10 are expensive (3), the rest cost 1; Q = Σ kept costs / 12
  std::vector<float> cost(12, 1.0f);
  cost[1] = cost[6] = cost[10] = 3.0f;
  costly_pipe::on<B> masks(train.sample, 4, any_mask<channel, st_sigmoid, table_cost>{.cost = {cost}});
  auto net = make_net(4);
  auto o = quick_options();
  o.mask_epochs = 6;
  o.final_fixation_epochs = 2;
  o.keep_q = 0.5; // 6 units of cost
  std::vector<std::tuple<phase, double, float>> seen;
  const auto r =
    learn_selection_masks(masks, net, train, val, nullptr, o, round_schedule{2, 1, 1.5f}, mask_probe{&seen});
  REQUIRE(r.final_point.has_value());
  const auto& h = r.final_point->masks.at(0);
  double spent = 0.0;
  for (std::size_t i = 0; i < 12; ++i) {
    spent += h[i] * cost[i] / 12.0;
  }
  CHECK(spent <= 0.5 + 1e-9);
  CHECK(spent >= 0.5 - 3.0 / 12.0); // greedy: no cell that still fits is left out
  CHECK(r.final_point->q == Approx(spent));
  // the same selection as the projection computed by hand from the logits at the final epochs
  const auto w = B::to_host(masks.stage<0>().logits());
  std::vector<float> share(12);
  for (std::size_t i = 0; i < 12; ++i) {
    share[i] = cost[i] / 12.0f;
  }
  const auto keep = keep_best_cells(w, share, std::nullopt, 0.5);
  for (std::size_t i = 0; i < 12; ++i) {
    CAPTURE(i);
    CHECK((h[i] == 1.0f) == keep[i]);
  }
}

TEST_CASE("mask_reach: when the planned steps cannot cross 0 (hand-computed)", "[train][budget][reach]") {
  mask_reach r{
    .distance = 2.97, .mean_distance = 3.0, .lr = 0.005, .steps = 600, .epochs = 60, .batches = 10};
  CHECK(r.reachable()); // 600 × 0.005 = 3 ≥ 2.97
  r.steps = 500;
  CHECK_FALSE(r.reachable());
  CHECK(r.scaled_lr() == Approx(2.0 * 3.0 / 500.0));
  CHECK_THAT(r.message(), Contains("cannot cross 0") && Contains("raise mask_optimizer.lr to >= 0.00594") &&
                            Contains("train >= 594 exploration steps"));
  // the main job's default command: 10 exploration epochs of 15, 430 batches of 128, lr 0.02
  const mask_reach main_job{.distance = 2.97, .mean_distance = 3.0, .lr = 0.02, .steps = 4300};
  CHECK(main_job.reachable());
}

TEST_CASE("learn_selection_masks: a tiny data set with the default mask settings is not a silent no-op",
          "[train][budget][reach]") {
  const auto train = bands(100, 1), val = bands(60, 2);
  trainer_options o; // defaults: mask lr 0.005, 20 mask epochs, batches of 128 → 14 exploration steps
  o.seed = 1;
  SECTION("error: says what to change") {
    o.mask_reach = mask_reach_policy::error;
    channel_pipe::on<B> masks(train.sample, 1);
    auto net = make_net(1);
    CHECK_THROWS_WITH(learn_selection_masks(masks, net, train, val, nullptr, o),
                      Contains("14 exploration steps (14 epochs x 1 batches)") &&
                        Contains("cannot cross 0") && Contains("raise mask_optimizer.lr"));
  }
  SECTION("scale (the default): the rate is raised and the masks move; off: they do not") {
    channel_pipe::on<B> scaled(train.sample, 1);
    auto net = make_net(1);
    const auto r = learn_selection_masks(scaled, net, train, val, nullptr, o);
    REQUIRE(r.notes.size() == 1);
    CHECK_THAT(r.notes[0], Contains("raised mask_optimizer.lr"));
    CHECK(r.front.points().front().q < 1.0);

    o.mask_reach = mask_reach_policy::off;
    channel_pipe::on<B> plain(train.sample, 1);
    auto net2 = make_net(1);
    const auto r2 = learn_selection_masks(plain, net2, train, val, nullptr, o);
    CHECK(r2.notes.empty());
    CHECK(r2.front.points().front().q == 1.0); // the no-op the check exists for
  }
  SECTION("settings that reach: no message") {
    channel_pipe::on<B> masks(train.sample, 1);
    auto net = make_net(1);
    auto q = quick_options(); // lr 0.05, 8 exploration epochs × 3 batches = 1.2 < 3: not enough either
    q.mask_epochs = 30;       // 20 exploration epochs × 3 batches × 0.05 = 3 ≥ 2.97
    const auto r = learn_selection_masks(masks, net, train, val, nullptr, q);
    CHECK(r.notes.empty());
  }
}

namespace {
struct fake_mask {
  B::tensor w;
  std::size_t v;
  B::tensor& logits_for_update() { return w; }
  [[nodiscard]] std::size_t choices() const { return v; }
};
struct fake_pipe {
  using backend = B;
  std::vector<fake_mask> masks;
  template <class F>
  void for_each_mask(F&& f) {
    for (auto& m : masks) {
      f(m);
    }
  }
};
} // namespace

TEST_CASE("add_logit_distances: |w| for any-masks, half the two best logits' gap for xOr (hand-computed)",
          "[train][budget][reach]") {
  fake_pipe p;
  p.masks.push_back({B::from_host(shape{1, 3}, std::vector<float>{3.0f, -0.5f, 2.0f}), 1});
  mask_reach r;
  add_logit_distances(p, r);
  CHECK(r.distance == Approx(0.5));
  CHECK(r.mean_distance == Approx(5.5 / 3.0));
  // V = 3 versions of K = 2 cells, laid out V×K: cell 0 {3, 0, 1} → 1, cell 1 {0, 0.4, −2} → 0.2
  p.masks.push_back({B::from_host(shape{3, 2}, std::vector<float>{3.0f, 0.0f, 0.0f, 0.4f, 1.0f, -2.0f}), 3});
  add_logit_distances(p, r);
  CHECK(r.distance == Approx(0.2));
  CHECK(r.mean_distance == Approx((3.0 + 0.5 + 2.0 + 1.0 + 0.2) / 5.0));
}

TEST_CASE("λ controllers take designated initialisers (the README's examples)", "[train][schedule]") {
  const auto p = plateau_schedule{.patience = 3};
  CHECK(p.patience == 3);
  CHECK(p.factor == 1.5f);
  const auto b = budget_controller{.target_q = 0.1, .eta = 2.0f};
  CHECK(b.by_epoch == 10);
  CHECK(b.eta == 2.0f);
}
