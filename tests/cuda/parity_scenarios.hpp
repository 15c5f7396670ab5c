#pragma once
// Parity scenarios: every operation of the backend concepts, every mask kind, granularity and
// surrogate, every layer, LeNet steps and a short run of Algorithm 1, written once over a backend
// B. Each scenario draws its inputs on the host from a seed, runs on B, and returns its results
// as host values with the tolerance they must meet against the CPU backend.
//
// This header includes neither xtensor nor CUDA: parity_cpu.cpp instantiates it for
// selmask::cpu and parity_emulated.cpp for selmask::cuda_host_emulation (host compiler),
// parity_device.cu for selmask::cuda (nvcc). The tests compare the results as host vectors
// (test_cuda_emulated.cpp, test_cuda.cpp).

#include <selmask/backend/backend.hpp>
#include <selmask/backend/nn_backend.hpp>
#include <selmask/granularity/granularity.hpp>
#include <selmask/io/dataset.hpp>
#include <selmask/mask/dynamic.hpp>
#include <selmask/mask/mask.hpp>
#include <selmask/nn/adamw.hpp>
#include <selmask/nn/conv2d.hpp>
#include <selmask/nn/dense.hpp>
#include <selmask/nn/flatten.hpp>
#include <selmask/nn/lenet.hpp>
#include <selmask/nn/max_pool2.hpp>
#include <selmask/nn/relu.hpp>
#include <selmask/nn/sequential.hpp>
#include <selmask/ops/extend.hpp>
#include <selmask/ops/merge.hpp>
#include <selmask/pipeline/pipeline.hpp>
#include <selmask/surrogate/formulas.hpp>
#include <selmask/testing/parity.hpp>
#include <selmask/train/trainer.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace selmask_parity {

using selmask::shape;
using selmask::testing::parity_tolerance;

/// One result of a scenario: its values, its shape, and how closely another backend must match.
struct output {
  std::string name;
  std::vector<float> values;
  shape dims;
  parity_tolerance tolerance;
};
using outputs = std::vector<output>;

// Tolerances (relative to the CPU's values). Elementwise formulas differ by the device's exp and
// fused multiply-adds; sums by their order; steps of AdamW turn tiny gradient differences into
// full learning-rate steps for the few coordinates whose gradient is almost zero.
inline constexpr parity_tolerance exact = parity_tolerance::exact();
inline constexpr parity_tolerance elementwise{1e-6, 1e-5};
inline constexpr parity_tolerance summed{1e-5, 1e-5};
inline constexpr parity_tolerance products{1e-4, 1e-4};             // GEMMs, layers
inline constexpr parity_tolerance trained{1e-4, 1e-3, 0.999, 0.05}; // after optimiser steps

/// Collects a scenario's outputs.
template <class B>
class recorder {
public:
  void tensor(const std::string& name, const selmask::tensor_t<B>& t, parity_tolerance tol) {
    out_.push_back({name, B::to_host(t), B::shape_of(t), tol});
  }
  void values(const std::string& name, std::vector<float> v, parity_tolerance tol) {
    const std::size_t n = v.size();
    out_.push_back({name, std::move(v), shape{n}, tol});
  }
  void value(const std::string& name, double v, parity_tolerance tol) {
    values(name, {static_cast<float>(v)}, tol);
  }
  outputs take() { return std::move(out_); }

private:
  outputs out_;
};

inline std::vector<float> random_values(std::mt19937_64& rng, std::size_t n, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) {
    x = d(rng);
  }
  return v;
}

template <class B>
selmask::tensor_t<B> random_tensor(std::mt19937_64& rng, const shape& s, float lo = -1.0f, float hi = 1.0f) {
  return B::from_host(s, random_values(rng, s.size(), lo, hi));
}

// ---- tensors and elementwise operations ----------------------------------------------------------

template <class B>
outputs memory(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  r.tensor("zeros", B::zeros(shape{2, 3}), exact);
  r.tensor("full", B::full(shape{4}, 2.5f), exact);
  auto a = random_tensor<B>(rng, shape{3, 5});
  r.tensor("from_host", a, exact);
  B::reshape(a, shape{5, 3});
  r.tensor("reshaped", a, exact);
  auto t = B::zeros(shape{7});
  B::copy(a, t);
  r.tensor("copy", t, exact);
  B::copy(t, t); // self-copy keeps the values
  r.tensor("self_copy", t, exact);
  typename B::tensor copied(a); // deep copy: changing a leaves it alone
  B::map(a, a, selmask::formula::scale_by{2.0f});
  r.tensor("copy_constructed", copied, exact);
  r.tensor("original_changed", a, exact);
  typename B::tensor moved(std::move(copied));
  r.tensor("move_constructed", moved, exact);
  typename B::tensor assigned;
  assigned = moved;
  B::map(moved, moved, selmask::formula::scale_by{-1.0f});
  r.tensor("copy_assigned", assigned, exact);
  assigned = std::move(moved);
  r.tensor("move_assigned", assigned, exact);
  const std::vector<float> none;
  r.tensor("empty", B::from_host(shape{0, 4}, none), exact);
  r.value("sum_of_empty", B::sum(B::zeros(shape{0})), exact);
  return r.take();
}

