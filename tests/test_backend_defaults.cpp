// The layered backend concept: the reference backend models both layers with the core alone,
// gets every optional operation from the generic defaults (selmask::bk), and those defaults give
// what the CPU backend's own versions give on random input; the cell primitives of every backend
// against naive loops; the aliasing rule and the errors that name the function.
#include "support.hpp"

#include <selmask/backend/nn_ops.hpp>
#include <selmask/backend/ops.hpp>
#include <selmask/nn/conv_relu_pool.hpp>
#include <selmask/nn/lenet.hpp>
#include <selmask/nn/loss.hpp>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace selmask;
using namespace selmask_test;
using Catch::Contains;

namespace {

// Which optional operations a backend writes itself (the same `requires` the dispatch uses).
template <class B>
concept has_full = requires(const shape& s) {
  B::full(s, 1.0f);
};
template <class B>
concept has_all_finite = requires(const tensor_t<B>& a) {
  B::all_finite(a);
};
template <class B>
concept has_softmax_groups = requires(const tensor_t<B>& a, tensor_t<B>& t) {
  B::softmax_groups(a, std::size_t{2}, 1.0f, t);
};
template <class B>
concept has_argmax_one_hot_groups = requires(const tensor_t<B>& a, tensor_t<B>& t) {
  B::argmax_one_hot_groups(a, std::size_t{2}, t);
};
template <class B>
concept has_softmax_groups_backward = requires(const tensor_t<B>& a, tensor_t<B>& t) {
  B::softmax_groups_backward(a, a, std::size_t{2}, 1.0f, t);
};
template <class B>
concept has_sum_versions = requires(const tensor_t<B>& a, tensor_t<B>& t) {
  B::sum_versions(a, &a, t);
};
template <class B>
concept has_repeat_versions = requires(const tensor_t<B>& a, tensor_t<B>& t) {
  B::repeat_versions(a, std::size_t{2}, &a, t);
};
template <class B>
concept has_all_nn_overrides = requires(const tensor_t<B>& a, tensor_t<B>& t, tensor_t<B>& u, tensor_t<B>& v,
                                        const shape& s, std::span<const std::int32_t> y, const adamw_hyper& h,
                                        std::size_t n) {
  B::im2col(a, n, n, n, t);
  B::col2im(a, s, n, n, n, t);
  B::swap_leading_axes(a, t);
  B::add_bias(t, a);
  B::bias_grad(a, t);
  B::relu_forward(a, t);
  B::relu_backward(a, a, t);
  B::maxpool2_forward(a, t, u);
  B::maxpool2_backward(a, a, s, t);
  B::softmax_cross_entropy(a, y, t);
  B::adamw_step(t, a, u, v, t, h, n);
};
template <class B>
concept has_any_nn_default_overridden = requires(const tensor_t<B>& a, tensor_t<B>& t) {
  B::im2col(a, 1, 1, 0, t);
}
|| requires(const tensor_t<B>& a, tensor_t<B>& t) { B::relu_forward(a, t); }
|| requires(const tensor_t<B>& a, tensor_t<B>& t, std::span<const std::int32_t> y) {
  B::softmax_cross_entropy(a, y, t);
};

/// Runs `f.operator()<B>()` (which returns host values) on the CPU and the reference backend and
/// checks that the two agree to a relative `tol` (with the same absolute floor).
template <class F>
void check_parity(F f, double tol = 1e-5) {
  const std::vector<float> on_cpu = f.template operator()<cpu>();
  const std::vector<float> on_ref = f.template operator()<reference>();
  REQUIRE(on_cpu.size() == on_ref.size());
  for (std::size_t i = 0; i < on_cpu.size(); ++i) {
    INFO("value " << i);
    REQUIRE(on_ref[i] == Approx(on_cpu[i]).epsilon(tol).margin(tol));
  }
}

} // namespace

