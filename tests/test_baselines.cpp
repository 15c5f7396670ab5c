// The baselines a learned mask must beat (train/baselines.hpp), against values worked out by hand
// or computed here independently: top-k with ties, seeded random masks, plug-in mutual
// information of small tables, the MI ranking of a pixel equal to the label and of a constant
// one, the input-gradient saliency of a linear model whose gradient is known in closed form, and
// the errors for bad input.
#include <selmask/backend/cpu/cpu.hpp>
#include <selmask/train/baselines.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

using namespace selmask;
using Catch::Contains;

namespace {

using B = cpu;

float sum(const std::vector<float>& v) { return std::accumulate(v.begin(), v.end(), 0.0f); }

/// logits = W·x for a flattened sample x (D values) and W (K×D, row-major); its backward returns
/// ∂L/∂x = g·W for ∂L/∂logits = g (N×K). Counts zero_grad calls.
struct linear_model {
  std::size_t k = 0, d = 0;
  std::vector<float> w;
  shape x_shape;
  tensor_t<B> logits, dx;
  int zero_grads = 0;

  const tensor_t<B>& forward(const tensor_t<B>& x) {
    x_shape = B::shape_of(x);
    const std::vector<float> xs = B::to_host(x);
    const std::size_t n = x_shape[0];
    std::vector<float> out(n * k, 0.0f);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t c = 0; c < k; ++c) {
        for (std::size_t j = 0; j < d; ++j) {
          out[i * k + c] += w[c * d + j] * xs[i * d + j];
        }
      }
    }
    logits = B::from_host(shape{n, k}, out);
    return logits;
  }
  const tensor_t<B>& backward(const tensor_t<B>& g) {
    const std::vector<float> gs = B::to_host(g);
    const std::size_t n = x_shape[0];
    std::vector<float> out(n * d, 0.0f);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < d; ++j) {
        for (std::size_t c = 0; c < k; ++c) {
          out[i * d + j] += gs[i * k + c] * w[c * d + j];
        }
      }
    }
    dx = B::from_host(x_shape, out);
    return dx;
  }
  void step() {}
  void zero_grad() { ++zero_grads; }
};

/// `linear_model` whose backward returns ∂L/∂x as N×D, not in the input's shape.
struct flat_gradient_model {
  linear_model inner;
  tensor_t<B> flat;
  const tensor_t<B>& forward(const tensor_t<B>& x) { return inner.forward(x); }
  const tensor_t<B>& backward(const tensor_t<B>& g) {
    const std::vector<float> dx = B::to_host(inner.backward(g));
    flat = B::from_host(shape{inner.x_shape[0], inner.d}, dx);
    return flat;
  }
};

/// Per-value mean over samples of |Wᵀ(softmax(W·x) − onehot(y))|, written out directly.
std::vector<double> direct_saliency(const linear_model& m, const io::dataset& data) {
  std::vector<double> s(m.d, 0.0);
  for (std::size_t i = 0; i < data.size(); ++i) {
    const auto x = data.image(i);
    std::vector<double> z(m.k, 0.0);
    for (std::size_t c = 0; c < m.k; ++c) {
      for (std::size_t j = 0; j < m.d; ++j) {
        z[c] += static_cast<double>(m.w[c * m.d + j]) * x[j];
      }
    }
    double zmax = z[0], total = 0.0;
    for (double v : z) {
      zmax = std::max(zmax, v);
    }
    for (double& v : z) {
      v = std::exp(v - zmax);
      total += v;
    }
    for (std::size_t c = 0; c < m.k; ++c) {
      z[c] = z[c] / total - (static_cast<std::int32_t>(c) == data.labels[i] ? 1.0 : 0.0);
    }
    for (std::size_t j = 0; j < m.d; ++j) {
      double g = 0.0;
      for (std::size_t c = 0; c < m.k; ++c) {
        g += m.w[c * m.d + j] * z[c];
      }
      s[j] += std::abs(g);
    }
  }
  for (double& v : s) {
    v /= static_cast<double>(data.size());
  }
  return s;
}

