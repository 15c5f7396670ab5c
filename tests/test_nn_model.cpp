// The network kit's models: AdamW against hand-computed updates, nn::sequential as a trainable,
// checkpointable model (gradients end to end, learning a separable problem, copies and moves),
// the weights file (round trip, and every kind of bad file rejected with io_error), LeNet.
// Every test that holds a tensor runs on every backend of support.hpp (label `backends`).
#include "support.hpp"

#include <selmask/model/model.hpp>
#include <selmask/nn/nn.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

using namespace selmask;
using namespace selmask_test;
using Catch::Contains;

namespace {

namespace fs = std::filesystem;

std::vector<unsigned char> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const fs::path& p, const std::vector<unsigned char>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

template <class B>
using mlp = nn::sequential<B, nn::dense<B>, nn::relu<B>, nn::dense<B>>;
template <class B>
mlp<B> make_mlp(std::size_t in, std::size_t hidden, std::size_t out, std::uint64_t seed,
                adamw_hyper opt = {}) {
  return mlp<B>(nn::sequential_options{seed, opt}, nn::dense<B>(in, hidden), nn::relu<B>{},
                nn::dense<B>(hidden, out));
}

/// A straightforward AdamW (PyTorch's algorithm), in double precision, for one scalar.
struct reference_adamw {
  double p, m = 0, v = 0, vmax = 0;
  int t = 0;
  void step(double g, double lr, double b1, double b2, double eps, double wd, bool amsgrad) {
    ++t;
    p *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    vmax = std::max(vmax, v);
    const double mhat = m / (1 - std::pow(b1, t));
    const double vhat = (amsgrad ? vmax : v) / (1 - std::pow(b2, t));
    p -= lr * mhat / (std::sqrt(vhat) + eps);
  }
};

} // namespace

template <class... B>
constexpr bool models_on(std::tuple<B...>*) {
  return ((trainable_model<mlp<B>, B> && checkpointable_model<mlp<B>> && trainable_model<nn::lenet<B>, B> &&
           checkpointable_model<nn::lenet<B>>)&&...);
}
static_assert(models_on(static_cast<backends*>(nullptr)),
              "nn::sequential and nn::lenet must be trainable, checkpointable models on every backend");

// ---- AdamW -------------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("adamw: the first step, computed by hand", "[nn][adamw]", backends) {
  using B = TestType;
  // p = 1, g = 0.5, lr 0.1, betas (0.5, 0.999), wd 0.01:
  // decay: 1·(1 − 0.1·0.01) = 0.999; m = 0.25, v = 0.00025; m̂ = 0.5, v̂ = 0.25, √v̂ = 0.5
  // p = 0.999 − 0.1·0.5/0.5 = 0.899.  For g = −2: m̂ = −2, √v̂ = 2: p = 0.999·(−3) + 0.1 = −2.897
  auto p = B::from_host(shape{2}, std::vector<float>{1.0f, -3.0f});
  auto g = B::from_host(shape{2}, std::vector<float>{0.5f, -2.0f});
  nn::adamw<B> opt({.lr = 0.1f, .beta1 = 0.5f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f});
  opt.add(p, g);
  opt.step();
  CHECK(B::to_host(p)[0] == Approx(0.899).epsilon(1e-6));
  CHECK(B::to_host(p)[1] == Approx(-2.897).epsilon(1e-6));
  CHECK(opt.steps() == 1);
  CHECK(B::to_host(opt.first_moment(0))[0] == Approx(0.25));
  CHECK(B::to_host(opt.second_moment(0))[1] == Approx(0.004).epsilon(1e-4));
  opt.zero_grad();
  CHECK(B::to_host(g) == std::vector<float>{0.0f, 0.0f});
}

