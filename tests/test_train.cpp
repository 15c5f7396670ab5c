// Algorithm 1: schedules by hand, the front's bookkeeping, learning a mask on synthetic bands,
// determinism, and bad input (shapes, labels, λ, empty data, a diverging loss). Every test that
// trains runs on every backend of support.hpp (label `backends`); the schedules and the front
// hold no tensors and run once.
#include "support.hpp"
#include "train_support.hpp"

#include <selmask/nn/dense.hpp>
#include <selmask/nn/flatten.hpp>
#include <selmask/nn/sequential.hpp>
#include <selmask/train/trainer.hpp>

#include <filesystem>

using namespace selmask;
using namespace selmask_test;
using Catch::Contains;

namespace {
template <class B>
using net_t = nn::sequential<B, nn::flatten<B>, nn::dense<B>>;
using channel_pipe = pipeline<any_mask<channel>>;

template <class B>
net_t<B> make_net(std::size_t inputs, std::size_t classes, std::uint64_t seed, float lr = 1e-2f) {
  nn::sequential_options o;
  o.seed = seed;
  o.optimizer.lr = lr;
  return net_t<B>(o, nn::flatten<B>{}, nn::dense<B>(inputs, classes));
}

} // namespace

TEST_CASE("round_schedule: exploration, fixation, λ growth (hand-computed)", "[train][schedule]") {
  round_schedule s{2, 1, 2.0f};
  float lambda = 0.1f;
  const phase expected[6] = {phase::exploration, phase::exploration, phase::fixation,
                             phase::exploration, phase::exploration, phase::fixation};
  const float lambdas[6] = {0.1f, 0.1f, 0.2f, 0.2f, 0.2f, 0.4f};
  for (std::size_t k = 0; k < 6; ++k) {
    CHECK(s.phase_of(k) == expected[k]);
    const bool grew = s.end_epoch(k, 0.5, lambda);
    CHECK(grew == (k % 3 == 2));
    CHECK(lambda == Approx(lambdas[k]));
  }
  round_schedule bad{0, 1, 2.0f};
  CHECK_THROWS_AS(bad.validate(), value_error);
  round_schedule shrinking{1, 1, 0.5f};
  CHECK_THROWS_AS(shrinking.validate(), value_error);
}

TEST_CASE("plateau_schedule: λ grows after `patience` epochs without progress", "[train][schedule]") {
  plateau_schedule s;
  s.threshold = 0.01;
  s.patience = 2;
  s.cooldown = 1;
  s.factor = 2.0f;
  float lambda = 1.0f;
  CHECK_FALSE(s.end_epoch(0, 0.90, lambda));  // improves (from +inf)
  CHECK_FALSE(s.end_epoch(1, 0.80, lambda));  // improves
  CHECK_FALSE(s.end_epoch(2, 0.795, lambda)); // not by more than 0.01: wait 1
  CHECK(s.end_epoch(3, 0.80, lambda));        // wait 2 → λ doubles
  CHECK(lambda == 2.0f);
  CHECK_FALSE(s.end_epoch(4, 0.80, lambda)); // cooldown (counts as waiting: no progress)
  CHECK(s.end_epoch(5, 0.80, lambda));       // wait 2 → λ doubles again
  CHECK(lambda == 4.0f);
  CHECK_FALSE(s.end_epoch(6, 0.50, lambda)); // progress (and cooldown)
  CHECK(s.phase_of(7) == phase::exploration);
}

TEST_CASE("tau_schedule: geometric annealing with a floor", "[train][schedule]") {
  tau_schedule t{1.0f, 0.5f, 0.2f};
  CHECK(t.next(1.0f) == 0.5f);
  CHECK(t.next(0.5f) == 0.25f);
  CHECK(t.next(0.25f) == 0.2f);
  tau_schedule bad{0.0f, 0.5f, 0.1f};
  CHECK_THROWS_AS(bad.validate(), value_error);
}