template <class B>
outputs elementwise_ops(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  const shape s{3, 7, 11};
  const auto a = random_tensor<B>(rng, s, -4.0f, 4.0f);
  const auto b = random_tensor<B>(rng, s);
  typename B::tensor t;
  B::map(a, t, selmask::formula::sigmoid{0.7f});
  r.tensor("sigmoid", t, elementwise);
  B::map(t, t, selmask::formula::threshold_half{}); // in place
  r.tensor("threshold_in_place", t, exact);
  B::map2(a, b, t, selmask::formula::multiply{});
  r.tensor("multiply", t, elementwise);
  auto sb = random_tensor<B>(rng, s, 0.0f, 1.0f);
  B::map2(sb, b, sb, selmask::formula::sigmoid_backward{1.3f}); // output aliases the first operand
  r.tensor("sigmoid_backward", sb, elementwise);
  auto c = random_tensor<B>(rng, s);
  B::axpy(-0.375f, a, c);
  r.tensor("axpy", c, elementwise);
  return r.take();
}

template <class B>
outputs reductions(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  const auto a = random_tensor<B>(rng, shape{100003});
  r.value("sum", B::sum(a), summed);
  const auto big = random_tensor<B>(rng, shape{1u << 20}, 0.0f, 1.0f);
  r.value("sum_big", B::sum(big) / static_cast<double>(1u << 20), summed);
  r.value("sum_small", B::sum(random_tensor<B>(rng, shape{3})), summed);
  r.value("all_finite", B::all_finite(a) ? 1.0 : 0.0, exact);
  std::vector<float> v = random_values(rng, 5000);
  v[4321] = std::numeric_limits<float>::quiet_NaN();
  r.value("all_finite_nan", B::all_finite(B::from_host(shape{5000}, v)) ? 1.0 : 0.0, exact);
  v[4321] = 1.0f;
  v[17] = -std::numeric_limits<float>::infinity();
  r.value("all_finite_inf", B::all_finite(B::from_host(shape{5000}, v)) ? 1.0 : 0.0, exact);
  r.value("all_finite_empty", B::all_finite(B::zeros(shape{0})) ? 1.0 : 0.0, exact);
  return r.take();
}

/// scale_cells and reduce_cells for granularity G on samples V×3×13×11 (V = 1 or 3, cells
/// covering all versions or one), batch 5.
template <class B, class G>
outputs cells(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  for (const auto& [v, in_cell] : {std::pair<std::size_t, bool>{1, true}, {3, true}, {3, false}}) {
    const auto g = selmask::make_geometry<G>(v, 3, 13, 11, in_cell);
    const std::string tag = "v" + std::to_string(v) + (in_cell ? "_all" : "_each");
    const auto a = random_tensor<B>(rng, shape{5, g.values()});
    const auto b = random_tensor<B>(rng, shape{5, g.values()});
    const auto c = random_tensor<B>(rng, g.grid_shape());
    typename B::tensor t;
    B::scale_cells(a, c, g, t);
    r.tensor("scale_cells_" + tag, t, exact);
    B::reduce_cells(a, &b, g, t);
    r.tensor("reduce_cells_" + tag, t, summed);
    B::reduce_cells(a, nullptr, g, t);
    r.tensor("reduce_cells_sum_" + tag, t, summed);
  }
  return r.take();
}

template <class B>
outputs groups(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  const std::size_t v = 4;
  const std::size_t k = 37;
  const auto w = random_tensor<B>(rng, shape{v, k}, -3.0f, 3.0f);
  typename B::tensor s;
  typename B::tensor h;
  B::softmax_groups(w, v, 1.3f, s);
  r.tensor("softmax", s, elementwise);
  B::argmax_one_hot_groups(s, v, h);
  r.tensor("argmax", h, exact);
  std::vector<float> ties(v * k, 0.25f); // every group tied: the lowest version wins
  ties[2 * k + 5] = 0.5f;
  B::argmax_one_hot_groups(B::from_host(shape{v, k}, ties), v, h);
  r.tensor("argmax_ties", h, exact);
  const auto g = random_tensor<B>(rng, shape{v, k});
  typename B::tensor dw;
  B::softmax_groups_backward(s, g, v, 1.3f, dw);
  r.tensor("softmax_backward", dw, elementwise);
  return r.take();
}

template <class B>
outputs versions(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  const auto a = random_tensor<B>(rng, shape{3, 4, 2, 5, 6});
  const auto w = random_tensor<B>(rng, shape{4});
  typename B::tensor t;
  B::sum_versions(a, nullptr, t);
  r.tensor("sum_versions", t, elementwise);
  B::sum_versions(a, &w, t);
  r.tensor("sum_versions_weighted", t, elementwise);
  const auto x = random_tensor<B>(rng, shape{3, 2, 5, 6});
  B::repeat_versions(x, 4, nullptr, t);
  r.tensor("repeat_versions", t, exact);
  B::repeat_versions(x, 4, &w, t);
  r.tensor("repeat_versions_weighted", t, exact);
  return r.take();
}

