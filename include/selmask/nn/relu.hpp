#pragma once
/// \file nn/relu.hpp
/// `nn::relu<B>`: the rectifier `y = max(x, 0)` on a tensor of any shape; the backward pass lets
/// the gradient through where the output is positive. No parameters.

#include <random>
#include <string>
#include <vector>

#include "layer.hpp"

namespace selmask::nn {

template <nn_backend B>
class relu {
public:
  using backend = B;
  using tensor = tensor_t<B>;

  [[nodiscard]] std::string name() const { return "selmask::nn::relu"; }
  [[nodiscard]] shape output_shape(const shape& in) const { return in; }
  void reset_parameters(std::mt19937_64&) {}

  const tensor& forward(const tensor& x) {
    has_forward_ = false;
    bk::relu_forward<B>(x, y_);
    has_forward_ = true;
    return y_;
  }

  const tensor& backward(const tensor& g) {
    detail::check_backward<B>(*this, has_forward_, g, y_);
    bk::relu_backward<B>(y_, g, dx_);
    return dx_;
  }

  std::vector<tensor*> params() { return {}; }
  std::vector<const tensor*> params() const { return {}; }
  std::vector<tensor*> grads() { return {}; }

private:
  tensor y_, dx_;
  bool has_forward_ = false;
};

} // namespace selmask::nn
