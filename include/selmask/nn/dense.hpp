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
class dense : public detail::weight_and_bias<dense<B>, B> {
  using base = detail::weight_and_bias<dense<B>, B>;
  using base::b_;
  using base::db_;
  using base::dw_;
  using base::w_;

public:
  using backend = B;
  using tensor = tensor_t<B>;

  /// A layer with `in` inputs and `out` outputs; parameters start at zero until
  /// `reset_parameters` (which `nn::sequential` calls with its seed).
  dense(std::size_t in, std::size_t out) : base(shape{out, in}, out), in_(in), out_(out) {
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
      detail::throw_input_mismatch(
        name(), in, "[N," + std::to_string(in_) + "]" + (in.rank() > 2 ? " (flatten first)" : ""));
    }
    return shape{in[0], out_};
  }

  void reset_parameters(std::mt19937_64& rng) { this->draw(in_, rng); }

  const tensor& forward(const tensor& x) {
    has_forward_ = false;
    (void)output_shape(B::shape_of(x));
    B::copy(x, x_);
    B::gemm(false, true, 1.0f, x, w_, 0.0f, y_);
    bk::add_bias<B>(y_, b_);
    has_forward_ = true;
    return y_;
  }

  const tensor& backward(const tensor& g) {
    detail::check_backward<B>(*this, has_forward_, g, y_);
    B::gemm(true, false, 1.0f, g, x_, 1.0f, dw_);  // dW += gᵀ·x
    bk::bias_grad<B>(g, db_);                      // db += Σ_n g
    B::gemm(false, false, 1.0f, g, w_, 0.0f, dx_); // dx = g·W
    return dx_;
  }

private:
  std::size_t in_;
  std::size_t out_;
  tensor x_, y_, dx_;
  bool has_forward_ = false;
};

} // namespace selmask::nn
