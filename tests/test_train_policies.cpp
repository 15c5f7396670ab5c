// The trainer's policies: the mean-squared-error loss (hand-computed and against finite
// differences), a regression task whose mask finds the band the target depends on, a streaming
// batch source that gives the same batches (and the same front) as the in-memory data set, a
// user's mask optimiser, and the hard masks in every epoch record. Every test that holds a tensor
// runs on every backend of support.hpp (label `backends`).
#include "support.hpp"

#include <selmask/io/idx.hpp>
#include <selmask/io/idx_stream.hpp>
#include <selmask/nn/dense.hpp>
#include <selmask/nn/flatten.hpp>
#include <selmask/nn/sequential.hpp>
#include <selmask/train/trainer.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

using namespace selmask;
using namespace selmask_test;
using Catch::Contains;

namespace {
template <class B>
using net_t = nn::sequential<B, nn::flatten<B>, nn::dense<B>>;
using channel_pipe = pipeline<any_mask<channel>>;

template <class B>
net_t<B> make_net(std::size_t inputs, std::size_t outputs, std::uint64_t seed, float lr = 1e-2f) {
  nn::sequential_options o;
  o.seed = seed;
  o.optimizer.lr = lr;
  return net_t<B>(o, nn::flatten<B>{}, nn::dense<B>(inputs, outputs));
}

/// 8 bands of 2×2 noise; the target is the mean of band 5 (a regression task) and, for the
/// classification variant, the label says whether that mean is positive.
io::dataset regression_bands(std::size_t n, std::uint64_t seed) {
  io::dataset d;
  d.sample = shape{8, 2, 2};
  d.target_size = 1;
  std::mt19937_64 r(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  for (std::size_t i = 0; i < n; ++i) {
    float mean5 = 0.0f;
    for (std::size_t c = 0; c < 8; ++c) {
      for (std::size_t p = 0; p < 4; ++p) {
        const float v = noise(r);
        d.images.push_back(v);
        if (c == 5) {
          mean5 += v / 4.0f;
        }
      }
    }
    d.targets.push_back(mean5);
  }
  return d;
}

host_batch batch_of(const shape& s, std::vector<float> targets, std::size_t k) {
  host_batch b;
  b.x_shape = s;
  b.targets = std::move(targets);
  b.target_size = k;
  return b;
}
} // namespace

TEMPLATE_LIST_TEST_CASE("mean_squared_error_loss: hand-computed values and gradient", "[train][loss]",
                        backends) {
  using B = TestType;
  // out = [[1, 2], [3, 5]], t = [[0, 2], [1, 1]]: squared errors 1, 0, 4, 16
  const auto out = B::from_host(shape{2, 2}, std::vector<float>{1, 2, 3, 5});
  const host_batch b = batch_of(shape{2, 1}, {0, 2, 1, 1}, 2);
  mean_squared_error_loss l;
  l.check(shape{2, 2}, b);
  typename B::tensor g;
  const loss_sums r = l.template evaluate<B>(out, b, g);
  CHECK(r.loss == Approx((1.0 + 0.0) / 2 + (4.0 + 16.0) / 2)); // per-sample means, summed
  CHECK(r.score == Approx(-r.loss));
  // gradient of the batch mean (21/4 / 2 ... ) : 2 (out − t) / (N·K) = (out − t) / 2
  const std::vector<float> expected{0.5f, 0.0f, 1.0f, 2.0f};
  CHECK(B::to_host(g) == expected);
}

TEMPLATE_LIST_TEST_CASE("mean_squared_error_loss: gradient equals central finite differences",
                        "[train][loss]", backends) {
  using B = TestType;
  const shape s{3, 4};
  const auto base = random_values(s.size());
  const host_batch b = batch_of(shape{3, 1}, random_values(s.size()), 4);
  mean_squared_error_loss l;
  typename B::tensor g, scratch;
  l.template evaluate<B>(B::from_host(s, base), b, g);
  const auto grad = B::to_host(g);
  const double h = 1e-3;
  for (std::size_t i = 0; i < base.size(); ++i) {
    auto up = base, down = base;
    up[i] += static_cast<float>(h);
    down[i] -= static_cast<float>(h);
    // the gradient is of the batch mean = loss sum / N
    const double lu = l.template evaluate<B>(B::from_host(s, up), b, scratch).loss / 3.0;
    const double ld = l.template evaluate<B>(B::from_host(s, down), b, scratch).loss / 3.0;
    CHECK(grad[i] == Approx((lu - ld) / (2 * h)).margin(1e-3));
  }
}

TEST_CASE("losses name what does not fit", "[train][loss][errors]") {
  const host_batch b = batch_of(shape{2, 1}, {0, 1}, 1);
  CHECK_THROWS_WITH(mean_squared_error_loss{}.check(shape{2, 3}, b), Contains("[2,1]"));
  CHECK_THROWS_WITH(mean_squared_error_loss{}.check(shape{2, 1}, batch_of(shape{2, 1}, {}, 0)),
                    Contains("io::dataset::targets"));
  CHECK_THROWS_WITH(softmax_cross_entropy_loss{}.check(shape{2, 3}, b), Contains("0 labels for 2 samples"));
}

TEMPLATE_LIST_TEST_CASE("learn_selection_masks: a regression task learns the band its target depends on",
                        "[train]", backends) {
  using B = TestType;
  const auto train = regression_bands(400, 1), val = regression_bands(200, 2);
  trainer_options o;
  o.lambda = 0.05f;
  o.warmup_epochs = 3;
  o.mask_epochs = 16;
  o.batch_size = 40;
  o.mask_optimizer.lr = 0.1f;
  channel_pipe::on<B> masks(train.sample, 3);
  auto net = make_net<B>(32, 1, 3, 0.02f);
  const auto policies =
    training_policies<>{}.with_loss(mean_squared_error_loss{}).with_lambda(round_schedule{2, 1, 1.5f});
  const auto r = learn_selection_masks(masks, net, train, val, nullptr, o, policies);
  // the score is −MSE; with all bands the network fits the target well (its variance is 1/4)
  CHECK(r.full_val_accuracy > -0.05);
  CHECK(r.full_val_accuracy <= 0.0);
  // a point that keeps at most 2 of the 8 bands, band 5 among them, and still fits
  const front_point* p = r.front.best_within(0.25 + 1e-9);
  REQUIRE(p != nullptr);
  REQUIRE(p->masks.size() == 1);
  CHECK(p->masks[0][5] == 1.0f);
  CHECK(p->val_accuracy > -0.05);
}

TEST_CASE("io::idx_stream_source: the batches of the in-memory data set, read from disk", "[train][io]") {
  const temp_dir dir;
  const std::size_t n = 50;
  std::vector<std::uint8_t> pixels(n * 3 * 4 * 4), labels(n);
  for (std::size_t i = 0; i < pixels.size(); ++i) {
    pixels[i] = static_cast<std::uint8_t>((i * 37 + 11) % 251);
  }
  for (std::size_t i = 0; i < n; ++i) {
    labels[i] = static_cast<std::uint8_t>(i % 4);
  }
  io::write_idx(dir / "x.idx", shape{n, 3, 4, 4}, pixels, io::idx_compression::none);
  io::write_idx(dir / "y.idx.gz", shape{n}, labels);
  // the same data in memory, values byte / 255
  io::dataset d;
  d.sample = shape{3, 4, 4};
  d.classes = 4;
  for (auto v : pixels) {
    d.images.push_back(static_cast<float>(v) * (1.0f / 255.0f));
  }
  d.labels.assign(labels.begin(), labels.end());

  io::idx_stream_source s(dir / "x.idx", dir / "y.idx.gz", {.batch_size = 16, .seed = 5});
  dataset_source m(d, 16, true, 5);
  REQUIRE(s.size() == n);
  REQUIRE(s.batches() == 4);
  CHECK(s.sample_shape() == d.sample);
  CHECK(s.classes() == 4);
  s.validate();
  host_batch a, b;
  for (std::size_t e = 0; e < 2; ++e) {
    s.set_epoch(e);
    m.set_epoch(e);
    for (std::size_t k = 0; k < s.batches(); ++k) {
      s.read(k, a);
      m.read(k, b);
      CHECK(a.x_shape == b.x_shape);
      CHECK(a.x == b.x);
      CHECK(a.labels == b.labels);
    }
  }

  SECTION("a compressed, truncated or mismatched file is named") {
    io::write_idx(dir / "x.idx.gz", shape{n, 3, 4, 4}, pixels);
    CHECK_THROWS_WITH(io::idx_stream_source(dir / "x.idx.gz", dir / "y.idx.gz", {}),
                      Contains("gzip-compressed"));
    std::filesystem::copy_file(dir / "x.idx", dir / "short.idx");
    std::filesystem::resize_file(dir / "short.idx", 500);
    CHECK_THROWS_WITH(io::idx_stream_source(dir / "short.idx", dir / "y.idx.gz", {}), Contains("truncated"));
    io::write_idx(dir / "y9.idx", shape{9}, std::vector<std::uint8_t>(9, 0), io::idx_compression::none);
    CHECK_THROWS_WITH(io::idx_stream_source(dir / "x.idx", dir / "y9.idx", {}), Contains("for 50 images"));
    CHECK_THROWS_WITH(io::idx_stream_source(dir / "x.idx", dir / "y.idx.gz", {.batch_size = 0}),
                      Contains("batch_size"));
  }
}

namespace {
/// A user's mask optimiser: plain SGD, counting its steps.
template <class B>
struct sgd_masks {
  float lr;
  std::size_t* steps;
  std::vector<std::pair<typename B::tensor*, typename B::tensor*>> params;
  void add(typename B::tensor& p, typename B::tensor& g) { params.emplace_back(&p, &g); }
  void step() {
    ++*steps;
    for (auto& [p, g] : params) {
      B::axpy(-lr, *g, *p);
    }
  }
  void zero_grad() {
    for (auto& pg : params) {
      B::map(*pg.second, *pg.second, [](float) { return 0.0f; });
    }
  }
};
struct sgd_policy {
  float lr = 0.5f;
  std::size_t* steps;
  template <class Backend, class Options>
  sgd_masks<Backend> make(const Options&) const {
    return {lr, steps, {}};
  }
};
/// Keeps every epoch record's masks.
struct mask_log {
  std::vector<std::vector<std::vector<float>>>* masks;
  void on_epoch_end(const epoch_info& e) { masks->push_back(e.masks); }
};
} // namespace

TEMPLATE_LIST_TEST_CASE(
  "learn_selection_masks: from a stream, with a user's mask optimiser; masks in every epoch record",
  "[train]", backends) {
  using B = TestType;
  // bands 1, 6 and 10 of 12 decide the class: the informative-band task of test_train, written to disk
  const temp_dir dir;
  const std::size_t n = 240;
  std::mt19937_64 r(7);
  std::vector<std::uint8_t> pixels, labels;
  for (std::size_t i = 0; i < n; ++i) {
    const auto y = static_cast<std::uint8_t>(r() % 3);
    labels.push_back(y);
    for (std::size_t c = 0; c < 12; ++c) {
      const bool hot = (c == 1 && y == 0) || (c == 6 && y == 1) || (c == 10 && y == 2);
      for (std::size_t p = 0; p < 9; ++p) {
        pixels.push_back(static_cast<std::uint8_t>((hot ? 170 : 60) + static_cast<int>(r() % 60)));
      }
    }
  }
  io::write_idx(dir / "x.idx", shape{n, 12, 3, 3}, pixels, io::idx_compression::none);
  io::write_idx(dir / "y.idx", shape{n}, labels, io::idx_compression::none);
  io::dataset train;
  train.sample = shape{12, 3, 3};
  train.classes = 3;
  for (auto v : pixels) {
    train.images.push_back(static_cast<float>(v) * (1.0f / 255.0f));
  }
  train.labels.assign(labels.begin(), labels.end());
  const io::dataset val = io::subset(train, 80);

  trainer_options o;
  o.lambda = 0.5f;
  o.warmup_epochs = 1;
  o.mask_epochs = 5;
  o.batch_size = 40;
  o.mask_optimizer.lr = 0.05f;
  o.seed = 3;

  SECTION("the stream trains exactly as the same data in memory") {
    const auto run_memory = [&] {
      channel_pipe::on<B> masks(train.sample, 9);
      auto net = make_net<B>(108, 3, 9);
      return learn_selection_masks(masks, net, train, val, nullptr, o).front.points();
    };
    const auto run_stream = [&] {
      channel_pipe::on<B> masks(train.sample, 9);
      auto net = make_net<B>(108, 3, 9);
      io::idx_stream_source s(dir / "x.idx", dir / "y.idx", {.batch_size = 40, .seed = 3, .classes = 3});
      return learn_selection_masks(masks, net, s, val, nullptr, o).front.points();
    };
    const auto a = run_memory();
    const auto b = run_stream();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].q == b[i].q);
      CHECK(a[i].val_accuracy == b[i].val_accuracy);
      CHECK(a[i].masks == b[i].masks);
    }
  }

  SECTION("a user's mask optimiser is the one that steps; callbacks see the hard masks") {
    std::size_t steps = 0;
    std::vector<std::vector<std::vector<float>>> seen;
    channel_pipe::on<B> masks(train.sample, 9);
    auto net = make_net<B>(108, 3, 9);
    const auto policies = training_policies<>{}.with_mask_optimizer(sgd_policy{0.5f, &steps});
    const auto res = learn_selection_masks(masks, net, train, val, nullptr, o, policies, mask_log{&seen});
    // round_schedule{2, 1}: 5 mask epochs are explore, explore, fixate, explore, explore → 4 × 6 batches
    CHECK(steps == 4 * 6);
    REQUIRE(seen.size() == 6);
    for (const auto& m : seen) {
      REQUIRE(m.size() == 1);
      CHECK(m[0].size() == 12);
      for (float v : m[0]) {
        CHECK((v == 0.0f || v == 1.0f));
      }
    }
    // the last record's masks are the pipeline's hard masks at the end
    CHECK(seen.back()[0] == B::to_host(masks.template stage<0>().hard()));
    CHECK(res.epochs_run == 6);
  }
}