template <class B>
outputs gather_scatter(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  const auto a = random_tensor<B>(rng, shape{6, 50});
  std::vector<std::size_t> idx(700);
  std::uniform_int_distribution<std::size_t> pick(0, 299);
  for (auto& i : idx) {
    i = pick(rng); // many repeats
  }
  typename B::tensor t;
  B::gather(a, idx, t);
  r.tensor("gather", t, exact);
  auto target = random_tensor<B>(rng, shape{6, 50});
  B::scatter(t, idx, target); // t[j] goes to idx[j]; a repeated index keeps its last value
  r.tensor("scatter", target, exact);
  const auto vals = random_tensor<B>(rng, shape{700});
  B::scatter(vals, idx, target);
  r.tensor("scatter_repeats", target, exact);
  return r.take();
}

// ---- network kit primitives ------------------------------------------------------------------------

template <class B>
outputs gemm(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  const std::size_t m = 37, n = 29, k = 53;
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      const std::string tag = std::string(ta ? "T" : "N") + (tb ? "T" : "N");
      const auto a = random_tensor<B>(rng, ta ? shape{k, m} : shape{m, k});
      const auto b = random_tensor<B>(rng, tb ? shape{n, k} : shape{k, n});
      typename B::tensor c; // resized by beta = 0
      B::gemm(ta, tb, 1.5f, a, b, 0.0f, c);
      r.tensor("gemm_" + tag, c, products);
      B::gemm(ta, tb, -0.5f, a, b, 0.75f, c); // accumulates into c
      r.tensor("gemm_beta_" + tag, c, products);
    }
  }
  // matrix views: a rank-1 row, a rank-4 weight read as OC × (C·k·k)
  const auto row = random_tensor<B>(rng, shape{k});
  const auto mat = random_tensor<B>(rng, shape{k, n});
  typename B::tensor c;
  B::gemm(false, false, 1.0f, row, mat, 0.0f, c);
  r.tensor("gemm_row", c, products);
  const auto w4 = random_tensor<B>(rng, shape{6, 2, 3, 3});
  const auto col = random_tensor<B>(rng, shape{18, 40});
  B::gemm(false, false, 1.0f, w4, col, 0.0f, c);
  r.tensor("gemm_view", c, products);
  // k = 0 (a is 4×0, b read transposed is 0×3): c = beta·c
  auto c0 = random_tensor<B>(rng, shape{4, 3});
  B::gemm(false, true, 1.0f, B::zeros(shape{4, 0}), B::zeros(shape{3, 0}), 0.5f, c0);
  r.tensor("gemm_k0", c0, elementwise);
  return r.take();
}

template <class B>
outputs conv_lowering(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  struct conv_case {
    std::size_t kh, kw, pad;
  };
  const auto x = random_tensor<B>(rng, shape{2, 3, 9, 7});
  for (const conv_case cc : {conv_case{3, 3, 1}, conv_case{5, 5, 0}, conv_case{2, 3, 2}}) {
    const std::string tag =
      std::to_string(cc.kh) + "x" + std::to_string(cc.kw) + "p" + std::to_string(cc.pad);
    typename B::tensor col;
    B::im2col(x, cc.kh, cc.kw, cc.pad, col);
    r.tensor("im2col_" + tag, col, exact);
    const auto g = random_tensor<B>(rng, B::shape_of(col));
    typename B::tensor dx;
    B::col2im(g, B::shape_of(x), cc.kh, cc.kw, cc.pad, dx);
    r.tensor("col2im_" + tag, dx, elementwise);
  }
  return r.take();
}

template <class B>
outputs layout(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  const auto a = random_tensor<B>(rng, shape{3, 4, 5, 2});
  typename B::tensor t;
  B::swap_leading_axes(a, t);
  r.tensor("swap_leading_axes", t, exact);
  auto y4 = random_tensor<B>(rng, shape{3, 4, 5, 2});
  const auto b4 = random_tensor<B>(rng, shape{4});
  B::add_bias(y4, b4);
  r.tensor("add_bias_4d", y4, elementwise);
  auto y2 = random_tensor<B>(rng, shape{6, 9});
  const auto b2 = random_tensor<B>(rng, shape{9});
  B::add_bias(y2, b2);
  r.tensor("add_bias_2d", y2, elementwise);
  auto db4 = random_tensor<B>(rng, shape{4}); // accumulates onto what is there
  B::bias_grad(a, db4);
  r.tensor("bias_grad_4d", db4, summed);
  const auto g_big = random_tensor<B>(rng, shape{64, 20, 24, 24});
  auto db_big = B::zeros(shape{20});
  B::bias_grad(g_big, db_big);
  r.tensor("bias_grad_conv1", db_big, parity_tolerance{1e-4, 1e-5});
  auto db2 = B::zeros(shape{9});
  B::bias_grad(y2, db2);
  r.tensor("bias_grad_2d", db2, summed);
  return r.take();
}

