// The network kit's CPU primitives and layers: primitives against naive references and
// hand-computed cases, every layer's input and parameter gradients against finite differences,
// and the shape errors a layer throws.
#include "support.hpp"

#include <selmask/nn/conv2d.hpp>
#include <selmask/nn/conv_relu_pool.hpp>
#include <selmask/nn/dense.hpp>
#include <selmask/nn/flatten.hpp>
#include <selmask/nn/layer.hpp>
#include <selmask/nn/max_pool2.hpp>
#include <selmask/nn/relu.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

using namespace selmask;
using namespace selmask_test;
using Catch::Contains;

namespace {

/// Naive row-major matrix product of op(a) (m×k) and op(b) (k×n).
std::vector<double> naive_matmul(const std::vector<float>& a, bool ta, const std::vector<float>& b, bool tb,
                                 std::size_t m, std::size_t k, std::size_t n) {
  std::vector<double> c(m * n, 0.0);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t p = 0; p < k; ++p) {
        const double av = ta ? a[p * m + i] : a[i * k + p];
        const double bv = tb ? b[j * k + p] : b[p * n + j];
        c[i * n + j] += av * bv;
      }
  return c;
}

/// Naive stride-1 zero-padded cross-correlation, NCHW, weights OC×C×k×k.
std::vector<double> naive_conv(const std::vector<float>& x, const shape& xs, const std::vector<float>& w,
                               const std::vector<float>& b, std::size_t oc, std::size_t k, std::size_t pad) {
  const std::size_t n = xs[0], c = xs[1], h = xs[2], wd = xs[3];
  const std::size_t oh = h + 2 * pad - k + 1, ow = wd + 2 * pad - k + 1;
  std::vector<double> y(n * oc * oh * ow);
  for (std::size_t in = 0; in < n; ++in)
    for (std::size_t o = 0; o < oc; ++o)
      for (std::size_t r = 0; r < oh; ++r)
        for (std::size_t q = 0; q < ow; ++q) {
          double s = b[o];
          for (std::size_t ic = 0; ic < c; ++ic)
            for (std::size_t i = 0; i < k; ++i)
              for (std::size_t j = 0; j < k; ++j) {
                const long ih = static_cast<long>(r + i) - static_cast<long>(pad);
                const long iw = static_cast<long>(q + j) - static_cast<long>(pad);
                if (ih < 0 || iw < 0 || ih >= static_cast<long>(h) || iw >= static_cast<long>(wd)) {
                  continue;
                }
                s += static_cast<double>(x[((in * c + ic) * h + static_cast<std::size_t>(ih)) * wd +
                                           static_cast<std::size_t>(iw)]) *
                     w[((o * c + ic) * k + i) * k + j];
              }
          y[((in * oc + o) * oh + r) * ow + q] = s;
        }
  return y;
}

/// Values at least `gap` apart from each other (no ties in a max-pool window), and at least
/// `gap / 2` away from zero (no ReLU kink), in random order.
std::vector<float> separated_values(std::size_t n, float gap) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = (static_cast<float>(i) - static_cast<float>(n) / 2.0f + 0.5f) * gap;
  }
  std::shuffle(v.begin(), v.end(), rng());
  return v;
}

/// Finite-difference checks of a layer's input gradient and of every parameter gradient for the
/// scalar loss L = Σ y·r with a random r.
template <class B, class L>
void check_layer(L& l, const shape& in, const std::vector<float>& xv, double eps) {
  const auto x = B::from_host(in, xv);
  const shape out = l.output_shape(in);
  const auto rv = random_values(out.size());
  const auto r = B::from_host(out, rv);
  const auto y = B::to_host(l.forward(x));
  REQUIRE(B::shape_of(l.forward(x)) == out);
  REQUIRE(y.size() == out.size());
  const auto gx = B::to_host(l.backward(r));
  REQUIRE(gx.size() == in.size());

  const auto loss_x = [&](const std::vector<float>& v) {
    return dot(B::to_host(l.forward(B::from_host(in, v))), rv);
  };
  const auto cx = testing::check_gradient(loss_x, xv, gx, {.eps = eps});
  INFO(l.name() << " input gradient: " << cx.message);
  CHECK(cx.ok);

  const auto ps = l.params();
  const auto gs = l.grads();
  REQUIRE(ps.size() == gs.size());
  for (std::size_t j = 0; j < ps.size(); ++j) {
    const shape s = B::shape_of(*ps[j]);
    const auto p0 = B::to_host(*ps[j]);
    const auto gp = B::to_host(*gs[j]); // accumulated by the one backward above
    const auto loss_p = [&](const std::vector<float>& v) {
      *ps[j] = B::from_host(s, v);
      return dot(B::to_host(l.forward(x)), rv);
    };
    const auto cp = testing::check_gradient(loss_p, p0, gp, {.eps = eps});
    *ps[j] = B::from_host(s, p0);
    INFO(l.name() << " parameter " << j << " gradient: " << cp.message);
    CHECK(cp.ok);
  }
}

} // namespace

