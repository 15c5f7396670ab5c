#pragma once
/// \file nn/dense.hpp
/// `nn::dense<B>`: a fully connected layer, `y = x·Wᵀ + b` for a batch `x` of shape N×in.
///
/// Parameters: weight `out×in` (PyTorch's layout) and bias `out`, initialised as PyTorch does
/// (U(−1/√in, 1/√in) for both). Sizes are run-time values so that networks are built from
/// numbers read from a configuration; a mismatch is reported on the first batch, naming the
/// layer and both shapes. An N×C×H×W input needs an `nn::flatten` before it.

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "layer.hpp"

namespace selmask::nn {

template <nn_backend B>
class dense {
public:
  using backend = B;
  using tensor = tensor_t<B>;

  /// A layer with `in` inputs and `out` outputs; parameters start at zero until
  /// `reset_parameters` (which `nn::sequential` calls with its seed).
  dense(std::size_t in, std::size_t out)
      : in_(in), out_(out), w_(B::zeros(shape{out, in})), b_(B::zeros(shape{out})),
        dw_(B::zeros(shape{out, in})), db_(B::zeros(shape{out})) {
    if (in == 0 || out == 0) {
      throw value_error(name() + ": sizes must be positive");
    }
  }

  [[nodiscard]] std::string name() const {
    return "selmask::nn::dense(" + std::to_string(in_) + ", " + std::to_string(out_) + ")";
  }
  [[nodiscard]] std::size_t in_features() const noexcept { return in_; }
  [[nodiscard]] std::size_t out_features() const noexcept { return out_; }

  /// N×in → N×out.
  [[nodiscard]] shape output_shape(const shape& in) const {
    if (in.rank() != 2 || in[1] != in_) {
      detail::throw_input_mismatch(name(), in, "[N," + std::to_string(in_) + "]" +
                                                   (in.rank() > 2 ? " (flatten first)" : ""));
    }
    return shape{in[0], out_};
  }

  void reset_parameters(std::mt19937_64& rng) {
    const float bound = detail::default_init_bound(in_);
    w_ = detail::uniform_tensor<B>(shape{out_, in_}, bound, rng);
    b_ = detail::uniform_tensor<B>(shape{out_}, bound, rng);
  }

  const tensor& forward(const tensor& x) {
    has_forward_ = false;
    (void)output_shape(B::shape_of(x));
    B::copy(x, x_);
    B::gemm(false, true, 1.0f, x, w_, 0.0f, y_);
    B::add_bias(y_, b_);
    has_forward_ = true;
    return y_;
  }

  const tensor& backward(const tensor& g) {
    detail::check_backward<B>(*this, has_forward_, g, y_);
    B::gemm(true, false, 1.0f, g, x_, 1.0f, dw_); // dW += gᵀ·x
    B::bias_grad(g, db_);                          // db += Σ_n g
    B::gemm(false, false, 1.0f, g, w_, 0.0f, dx_); // dx = g·W
    return dx_;
  }

  std::vector<tensor*> params() { return {&w_, &b_}; }
  std::vector<const tensor*> params() const { return {&w_, &b_}; }
  std::vector<tensor*> grads() { return {&dw_, &db_}; }

  [[nodiscard]] const tensor& weight() const noexcept { return w_; }
  [[nodiscard]] const tensor& bias() const noexcept { return b_; }
  [[nodiscard]] const tensor& weight_grad() const noexcept { return dw_; }
  [[nodiscard]] const tensor& bias_grad() const noexcept { return db_; }
  /// Replaces the weight (`out×in`).
  void set_weight(const tensor& w) { set_param("weight", w, w_); }
  /// Replaces the bias (`out`).
  void set_bias(const tensor& b) { set_param("bias", b, b_); }

private:
  void set_param(const char* what, const tensor& src, tensor& dst) {
    if (!(B::shape_of(src) == B::shape_of(dst))) {
      throw shape_error(name() + ": " + what + " of shape " + B::shape_of(src).str() +
                        ", expected " + B::shape_of(dst).str());
    }
    B::copy(src, dst);
  }

  std::size_t in_;
  std::size_t out_;
  tensor w_, b_, dw_, db_;
  tensor x_, y_, dx_;
  bool has_forward_ = false;
};

} // namespace selmask::nn