TEST_CASE("reference: models both layers with the core only", "[backend][reference]") {
  STATIC_REQUIRE(tensor_backend<reference>);
  STATIC_REQUIRE(nn_backend<reference>);
  STATIC_REQUIRE_FALSE(has_full<reference>);
  STATIC_REQUIRE_FALSE(has_all_finite<reference>);
  STATIC_REQUIRE_FALSE(has_softmax_groups<reference>);
  STATIC_REQUIRE_FALSE(has_argmax_one_hot_groups<reference>);
  STATIC_REQUIRE_FALSE(has_softmax_groups_backward<reference>);
  STATIC_REQUIRE_FALSE(has_sum_versions<reference>);
  STATIC_REQUIRE_FALSE(has_repeat_versions<reference>);
  STATIC_REQUIRE_FALSE(has_any_nn_default_overridden<reference>);
  // the CPU backend overrides every default, so its tests measure its own code
  STATIC_REQUIRE(has_full<cpu>);
  STATIC_REQUIRE(has_all_finite<cpu>);
  STATIC_REQUIRE(has_softmax_groups<cpu>);
  STATIC_REQUIRE(has_argmax_one_hot_groups<cpu>);
  STATIC_REQUIRE(has_softmax_groups_backward<cpu>);
  STATIC_REQUIRE(has_sum_versions<cpu>);
  STATIC_REQUIRE(has_repeat_versions<cpu>);
  STATIC_REQUIRE(has_all_nn_overrides<cpu>);
  // a type without the core is no backend
  STATIC_REQUIRE_FALSE(tensor_backend<int>);
}

TEMPLATE_LIST_TEST_CASE("cell primitives match naive loops", "[backend]", backends) {
  using B = TestType;
  for (const auto& g :
       {cell_geometry::make({1, 3, 5, 7}, {1, 1, 2, 3}), cell_geometry::make({2, 3, 4, 4}, {1, 3, 4, 4}),
        cell_geometry::make({3, 1, 5, 6}, {3, 1, 1, 1})}) {
    const shape s{2, g.dims[0] * g.dims[1], g.dims[2], g.dims[3]};
    const auto av = random_values(s.size()), bv = random_values(s.size()), cv = random_values(g.cells());
    tensor_t<B> t, r, r1;
    B::scale_cells(B::from_host(s, av), B::from_host(g.grid_shape(), cv), g, t);
    CHECK(B::shape_of(t) == s);
    CHECK(B::to_host(t) == naive_scale(av, cv, g));
    const auto a = B::from_host(s, av), b = B::from_host(s, bv);
    B::reduce_cells(a, &b, g, r);
    B::reduce_cells(a, nullptr, g, r1);
    CHECK(B::shape_of(r) == g.grid_shape());
    const auto want = naive_reduce(av, bv, g),
               want1 = naive_reduce(av, std::vector<float>(s.size(), 1.0f), g);
    const auto got = B::to_host(r), got1 = B::to_host(r1);
    for (std::size_t k = 0; k < g.cells(); ++k) {
      REQUIRE(got[k] == Approx(want[k]).epsilon(tolerance<B>::rel).margin(1e-6));
      REQUIRE(got1[k] == Approx(want1[k]).epsilon(tolerance<B>::rel).margin(1e-6));
    }
  }
}