TEMPLATE_LIST_TEST_CASE("adamw: several steps against a double-precision reference, with and without AMSGrad",
                        "[nn][adamw]", backends) {
  using B = TestType;
  // a large gradient, then small ones: AMSGrad keeps the large second moment
  const std::vector<std::vector<float>> grads{
    {3.0f, -0.2f, 0.0f}, {0.1f, -0.1f, 1.0f}, {-0.05f, 0.4f, 1.0f}, {0.02f, 0.0f, -2.0f}};
  for (bool ams : {true, false}) {
    DYNAMIC_SECTION("amsgrad " << ams) {
      const adamw_hyper h{
        .lr = 0.05f, .beta1 = 0.5f, .beta2 = 0.9f, .eps = 1e-8f, .weight_decay = 0.1f, .amsgrad = ams};
      // the three cases repeated 12001 times: SIMD batches, the threads' split and scalar tails
      // all see them
      constexpr std::size_t reps = 12001;
      const std::vector<float> p0{0.5f, -1.0f, 2.0f};
      const auto tile = [&](const std::vector<float>& v) {
        std::vector<float> t;
        for (std::size_t r = 0; r < reps; ++r)
          t.insert(t.end(), v.begin(), v.end());
        return t;
      };
      auto p = B::from_host(shape{3 * reps}, tile(p0));
      auto g = B::zeros(shape{3 * reps});
      nn::adamw<B> opt(std::vector<typename B::tensor*>{&p}, std::vector<typename B::tensor*>{&g}, h);
      std::vector<reference_adamw> ref;
      for (float v : p0) {
        ref.push_back({v});
      }
      for (const auto& gv : grads) {
        g = B::from_host(shape{3 * reps}, tile(gv));
        opt.step();
        for (std::size_t i = 0; i < 3; ++i) {
          ref[i].step(gv[i], h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, ams);
        }
      }
      const auto got = B::to_host(p);
      for (std::size_t i = 0; i < 3 * reps; ++i) {
        REQUIRE(got[i] == Approx(ref[i % 3].p).epsilon(1e-5));
      }
    }
  }
  // the two variants really differ on this sequence (so the test above can tell them apart)
  reference_adamw a{0.5}, b{0.5};
  for (const auto& gv : grads) {
    a.step(gv[0], 0.05, 0.5, 0.9, 1e-8, 0.1, true);
    b.step(gv[0], 0.05, 0.5, 0.9, 1e-8, 0.1, false);
  }
  CHECK(std::abs(a.p - b.p) > 1e-3);
}

TEMPLATE_LIST_TEST_CASE("adamw: decoupled weight decay alone shrinks by (1 - lr·wd)", "[nn][adamw]",
                        backends) {
  using B = TestType;
  auto net = make_mlp<B>(3, 4, 2, 1, {.lr = 0.1f, .weight_decay = 0.5f});
  const auto w0 = B::to_host(net.template layer<0>().weight());
  net.zero_grad();
  net.step(); // zero gradients: m = v = 0, only the decay acts
  const auto w1 = B::to_host(net.template layer<0>().weight());
  for (std::size_t i = 0; i < w0.size(); ++i) {
    REQUIRE(w1[i] == Approx(w0[i] * 0.95f).epsilon(1e-6));
  }
}

TEMPLATE_LIST_TEST_CASE("adamw: bad settings and mismatched tensors are rejected", "[nn][adamw][errors]",
                        backends) {
  using B = TestType;
  CHECK_THROWS_AS(nn::adamw<B>({.lr = -1.0f}), value_error);
  CHECK_THROWS_WITH(nn::adamw<B>({.beta1 = 1.0f}), Contains("betas"));
  CHECK_THROWS_WITH(nn::adamw<B>({.eps = 0.0f}), Contains("eps"));
  nn::adamw<B> opt;
  CHECK(opt.settings().beta1 == 0.5f);
  CHECK(opt.settings().weight_decay == 1e-4f);
  CHECK(opt.settings().amsgrad);
  opt.set_learning_rate(0.25f);
  CHECK(opt.learning_rate() == 0.25f);
  CHECK_THROWS_AS(opt.set_learning_rate(std::nanf("")), value_error);
  CHECK(opt.learning_rate() == 0.25f);
  auto p = B::zeros(shape{3});
  auto g = B::zeros(shape{4});
  CHECK_THROWS_AS(opt.add(p, g), shape_error);
}

