#pragma once
/// \file nn/conv_relu_pool.hpp
/// `nn::conv_relu_pool<B>`: the block conv2d → ReLU → 2×2 max-pool as one layer,
/// N×C×H×W → N×OC×⌊OH/2⌋×⌊OW/2⌋ with OH = H + 2·pad − k + 1 (and OW likewise). It computes
/// exactly what `conv2d<B>(C, OC, k, pad)`, `relu<B>`, `max_pool2<B>` compute in a row, with the
/// same parameters (weight OC×C×k×k, bias OC, PyTorch's initialisation), gradients and saved
/// weights.
///
/// Why a block: on the CPU the three layers are memory-bound passes over the largest activation
/// of a small CNN. A backend that offers `B::conv2d_relu_pool_forward` / `_backward` (the CPU
/// backend does) pools each cache-sized chunk straight out of the convolution's GEMM, and never
/// writes the full-size convolution output at all. Other backends run the three layers' own
/// primitives one after the other.

#include <cstddef>
#include <string>

#include "conv2d.hpp"
#include "layer.hpp"
#include "max_pool2.hpp"
#include "relu.hpp"

namespace selmask::nn {

template <nn_backend B>
class conv_relu_pool : public conv2d<B> {
  using conv = conv2d<B>;
  using wb = detail::weight_and_bias<conv2d<B>, B>; // owner of the parameters and their gradients

public:
  using backend = B;
  using tensor = tensor_t<B>;

  /// `in_channels` → `out_channels`, `kernel × kernel`, zero padding `pad`, then ReLU and a 2×2
  /// max-pool.
  conv_relu_pool(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, std::size_t pad = 0)
    : conv(in_channels, out_channels, kernel, pad) {}

  [[nodiscard]] std::string name() const {
    return "selmask::nn::conv_relu_pool(" + std::to_string(this->in_channels()) + ", " +
           std::to_string(this->out_channels()) + ", " + std::to_string(this->kernel()) +
           ", pad=" + std::to_string(this->padding()) + ")";
  }

  /// N×C×H×W → N×OC×⌊OH/2⌋×⌊OW/2⌋.
  [[nodiscard]] shape output_shape(const shape& in) const {
    const std::size_t k = this->kernel();
    const std::size_t pad = this->padding();
    // the convolution's output must be at least 2×2 for the pool
    if (in.rank() != 4 || in[1] != this->in_channels() || in[2] + 2 * pad < k + 1 ||
        in[3] + 2 * pad < k + 1) {
      const std::size_t min_hw = k + 1 > 2 * pad ? k + 1 - 2 * pad : 0;
      detail::throw_input_mismatch(name(), in,
                                   "[N," + std::to_string(this->in_channels()) +
                                     ",H,W] with H, W >= " + std::to_string(min_hw));
    }
    const shape c = conv::output_shape(in);
    return shape{c[0], c[1], c[2] / 2, c[3] / 2};
  }

  const tensor& forward(const tensor& x) {
    has_forward_ = false;
    (void)output_shape(B::shape_of(x));
    if constexpr (fused) {
      B::copy(x, x_); // kept for the backward pass
      B::conv2d_relu_pool_forward(x_, this->weight(), this->bias(), this->kernel(), this->padding(), y_,
                                  idx_);
      has_forward_ = true;
      return y_;
    } else {
      const tensor& y = pool_.forward(relu_.forward(conv::forward(x)));
      has_forward_ = true;
      return y;
    }
  }

  const tensor& backward(const tensor& g) {
    if constexpr (fused) {
      detail::check_backward<B>(*this, has_forward_, g, y_);
      B::conv2d_relu_pool_backward(x_, this->weight(), y_, idx_, g, this->kernel(), this->padding(),
                                   this->wb::dw_, this->wb::db_, &dx_);
      return dx_;
    } else {
      if (!has_forward_) {
        throw error(name() + ": backward called before forward");
      }
      return conv::backward(relu_.backward(pool_.backward(g)));
    }
  }

private:
  static constexpr bool fused = requires(const tensor& c, tensor& t, tensor* p, std::size_t n) {
    B::conv2d_relu_pool_forward(c, c, c, n, n, t, t);
    B::conv2d_relu_pool_backward(c, c, c, c, c, n, n, t, t, p);
  };
  tensor x_, y_, idx_, dx_;
  relu<B> relu_;
  max_pool2<B> pool_;
  bool has_forward_ = false;
};

} // namespace selmask::nn
