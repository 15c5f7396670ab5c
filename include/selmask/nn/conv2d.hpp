#pragma once
/// \file nn/conv2d.hpp
/// `nn::conv2d<B>`: a 2-D convolution (cross-correlation, as in PyTorch), stride 1, square
/// `k×k` kernel, zero padding `pad`: N×C×H×W → N×OC×(H+2·pad−k+1)×(W+2·pad−k+1).
///
/// Parameters: weight `OC×C×k×k` and bias `OC`, initialised as PyTorch does
/// (U(−1/√(C·k·k), 1/√(C·k·k)) for both).
///
/// The whole batch is lowered with `bk::im2col` to a (C·k·k) × (N·OH·OW) matrix, so each pass is
/// one large GEMM per layer and batch: forward `W·col` (then OC×N×… → N×OC×…), backward
/// `dW += g·colᵀ` and `dcol = Wᵀ·g` followed by `bk::col2im`. The columns are kept for the
/// backward pass; every workspace is reused while the batch shape stays the same.
///
/// A backend that offers the fused pair `B::conv2d_forward` / `B::conv2d_backward` (the CPU
/// backend does: it lowers and multiplies the batch in cache-sized chunks on all its threads) is
/// used through that pair instead; the layer then keeps a copy of its input rather than the
/// columns.

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "layer.hpp"

namespace selmask::nn {

template <nn_backend B>
class conv2d : public detail::weight_and_bias<conv2d<B>, B> {
  using base = detail::weight_and_bias<conv2d<B>, B>;
  using base::b_;
  using base::db_;
  using base::dw_;
  using base::w_;

public:
  using backend = B;
  using tensor = tensor_t<B>;

  /// `in_channels` → `out_channels` with a `kernel × kernel` kernel and zero padding `pad`.
  /// Parameters start at zero until `reset_parameters`.
  conv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, std::size_t pad = 0)
    : base(shape{out_channels, in_channels, kernel, kernel}, out_channels), in_(in_channels),
      out_(out_channels), k_(kernel), pad_(pad) {
    if (in_channels == 0 || out_channels == 0 || kernel == 0) {
      throw value_error(name() + ": channel counts and kernel size must be positive");
    }
  }

  [[nodiscard]] std::string name() const {
    return "selmask::nn::conv2d(" + std::to_string(in_) + ", " + std::to_string(out_) + ", " +
           std::to_string(k_) + ", pad=" + std::to_string(pad_) + ")";
  }
  [[nodiscard]] std::size_t in_channels() const noexcept { return in_; }
  [[nodiscard]] std::size_t out_channels() const noexcept { return out_; }
  [[nodiscard]] std::size_t kernel() const noexcept { return k_; }
  [[nodiscard]] std::size_t padding() const noexcept { return pad_; }

  /// N×C×H×W → N×OC×OH×OW.
  [[nodiscard]] shape output_shape(const shape& in) const {
    if (in.rank() != 4 || in[1] != in_ || in[2] + 2 * pad_ < k_ || in[3] + 2 * pad_ < k_) {
      const std::size_t min_hw = k_ > 2 * pad_ ? k_ - 2 * pad_ : 0;
      detail::throw_input_mismatch(
        name(), in, "[N," + std::to_string(in_) + ",H,W] with H, W >= " + std::to_string(min_hw));
    }
    return shape{in[0], out_, in[2] + 2 * pad_ - k_ + 1, in[3] + 2 * pad_ - k_ + 1};
  }

  void reset_parameters(std::mt19937_64& rng) { this->draw(in_ * k_ * k_, rng); }

  const tensor& forward(const tensor& x) {
    has_forward_ = false;
    x_shape_ = B::shape_of(x);
    const shape out = output_shape(x_shape_);
    if constexpr (fused) {
      B::copy(x, x_); // kept for the backward pass
      B::conv2d_forward(x_, w_, b_, k_, pad_, y_);
      has_forward_ = true;
      return y_;
    }
    bk::im2col<B>(x, k_, k_, pad_, col_);
    B::gemm(false, false, 1.0f, w_, col_, 0.0f, y_cm_); // OC × (N·OH·OW)
    const shape cm{out_, out[0], out[2], out[3]};
    if (!(B::shape_of(y_cm_) == cm)) { // kept from the last batch of the same size
      B::reshape(y_cm_, cm);
    }
    bk::swap_leading_axes<B>(y_cm_, y_); // N × OC × OH × OW
    bk::add_bias<B>(y_, b_);
    has_forward_ = true;
    return y_;
  }

  const tensor& backward(const tensor& g) {
    detail::check_backward<B>(*this, has_forward_, g, y_);
    if constexpr (fused) {
      B::conv2d_backward(x_, w_, g, k_, pad_, dw_, db_, &dx_);
      return dx_;
    }
    bk::swap_leading_axes<B>(g, g_cm_);                 // OC × N × OH × OW
    B::gemm(false, true, 1.0f, g_cm_, col_, 1.0f, dw_); // dW += g·colᵀ
    bk::bias_grad<B>(g, db_);
    B::gemm(true, false, 1.0f, w_, g_cm_, 0.0f, dcol_); // dcol = Wᵀ·g
    bk::col2im<B>(dcol_, x_shape_, k_, k_, pad_, dx_);
    return dx_;
  }

private:
  static constexpr bool fused = requires(const tensor& c, tensor& t, tensor* p, std::size_t n) {
    B::conv2d_forward(c, c, c, n, n, t);
    B::conv2d_backward(c, c, c, n, n, t, t, p);
  };
  std::size_t in_, out_, k_, pad_;
  tensor x_, col_, y_cm_, y_, g_cm_, dcol_, dx_;
  shape x_shape_;
  bool has_forward_ = false;
};

} // namespace selmask::nn