// ---- model adapters ------------------------------------------------------------------------------
#include <selmask/model/adapters.hpp>

TEMPLATE_LIST_TEST_CASE(
  "model adapters: frozen is not trainable; standardised maps per channel, and so does its gradient",
  "[train][model]", backends) {
  using B = TestType;
  STATIC_REQUIRE(differentiable_model<frozen<net_t<B>>, B>);
  STATIC_REQUIRE_FALSE(trainable_model<frozen<net_t<B>>, B>);
  STATIC_REQUIRE(trainable_model<standardised<B, net_t<B>>, B>);
  STATIC_REQUIRE(checkpointable_model<standardised<B, net_t<B>>>);

  // standardised over an identity-like probe: the net is a dense layer; compare with the same
  // dense layer fed (x − mean_c)·inv_c by hand
  auto net_a = make_net<B>(2 * 2 * 1, 3, 11);
  auto net_b = make_net<B>(2 * 2 * 1, 3, 11);
  standardised<B, net_t<B>> s(std::move(net_a), {1.0f, -2.0f}, {0.5f, 4.0f});
  const std::vector<float> x{3, 5, 0, 1, 1, 1, -2, -1}; // N=2, C=2, H=1, W=2
  const std::vector<float> z{1, 2, 8, 12, 0, 0, 0, 4};  // worked out by hand
  const shape xs{2, 2, 1, 2};
  const auto ya = B::to_host(s.forward(B::from_host(xs, x)));
  const auto yb = B::to_host(net_b.forward(B::from_host(xs, z)));
  REQUIRE(ya.size() == yb.size());
  for (std::size_t i = 0; i < ya.size(); ++i) {
    CHECK(ya[i] == Approx(yb[i]));
  }
  const auto g = random_tensor<B>(shape{2, 3});
  const auto gx = B::to_host(s.backward(g));
  const auto gz = B::to_host(net_b.backward(g));
  for (std::size_t i = 0; i < gx.size(); ++i) {
    const float inv = ((i / 2) % 2 == 0) ? 0.5f : 4.0f;
    CHECK(gx[i] == Approx(gz[i] * inv));
  }
  CHECK_THROWS_WITH(s.forward(B::from_host(shape{1, 3, 1, 1}, std::vector<float>{1, 2, 3})),
                    Contains("for 2 channels"));
}