template <class B>
outputs activations(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  std::vector<float> xv = random_values(rng, 2 * 3 * 7 * 9);
  xv[5] = std::numeric_limits<float>::quiet_NaN(); // ReLU keeps NaN
  xv[6] = 0.0f;
  const auto x = B::from_host(shape{2, 3, 7, 9}, xv);
  typename B::tensor y;
  B::relu_forward(x, y);
  r.tensor("relu", y, exact);
  const auto g = random_tensor<B>(rng, shape{2, 3, 7, 9});
  typename B::tensor dx;
  B::relu_backward(y, g, dx);
  r.tensor("relu_backward", dx, exact);
  // max-pool with odd sizes and ties (small integers)
  std::vector<float> pv(2 * 3 * 7 * 9);
  std::uniform_int_distribution<int> small(0, 3);
  for (float& p : pv) {
    p = static_cast<float>(small(rng));
  }
  const auto px = B::from_host(shape{2, 3, 7, 9}, pv);
  typename B::tensor py;
  typename B::tensor at;
  B::maxpool2_forward(px, py, at);
  r.tensor("maxpool", py, exact);
  r.tensor("maxpool_at", at, exact);
  const auto pg = random_tensor<B>(rng, B::shape_of(py));
  typename B::tensor pdx;
  B::maxpool2_backward(pg, at, B::shape_of(px), pdx);
  r.tensor("maxpool_backward", pdx, exact);
  return r.take();
}

template <class B>
outputs cross_entropy(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  const auto logits = random_tensor<B>(rng, shape{37, 10}, -3.0f, 3.0f);
  std::vector<std::int32_t> labels(37);
  std::uniform_int_distribution<std::int32_t> cls(0, 9);
  for (auto& l : labels) {
    l = cls(rng);
  }
  typename B::tensor grad;
  const selmask::cross_entropy_result ce = B::softmax_cross_entropy(logits, labels, grad);
  r.value("loss_sum", ce.loss_sum, summed);
  r.value("correct", static_cast<double>(ce.correct), exact);
  r.tensor("grad", grad, elementwise);
  return r.take();
}

template <class B>
outputs adamw(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  for (const bool ams : {true, false}) {
    const std::string tag = ams ? "amsgrad" : "plain";
    selmask::adamw_hyper h;
    h.amsgrad = ams;
    h.lr = 1e-2f;
    auto p = random_tensor<B>(rng, shape{10, 100});
    auto m = B::zeros(shape{10, 100});
    auto v = B::zeros(shape{10, 100});
    auto vmax = ams ? B::zeros(shape{10, 100}) : B::zeros(shape{0});
    for (std::size_t step = 1; step <= 5; ++step) {
      const auto g = random_tensor<B>(rng, shape{10, 100});
      B::adamw_step(p, g, m, v, vmax, h, step);
    }
    r.tensor("param_" + tag, p, elementwise);
    r.tensor("m_" + tag, m, elementwise);
    r.tensor("v_" + tag, v, elementwise);
    if (ams) {
      r.tensor("vmax_" + tag, vmax, elementwise);
    }
  }
  return r.take();
}