// ---- sequential ------------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("sequential: input gradient of a small conv net matches finite differences",
                        "[nn][sequential][gradient]", backends) {
  using B = TestType;
  nn::sequential net(nn::sequential_options{.seed = 9}, nn::conv2d<B>(2, 3, 3, 1), nn::relu<B>{},
                     nn::max_pool2<B>{}, nn::flatten<B>{}, nn::dense<B>(27, 4));
  const shape xs{2, 2, 6, 6};
  const auto xv = random_values(xs.size());
  const std::vector<std::int32_t> labels{3, 1};
  nn::cross_entropy_loss<B> loss;
  net.zero_grad();
  loss.forward(net.forward(B::from_host(xs, xv)), labels);
  const auto gx = B::to_host(net.backward(loss.grad()));
  REQUIRE(gx.size() == xs.size());
  const auto f = [&](const std::vector<float>& v) {
    loss.forward(net.forward(B::from_host(xs, v)), labels);
    return loss.mean_loss();
  };
  const auto c = testing::check_gradient(f, xv, gx, {.eps = 1e-3, .atol = 2e-4});
  INFO(c.message);
  CHECK(c.ok);
  // parameter gradients end to end, through a network without kinks (a weight moves every
  // pre-activation at once, so ReLU / max-pool switches would blur finite differences)
  nn::sequential smooth(nn::sequential_options{.seed = 4}, nn::conv2d<B>(2, 3, 3, 1), nn::flatten<B>{},
                        nn::dense<B>(108, 4));
  const auto x = B::from_host(xs, xv);
  smooth.zero_grad();
  loss.forward(smooth.forward(x), labels);
  smooth.backward(loss.grad());
  for (std::size_t j = 0; j < 4; ++j) {
    auto& w = *smooth.params()[j];
    const shape ws = B::shape_of(w);
    const auto w0 = B::to_host(w);
    const auto gw = B::to_host(*smooth.grads()[j]);
    const auto fw = [&](const std::vector<float>& v) {
      w = B::from_host(ws, v);
      loss.forward(smooth.forward(x), labels);
      return loss.mean_loss();
    };
    const auto cw = testing::check_gradient(fw, w0, gw, {.eps = 1e-3, .atol = 2e-4});
    w = B::from_host(ws, w0);
    INFO("parameter " << j << ": " << cw.message);
    CHECK(cw.ok);
  }
}

TEMPLATE_LIST_TEST_CASE("sequential: an MLP learns a linearly separable problem to 100% training accuracy",
                        "[nn][sequential][train]", backends) {
  using B = TestType;
  // 256 points in 4-D, labelled by the side of a random hyperplane, kept only with a margin
  const std::size_t n = 256, d = 4;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> dir(d);
  for (float& v : dir) {
    v = normal(rng());
  }
  std::vector<float> xv;
  std::vector<std::int32_t> labels;
  while (labels.size() < n) {
    std::vector<float> p(d);
    double s = 0.3;
    for (std::size_t i = 0; i < d; ++i) {
      p[i] = normal(rng());
      s += static_cast<double>(p[i]) * dir[i];
    }
    if (std::abs(s) < 0.2) {
      continue;
    }
    xv.insert(xv.end(), p.begin(), p.end());
    labels.push_back(s > 0 ? 1 : 0);
  }
  const auto x = B::from_host(shape{n, d}, xv);
  auto net = make_mlp<B>(d, 16, 2, 3, {.lr = 1e-2f});
  nn::cross_entropy_loss<B> loss;
  const auto first = loss.forward(net.forward(x), labels);
  std::size_t correct = 0;
  int epoch = 0;
  for (; epoch < 2000 && correct < n; ++epoch) {
    net.zero_grad();
    correct = loss.forward(net.forward(x), labels).correct;
    net.backward(loss.grad());
    net.step();
  }
  INFO("epochs: " << epoch << ", correct " << correct << " of " << n);
  CHECK(first.correct < n); // it had something to learn
  CHECK(correct == n);
  CHECK(loss.forward(net.forward(x), labels).loss_sum < first.loss_sum);
}

TEMPLATE_LIST_TEST_CASE("sequential: copies and moves train their own parameters", "[nn][sequential]",
                        backends) {
  using B = TestType;
  auto a = make_mlp<B>(3, 5, 2, 11);
  const auto x = random_tensor<B>(shape{4, 3});
  const auto g = random_tensor<B>(shape{4, 2});
  auto b = a; // copy
  const auto wa = B::to_host(a.template layer<2>().weight());
  b.zero_grad();
  b.forward(x);
  b.backward(g);
  b.step();
  CHECK(B::to_host(a.template layer<2>().weight()) == wa); // the original is untouched
  CHECK(B::to_host(b.template layer<2>().weight()) != wa); // the copy moved
  CHECK(b.optimizer().steps() == 1);
  CHECK(a.optimizer().steps() == 0);
  auto c = std::move(b); // move: the optimiser now updates c's tensors
  const auto wc = B::to_host(c.template layer<2>().weight());
  c.zero_grad();
  c.forward(x);
  c.backward(g);
  c.step();
  CHECK(B::to_host(c.template layer<2>().weight()) != wc);
  CHECK(c.optimizer().steps() == 2);
  // reset_parameters with the construction seed gives the construction parameters back
  c.reset_parameters(11);
  CHECK(B::to_host(c.template layer<2>().weight()) == wa);
  CHECK(c.optimizer().steps() == 0);
}