// ---- primitives ----------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("gemm: all transpose combinations against a naive product", "[nn][backend]",
                        backends) {
  using B = TestType;
  const std::size_t m = 5, k = 7, n = 3;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      DYNAMIC_SECTION("trans_a " << ta << " trans_b " << tb) {
        const auto av = random_values(m * k), bv = random_values(k * n), cv = random_values(m * n);
        const auto a = B::from_host(ta ? shape{k, m} : shape{m, k}, av);
        const auto b = B::from_host(tb ? shape{n, k} : shape{k, n}, bv);
        const auto ref = naive_matmul(av, ta, bv, tb, m, k, n);
        tensor_t<B> c; // beta = 0: resized
        B::gemm(ta, tb, 0.7f, a, b, 0.0f, c);
        REQUIRE(B::shape_of(c) == shape{m, n});
        auto got = B::to_host(c);
        for (std::size_t i = 0; i < m * n; ++i) {
          REQUIRE(got[i] == Approx(0.7 * ref[i]).margin(1e-5));
        }
        auto c2 = B::from_host(shape{m, n}, cv); // beta != 0: accumulates
        B::gemm(ta, tb, 1.0f, a, b, 0.5f, c2);
        got = B::to_host(c2);
        for (std::size_t i = 0; i < m * n; ++i) {
          REQUIRE(got[i] == Approx(ref[i] + 0.5 * cv[i]).margin(1e-5));
        }
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("gemm: tensors are read as (first axis) × (the rest)", "[nn][backend]", backends) {
  using B = TestType;
  // a 4-D weight OC×C×kh×kw is a OC × (C·kh·kw) matrix
  const auto av = random_values(2 * 3 * 2 * 2), bv = random_values(12 * 4);
  const auto a = B::from_host(shape{2, 3, 2, 2}, av);
  const auto b = B::from_host(shape{12, 4}, bv);
  auto c = B::zeros(shape{2, 2, 2}); // already a 2 × 4 matrix: kept as is
  B::gemm(false, false, 1.0f, a, b, 0.0f, c);
  CHECK(B::shape_of(c) == shape{2, 2, 2});
  const auto ref = naive_matmul(av, false, bv, false, 2, 12, 4);
  const auto got = B::to_host(c);
  for (std::size_t i = 0; i < ref.size(); ++i) {
    REQUIRE(got[i] == Approx(ref[i]).margin(1e-5));
  }
  auto wrong = B::zeros(shape{3, 4});
  CHECK_THROWS_AS(B::gemm(false, false, 1.0f, a, b, 1.0f, wrong), shape_error);
  CHECK_THROWS_WITH(B::gemm(false, true, 1.0f, a, b, 0.0f, c), Contains("inner dimensions"));
}

TEMPLATE_LIST_TEST_CASE("im2col and col2im: layout and adjointness", "[nn][backend]", backends) {
  using B = TestType;
  SECTION("hand-computed columns of a 1×1×2×3 image, 2×2 kernel, no padding") {
    const auto x = B::from_host(shape{1, 1, 2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
    tensor_t<B> col;
    bk::im2col<B>(x, 2, 2, 0, col);
    REQUIRE(B::shape_of(col) == shape{4, 2});
    // rows (i, j) = (0,0) (0,1) (1,0) (1,1); columns = the 1×2 output positions
    CHECK(B::to_host(col) == std::vector<float>{1, 2, 2, 3, 4, 5, 5, 6});
  }
  SECTION("padding reads zeros outside the image") {
    const auto x = B::from_host(shape{1, 1, 1, 2}, std::vector<float>{1, 2});
    tensor_t<B> col;
    bk::im2col<B>(x, 1, 3, 1, col); // 1×3 kernel, pad 1: output 3×2
    REQUIRE(B::shape_of(col) == shape{3, 6});
    // output row 0 and 2 lie in the padding; row 1 sees [0 1 2 0] through a 1×3 window
    CHECK(B::to_host(col) == std::vector<float>{0, 0, 0, 1, 0, 0, //
                                                0, 0, 1, 2, 0, 0, //
                                                0, 0, 2, 0, 0, 0});
  }
  SECTION("<im2col(x), c> = <x, col2im(c)> for several shapes and paddings") {
    for (std::size_t pad : {0u, 1u, 2u}) {
      const shape xs{2, 3, 5, 6};
      const auto xv = random_values(xs.size());
      tensor_t<B> col;
      bk::im2col<B>(B::from_host(xs, xv), 3, 2, pad, col);
      const std::size_t oh = 5 + 2 * pad - 3 + 1, ow = 6 + 2 * pad - 2 + 1;
      REQUIRE(B::shape_of(col) == shape{3 * 3 * 2, 2 * oh * ow});
      const auto cv = random_values(B::shape_of(col).size());
      tensor_t<B> back;
      bk::col2im<B>(B::from_host(B::shape_of(col), cv), xs, 3, 2, pad, back);
      REQUIRE(B::shape_of(back) == xs);
      CHECK(dot(B::to_host(col), cv) == Approx(dot(xv, B::to_host(back))).epsilon(1e-5));
    }
  }
  SECTION("a kernel larger than the padded input is rejected") {
    tensor_t<B> col;
    CHECK_THROWS_AS(bk::im2col<B>(B::zeros(shape{1, 1, 3, 3}), 6, 6, 1, col), shape_error);
    CHECK_THROWS_AS(bk::im2col<B>(B::zeros(shape{3, 3}), 1, 1, 0, col), shape_error);
  }
}

TEMPLATE_LIST_TEST_CASE("swap_leading_axes, add_bias and bias_grad on hand-computed cases", "[nn][backend]",
                        backends) {
  using B = TestType;
  const auto a = B::from_host(shape{2, 3, 2}, std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  tensor_t<B> t;
  bk::swap_leading_axes<B>(a, t);
  CHECK(B::shape_of(t) == shape{3, 2, 2});
  CHECK(B::to_host(t) == std::vector<float>{0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11});

  auto y = B::zeros(shape{2, 3, 2});
  bk::add_bias<B>(y, B::from_host(shape{3}, std::vector<float>{1, 2, 3}));
  CHECK(B::to_host(y) == std::vector<float>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3});
  auto y2 = B::zeros(shape{2, 3});
  bk::add_bias<B>(y2, B::from_host(shape{3}, std::vector<float>{1, 2, 3}));
  CHECK(B::to_host(y2) == std::vector<float>{1, 2, 3, 1, 2, 3});
  CHECK_THROWS_AS(bk::add_bias<B>(y2, B::zeros(shape{2})), shape_error);

  auto db = B::from_host(shape{3}, std::vector<float>{100, 0, 0});
  bk::bias_grad<B>(a, db); // channel c: Σ over n and the last axis; accumulates
  CHECK(B::to_host(db) == std::vector<float>{100 + 0 + 1 + 6 + 7, 2 + 3 + 8 + 9, 4 + 5 + 10 + 11});
  // N×F (a dense layer's output): one value per feature, summed over the batch
  auto db2 = B::from_host(shape{2}, std::vector<float>{1, -1});
  bk::bias_grad<B>(B::from_host(shape{3, 2}, std::vector<float>{0, 1, 2, 3, 4, 5}), db2);
  CHECK(B::to_host(db2) == std::vector<float>{1 + 0 + 2 + 4, -1 + 1 + 3 + 5});
}

TEST_CASE("cpu::add_bias and bias_grad on a batch of features large enough to be split over threads",
          "[nn][backend]") {
  const std::size_t n = 70, f = 300; // both loops split in parts (grains 16 rows, 64 features)
  const auto gv = random_values(n * f);
  const auto bv = random_values(f);
  auto y = cpu::from_host(shape{n, f}, gv);
  cpu::add_bias(y, cpu::from_host(shape{f}, bv));
  const auto yh = cpu::to_host(y);
  auto db = cpu::from_host(shape{f}, bv);
  cpu::bias_grad(cpu::from_host(shape{n, f}, gv), db);
  const auto dbh = cpu::to_host(db);
  for (std::size_t c = 0; c < f; ++c) {
    double s = 0.0; // the backend's order: the batch in sequence, in double
    for (std::size_t i = 0; i < n; ++i) {
      REQUIRE(yh[i * f + c] == gv[i * f + c] + bv[c]);
      s += static_cast<double>(gv[i * f + c]);
    }
    REQUIRE(dbh[c] == bv[c] + static_cast<float>(s));
  }
}

TEMPLATE_LIST_TEST_CASE("relu_forward / relu_backward", "[nn][backend]", backends) {
  using B = TestType;
  const auto x = B::from_host(shape{5}, std::vector<float>{-2, -0.0f, 0.5f, 3, -1});
  tensor_t<B> y, dx;
  bk::relu_forward<B>(x, y);
  CHECK(B::to_host(y) == std::vector<float>{0, 0, 0.5f, 3, 0});
  bk::relu_backward<B>(y, B::from_host(shape{5}, std::vector<float>{1, 2, 3, 4, 5}), dx);
  CHECK(B::to_host(dx) == std::vector<float>{0, 0, 3, 4, 0});
  // NaN is not hidden by the rectifier: the trainer's finiteness check must see it
  bk::relu_forward<B>(B::from_host(shape{1}, std::vector<float>{std::nanf("")}), y);
  CHECK(std::isnan(B::to_host(y)[0]));
}

TEMPLATE_LIST_TEST_CASE("maxpool2: a hand-computed case, odd edges and ties", "[nn][backend]", backends) {
  using B = TestType;
  // one 4×5 image: the last column is dropped
  const std::vector<float> xv{1, 5, 2,  0,  9, //
                              3, 4, 8,  7,  9, //
                              6, 6, -4, -2, 9, //
                              6, 2, -3, -1, 9};
  const auto x = B::from_host(shape{1, 1, 4, 5}, xv);
  tensor_t<B> y, idx, dx;
  bk::maxpool2_forward<B>(x, y, idx);
  REQUIRE(B::shape_of(y) == shape{1, 1, 2, 2});
  CHECK(B::to_host(y) == std::vector<float>{5, 8, 6, -1});
  // window offsets: 5 top-right (1), 8 bottom-left (2), 6 ties: first (0), -1 bottom-right (3)
  CHECK(B::to_host(idx) == std::vector<float>{1, 2, 0, 3});
  bk::maxpool2_backward<B>(B::from_host(shape{1, 1, 2, 2}, std::vector<float>{10, 20, 30, 40}), idx,
                           shape{1, 1, 4, 5}, dx);
  CHECK(B::to_host(dx) == std::vector<float>{0,  10, 0,  0,  0, //
                                             0,  0,  20, 0,  0, //
                                             30, 0,  0,  0,  0, //
                                             0,  0,  0,  40, 0});
  CHECK_THROWS_AS(bk::maxpool2_backward<B>(y, idx, shape{1, 1, 6, 6}, dx), shape_error);
}

TEMPLATE_LIST_TEST_CASE("softmax_cross_entropy: values, counts and gradient", "[nn][backend][gradient]",
                        backends) {
  using B = TestType;
  SECTION("hand-computed") {
    // row 0: logits (0, ln 3): softmax (1/4, 3/4); label 1: loss −ln(3/4), correct
    // row 1: logits (2, 2): softmax (1/2, 1/2); label 1: loss ln 2, tie goes to class 0: wrong
    const auto logits = B::from_host(shape{2, 2}, std::vector<float>{0, std::log(3.0f), 2, 2});
    const std::vector<std::int32_t> labels{1, 1};
    tensor_t<B> g;
    const auto r = bk::softmax_cross_entropy<B>(logits, labels, g);
    CHECK(r.loss_sum == Approx(-std::log(0.75) + std::log(2.0)).epsilon(1e-6));
    CHECK(r.correct == 1);
    const auto gv = B::to_host(g);
    CHECK(gv[0] == Approx(0.25 / 2).margin(1e-7));
    CHECK(gv[1] == Approx(-0.25 / 2).margin(1e-7));
    CHECK(gv[2] == Approx(0.5 / 2).margin(1e-7));
    CHECK(gv[3] == Approx(-0.5 / 2).margin(1e-7));
  }
  SECTION("finite differences of the mean loss") {
    const shape s{4, 5};
    const auto lv = random_values(s.size(), -3.0f, 3.0f);
    const std::vector<std::int32_t> labels{0, 4, 2, 2};
    tensor_t<B> g;
    bk::softmax_cross_entropy<B>(B::from_host(s, lv), labels, g);
    const auto mean_loss = [&](const std::vector<float>& v) {
      tensor_t<B> scratch;
      return bk::softmax_cross_entropy<B>(B::from_host(s, v), labels, scratch).loss_sum / 4.0;
    };
    const auto c = testing::check_gradient(mean_loss, lv, B::to_host(g), {.eps = 1e-2, .atol = 1e-4});
    INFO(c.message);
    CHECK(c.ok);
  }
  SECTION("bad labels") {
    tensor_t<B> g;
    const auto logits = B::zeros(shape{2, 3});
    const std::vector<std::int32_t> out_of_range{0, 3}, too_few{0};
    CHECK_THROWS_AS(bk::softmax_cross_entropy<B>(logits, out_of_range, g), value_error);
    CHECK_THROWS_WITH(bk::softmax_cross_entropy<B>(logits, out_of_range, g), Contains("label 3"));
    CHECK_THROWS_AS(bk::softmax_cross_entropy<B>(logits, too_few, g), shape_error);
  }
}

// ---- layers ---------------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("nn::conv2d: forward equals a naive nested-loop convolution", "[nn][layer]",
                        backends) {
  using B = TestType;
  for (std::size_t pad : {0u, 1u, 2u}) {
    DYNAMIC_SECTION("pad " << pad) {
      nn::conv2d<B> conv(3, 4, 3, pad);
      std::mt19937_64 init(pad);
      conv.reset_parameters(init);
      const shape xs{2, 3, 6, 5};
      const auto xv = random_values(xs.size());
      const auto& y = conv.forward(B::from_host(xs, xv));
      const shape ys{2, 4, 6 + 2 * pad - 2, 5 + 2 * pad - 2};
      REQUIRE(B::shape_of(y) == ys);
      REQUIRE(conv.output_shape(xs) == ys);
      const auto ref = naive_conv(xv, xs, B::to_host(conv.weight()), B::to_host(conv.bias()), 4, 3, pad);
      const auto got = B::to_host(y);
      for (std::size_t i = 0; i < ref.size(); ++i) {
        REQUIRE(got[i] == Approx(ref[i]).margin(1e-5));
      }
      // the same layer, a batch of another size: workspaces follow
      const shape xs1{1, 3, 6, 5};
      const auto xv1 = random_values(xs1.size());
      const auto ref1 = naive_conv(xv1, xs1, B::to_host(conv.weight()), B::to_host(conv.bias()), 4, 3, pad);
      const auto got1 = B::to_host(conv.forward(B::from_host(xs1, xv1)));
      REQUIRE(got1.size() == ref1.size());
      for (std::size_t i = 0; i < ref1.size(); ++i) {
        REQUIRE(got1[i] == Approx(ref1[i]).margin(1e-5));
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("nn layers: gradients match finite differences", "[nn][layer][gradient]", backends) {
  using B = TestType;
  std::mt19937_64 init(42);
  SECTION("dense") {
    nn::dense<B> l(5, 4);
    l.reset_parameters(init);
    check_layer<B>(l, shape{3, 5}, random_values(15), 1e-2);
  }
  SECTION("conv2d, no padding") {
    nn::conv2d<B> l(2, 3, 3);
    l.reset_parameters(init);
    check_layer<B>(l, shape{2, 2, 5, 4}, random_values(80), 1e-2);
  }
  SECTION("conv2d, padding 2, 1×1 output channel") {
    nn::conv2d<B> l(3, 1, 2, 2);
    l.reset_parameters(init);
    check_layer<B>(l, shape{1, 3, 3, 4}, random_values(36), 1e-2);
  }
  SECTION("max_pool2 (odd extents, no ties)") {
    nn::max_pool2<B> l;
    check_layer<B>(l, shape{2, 2, 5, 6}, separated_values(120, 0.05f), 5e-3);
  }
  SECTION("relu (no value near the kink)") {
    nn::relu<B> l;
    check_layer<B>(l, shape{3, 2, 4}, separated_values(24, 0.05f), 5e-3);
  }
  SECTION("flatten") {
    nn::flatten<B> l;
    check_layer<B>(l, shape{2, 3, 2, 2}, random_values(24), 1e-2);
    CHECK(B::shape_of(l.forward(B::zeros(shape{2, 3, 2, 2}))) == shape{2, 12});
  }
}

TEMPLATE_LIST_TEST_CASE("nn layers: parameter gradients accumulate across backward passes",
                        "[nn][layer][gradient]", backends) {
  using B = TestType;
  nn::conv2d<B> conv(2, 2, 3, 1);
  nn::dense<B> fc(6, 3);
  std::mt19937_64 init(3);
  conv.reset_parameters(init);
  fc.reset_parameters(init);
  const auto x = random_tensor<B>(shape{2, 2, 4, 4});
  const auto gx = random_tensor<B>(shape{2, 2, 4, 4});
  conv.forward(x);
  conv.backward(gx);
  const auto once = B::to_host(conv.weight_grad());
  const auto once_b = B::to_host(conv.bias_grad());
  conv.forward(x);
  conv.backward(gx);
  const auto twice = B::to_host(conv.weight_grad());
  for (std::size_t i = 0; i < once.size(); ++i) {
    REQUIRE(twice[i] == Approx(2 * once[i]).margin(1e-5));
  }
  CHECK(B::to_host(conv.bias_grad())[1] == Approx(2 * once_b[1]).margin(1e-5));
  const auto xf = random_tensor<B>(shape{4, 6});
  const auto gf = random_tensor<B>(shape{4, 3});
  fc.forward(xf);
  fc.backward(gf);
  const auto f1 = B::to_host(fc.weight_grad());
  fc.forward(xf);
  fc.backward(gf);
  CHECK(B::to_host(fc.weight_grad())[5] == Approx(2 * f1[5]).margin(1e-5));
}

TEMPLATE_LIST_TEST_CASE("nn layers: PyTorch-like initialisation U(±1/sqrt(fan_in)), seeded", "[nn][layer]",
                        backends) {
  using B = TestType;
  nn::conv2d<B> a(4, 8, 3), b(4, 8, 3), c(4, 8, 3);
  std::mt19937_64 r1(5), r2(5), r3(6);
  a.reset_parameters(r1);
  b.reset_parameters(r2);
  c.reset_parameters(r3);
  const auto wa = B::to_host(a.weight());
  CHECK(wa == B::to_host(b.weight()));
  CHECK(wa != B::to_host(c.weight()));
  const float bound = 1.0f / std::sqrt(36.0f);
  const auto [lo, hi] = std::minmax_element(wa.begin(), wa.end());
  CHECK(*lo >= -bound);
  CHECK(*hi <= bound);
  CHECK(*hi - *lo > 1.6f * bound); // spread over the whole interval, not a constant
  for (float v : B::to_host(a.bias())) {
    REQUIRE(std::abs(v) <= bound);
  }
  nn::dense<B> d(100, 7);
  d.reset_parameters(r1);
  const auto wd = B::to_host(d.weight());
  CHECK(*std::max_element(wd.begin(), wd.end()) <= 0.1f);
  CHECK(*std::max_element(wd.begin(), wd.end()) > 0.09f);
}

TEMPLATE_LIST_TEST_CASE("nn layers: bad shapes throw shape_error naming the layer and both shapes",
                        "[nn][layer][errors]", backends) {
  using B = TestType;
  SECTION("dense") {
    nn::dense<B> l(8, 3);
    CHECK_THROWS_AS(l.forward(B::zeros(shape{2, 7})), shape_error);
    CHECK_THROWS_WITH(l.forward(B::zeros(shape{2, 7})),
                      Contains("selmask::nn::dense(8, 3)") && Contains("[2,7]") && Contains("[N,8]"));
    CHECK_THROWS_WITH(l.forward(B::zeros(shape{2, 2, 2, 2})), Contains("flatten first"));
    CHECK_THROWS_WITH(l.backward(B::zeros(shape{2, 3})), Contains("before forward"));
    l.forward(B::zeros(shape{2, 8}));
    CHECK_THROWS_WITH(l.backward(B::zeros(shape{2, 4})),
                      Contains("selmask::nn::dense(8, 3)") && Contains("[2,4]") && Contains("[2,3]"));
  }
  SECTION("conv2d") {
    nn::conv2d<B> l(3, 4, 5);
    CHECK_THROWS_WITH(l.forward(B::zeros(shape{2, 1, 28, 28})),
                      Contains("conv2d(3, 4, 5, pad=0)") && Contains("[2,1,28,28]") && Contains("[N,3,H,W]"));
    CHECK_THROWS_WITH(l.forward(B::zeros(shape{2, 3, 4, 28})), Contains("H, W >= 5"));
    CHECK_THROWS_AS(l.forward(B::zeros(shape{3, 28, 28})), shape_error);
    l.forward(B::zeros(shape{2, 3, 8, 8}));
    CHECK_THROWS_WITH(l.backward(B::zeros(shape{2, 4, 5, 5})),
                      Contains("[2,4,5,5]") && Contains("[2,4,4,4]"));
  }
  SECTION("max_pool2 and flatten") {
    nn::max_pool2<B> p;
    CHECK_THROWS_WITH(p.forward(B::zeros(shape{4, 10})), Contains("max_pool2") && Contains("[4,10]"));
    CHECK_THROWS_WITH(p.forward(B::zeros(shape{4, 1, 1, 10})), Contains("H, W >= 2"));
    nn::relu<B> r;
    r.forward(B::zeros(shape{2, 3}));
    CHECK_THROWS_WITH(r.backward(B::zeros(shape{3, 2})),
                      Contains("relu") && Contains("[3,2]") && Contains("[2,3]"));
  }
  SECTION("sizes") {
    CHECK_THROWS_AS(nn::dense<B>(0, 3), value_error);
    CHECK_THROWS_AS(nn::conv2d<B>(1, 0, 3), value_error);
  }
}

TEMPLATE_LIST_TEST_CASE("nn layers: every built-in layer models nn::layer", "[nn][layer]", backends) {
  using B = TestType;
  STATIC_REQUIRE(nn::layer<nn::dense<B>, B>);
  STATIC_REQUIRE(nn::layer<nn::conv2d<B>, B>);
  STATIC_REQUIRE(nn::layer<nn::conv_relu_pool<B>, B>);
  STATIC_REQUIRE(nn::layer<nn::max_pool2<B>, B>);
  STATIC_REQUIRE(nn::layer<nn::relu<B>, B>);
  STATIC_REQUIRE(nn::layer<nn::flatten<B>, B>);
  STATIC_REQUIRE_FALSE(nn::layer<int, B>);
  STATIC_REQUIRE(nn_backend<B>);
}

namespace {

/// Direct convolution in double precision, written from the definition (no lowering).
struct direct_conv {
  std::size_t n, c, h, w, oc, k, pad, oh, ow;
  direct_conv(std::size_t n_, std::size_t c_, std::size_t h_, std::size_t w_, std::size_t oc_, std::size_t k_,
              std::size_t pad_)
    : n(n_), c(c_), h(h_), w(w_), oc(oc_), k(k_), pad(pad_), oh(h_ + 2 * pad_ - k_ + 1),
      ow(w_ + 2 * pad_ - k_ + 1) {}
  // calls f(x index, w index, y index) for every product term of the convolution
  template <class F>
  void terms(F&& f) const {
    for (std::size_t s = 0; s < n; ++s)
      for (std::size_t o = 0; o < oc; ++o)
        for (std::size_t y = 0; y < oh; ++y)
          for (std::size_t xo = 0; xo < ow; ++xo)
            for (std::size_t ci = 0; ci < c; ++ci)
              for (std::size_t i = 0; i < k; ++i)
                for (std::size_t j = 0; j < k; ++j) {
                  const auto ih = static_cast<long>(y + i) - static_cast<long>(pad);
                  const auto iw = static_cast<long>(xo + j) - static_cast<long>(pad);
                  if (ih < 0 || iw < 0 || ih >= static_cast<long>(h) || iw >= static_cast<long>(w))
                    continue;
                  f(((s * c + ci) * h + static_cast<std::size_t>(ih)) * w + static_cast<std::size_t>(iw),
                    ((o * c + ci) * k + i) * k + j, ((s * oc + o) * oh + y) * ow + xo);
                }
  }
};

} // namespace

TEST_CASE("cpu::conv2d_forward / conv2d_backward (fused, chunked, threaded) match a direct convolution",
          "[nn][backend]") {
  // 40 samples with a 5×5 kernel: several chunks, so the threads' partial weight gradients are
  // really summed. 14×14 with and without padding (rows of 10 and 14 values); 12×12, 20×20,
  // 28×28 and 36×36 unpadded give output rows of 8, 16, 24 and 32 values, the widths whose row
  // copies (lowering) and row sums (its adjoint) have loops of their own.
  for (const auto& [hw, pad] :
       {std::pair<std::size_t, std::size_t>{14, 0}, {14, 2}, {12, 0}, {20, 0}, {28, 0}, {36, 0}}) {
    CAPTURE(hw, pad);
    const direct_conv d(40, 3, hw, hw, 4, 5, pad);
    const auto xv = random_values(d.n * d.c * d.h * d.w);
    const auto wv = random_values(d.oc * d.c * d.k * d.k);
    const auto bv = random_values(d.oc);
    const auto gv = random_values(d.n * d.oc * d.oh * d.ow);
    std::vector<double> y(gv.size()), dx(xv.size(), 0.0), dw(wv.size(), 0.0), db(d.oc, 0.0);
    for (std::size_t i = 0; i < y.size(); ++i)
      y[i] = bv[i / (d.oh * d.ow) % d.oc];
    d.terms([&](std::size_t xi, std::size_t wi, std::size_t yi) {
      y[yi] += static_cast<double>(wv[wi]) * xv[xi];
      dx[xi] += static_cast<double>(wv[wi]) * gv[yi];
      dw[wi] += static_cast<double>(xv[xi]) * gv[yi];
    });
    for (std::size_t i = 0; i < gv.size(); ++i)
      db[i / (d.oh * d.ow) % d.oc] += gv[i];

    const auto x = cpu::from_host(shape{d.n, d.c, d.h, d.w}, xv);
    const auto w = cpu::from_host(shape{d.oc, d.c, d.k, d.k}, wv);
    const auto b = cpu::from_host(shape{d.oc}, bv);
    cpu::tensor yt;
    cpu::conv2d_forward(x, w, b, d.k, pad, yt);
    REQUIRE(cpu::shape_of(yt) == shape{d.n, d.oc, d.oh, d.ow});
    const auto yh = cpu::to_host(yt);
    for (std::size_t i = 0; i < y.size(); ++i)
      REQUIRE(yh[i] == Approx(y[i]).margin(1e-4));

    // the gradients accumulate into dw and db
    auto dwt = cpu::full(shape{d.oc, d.c, d.k, d.k}, 1.0f);
    auto dbt = cpu::full(shape{d.oc}, 1.0f);
    cpu::tensor dxt;
    cpu::conv2d_backward(x, w, cpu::from_host(shape{d.n, d.oc, d.oh, d.ow}, gv), d.k, pad, dwt, dbt, &dxt);
    const auto dwh = cpu::to_host(dwt), dbh = cpu::to_host(dbt), dxh = cpu::to_host(dxt);
    for (std::size_t i = 0; i < dw.size(); ++i)
      REQUIRE(dwh[i] == Approx(dw[i] + 1.0).epsilon(1e-4).margin(1e-3));
    for (std::size_t i = 0; i < db.size(); ++i)
      REQUIRE(dbh[i] == Approx(db[i] + 1.0).epsilon(1e-4).margin(1e-3));
    REQUIRE(cpu::shape_of(dxt) == shape{d.n, d.c, d.h, d.w});
    for (std::size_t i = 0; i < dx.size(); ++i)
      REQUIRE(dxh[i] == Approx(dx[i]).margin(1e-4));
    // chunks go to whichever thread is free, but the sums do not depend on it: bit for bit
    for (int run = 0; run < 5; ++run) {
      auto dw2 = cpu::full(shape{d.oc, d.c, d.k, d.k}, 1.0f);
      auto db2 = cpu::full(shape{d.oc}, 1.0f);
      cpu::tensor dx2, y2;
      cpu::conv2d_forward(x, w, b, d.k, pad, y2);
      cpu::conv2d_backward(x, w, cpu::from_host(shape{d.n, d.oc, d.oh, d.ow}, gv), d.k, pad, dw2, db2, &dx2);
      REQUIRE(cpu::to_host(y2) == yh);
      REQUIRE(cpu::to_host(dw2) == dwh);
      REQUIRE(cpu::to_host(db2) == dbh);
      REQUIRE(cpu::to_host(dx2) == dxh);
    }
  }
  SECTION("weights that do not fit the input are rejected with the shapes named") {
    cpu::tensor y;
    CHECK_THROWS_WITH(cpu::conv2d_forward(cpu::zeros(shape{2, 3, 8, 8}), cpu::zeros(shape{4, 2, 3, 3}),
                                          cpu::zeros(shape{4}), 3, 0, y),
                      Contains("[4,2,3,3]") && Contains("3 input channels"));
    auto dw = cpu::zeros(shape{4, 3, 3, 3});
    auto db = cpu::zeros(shape{4});
    CHECK_THROWS_AS(cpu::conv2d_backward(cpu::zeros(shape{2, 3, 8, 8}), cpu::zeros(shape{4, 3, 3, 3}),
                                         cpu::zeros(shape{2, 4, 5, 5}), 3, 0, dw, db, nullptr),
                    shape_error);
  }
}

TEST_CASE("cpu::gemm split over threads matches a naive product", "[nn][backend]") {
  // products above the size where the CPU backend cuts c into column or row panels per thread
  for (const auto& [m, n, k] :
       {std::tuple<std::size_t, std::size_t, std::size_t>{37, 301, 97}, {301, 37, 97}}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        const auto av = random_values(m * k), bv = random_values(k * n), cv = random_values(m * n);
        const auto a = cpu::from_host(ta ? shape{k, m} : shape{m, k}, av);
        const auto b = cpu::from_host(tb ? shape{n, k} : shape{k, n}, bv);
        auto c = cpu::from_host(shape{m, n}, cv);
        cpu::gemm(ta, tb, 0.5f, a, b, 2.0f, c);
        const auto ref = naive_matmul(av, ta, bv, tb, m, k, n);
        const auto got = cpu::to_host(c);
        for (std::size_t i = 0; i < ref.size(); ++i)
          REQUIRE(got[i] == Approx(0.5 * ref[i] + 2.0 * cv[i]).margin(1e-4));
      }
    }
  }
}

TEST_CASE("nn::conv_relu_pool equals conv2d, relu and max_pool2 one after the other", "[nn][layer]") {
  // 40 samples whose convolution output spans several chunks; 14×14 inputs give an odd output
  // (11×11 or 13×13: the pool drops the last row and column, whose gradient must be 0), 15×15
  // ones an even output (12×12 or 14×14: every value lies in some window)
  for (const auto& [pad, hw] : {std::pair<std::size_t, std::size_t>{0, 14}, {1, 14}, {0, 15}, {1, 15}}) {
    CAPTURE(pad, hw);
    std::mt19937_64 init(5);
    nn::conv_relu_pool<cpu> block(3, 4, 4, pad);
    block.reset_parameters(init);
    nn::conv2d<cpu> conv(3, 4, 4, pad);
    conv.set_weight(block.weight());
    conv.set_bias(block.bias());
    nn::relu<cpu> relu;
    nn::max_pool2<cpu> pool;

    const shape xs{40, 3, hw, hw};
    const auto x = cpu::from_host(xs, random_values(xs.size()));
    const auto y_ref = cpu::to_host(pool.forward(relu.forward(conv.forward(x))));
    const auto& y = block.forward(x);
    REQUIRE(cpu::shape_of(y) == block.output_shape(xs));
    REQUIRE(cpu::shape_of(y) == shape{40, 4, (hw + 2 * pad - 3) / 2, (hw + 2 * pad - 3) / 2});
    const auto yh = cpu::to_host(y);
    for (std::size_t i = 0; i < yh.size(); ++i)
      REQUIRE(yh[i] == Approx(y_ref[i]).margin(1e-5));

    const auto g = cpu::from_host(cpu::shape_of(y), random_values(yh.size()));
    const auto dx_ref = cpu::to_host(conv.backward(relu.backward(pool.backward(g))));
    const auto dx = cpu::to_host(block.backward(g));
    REQUIRE(dx.size() == dx_ref.size());
    for (std::size_t i = 0; i < dx.size(); ++i)
      REQUIRE(dx[i] == Approx(dx_ref[i]).margin(1e-5));
    const auto dw = cpu::to_host(block.weight_grad()), dw_ref = cpu::to_host(conv.weight_grad());
    for (std::size_t i = 0; i < dw.size(); ++i)
      REQUIRE(dw[i] == Approx(dw_ref[i]).epsilon(1e-4).margin(1e-4));
    const auto db = cpu::to_host(block.bias_grad()), db_ref = cpu::to_host(conv.bias_grad());
    for (std::size_t i = 0; i < db.size(); ++i)
      REQUIRE(db[i] == Approx(db_ref[i]).epsilon(1e-4).margin(1e-4));
    // the ReLU really cut something, and the pool really chose among four
    CHECK(std::count(yh.begin(), yh.end(), 0.0f) > 0);
  }
  SECTION("an input too small for the pool after the convolution is rejected") {
    nn::conv_relu_pool<cpu> block(1, 2, 3);
    CHECK_THROWS_AS(block.forward(cpu::zeros(shape{1, 1, 4, 3})), shape_error);
  }
}
