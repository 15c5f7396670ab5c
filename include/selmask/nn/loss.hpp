#pragma once
/// \file nn/loss.hpp
/// `nn::cross_entropy_loss<B>`: softmax cross-entropy of a batch of logits (N×K) against integer
/// labels, with its gradient kept in a reusable workspace. The reported gradient is that of the
/// *mean* loss over the batch, `(softmax − onehot) / N`, ready for `model.backward`.
///
/// ```cpp
/// nn::cross_entropy_loss<cpu> loss;
/// const auto r = loss.forward(net.forward(x), labels);  // r.loss_sum, r.correct
/// net.backward(loss.grad());
/// ```

#include <cstddef>
#include <cstdint>
#include <span>

#include "../backend/nn_backend.hpp"
#include "../backend/nn_ops.hpp"

namespace selmask::nn {

template <nn_backend B>
class cross_entropy_loss {
public:
  using tensor = tensor_t<B>;

  /// Loss summed over the batch and number of correct (arg-max) predictions; computes `grad()`.
  cross_entropy_result forward(const tensor& logits, std::span<const std::int32_t> labels) {
    last_ = bk::softmax_cross_entropy<B>(logits, labels, grad_);
    batch_ = labels.size();
    return last_;
  }
  /// ∂(mean loss)/∂logits of the last `forward`.
  [[nodiscard]] const tensor& grad() const noexcept { return grad_; }
  /// Mean loss of the last `forward` (0 for an empty batch).
  [[nodiscard]] double mean_loss() const noexcept {
    return batch_ == 0 ? 0.0 : last_.loss_sum / static_cast<double>(batch_);
  }

private:
  tensor grad_;
  cross_entropy_result last_{};
  std::size_t batch_ = 0;
};

} // namespace selmask::nn
