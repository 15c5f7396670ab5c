#pragma once
/// \file nn/max_pool2.hpp
/// `nn::max_pool2<B>`: 2×2 max-pooling with stride 2, N×C×H×W → N×C×⌊H/2⌋×⌊W/2⌋ (an odd last
/// row or column is dropped, as in PyTorch). The backward pass routes each gradient value to
/// the position of its window's maximum (the first one on ties). No parameters.

#include <random>
#include <string>
#include <vector>

#include "layer.hpp"

namespace selmask::nn {

template <nn_backend B>
class max_pool2 {
public:
  using backend = B;
  using tensor = tensor_t<B>;

  [[nodiscard]] std::string name() const { return "selmask::nn::max_pool2"; }

  [[nodiscard]] shape output_shape(const shape& in) const {
    if (in.rank() != 4 || in[2] < 2 || in[3] < 2) {
      detail::throw_input_mismatch(name(), in, "[N,C,H,W] with H, W >= 2");
    }
    return shape{in[0], in[1], in[2] / 2, in[3] / 2};
  }

  void reset_parameters(std::mt19937_64&) {}

  const tensor& forward(const tensor& x) {
    has_forward_ = false;
    x_shape_ = B::shape_of(x);
    (void)output_shape(x_shape_);
    bk::maxpool2_forward<B>(x, y_, idx_);
    has_forward_ = true;
    return y_;
  }

  const tensor& backward(const tensor& g) {
    detail::check_backward<B>(*this, has_forward_, g, y_);
    bk::maxpool2_backward<B>(g, idx_, x_shape_, dx_);
    return dx_;
  }

  std::vector<tensor*> params() { return {}; }
  std::vector<const tensor*> params() const { return {}; }
  std::vector<tensor*> grads() { return {}; }

private:
  tensor y_, idx_, dx_;
  shape x_shape_;
  bool has_forward_ = false;
};

} // namespace selmask::nn