TEST_CASE("accuracy_front: best validation point per Q bucket; Pareto points", "[train][front]") {
  accuracy_front f(0.1);
  front_point p;
  p.q = 0.55;
  p.val_accuracy = 0.8;
  CHECK(f.offer(p));
  p.q = 0.52;
  p.val_accuracy = 0.7;
  CHECK_FALSE(f.offer(p)); // same bucket [0.5, 0.6), worse
  p.val_accuracy = 0.8;
  CHECK(f.offer(p)); // tie: lower Q wins
  p.q = 0.12;
  p.val_accuracy = 0.85;
  CHECK(f.offer(p));
  p.q = 0.31;
  p.val_accuracy = 0.6;
  CHECK(f.offer(p));
  CHECK(f.size() == 3);
  const auto pts = f.points();
  REQUIRE(pts.size() == 3);
  CHECK(pts[0].q == 0.12);
  CHECK(pts[1].q == 0.31);
  CHECK(pts[2].q == 0.52);
  // 0.31 and 0.52 are dominated by 0.12 (less data, better accuracy)
  CHECK(f.pareto().size() == 1);
  REQUIRE(f.best_within(0.5) != nullptr);
  CHECK(f.best_within(0.5)->q == 0.12);
  CHECK(f.best_within(0.1) == nullptr);
  CHECK_THROWS_AS(accuracy_front(0.0), value_error);
}

TEMPLATE_LIST_TEST_CASE("learn_selection_masks: a channel mask finds the informative bands", "[train]",
                        backends) {
  using B = TestType;
  const auto train = bands(600, 1), val = bands(300, 2), test = bands(300, 3);
  channel_pipe::on<B> masks(train.sample, 5);
  auto net = make_net<B>(108, 3, 5);
  const auto r =
    learn_selection_masks(masks, net, train, val, &test, quick_options(), round_schedule{2, 1, 1.5f});
  CHECK(r.epochs_run == 14);
  CHECK(r.full_test_accuracy > 0.95);
  // a point with at most 3 of 12 bands (Q ≤ 0.25) that keeps the accuracy
  const front_point* p = r.front.best_within(0.25 + 1e-9);
  REQUIRE(p != nullptr);
  CHECK(p->test_accuracy > 0.95);
  REQUIRE(p->masks.size() == 1);
  std::size_t informative_kept = 0;
  for (std::size_t c : {1u, 6u, 10u}) {
    informative_kept += p->masks[0][c] == 1.0f ? 1 : 0;
  }
  CHECK(informative_kept == 3);
  // the front starts with the full-data point
  CHECK(r.front.points().back().q == 1.0);
}

TEMPLATE_LIST_TEST_CASE("learn_selection_masks: deterministic for a fixed seed", "[train]", backends) {
  using B = TestType;
  const auto train = bands(200, 1), val = bands(100, 2);
  auto o = quick_options();
  o.mask_epochs = 4;
  const auto run = [&] {
    channel_pipe::on<B> masks(train.sample, 9);
    auto net = make_net<B>(108, 3, 9);
    auto r = learn_selection_masks(masks, net, train, val, nullptr, o);
    return std::make_pair(r.front.points(), B::to_host(masks.template stage<0>().logits()));
  };
  const auto [a, wa] = run();
  const auto [b, wb] = run();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].q == b[i].q);
    CHECK(a[i].val_accuracy == b[i].val_accuracy);
    CHECK(a[i].masks == b[i].masks);
  }
  CHECK(wa == wb);
}

TEMPLATE_LIST_TEST_CASE("learn_selection_masks: the same run as on the cpu backend (parity)", "[train]",
                        backends) {
  // the same seeds on backend B and on the CPU: the same hard masks at every point of the front,
  // the same accuracies, and mask logits equal up to float rounding (the backends sum in another
  // order, so the logits may differ in their last bits; the hard masks and the counts must not)
  using B = TestType;
  const auto train = bands(200, 1), val = bands(100, 2);
  const auto o = quick_options(); // 12 mask epochs: the masks leave the full-data point
  const auto run = [&]<class Bk>() {
    channel_pipe::on<Bk> masks(train.sample, 9);
    auto net = make_net<Bk>(108, 3, 9);
    auto r = learn_selection_masks(masks, net, train, val, nullptr, o);
    return std::make_pair(r.front.points(), Bk::to_host(masks.template stage<0>().logits()));
  };
  const auto [a, wa] = run.template operator()<B>();
  const auto [c, wc] = run.template operator()<cpu>();
  REQUIRE(a.size() == c.size());
  REQUIRE(a.size() > 1); // the masks moved: more than the full-data point
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(a[i].q == Approx(c[i].q).epsilon(1e-9));
    CHECK(a[i].val_accuracy == c[i].val_accuracy);
    CHECK(a[i].masks == c[i].masks);
  }
  REQUIRE(wa.size() == wc.size());
  for (std::size_t k = 0; k < wa.size(); ++k) {
    CAPTURE(k);
    CHECK(wa[k] == Approx(wc[k]).epsilon(1e-4).margin(1e-5));
  }
}