TEMPLATE_LIST_TEST_CASE("sequential: shape errors name the layer position, the layer and both shapes",
                        "[nn][sequential][errors]", backends) {
  using B = TestType;
  nn::lenet<B> net(1);
  CHECK_THROWS_AS(net.forward(B::zeros(shape{2, 1, 32, 32})), shape_error);
  CHECK_THROWS_WITH(net.forward(B::zeros(shape{2, 1, 32, 32})),
                    Contains("layer 3") && Contains("dense(800, 500)") && Contains("[2,1250]") &&
                      Contains("[N,800]"));
  CHECK_THROWS_WITH(net.forward(B::zeros(shape{2, 3, 28, 28})),
                    Contains("layer 0") && Contains("conv_relu_pool(1, 20, 5, pad=0)") &&
                      Contains("[2,3,28,28]"));
  CHECK_THROWS_WITH(net.output_shape(shape{2, 1, 32, 32}), Contains("layer 3"));
  net.forward(B::zeros(shape{2, 1, 28, 28}));
  CHECK_THROWS_WITH(net.backward(B::zeros(shape{3, 10})), Contains("layer 5") && Contains("[3,10]"));
}

TEMPLATE_LIST_TEST_CASE("lenet: shapes, size and a forward/backward pass", "[nn][sequential][lenet]",
                        backends) {
  using B = TestType;
  nn::lenet<B> net(7);
  CHECK(net.parameter_count() == 20 * 25 + 20 + 50 * 500 + 50 + 800 * 500 + 500 + 500 * 10 + 10);
  CHECK(net.output_shape(nn::lenet<B>::input_shape().prepend(5)) == shape{5, 10});
  const auto x = random_tensor<B>(shape{3, 1, 28, 28}, 0.0f, 1.0f);
  const auto y = B::to_host(net.forward(x));
  REQUIRE(y.size() == 30);
  CHECK(bk::all_finite<B>(net.forward(x)));
  const auto& gx = net.backward(random_tensor<B>(shape{3, 10}));
  CHECK(B::shape_of(gx) == shape{3, 1, 28, 28});
  double abs_sum = 0.0;
  for (float v : B::to_host(gx)) {
    abs_sum += std::abs(v);
  }
  CHECK(abs_sum > 0.0); // the input gradient reaches the input
  CHECK(bk::all_finite<B>(gx));
}

// ---- save / load -----------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("sequential: save then load gives identical outputs", "[nn][sequential][io]",
                        backends) {
  using B = TestType;
  temp_dir dir;
  const fs::path file = dir.path / "lenet.weights";
  nn::lenet<B> a(1), b(2);
  const auto x = random_tensor<B>(shape{4, 1, 28, 28}, 0.0f, 1.0f);
  // train a a little so that its parameters are not the initial ones of any seed
  a.zero_grad();
  a.forward(x);
  a.backward(random_tensor<B>(shape{4, 10}));
  a.step();
  const auto ya = B::to_host(a.forward(x));
  b.forward(x);
  b.backward(random_tensor<B>(shape{4, 10}));
  b.step();
  REQUIRE(b.optimizer().steps() == 1);
  CHECK(B::to_host(b.forward(x)) != ya);
  a.save(file);
  b.load(file);
  CHECK(B::to_host(b.forward(x)) == ya);
  CHECK(b.optimizer().steps() == 0); // the optimiser state was reset
  // the file is complete and alone in its directory (no temporary file left behind)
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path)) {
    ++files;
  }
  CHECK(files == 1);
  const auto bytes = read_bytes(file);
  REQUIRE(bytes.size() > 16);
  CHECK(std::string(bytes.begin(), bytes.begin() + 8) == "SELMASKW");
  CHECK(bytes[8] == 1); // format version 1, little-endian
  // header, 8 tensors (rank + u64 extents; ranks 4,1,4,1,2,1,2,1), the values, the checksum
  CHECK(bytes.size() ==
        8 + 4 + 4 + 8 * 4 + 8 * (4 + 1 + 4 + 1 + 2 + 1 + 2 + 1) + 4 * a.parameter_count() + 4);
  // saving again replaces the file
  a.save(file);
  CHECK(read_bytes(file) == bytes);
}