/// The argument checks: the same exception type (1 shape_error, 2 value_error, 3 another
/// selmask::error, 0 none) for the same bad call.
template <class B>
outputs errors(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  const auto kind = [](auto&& f) -> double {
    try {
      f();
    } catch (const selmask::shape_error&) {
      return 1.0;
    } catch (const selmask::value_error&) {
      return 2.0;
    } catch (const selmask::error&) {
      return 3.0;
    }
    return 0.0;
  };
  const auto a = random_tensor<B>(rng, shape{4, 6});
  const auto v5 = random_tensor<B>(rng, shape{5});
  typename B::tensor t;
  const std::vector<float> three(3, 1.0f);
  std::vector<float> k;
  k.push_back(static_cast<float>(kind([&] { (void)B::from_host(shape{2, 2}, three); })));
  k.push_back(static_cast<float>(kind([&] {
    auto c = a;
    B::reshape(c, shape{5, 5});
  })));
  k.push_back(static_cast<float>(kind([&] { B::map2(a, v5, t, selmask::formula::multiply{}); })));
  k.push_back(static_cast<float>(kind([&] {
    auto c = B::zeros(shape{5});
    B::axpy(1.0f, a, c);
  })));
  k.push_back(static_cast<float>(kind([&] { B::gemm(false, false, 1.0f, a, a, 0.0f, t); })));
  k.push_back(static_cast<float>(kind([&] {
    auto c = B::zeros(shape{3, 3});
    B::gemm(false, true, 1.0f, a, a, 1.0f, c); // 4x4 result, c is 3x3 and beta != 0
  })));
  const std::vector<std::int32_t> bad_label{0, 1, 7, 2};
  k.push_back(static_cast<float>(kind([&] {
    (void)B::softmax_cross_entropy(B::zeros(shape{4, 5}), bad_label, t);
  })));
  k.push_back(
    static_cast<float>(kind([&] { (void)B::softmax_cross_entropy(a, std::vector<std::int32_t>(3), t); })));
  k.push_back(static_cast<float>(kind([&] {
    auto p = B::zeros(shape{5});
    auto m = B::zeros(shape{5});
    auto v = B::zeros(shape{5});
    auto vm = B::zeros(shape{5});
    B::adamw_step(p, v5, m, v, vm, selmask::adamw_hyper{}, 0);
  })));
  const std::vector<std::size_t> far{3, 24};
  k.push_back(static_cast<float>(kind([&] { B::gather(a, far, t); })));
  k.push_back(static_cast<float>(kind([&] {
    auto c = B::zeros(shape{24});
    B::scatter(B::zeros(shape{2}), far, c);
  })));
  k.push_back(static_cast<float>(kind([&] { B::im2col(B::zeros(shape{1, 1, 3, 3}), 5, 5, 0, t); })));
  k.push_back(static_cast<float>(kind([&] { B::im2col(a, 1, 1, 0, t); })));
  k.push_back(static_cast<float>(kind([&] {
    B::maxpool2_backward(B::zeros(shape{1, 1, 2, 2}), B::zeros(shape{1, 1, 2, 2}), shape{1, 1, 6, 6}, t);
  })));
  k.push_back(static_cast<float>(kind([&] { B::sum_versions(B::zeros(shape{2, 3, 4}), &v5, t); })));
  k.push_back(static_cast<float>(kind([&] {
    const auto g = selmask::make_geometry<selmask::pixel>(1, 2, 3, 3, true);
    B::reduce_cells(v5, nullptr, g, t);
  })));
  k.push_back(static_cast<float>(kind([&] {
    const auto g = selmask::make_geometry<selmask::pixel>(1, 2, 3, 3, true);
    B::scale_cells(B::zeros(shape{2, 18}), v5, g, t);
  })));
  k.push_back(static_cast<float>(kind([&] { B::softmax_groups(v5, 2, 1.0f, t); })));
  k.push_back(static_cast<float>(kind([&] { B::add_bias(t = B::zeros(shape{2, 3}), v5); })));
  k.push_back(static_cast<float>(kind([&] { B::swap_leading_axes(v5, t); })));
  r.values("exception_kinds", k, exact);
  return r.take();
}

// ---- masks and pipelines --------------------------------------------------------------------------------

/// Forward/backward of a pipeline `P` on B (hard, then soft), mask `M` = its stage `I`; records
/// masked outputs, Q, the hard mask, logit gradients and the input gradient.
template <class B, std::size_t I, class Pipe>
void exercise_pipeline(recorder<B>& r, Pipe& p, std::mt19937_64& rng, const shape& batch,
                       const std::string& tag) {
  const auto x = random_tensor<B>(rng, batch, 0.0f, 1.0f);
  const auto gy = random_tensor<B>(rng, batch);
  for (const bool soft : {false, true}) {
    const std::string t = tag + (soft ? "_soft" : "_hard");
    p.set_mode(soft ? selmask::mask_mode::soft : selmask::mask_mode::hard);
    p.zero_grad();
    const auto fr = p.forward(x);
    r.tensor(t + "_y", fr.output, elementwise);
    r.value(t + "_q", fr.q, summed);
    auto& m = p.template stage<I>();
    r.tensor(t + "_hard_mask", m.hard(), exact);
    r.tensor(t + "_soft_mask", m.soft(), elementwise);
    const auto& gx = p.backward(gy, 0.3f);
    r.tensor(t + "_gx", gx, elementwise);
    r.tensor(t + "_logit_grad", m.grad(), parity_tolerance{1e-5, 1e-4});
  }
}

template <class B, class G>
outputs any_mask(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  using mask = selmask::any_mask<G>;
  for (const bool upscale : {false, true}) {
    mask cfg{};
    cfg.init_mean = 0.0f; // about half the cells kept
    cfg.init_std = 1.0f;
    cfg.tau = 0.8f;
    cfg.upscale = upscale;
    typename selmask::pipeline<mask>::template on<B> p(shape{3, 13, 11}, seed, cfg);
    exercise_pipeline<B, 0>(r, p, rng, shape{4, 3, 13, 11}, upscale ? "upscaled" : "plain");
  }
  return r.take();
}

