#pragma once
/// \file nn/flatten.hpp
/// `nn::flatten<B>`: N×d1×d2×… → N×(d1·d2·…), the bridge from convolutions to `nn::dense`. The
/// values are copied (a backend tensor cannot alias another's memory under a new shape); the
/// backward pass restores the input shape. No parameters.

#include <random>
#include <string>
#include <vector>

#include "layer.hpp"

namespace selmask::nn {

template <nn_backend B>
class flatten {
public:
  using backend = B;
  using tensor = tensor_t<B>;

  [[nodiscard]] std::string name() const { return "selmask::nn::flatten"; }

  [[nodiscard]] shape output_shape(const shape& in) const {
    if (in.rank() < 1) {
      detail::throw_input_mismatch(name(), in, "[N,...] (a batch)");
    }
    const std::size_t n = in[0];
    return shape{n, n == 0 ? in.drop_front().size() : in.size() / n};
  }

  void reset_parameters(std::mt19937_64&) {}

  const tensor& forward(const tensor& x) {
    has_forward_ = false;
    x_shape_ = B::shape_of(x);
    const shape out = output_shape(x_shape_);
    B::copy(x, y_);
    B::reshape(y_, out);
    has_forward_ = true;
    return y_;
  }

  const tensor& backward(const tensor& g) {
    detail::check_backward<B>(*this, has_forward_, g, y_);
    B::copy(g, dx_);
    B::reshape(dx_, x_shape_);
    return dx_;
  }

  std::vector<tensor*> params() { return {}; }
  std::vector<const tensor*> params() const { return {}; }
  std::vector<tensor*> grads() { return {}; }

private:
  tensor y_, dx_;
  shape x_shape_;
  bool has_forward_ = false;
};

} // namespace selmask::nn