TEMPLATE_LIST_TEST_CASE("learn_selection_masks: checkpoints of the front and the last good epoch", "[train]",
                        backends) {
  using B = TestType;
  const auto train = bands(200, 1), val = bands(100, 2);
  auto o = quick_options();
  o.mask_epochs = 3;
  const temp_dir dir;
  o.checkpoint_dir = dir.path;
  channel_pipe::on<B> masks(train.sample, 1);
  auto net = make_net<B>(108, 3, 1);
  const auto r = learn_selection_masks(masks, net, train, val, nullptr, o);
  CHECK(std::filesystem::exists(o.checkpoint_dir / "last_good.weights"));
  for (const auto& p : r.front.points()) {
    REQUIRE(std::filesystem::exists(p.checkpoint));
    // the saved weights load into a fresh network and reproduce the recorded validation accuracy
    auto fresh = make_net<B>(108, 3, 77);
    fresh.load(p.checkpoint);
    channel_pipe::on<B> m2(train.sample, 1);
    const auto saved = nn::read_weights_file(std::filesystem::path(p.checkpoint).replace_extension(".masks"));
    REQUIRE(saved.size() == 1);
    CHECK(saved[0].values == p.masks[0]);
    // hard mask {0,1} → logits ±3 reproduce it
    std::vector<float> w(saved[0].values.size());
    for (std::size_t i = 0; i < w.size(); ++i) {
      w[i] = saved[0].values[i] == 1.0f ? 3.0f : -3.0f;
    }
    m2.template stage<0>().set_logits(B::from_host(B::shape_of(m2.template stage<0>().logits()), w));
    CHECK(evaluate(m2, fresh, val).first == Approx(p.val_accuracy));
  }
}

TEMPLATE_LIST_TEST_CASE("learn_selection_masks: bad input is named", "[train][errors]", backends) {
  using B = TestType;
  const auto train = bands(100, 1), val = bands(50, 2);
  channel_pipe::on<B> masks(train.sample, 1);
  auto o = quick_options();
  o.mask_epochs = 1;
  o.warmup_epochs = 0;
  SECTION("model output does not match the classes") {
    auto net = make_net<B>(108, 4, 1);
    CHECK_THROWS_WITH(learn_selection_masks(masks, net, train, val, nullptr, o),
                      Contains("[40,4]") && Contains("3 classes"));
  }
  SECTION("data of another shape than the masks") {
    auto net = make_net<B>(108, 3, 1);
    pipeline<any_mask<channel>>::on<B> other(shape{12, 9, 1}, 1);
    CHECK_THROWS_WITH(learn_selection_masks(other, net, train, val, nullptr, o), Contains("[12,3,3]"));
  }
  SECTION("labels out of range") {
    auto net = make_net<B>(108, 3, 1);
    auto bad = train;
    bad.labels[7] = 3;
    CHECK_THROWS_WITH(learn_selection_masks(masks, net, bad, val, nullptr, o), Contains("label 3"));
  }
  SECTION("negative lambda") {
    auto net = make_net<B>(108, 3, 1);
    o.lambda = -0.1f;
    CHECK_THROWS_WITH(learn_selection_masks(masks, net, train, val, nullptr, o), Contains("lambda"));
  }
  SECTION("empty data set") {
    auto net = make_net<B>(108, 3, 1);
    io::dataset empty;
    empty.sample = train.sample;
    empty.classes = 3;
    CHECK_THROWS_WITH(learn_selection_masks(masks, net, empty, val, nullptr, o), Contains("empty data set"));
  }
}

namespace {
/// A network whose logits turn NaN once `poisoned` is set (by a callback, after epoch 2).
/// The NaN goes in through the host (`to_host`/`from_host`): the emulated CUDA backend's tensor
/// gives no host access, as a GPU's would not.
template <class B>
struct poisonable {
  net_t<B> net;
  bool poisoned = false;
  typename B::tensor out;
  const typename B::tensor& forward(const typename B::tensor& x) {
    B::copy(net.forward(x), out);
    if (poisoned) {
      auto h = B::to_host(out);
      h[0] = std::numeric_limits<float>::quiet_NaN();
      out = B::from_host(B::shape_of(out), h);
    }
    return out;
  }
  const typename B::tensor& backward(const typename B::tensor& g) { return net.backward(g); }
  void step() { net.step(); }
  void zero_grad() { net.zero_grad(); }
  void save(const std::filesystem::path& p) const { net.save(p); }
  void load(const std::filesystem::path& p) { net.load(p); }
};
template <class B>
struct poison_after {
  poisonable<B>* model;
  std::size_t epoch;
  void on_epoch_end(const epoch_info& e) {
    if (e.epoch + 1 == epoch) {
      model->poisoned = true;
    }
  }
};
} // namespace