template <class B, class G>
outputs xor_mask(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  using ext = selmask::extend<selmask::identity_versions<3>>;
  using xm = selmask::xor_mask<G>;
  {
    ext e{};
    e.op.version_costs = {1.0f, 0.5f, 0.2f};
    xm cfg{};
    cfg.init_mean = 0.0f;
    cfg.init_std = 1.0f; // random choices
    cfg.tau = 1.2f;
    typename selmask::pipeline<ext, xm, selmask::merge<selmask::sum>>::template on<B> p(
      shape{3, 13, 11}, seed, e, cfg, selmask::merge<selmask::sum>{});
    exercise_pipeline<B, 1>(r, p, rng, shape{4, 3, 13, 11}, "sum");
  }
  {
    ext e{};
    e.op.version_costs = {1.0f, 0.6f, 0.1f};
    xm cfg{};
    cfg.init_mean = 0.0f;
    cfg.init_std = 1.0f;
    selmask::merge<selmask::weighted_sum> mg;
    mg.op.values = {0.5f, 1.0f, 2.0f};
    typename selmask::pipeline<ext, xm, selmask::merge<selmask::weighted_sum>>::template on<B> p(
      shape{3, 13, 11}, seed + 1, e, cfg, mg);
    exercise_pipeline<B, 1>(r, p, rng, shape{4, 3, 13, 11}, "weighted");
  }
  return r.take();
}

/// The README's three-stage pipeline, trained for a few steps on a fixed target: the hard masks
/// after every step must be the same.
template <class B>
outputs pipeline_steps(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  using ext = selmask::extend<selmask::identity_versions<3>>;
  using pipe = selmask::pipeline<ext, selmask::xor_mask<selmask::channel>, selmask::merge<selmask::sum>,
                                 selmask::any_mask<selmask::block<4, 4>>>;
  ext e;
  e.op.version_costs = {1.0f, 0.5f, 0.25f};
  selmask::xor_mask<selmask::channel> xm;
  xm.init_std = 0.5f;
  selmask::any_mask<selmask::block<4, 4>> am;
  am.init_mean = 0.5f;
  am.init_std = 0.5f;
  typename pipe::template on<B> p(shape{4, 12, 10}, seed, e, xm, selmask::merge<selmask::sum>{}, am);
  selmask::nn::adamw<B> opt(selmask::adamw_hyper{5e-2f, 0.5f, 0.999f, 1e-8f, 1e-7f, true});
  p.for_each_mask([&](auto& m) { opt.add(m.logits_for_update(), m.grad_for_update()); });
  const auto x = random_tensor<B>(rng, shape{8, 4, 12, 10}, 0.0f, 1.0f);
  const auto target = random_tensor<B>(rng, shape{8, 4, 12, 10}, 0.0f, 1.0f);
  typename B::tensor gy;
  for (int step = 0; step < 6; ++step) {
    opt.zero_grad();
    const auto fr = p.forward(x);
    B::map2(fr.output, target, gy, selmask::formula::multiply{}); // dL/dy = y ⊙ target
    p.backward(gy, 2.0f);
    opt.step();
    const std::string t = "step" + std::to_string(step);
    r.value(t + "_q", fr.q, summed);
    std::size_t i = 0;
    p.for_each_mask([&](auto& m) {
      r.tensor(t + "_mask" + std::to_string(i) + "_hard", m.hard(), exact);
      r.tensor(t + "_mask" + std::to_string(i) + "_logits", m.logits(), parity_tolerance{1e-5, 1e-4});
      ++i;
    });
  }
  return r.take();
}

// ---- layers and networks ------------------------------------------------------------------------------

/// Forward, backward and parameter gradients of a layer (parameters drawn from `seed`).
template <class B, class L>
void exercise_layer(recorder<B>& r, L layer, std::mt19937_64& rng, const shape& in, const std::string& tag) {
  layer.reset_parameters(rng);
  const auto x = random_tensor<B>(rng, in);
  const auto& y = layer.forward(x);
  r.tensor(tag + "_y", y, products);
  const auto g = random_tensor<B>(rng, B::shape_of(y));
  const auto& dx = layer.backward(g);
  r.tensor(tag + "_dx", dx, products);
  std::size_t i = 0;
  for (const auto* grad : layer.grads()) {
    r.tensor(tag + "_grad" + std::to_string(i++), *grad, products);
  }
  // a second backward accumulates
  layer.backward(g);
  i = 0;
  for (const auto* grad : layer.grads()) {
    r.tensor(tag + "_grad_twice" + std::to_string(i++), *grad, products);
  }
}

template <class B>
outputs layers(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  exercise_layer(r, selmask::nn::dense<B>(40, 17), rng, shape{9, 40}, "dense");
  exercise_layer(r, selmask::nn::conv2d<B>(3, 5, 3, 1), rng, shape{4, 3, 10, 9}, "conv_pad");
  exercise_layer(r, selmask::nn::conv2d<B>(2, 6, 5, 0), rng, shape{3, 2, 12, 12}, "conv");
  exercise_layer(r, selmask::nn::relu<B>{}, rng, shape{4, 3, 5, 5}, "relu");
  exercise_layer(r, selmask::nn::max_pool2<B>{}, rng, shape{4, 3, 9, 8}, "max_pool2");
  exercise_layer(r, selmask::nn::flatten<B>{}, rng, shape{4, 3, 2, 5}, "flatten");
  return r.take();
}