TEMPLATE_LIST_TEST_CASE("full and all_finite (defaults on the reference)", "[backend]", backends) {
  using B = TestType;
  const auto t = bk::full<B>(shape{2, 3}, 2.5f);
  CHECK(B::shape_of(t) == shape{2, 3});
  CHECK(B::to_host(t) == std::vector<float>(6, 2.5f));
  CHECK(bk::all_finite<B>(t));
  for (float bad :
       {std::nanf(""), std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
    CHECK_FALSE(bk::all_finite<B>(B::from_host(shape{3}, std::vector<float>{1, bad, 2})));
  }
  CHECK(bk::all_finite<B>(B::from_host(
    shape{2}, std::vector<float>{std::numeric_limits<float>::max(), -std::numeric_limits<float>::max()})));
}

TEST_CASE("defaults on the reference equal the CPU backend's versions on random input",
          "[backend][reference]") {
  const std::size_t V = 3;
  const shape ws{V, 2, 3, 4};
  const auto wv = random_values(ws.size(), -2, 2), gv = random_values(ws.size());
  SECTION("grouped softmax, its backward and the one-hot argmax") {
    check_parity([&]<class B>() {
      tensor_t<B> s, h, d;
      bk::softmax_groups<B>(B::from_host(ws, wv), V, 1.0f / 0.7f, s);
      bk::argmax_one_hot_groups<B>(s, V, h);
      bk::softmax_groups_backward<B>(s, B::from_host(ws, gv), V, 1.0f / 0.7f, d);
      REQUIRE(B::shape_of(d) == ws);
      auto out = B::to_host(s);
      for (const auto& t : {h, d}) {
        const auto v = B::to_host(t);
        out.insert(out.end(), v.begin(), v.end());
      }
      return out;
    });
  }
  SECTION("sum_versions and repeat_versions, with and without weights") {
    const shape as{2, V, 3, 2}, rs{2, 3, 2};
    const auto av = random_values(as.size()), rv = random_values(rs.size()), w = random_values(V);
    check_parity([&]<class B>() {
      tensor_t<B> s0, s1, r0, r1;
      const auto wt = B::from_host(shape{V}, w);
      bk::sum_versions<B>(B::from_host(as, av), nullptr, s0);
      bk::sum_versions<B>(B::from_host(as, av), &wt, s1);
      bk::repeat_versions<B>(B::from_host(rs, rv), V, nullptr, r0);
      bk::repeat_versions<B>(B::from_host(rs, rv), V, &wt, r1);
      REQUIRE(B::shape_of(s1) == rs);
      REQUIRE(B::shape_of(r1) == as);
      std::vector<float> out;
      for (const auto& t : {s0, s1, r0, r1}) {
        const auto v = B::to_host(t);
        out.insert(out.end(), v.begin(), v.end());
      }
      return out;
    });
  }
  SECTION("conv lowering, axes, bias, ReLU, max-pool") {
    const shape xs{2, 3, 5, 4};
    const auto xv = random_values(xs.size()), bv = random_values(3);
    for (std::size_t pad : {0u, 1u}) {
      check_parity([&]<class B>() {
        const auto x = B::from_host(xs, xv);
        const auto b = B::from_host(shape{3}, bv);
        tensor_t<B> col, back, sw, y, dy, pool, idx, dpool;
        bk::im2col<B>(x, 3, 2, pad, col);
        bk::col2im<B>(col, xs, 3, 2, pad, back);
        bk::swap_leading_axes<B>(x, sw);
        auto biased = x;
        bk::add_bias<B>(biased, b);
        auto db = b;
        bk::bias_grad<B>(x, db);
        bk::relu_forward<B>(x, y);
        bk::relu_backward<B>(y, biased, dy);
        bk::maxpool2_forward<B>(x, pool, idx);
        bk::maxpool2_backward<B>(pool, idx, xs, dpool);
        std::vector<float> out;
        for (const auto& t : {col, back, sw, biased, db, y, dy, pool, idx, dpool}) {
          const auto v = B::to_host(t);
          out.insert(out.end(), v.begin(), v.end());
        }
        return out;
      });
    }
  }
  SECTION("softmax cross-entropy and AdamW steps") {
    const shape ls{5, 4};
    const auto lv = random_values(ls.size(), -3, 3);
    const std::vector<std::int32_t> labels{0, 3, 1, 1, 2};
    for (bool amsgrad : {false, true}) {
      check_parity([&]<class B>() {
        tensor_t<B> g;
        const auto r = bk::softmax_cross_entropy<B>(B::from_host(ls, lv), labels, g);
        adamw_hyper h;
        h.amsgrad = amsgrad;
        h.lr = 0.01f;
        auto p = B::from_host(ls, lv);
        auto m = B::zeros(ls), v = B::zeros(ls), vmax = amsgrad ? B::zeros(ls) : tensor_t<B>{};
        for (std::size_t step = 1; step <= 3; ++step) {
          bk::adamw_step<B>(p, g, m, v, vmax, h, step);
        }
        auto out = B::to_host(g);
        out.push_back(static_cast<float>(r.loss_sum));
        out.push_back(static_cast<float>(r.correct));
        for (const auto& t : {p, m, v}) {
          const auto x = B::to_host(t);
          out.insert(out.end(), x.begin(), x.end());
        }
        return out;
      });
    }
  }
}

TEST_CASE("the aliasing rule: in place only for copy, map, map2 and axpy", "[backend][reference][errors]") {
  using B = reference;
  auto a = B::from_host(shape{2, 2}, std::vector<float>{1, -2, 3, -4});
  B::map(a, a, [](float x) { return 2 * x; });
  B::map2(a, a, a, [](float x, float y) { return x + y; });
  B::axpy(1.0f, a, a);
  CHECK(B::to_host(a) == std::vector<float>{8, -16, 24, -32}); // ((2x)·2)·2
  const auto g = cell_geometry::make({1, 1, 2, 2}, {1, 1, 1, 1});
  const auto c = B::zeros(g.grid_shape());
  CHECK_THROWS_AS(B::scale_cells(a, c, g, a), value_error);
  CHECK_THROWS_WITH(B::scale_cells(a, c, g, a),
                    Contains("selmask::reference::scale_cells") && Contains("input a"));
  CHECK_THROWS_WITH(B::reduce_cells(a, &a, g, a), Contains("selmask::reference::reduce_cells"));
  CHECK_THROWS_WITH(B::gemm(false, false, 1.0f, a, a, 0.0f, a), Contains("selmask::reference::gemm"));
  CHECK_THROWS_WITH(bk::softmax_groups<B>(a, 2, 1.0f, a), Contains("selmask::bk::softmax_groups"));
  CHECK_THROWS_AS(bk::relu_forward<B>(a, a), value_error);
  CHECK_THROWS_WITH(bk::add_bias<B>(a, a), Contains("selmask::bk::add_bias"));
}

TEST_CASE("defaults name themselves in shape errors", "[backend][reference][errors]") {
  using B = reference;
  tensor_t<B> t;
  CHECK_THROWS_AS(bk::sum_versions<B>(B::zeros(shape{4}), nullptr, t), shape_error);
  CHECK_THROWS_WITH(bk::sum_versions<B>(B::zeros(shape{4}), nullptr, t),
                    Contains("selmask::bk::sum_versions"));
  CHECK_THROWS_WITH(bk::softmax_groups<B>(B::zeros(shape{5}), 2, 1.0f, t),
                    Contains("selmask::bk::softmax_groups") && Contains("groups of 2"));
  CHECK_THROWS_WITH(bk::im2col<B>(B::zeros(shape{1, 1, 2, 2}), 4, 4, 0, t), Contains("selmask::bk::im2col"));
  CHECK_THROWS_WITH(bk::add_bias<B>(t = B::zeros(shape{2, 3}), B::zeros(shape{2})),
                    Contains("selmask::bk::add_bias") && Contains("2 bias values for 3 channels"));
  CHECK_THROWS_AS(B::from_host(shape{2, 2}, std::vector<float>{1, 2, 3}), shape_error);
  CHECK_THROWS_WITH(B::reshape(t, shape{7}), Contains("selmask::reference::reshape"));
}

TEST_CASE("nn::conv_relu_pool: the CPU's fused pass equals the reference's composed defaults",
          "[backend][reference][nn]") {
  // the reference has no fused conv and no nn operation of its own: its layer composes gemm with
  // the generic im2col / col2im / bias / ReLU / max-pool defaults
  for (std::size_t pad : {0u, 1u}) {
    CAPTURE(pad);
    const shape xs{5, 3, 9, 8};
    const auto xv = random_values(xs.size());
    std::vector<float> gv;
    check_parity(
      [&]<class B>() {
        std::mt19937_64 init(11);
        nn::conv_relu_pool<B> block(3, 4, 3, pad);
        block.reset_parameters(init);
        const auto y = B::to_host(block.forward(B::from_host(xs, xv)));
        if (gv.empty()) {
          gv = random_values(y.size());
        }
        const auto dx = B::to_host(block.backward(B::from_host(block.output_shape(xs), gv)));
        std::vector<float> out = y;
        out.insert(out.end(), dx.begin(), dx.end());
        for (const auto& t : {block.weight_grad(), block.bias_grad()}) {
          const auto v = B::to_host(t);
          out.insert(out.end(), v.begin(), v.end());
        }
        return out;
      },
      1e-4);
  }
}

TEST_CASE("nn::lenet: a training step on the reference equals the CPU's", "[backend][reference][nn]") {
  // everything the network kit does: fused vs composed conv layers, dense, cross-entropy, AdamW
  const shape xs{3, 1, 28, 28};
  const auto xv = random_values(xs.size(), 0.0f, 1.0f);
  const std::vector<std::int32_t> labels{7, 0, 3};
  const auto run = [&]<class B>() {
    nn::lenet<B> net(5);
    nn::cross_entropy_loss<B> loss;
    const auto x = B::from_host(xs, xv);
    std::vector<float> out = B::to_host(net.forward(x));
    loss.forward(net.forward(x), labels);
    out.push_back(static_cast<float>(loss.mean_loss()));
    const auto dx = B::to_host(net.backward(loss.grad()));
    out.insert(out.end(), dx.begin(), dx.end());
    net.step();
    const auto after = B::to_host(net.forward(x));
    out.insert(out.end(), after.begin(), after.end());
    return out;
  };
  check_parity(run, 1e-3);
}

namespace {
/// The reference backend plus its own `softmax_groups` and `relu_forward`, which count their calls.
struct counting : reference {
  static inline int softmax_calls = 0;
  static inline int relu_calls = 0;
  static void softmax_groups(const tensor& w, std::size_t groups, float inv_tau, tensor& t) {
    ++softmax_calls;
    bk::softmax_groups<reference>(w, groups, inv_tau, t);
  }
  static void relu_forward(const tensor& x, tensor& y) {
    ++relu_calls;
    bk::relu_forward<reference>(x, y);
  }
};
} // namespace

TEST_CASE("a backend's own member overrides the default, the others stay defaults", "[backend][reference]") {
  STATIC_REQUIRE(nn_backend<counting>);
  STATIC_REQUIRE(has_softmax_groups<counting>);
  STATIC_REQUIRE_FALSE(has_argmax_one_hot_groups<counting>);
  const auto w = counting::from_host(shape{2, 3}, std::vector<float>{0, 1, 2, 3, 4, 5});
  tensor_t<counting> s, h, y;
  bk::softmax_groups<counting>(w, 2, 1.0f, s);
  bk::argmax_one_hot_groups<counting>(s, 2, h); // the default
  bk::relu_forward<counting>(w, y);
  CHECK(counting::softmax_calls == 1);
  CHECK(counting::relu_calls == 1);
  CHECK(counting::to_host(h) == std::vector<float>{0, 0, 0, 1, 1, 1});
  // the library reaches the override too: an xOr mask's forward calls softmax_groups
  using pipe = pipeline<extend<identity_versions<2>>, xor_mask<pixel>, merge<sum>>;
  pipe::on<counting> p(shape{1, 2, 2}, 3);
  const int before = counting::softmax_calls;
  p.forward(counting::zeros(shape{1, 1, 2, 2}));
  CHECK(counting::softmax_calls > before);
}