TEMPLATE_LIST_TEST_CASE("learn_selection_masks: a diverging loss stops with the last good checkpoint",
                        "[train][errors]", backends) {
  using B = TestType;
  const auto train = bands(200, 1), val = bands(100, 2);
  auto o = quick_options();
  o.warmup_epochs = 2;
  o.mask_epochs = 3;
  const temp_dir dir;
  o.checkpoint_dir = dir.path;
  channel_pipe::on<B> masks(train.sample, 1);
  poisonable<B> model{make_net<B>(108, 3, 1), false, {}};
  bool threw = false;
  try {
    learn_selection_masks(masks, model, train, val, nullptr, o, round_schedule{}, poison_after<B>{&model, 2});
  } catch (const training_diverged& e) {
    threw = true;
    CHECK_THAT(e.what(), Contains("not finite at epoch 3, batch 1"));
    CHECK_THAT(e.what(), Contains("last_good.weights"));
  }
  REQUIRE(threw);
  // the checkpoint of epoch 2 is whole and loads; its network predicts as well as after epoch 2
  auto fresh = make_net<B>(108, 3, 42);
  fresh.load(o.checkpoint_dir / "last_good.weights");
  channel_pipe::on<B> m2(train.sample, 1);
  CHECK(evaluate(m2, fresh, val).first > 0.9);
}

namespace {
/// Records the model's learning rate and the phase at the end of every epoch.
template <class B>
struct lr_probe {
  const net_t<B>* net;
  std::vector<std::pair<phase, float>>* seen;
  void on_epoch_end(const epoch_info& e) { seen->emplace_back(e.current, net->learning_rate()); }
};
} // namespace

TEMPLATE_LIST_TEST_CASE("learn_selection_masks: phase_lr scales the network's rate in fixation only",
                        "[train]", backends) {
  using B = TestType;
  const auto train = bands(120, 1), val = bands(60, 2);
  auto o = quick_options();
  o.warmup_epochs = 1;
  o.mask_epochs = 6; // round_schedule{2, 1}: explore, explore, fixate, twice
  const auto policies =
    training_policies<>{}.with_lambda(round_schedule{2, 1, 1.5f}).with_lr(phase_lr{.fixation = 0.25f});
  channel_pipe::on<B> masks(train.sample, 2);
  auto net = make_net<B>(108, 3, 2, 0.02f);
  std::vector<std::pair<phase, float>> seen;
  learn_selection_masks(masks, net, train, val, nullptr, o, policies, lr_probe<B>{&net, &seen});
  REQUIRE(seen.size() == 7);
  std::size_t fixations = 0;
  for (const auto& [ph, lr] : seen) {
    if (ph == phase::fixation) {
      ++fixations;
      CHECK(lr == Approx(0.005f));
    } else {
      CHECK(lr == Approx(0.02f));
    }
  }
  CHECK(fixations == 2);
  CHECK(net.learning_rate() == Approx(0.02f)); // restored at the end

  SECTION("a scale that is not positive and finite is rejected") {
    CHECK_THROWS_WITH(
      learn_selection_masks(masks, net, train, val, nullptr, o, policies.with_lr(phase_lr{.fixation = 0.0f})),
      Contains("phase_lr: fixation"));
    CHECK_THROWS_AS(
      learn_selection_masks(masks, net, train, val, nullptr, o,
                            policies.with_lr(phase_lr{.fixation = std::numeric_limits<float>::quiet_NaN()})),
      value_error);
  }
  SECTION("a model without a learning rate cannot use it, unless every factor is 1") {
    poisonable<B> model{make_net<B>(108, 3, 1), false, {}};
    CHECK_THROWS_WITH(learn_selection_masks(masks, model, train, val, nullptr, o, policies),
                      Contains("set_learning_rate"));
    CHECK_NOTHROW(learn_selection_masks(masks, model, train, val, nullptr, o, policies.with_lr(phase_lr{})));
  }
}