/// N samples of shape 1×1×3 with labels alternating 0, 1: value 0 is the label, value 1 is the
/// constant 0.5, value 2 follows 0,0,1,1,... (independent of the label over 8 samples).
io::dataset label_pixel_set() {
  io::dataset d;
  d.sample = shape{1, 1, 3};
  d.classes = 2;
  for (std::size_t i = 0; i < 8; ++i) {
    const auto y = static_cast<std::int32_t>(i % 2);
    d.labels.push_back(y);
    d.images.insert(d.images.end(), {static_cast<float>(y), 0.5f, static_cast<float>((i / 2) % 2)});
  }
  return d;
}

} // namespace

TEST_CASE("top_k_mask keeps the k largest scores, ties to the lower index", "[baselines]") {
  const std::vector<float> s{0.5f, 2.0f, 2.0f, -1.0f, 0.5f, 3.0f};
  CHECK(top_k_mask(s, 0) == std::vector<float>{0, 0, 0, 0, 0, 0});
  CHECK(top_k_mask(s, 1) == std::vector<float>{0, 0, 0, 0, 0, 1});
  CHECK(top_k_mask(s, 2) == std::vector<float>{0, 1, 0, 0, 0, 1}); // 2.0 at 1 before 2.0 at 2
  CHECK(top_k_mask(s, 3) == std::vector<float>{0, 1, 1, 0, 0, 1});
  CHECK(top_k_mask(s, 4) == std::vector<float>{1, 1, 1, 0, 0, 1}); // 0.5 at 0 before 0.5 at 4
  CHECK(top_k_mask(s, 6) == std::vector<float>{1, 1, 1, 1, 1, 1});
  const std::vector<float> all_equal(5, 1.0f);
  CHECK(top_k_mask(all_equal, 2) == std::vector<float>{1, 1, 0, 0, 0});
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(top_k_mask(std::vector<float>{-inf, 0.0f, inf}, 2) == std::vector<float>{0, 1, 1});

  CHECK_THROWS_AS(top_k_mask(s, 7), value_error);
  CHECK_THROWS_WITH(top_k_mask(s, 7), Contains("k = 7 exceeds the 6 scores"));
  const std::vector<float> with_nan{1.0f, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_AS(top_k_mask(with_nan, 1), value_error);
  CHECK_THROWS_WITH(top_k_mask(with_nan, 1), Contains("score 1 is NaN"));
}

TEST_CASE("random_mask: exactly k ones, reproducible from its seed", "[baselines]") {
  const std::vector<float> a = random_mask(100, 17, 42);
  REQUIRE(a.size() == 100);
  CHECK(sum(a) == 17.0f);
  for (float v : a) {
    CHECK((v == 0.0f || v == 1.0f));
  }
  CHECK(random_mask(100, 17, 42) == a);
  CHECK(random_mask(100, 17, 43) != a);
  CHECK(sum(random_mask(100, 17, 43)) == 17.0f);
  CHECK(random_mask(10, 0, 1) == std::vector<float>(10, 0.0f));
  CHECK(random_mask(10, 10, 1) == std::vector<float>(10, 1.0f));
  CHECK(random_mask(0, 0, 1).empty());

  // every cell is drawn sometimes: over 200 seeds each of 10 cells appears in a 3-of-10 mask
  std::vector<int> hits(10, 0);
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    const auto m = random_mask(10, 3, seed);
    for (std::size_t j = 0; j < 10; ++j) {
      hits[j] += m[j] == 1.0f ? 1 : 0;
    }
  }
  for (int h : hits) {
    CHECK(h > 20); // 60 expected
  }

  CHECK_THROWS_AS(random_mask(5, 6, 0), value_error);
  CHECK_THROWS_WITH(random_mask(5, 6, 0), Contains("k = 6 exceeds the 5 cells"));
}