template <class B>
outputs lenet_steps(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  selmask::nn::lenet<B> net(seed);
  const selmask::nn::lenet<B> initial = net; // a deep copy, untouched by the steps below
  const std::size_t batch = 16;
  std::vector<std::int32_t> labels(batch);
  std::uniform_int_distribution<std::int32_t> cls(0, 9);
  typename B::tensor dlogits;
  for (int step = 0; step < 3; ++step) {
    for (auto& l : labels) {
      l = cls(rng);
    }
    const auto x = random_tensor<B>(rng, shape{batch, 1, 28, 28}, 0.0f, 1.0f);
    net.zero_grad();
    const auto& logits = net.forward(x);
    const std::string t = "step" + std::to_string(step);
    r.tensor(t + "_logits", logits, step == 0 ? products : trained);
    const auto ce = B::softmax_cross_entropy(logits, labels, dlogits);
    r.value(t + "_loss", ce.loss_sum, step == 0 ? products : trained);
    const auto& dx = net.backward(dlogits);
    r.tensor(t + "_dx", dx, step == 0 ? products : trained);
    net.step();
  }
  std::size_t i = 0;
  for (const auto* p : net.params()) {
    r.tensor("param" + std::to_string(i++), *p, trained);
  }
  auto copy = initial;
  const auto x = random_tensor<B>(rng, shape{4, 1, 28, 28}, 0.0f, 1.0f);
  r.tensor("copy_logits", copy.forward(x), products);
  return r.take();
}

/// A dynamic mask with a linear mask model: forward, Q, backward and two steps, then the exact-k
/// projection. Hard masks threshold logits that come from a GEMM, so they get the trained
/// tolerance (a logit within rounding of 0 may flip).
template <class B>
outputs dynamic_mask(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  recorder<B> r;
  using model_t = selmask::nn::sequential<B, selmask::nn::dense<B>>;
  const shape s{2, 5, 6};
  const selmask::cell_preview preview = selmask::cell_preview::strided(s, 2);
  model_t model(selmask::nn::sequential_options{.seed = seed},
                selmask::nn::dense<B>(preview.size(), s.size()));
  selmask::dynamic_mask_options opt;
  opt.fill = -0.5f;
  opt.costs = random_values(rng, s.size(), 0.5f, 2.0f);
  selmask::dynamic_any_mask<B, model_t> mask(s, preview, model, opt, seed);
  mask.prior_for_update() = B::from_host(shape{s.size()}, random_values(rng, s.size()));
  for (int step = 0; step < 2; ++step) {
    const std::string t = "step" + std::to_string(step);
    const auto x = random_tensor<B>(rng, shape{7, 2, 5, 6});
    const auto g = random_tensor<B>(rng, shape{7, 2, 5, 6});
    mask.zero_grad();
    r.tensor(t + "_y", mask.forward(x), trained);
    r.tensor(t + "_applied", mask.applied(), trained);
    std::vector<float> q;
    for (double v : mask.sample_q()) {
      q.push_back(static_cast<float>(v));
    }
    r.values(t + "_sample_q", q, trained);
    r.tensor(t + "_dx", mask.backward(g, 0.3f), trained);
    r.tensor(t + "_prior_grad", mask.prior_grad(), trained);
    r.tensor(t + "_model_grad", *model.grads()[0], trained);
    mask.step();
  }
  r.tensor("prior", mask.prior(), trained);
  mask.keep_per_sample(5);
  const auto x = random_tensor<B>(rng, shape{4, 2, 5, 6});
  r.tensor("projected_y", mask.forward(x), trained);
  return r.take();
}

/// Synthetic 28×28 images: class c lights a 6×6 patch at a class-dependent place, plus noise.
inline selmask::io::dataset synthetic_images(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  selmask::io::dataset d;
  d.sample = shape{1, 28, 28};
  d.classes = 10;
  std::uniform_real_distribution<float> noise(0.0f, 0.3f);
  std::uniform_int_distribution<std::int32_t> cls(0, 9);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t c = cls(rng);
    d.labels.push_back(c);
    const std::size_t r0 = 2 + static_cast<std::size_t>(c / 5) * 12;
    const std::size_t c0 = 2 + static_cast<std::size_t>(c % 5) * 5;
    for (std::size_t h = 0; h < 28; ++h) {
      for (std::size_t w = 0; w < 28; ++w) {
        const bool lit = h >= r0 && h < r0 + 6 && w >= c0 && w < c0 + 6;
        d.images.push_back(noise(rng) + (lit ? 0.7f : 0.0f));
      }
    }
  }
  return d;
}