TEMPLATE_LIST_TEST_CASE("learn_selection_masks: exploration and final fixation epochs run at their own rates",
                        "[train]", backends) {
  using B = TestType;
  const auto train = bands(120, 1), val = bands(60, 2);
  auto o = quick_options();
  o.warmup_epochs = 1;
  o.mask_epochs = 7; // round_schedule{2, 1}: explore, explore, fixate, explore, then 3 final fixations
  o.final_fixation_epochs = 3;
  const auto policies = training_policies<>{}
                          .with_lambda(round_schedule{2, 1, 1.5f})
                          .with_lr(phase_lr{.exploration = 0.25f, .final_fixation = 0.5f});
  channel_pipe::on<B> masks(train.sample, 2);
  auto net = make_net<B>(108, 3, 2, 0.02f);
  std::vector<std::pair<phase, float>> seen;
  learn_selection_masks(masks, net, train, val, nullptr, o, policies, lr_probe<B>{&net, &seen});
  REQUIRE(seen.size() == 8);
  const phase expected[] = {phase::warmup,      phase::exploration, phase::exploration, phase::fixation,
                            phase::exploration, phase::fixation,    phase::fixation,    phase::fixation};
  for (std::size_t e = 0; e < 8; ++e) {
    CAPTURE(e);
    CHECK(seen[e].first == expected[e]);
    // warm-up and the round's own fixation keep the base rate (phase_lr::fixation is 1),
    // exploration runs at a quarter of it, the final fixation at half
    const float expected_lr = e >= 5 ? 0.01f : expected[e] == phase::exploration ? 0.005f : 0.02f;
    CHECK(seen[e].second == Approx(expected_lr));
  }
  CHECK(net.learning_rate() == Approx(0.02f));

  SECTION("more final epochs than mask epochs, or a bad rate, is rejected") {
    o.final_fixation_epochs = 8;
    CHECK_THROWS_WITH(learn_selection_masks(masks, net, train, val, nullptr, o),
                      Contains("final_fixation_epochs"));
    o.final_fixation_epochs = 2;
    CHECK_THROWS_WITH(learn_selection_masks(masks, net, train, val, nullptr, o,
                                            policies.with_lr(phase_lr{.final_fixation = -1.0f})),
                      Contains("phase_lr: final_fixation"));
    CHECK_THROWS_WITH(learn_selection_masks(masks, net, train, val, nullptr, o,
                                            policies.with_lr(phase_lr{.exploration = -0.5f})),
                      Contains("phase_lr: exploration"));
  }
}

TEMPLATE_LIST_TEST_CASE("learn_selection_masks: the final fixation's rate can fall along a half cosine",
                        "[train]", backends) {
  using B = TestType;
  const auto train = bands(120, 1), val = bands(60, 2);
  auto o = quick_options();
  o.warmup_epochs = 1;
  o.mask_epochs = 6; // explore, explore, then 4 final fixation epochs
  o.final_fixation_epochs = 4;
  const auto policies = training_policies<>{}
                          .with_lambda(round_schedule{2, 1, 1.5f})
                          .with_lr(phase_lr{.final_fixation = 0.5f, .final_cosine = true});
  channel_pipe::on<B> masks(train.sample, 2);
  auto net = make_net<B>(108, 3, 2, 0.02f);
  std::vector<std::pair<phase, float>> seen;
  learn_selection_masks(masks, net, train, val, nullptr, o, policies, lr_probe<B>{&net, &seen});
  REQUIRE(seen.size() == 7);
  // epoch k of 4: 0.02 · 0.5 · (1 + cos(πk/4)) / 2, worked out by hand
  const float expected[] = {0.02f, 0.02f, 0.02f, 0.01f, 0.0085355f, 0.005f, 0.0014645f};
  for (std::size_t e = 0; e < 7; ++e) {
    CAPTURE(e);
    CHECK(seen[e].second == Approx(expected[e]).epsilon(1e-4));
  }
  CHECK(net.learning_rate() == Approx(0.02f));
}

namespace {
/// Records phase, validation Q and the model's learning rate at the end of every epoch.
template <class B>
struct budget_probe {
  const net_t<B>* net;
  std::vector<std::tuple<phase, double, float>>* seen;
  void on_epoch_end(const epoch_info& e) { seen->emplace_back(e.current, e.q, net->learning_rate()); }
};
} // namespace