TEST_CASE("mutual_information: plug-in estimate on hand-computed tables", "[baselines]") {
  using v = std::vector<std::size_t>;
  // independent: every (x, y) pair once
  CHECK(mutual_information(v{0, 0, 1, 1}, v{0, 1, 0, 1}) == Approx(0.0).margin(1e-12));
  // x = y, two equally frequent classes: ln 2 (the codes themselves do not matter)
  CHECK(mutual_information(v{0, 1, 0, 1}, v{0, 1, 0, 1}) == Approx(std::log(2.0)));
  CHECK(mutual_information(v{7, 42, 7, 42}, v{3, 5, 3, 5}) == Approx(std::log(2.0)));
  // x = y with four equal classes: ln 4
  CHECK(mutual_information(v{0, 1, 2, 3}, v{0, 1, 2, 3}) == Approx(std::log(4.0)));
  // a constant x tells nothing
  CHECK(mutual_information(v{3, 3, 3, 3}, v{0, 1, 1, 0}) == Approx(0.0).margin(1e-12));
  // the table [[3,1],[1,3]] (N = 8): marginals 1/2, 1/2; p = 3/8 twice and 1/8 twice
  //   I = 2·(3/8)·ln((3/8)/(1/4)) + 2·(1/8)·ln((1/8)/(1/4)) = (3/4) ln 1.5 + (1/4) ln 0.5
  const v x8{0, 0, 0, 0, 1, 1, 1, 1}, y8{0, 0, 0, 1, 1, 1, 1, 0};
  CHECK(mutual_information(x8, y8) == Approx(0.75 * std::log(1.5) + 0.25 * std::log(0.5)));
  // the table [[2,0],[1,1]] (N = 4): p(x) = 1/2, 1/2; p(y) = 3/4, 1/4
  //   I = (1/2) ln((1/2)/(3/8)) + (1/4) ln((1/4)/(3/8)) + (1/4) ln((1/4)/(1/8))
  const double hand = 0.5 * std::log(4.0 / 3.0) + 0.25 * std::log(2.0 / 3.0) + 0.25 * std::log(2.0);
  CHECK(mutual_information(v{0, 0, 1, 1}, v{0, 0, 0, 1}) == Approx(hand));
  CHECK(mutual_information(v{0, 0, 0, 1}, v{0, 0, 1, 1}) == Approx(hand)); // symmetric

  CHECK_THROWS_AS(mutual_information(v{0, 1}, v{0}), value_error);
  CHECK_THROWS_WITH(mutual_information(v{0, 1}, v{0}), Contains("2 x values for 1 labels"));
  CHECK_THROWS_WITH(mutual_information(v{}, v{}), Contains("no observations"));
}

TEST_CASE("mutual_information_ranking: the label pixel first, a constant pixel 0", "[baselines]") {
  const io::dataset d = label_pixel_set();
  const std::vector<float> s = mutual_information_ranking(d);
  REQUIRE(s.size() == 3);
  CHECK(s[0] == Approx(std::log(2.0)));
  CHECK(s[1] == 0.0f);
  CHECK(s[2] == Approx(0.0).margin(1e-6));
  CHECK(top_k_mask(s, 1) == std::vector<float>{1, 0, 0});

  // the bins are equal-width over [min, max]: with 2 bins the edge is the midpoint 0.5, and the
  // maximum falls in the last bin
  io::dataset e;
  e.sample = shape{1, 1, 2};
  e.classes = 2;
  e.labels = {0, 0, 1, 1};
  e.images = {0.0f, 0.0f, 0.4f, 0.6f, 0.6f, 0.4f, 1.0f, 1.0f}; // value 0: 0,.4,.6,1; value 1: 0,.6,.4,1
  const std::vector<float> t = mutual_information_ranking(e, 2);
  CHECK(t[0] == Approx(std::log(2.0)));    // bins 0,0,1,1 = the labels
  CHECK(t[1] == Approx(0.0).margin(1e-6)); // bins 0,1,0,1: independent
  // with 8 bins value 1's four values fall in four bins, each with one label: I = ln 2 as well
  CHECK(mutual_information_ranking(e, 8)[1] == Approx(std::log(2.0)));
}