/// Algorithm 1 for a few epochs: LeNet + pixel(any) on synthetic data. The front's hard masks
/// must be equal; accuracies may differ by a sample.
template <class B>
outputs training(std::uint64_t seed) {
  recorder<B> r;
  const auto train = synthetic_images(96, seed);
  const auto validation = synthetic_images(64, seed + 1);
  const auto test = synthetic_images(64, seed + 2);
  selmask::any_mask<selmask::pixel> cfg;
  cfg.init_mean = 0.2f; // Adam steps of ~lr = 0.05 move the logits across 0 between epochs
  typename selmask::pipeline<selmask::any_mask<selmask::pixel>>::template on<B> masks(shape{1, 28, 28}, seed,
                                                                                      cfg);
  selmask::nn::lenet<B> net(seed);
  selmask::trainer_options opt;
  opt.lambda = 1.0f;
  opt.warmup_epochs = 1;
  opt.mask_epochs = 3;
  opt.batch_size = 32;
  opt.eval_batch_size = 50;
  opt.seed = seed;
  opt.mask_optimizer.lr = 0.05f;
  const auto result = selmask::learn_selection_masks(masks, net, train, validation, &test, opt,
                                                     selmask::round_schedule{2, 1, 2.0f});
  const parity_tolerance accuracy{2.0 / 64.0 + 1e-9, 0.0};
  r.value("full_val_accuracy", result.full_val_accuracy, accuracy);
  r.value("full_test_accuracy", result.full_test_accuracy, accuracy);
  r.value("epochs_run", static_cast<double>(result.epochs_run), exact);
  const auto points = result.front.points();
  r.value("front_points", static_cast<double>(points.size()), exact);
  for (std::size_t i = 0; i < points.size(); ++i) {
    const std::string t = "point" + std::to_string(i);
    r.value(t + "_q", points[i].q, summed);
    r.value(t + "_epoch", static_cast<double>(points[i].epoch), exact);
    r.value(t + "_val_accuracy", points[i].val_accuracy, accuracy);
    r.value(t + "_test_accuracy", points[i].test_accuracy, accuracy);
    r.values(t + "_mask", points[i].masks.at(0), exact);
  }
  r.tensor("final_hard_mask", masks.template stage<0>().hard(), exact);
  return r.take();
}

// ---- the list -------------------------------------------------------------------------------------------

using scenario_fn = outputs (*)(std::uint64_t);

/// Every scenario, by name, for backend B.
template <class B>
std::vector<std::pair<std::string, scenario_fn>> scenarios() {
  using namespace selmask;
  return {
    {"memory", &memory<B>},
    {"elementwise", &elementwise_ops<B>},
    {"reductions", &reductions<B>},
    {"cells_channel", &cells<B, channel>},
    {"cells_pixel", &cells<B, pixel>},
    {"cells_subpixel", &cells<B, subpixel>},
    {"cells_version", &cells<B, version>},
    {"cells_block_4x4", &cells<B, block<4, 4>>},
    {"cells_block_3x5", &cells<B, block<3, 5>>},
    {"cells_block_4x4_all_channels", &cells<B, block<4, 4, all_channels>>},
    {"groups", &groups<B>},
    {"versions", &versions<B>},
    {"gather_scatter", &gather_scatter<B>},
    {"gemm", &gemm<B>},
    {"conv_lowering", &conv_lowering<B>},
    {"layout", &layout<B>},
    {"activations", &activations<B>},
    {"cross_entropy", &cross_entropy<B>},
    {"adamw", &adamw<B>},
    {"errors", &errors<B>},
    {"any_mask_channel", &any_mask<B, channel>},
    {"any_mask_pixel", &any_mask<B, pixel>},
    {"any_mask_subpixel", &any_mask<B, subpixel>},
    {"any_mask_version", &any_mask<B, version>},
    {"any_mask_block_4x4", &any_mask<B, block<4, 4>>},
    {"any_mask_block_3x5", &any_mask<B, block<3, 5>>},
    {"any_mask_block_4x4_all_channels", &any_mask<B, block<4, 4, all_channels>>},
    {"xor_mask_channel", &xor_mask<B, channel>},
    {"xor_mask_pixel", &xor_mask<B, pixel>},
    {"xor_mask_subpixel", &xor_mask<B, subpixel>},
    {"xor_mask_version", &xor_mask<B, version>},
    {"xor_mask_block_4x4", &xor_mask<B, block<4, 4>>},
    {"pipeline_steps", &pipeline_steps<B>},
    {"layers", &layers<B>},
    {"lenet_steps", &lenet_steps<B>},
    {"training", &training<B>},
    {"dynamic_mask", &dynamic_mask<B>},
  };
}

/// Runs scenario `name` on B (throws std::out_of_range for an unknown name).
template <class B>
outputs run(const std::string& name, std::uint64_t seed) {
  for (const auto& [n, f] : scenarios<B>()) {
    if (n == name) {
      return f(seed);
    }
  }
  throw std::out_of_range("selmask_parity: no scenario named " + name);
}

// What each translation unit defines (parity_cpu.cpp, parity_emulated.cpp, parity_device.cu).
std::vector<std::string> scenario_names();
outputs run_cpu(const std::string& name, std::uint64_t seed);
outputs run_emulated(const std::string& name, std::uint64_t seed);
outputs run_device(const std::string& name, std::uint64_t seed);

} // namespace selmask_parity