TEMPLATE_LIST_TEST_CASE("learn_selection_masks: reaching target_q fixes the masks for the remaining epochs",
                        "[train]", backends) {
  using B = TestType;
  const auto train = bands(240, 1), val = bands(120, 2);
  auto o = quick_options(); // λ 0.5: Q falls below one half within the 12 mask epochs
  o.target_q = 0.5;
  const auto policies =
    training_policies<>{}.with_lambda(round_schedule{2, 1, 1.5f}).with_lr(phase_lr{.final_fixation = 0.5f});
  channel_pipe::on<B> masks(train.sample, 4);
  auto net = make_net<B>(108, 3, 4, 0.02f);
  std::vector<std::tuple<phase, double, float>> seen;
  learn_selection_masks(masks, net, train, val, nullptr, o, policies, budget_probe<B>{&net, &seen});
  REQUIRE(seen.size() == 14);
  std::size_t reached = seen.size();
  for (std::size_t e = o.warmup_epochs; e < seen.size(); ++e) {
    if (std::get<0>(seen[e]) == phase::exploration && std::get<1>(seen[e]) <= 0.5) {
      reached = e;
      break;
    }
  }
  REQUIRE(reached + 1 < seen.size()); // the budget is met with epochs to spare
  for (std::size_t e = 0; e <= reached; ++e) {
    CAPTURE(e);
    CHECK(std::get<2>(seen[e]) == Approx(0.02f)); // the base rate until the budget is met
  }
  for (std::size_t e = reached + 1; e < seen.size(); ++e) {
    CAPTURE(e);
    CHECK(std::get<0>(seen[e]) == phase::fixation);
    CHECK(std::get<1>(seen[e]) == std::get<1>(seen[reached])); // the same masks
    CHECK(std::get<2>(seen[e]) == Approx(0.01f));
  }

  SECTION("a target outside [0, 1] is rejected") {
    o.target_q = -0.1;
    CHECK_THROWS_WITH(learn_selection_masks(masks, net, train, val, nullptr, o), Contains("target_q"));
    o.target_q = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_AS(learn_selection_masks(masks, net, train, val, nullptr, o), value_error);
  }
}

namespace {
/// `forward` favours class 0 for every sample, `infer` the class written in the sample's first value.
template <class B>
struct eval_aware_model {
  const tensor_t<B>& forward(const tensor_t<B>& x) { return logits(x, false); }
  const tensor_t<B>& backward(const tensor_t<B>& g) { return g; }
  const tensor_t<B>& infer(const tensor_t<B>& x) {
    ++infer_calls;
    return logits(x, true);
  }
  const tensor_t<B>& logits(const tensor_t<B>& x, bool by_value) {
    const auto v = B::to_host(x);
    const std::size_t n = B::shape_of(x)[0], per = v.size() / n;
    std::vector<float> l(n * 2, 0.0f);
    for (std::size_t i = 0; i < n; ++i) {
      l[i * 2 + (by_value && v[i * per] > 0.5f ? 1 : 0)] = 1.0f;
    }
    out = B::from_host(shape{n, 2}, l);
    return out;
  }
  tensor_t<B> out;
  int infer_calls = 0;
};
/// The same without `infer`.
template <class B>
struct forward_only_model {
  eval_aware_model<B> m;
  const tensor_t<B>& forward(const tensor_t<B>& x) { return m.forward(x); }
  const tensor_t<B>& backward(const tensor_t<B>& g) { return g; }
};
} // namespace

TEMPLATE_LIST_TEST_CASE("evaluate: a model's infer computes the logits when it has one", "[train]",
                        backends) {
  using B = TestType;
  dataset d;
  d.sample = shape{1, 1, 2};
  d.classes = 2;
  for (std::size_t i = 0; i < 7; ++i) {
    d.labels.push_back(static_cast<std::int32_t>(i % 2));
    d.images.push_back(static_cast<float>(i % 2));
    d.images.push_back(0.25f);
  }
  pipeline<any_mask<pixel>>::on<B> all(d.sample, 1); // every pixel kept
  eval_aware_model<B> with_infer;
  CHECK(evaluate(all, with_infer, d, 3).first == 1.0);
  CHECK(with_infer.infer_calls == 3); // batches of 3, 3 and 1
  forward_only_model<B> without;
  CHECK(evaluate(all, without, d, 3).first == Approx(4.0 / 7.0)); // class 0 said for all: 4 of 7 right
}