TEST_CASE("mutual_information_ranking: bad input named", "[baselines]") {
  io::dataset empty;
  empty.sample = shape{1, 2, 2};
  empty.classes = 2;
  CHECK_THROWS_AS(mutual_information_ranking(empty), value_error);
  CHECK_THROWS_WITH(mutual_information_ranking(empty), Contains("empty data set"));
  const io::dataset d = label_pixel_set();
  CHECK_THROWS_AS(mutual_information_ranking(d, 1), value_error);
  CHECK_THROWS_WITH(mutual_information_ranking(d, 1), Contains("bins must be at least 2, got 1"));
  CHECK_THROWS_WITH(mutual_information_ranking(d, 0), Contains("bins must be at least 2, got 0"));
  io::dataset regression;
  regression.sample = shape{1, 1, 1};
  regression.images = {1.0f, 2.0f};
  regression.targets = {1.0f, 2.0f};
  regression.target_size = 1;
  CHECK_THROWS_WITH(mutual_information_ranking(regression), Contains("no labels"));
}

TEST_CASE("saliency_ranking: the input gradient of a linear model in closed form", "[baselines]") {
  // K = 3 classes, D = 4 values (sample 1×2×2); value 3 has zero weight in every class
  linear_model m;
  m.k = 3;
  m.d = 4;
  m.w = {0.5f, -1.0f, 0.25f, 0.0f, -0.75f, 0.3f, 1.0f, 0.0f, 0.2f, 0.6f, -0.4f, 0.0f};
  io::dataset d;
  d.sample = shape{1, 2, 2};
  d.classes = 3;
  for (std::size_t i = 0; i < 7; ++i) {
    d.labels.push_back(static_cast<std::int32_t>(i % 3));
    const auto f = static_cast<float>(i);
    d.images.insert(d.images.end(), {0.3f * f - 1.0f, std::sin(f), 0.5f - 0.1f * f * f / 7.0f, 2.0f * f});
  }
  const std::vector<double> truth = direct_saliency(m, d);
  const std::vector<float> s = saliency_ranking<B>(m, d);
  REQUIRE(s.size() == 4);
  for (std::size_t j = 0; j < 4; ++j) {
    CHECK(s[j] == Approx(truth[j]).epsilon(1e-5));
  }
  CHECK(s[3] == 0.0f);
  CHECK(truth[0] > 0.0);
  CHECK(m.zero_grads == 1); // the gradients the backward passes accumulated are cleared

  // the batch size does not change the scores (batches of 3, 3 and 1; of 1 each)
  for (std::size_t batch : {std::size_t{3}, std::size_t{1}}) {
    const std::vector<float> sb = saliency_ranking<B>(m, d, batch);
    for (std::size_t j = 0; j < 4; ++j) {
      CHECK(sb[j] == Approx(s[j]).epsilon(1e-5));
    }
  }
  const std::vector<float> mask = top_k_mask(s, 3);
  CHECK(mask[3] == 0.0f);
}

TEST_CASE("saliency_ranking: bad input named", "[baselines]") {
  linear_model m;
  m.k = 2;
  m.d = 2;
  m.w = {1.0f, 0.0f, 0.0f, 1.0f};
  io::dataset empty;
  empty.sample = shape{1, 1, 2};
  empty.classes = 2;
  CHECK_THROWS_AS(saliency_ranking<B>(m, empty), value_error);
  CHECK_THROWS_WITH(saliency_ranking<B>(m, empty), Contains("empty data set"));
  io::dataset d;
  d.sample = shape{1, 1, 2};
  d.classes = 2;
  d.labels = {0, 1};
  d.images = {1.0f, 0.0f, 0.0f, 1.0f};
  CHECK_THROWS_WITH(saliency_ranking<B>(m, d, 0), Contains("batch must be positive"));
  // a model that returns its input gradient flattened (N×D instead of N×1×1×D)
  flat_gradient_model flat{m, {}};
  CHECK_THROWS_AS(saliency_ranking<B>(flat, d), shape_error);
  CHECK_THROWS_WITH(saliency_ranking<B>(flat, d),
                    Contains("input gradient has shape [2,2] for a batch of shape [2,1,1,2]"));
}