TEST_CASE("weights file: round trip of tensors of every rank", "[nn][io]") {
  temp_dir dir;
  const fs::path file = dir.path / "t.bin";
  std::vector<nn::host_tensor> t{{shape{}, {3.5f}},
                                 {shape{0}, {}},
                                 {shape{2, 3}, random_values(6)},
                                 {shape{1, 2, 1, 2, 1, 2}, random_values(8)}};
  t[2].values[0] = -0.0f;
  t[2].values[1] = std::numeric_limits<float>::infinity();
  nn::write_weights_file(file, t);
  const auto r = nn::read_weights_file(file);
  REQUIRE(r.size() == t.size());
  for (std::size_t i = 0; i < t.size(); ++i) {
    CHECK(r[i].dims == t[i].dims);
    CHECK(r[i].values == t[i].values);
  }
  CHECK(std::signbit(r[2].values[0]));
  CHECK_THROWS_AS(nn::write_weights_file(file, {{shape{2, 2}, {1.0f}}}), shape_error);
  CHECK_THROWS_AS(nn::write_weights_file(dir.path / "missing_dir" / "x.bin", t), io_error);
}

TEMPLATE_LIST_TEST_CASE(
  "sequential: bad weight files are rejected with io_error naming the file and the problem",
  "[nn][sequential][io][errors]", backends) {
  using B = TestType;
  temp_dir dir;
  const fs::path good = dir.path / "good.weights";
  auto net = make_mlp<B>(3, 4, 2, 5);
  net.save(good);
  const auto bytes = read_bytes(good);
  const auto w_before = B::to_host(net.template layer<0>().weight());
  const fs::path bad = dir.path / "bad.weights";

  const auto rejects = [&](const std::vector<unsigned char>& content, const std::string& what) {
    write_bytes(bad, content);
    auto other = make_mlp<B>(3, 4, 2, 6);
    const auto w_other = B::to_host(other.template layer<0>().weight());
    CHECK_THROWS_AS(other.load(bad), io_error);
    CHECK_THROWS_WITH(other.load(bad), Contains("bad.weights") && Contains(what));
    CHECK(B::to_host(other.template layer<0>().weight()) == w_other); // nothing was loaded
  };

  SECTION("the good file loads") {
    auto other = make_mlp<B>(3, 4, 2, 6);
    other.load(good);
    CHECK(B::to_host(other.template layer<0>().weight()) == w_before);
  }
  SECTION("wrong magic") {
    auto b = bytes;
    b[0] = 'X';
    rejects(b, "magic");
    rejects({'P', 'K', 3, 4}, "truncated");
  }
  SECTION("unsupported version") {
    auto b = bytes;
    b[8] = 2;
    rejects(b, "version 2");
  }
  SECTION("truncated anywhere") {
    for (std::size_t keep : {std::size_t{0}, std::size_t{10}, std::size_t{30}, bytes.size() / 2,
                             bytes.size() - 5, bytes.size() - 1}) {
      INFO("keeping " << keep << " of " << bytes.size() << " bytes");
      rejects(std::vector<unsigned char>(bytes.begin(), bytes.begin() + static_cast<long>(keep)),
              "truncated");
    }
  }
  SECTION("a flipped bit in the values, the checksum or a shape") {
    auto b = bytes;
    b[b.size() - 7] ^= 0x10; // inside the last value
    rejects(b, "checksum mismatch");
    auto c = bytes;
    c.back() ^= 0x01;
    rejects(c, "checksum mismatch");
    auto d = bytes;
    d[8 + 4 + 4 + 4] ^= 0x01; // the first extent of the first tensor (4 → 5): the values no longer fit
    rejects(d, "corrupt");
    auto e = bytes;
    e[8 + 4 + 4] = 7; // rank 7
    rejects(e, "rank 7");
  }
  SECTION("trailing bytes") {
    auto b = bytes;
    b.push_back(0);
    rejects(b, "unexpected bytes");
  }
  SECTION("another architecture") {
    const fs::path wide = dir.path / "wide.weights";
    make_mlp<B>(3, 8, 2, 5).save(wide);
    auto other = make_mlp<B>(3, 4, 2, 6);
    CHECK_THROWS_AS(other.load(wide), io_error);
    CHECK_THROWS_WITH(other.load(wide), Contains("wide.weights") && Contains("[8,3]") && Contains("[4,3]") &&
                                          Contains("dense(3, 4)"));
    const fs::path deeper = dir.path / "deeper.weights";
    nn::sequential(nn::dense<B>(3, 2)).save(deeper);
    CHECK_THROWS_WITH(other.load(deeper), Contains("holds 2 tensors") && Contains("has 4"));
  }
  SECTION("a missing file") {
    CHECK_THROWS_AS(net.load(dir.path / "nope.weights"), io_error);
    CHECK_THROWS_WITH(net.load(dir.path / "nope.weights"),
                      Contains("nope.weights") && Contains("cannot open"));
  }
  CHECK(B::to_host(net.template layer<0>().weight()) == w_before);
}
