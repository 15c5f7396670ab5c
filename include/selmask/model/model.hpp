#pragma once
/// \file model/model.hpp
/// The model-functor concept: what selmask asks of the network a user brings.
///
/// A *differentiable model* on backend `B` is any object with
///  - `m.forward(x)`: logits (N×K) for a batch `x` (N×C×H×W), returned as `const tensor_t<B>&`
///    or by value; the model may keep what its backward pass needs;
///  - `m.backward(g)`: given ∂L/∂logits (N×K), accumulates its parameter gradients (if it has
///    any) and returns ∂L/∂x (N×C×H×W). selmask needs ∂L/∂x to train the masks.
/// A *trainable model* also has
///  - `m.step()`: applies one optimiser update with the accumulated gradients, and
///  - `m.zero_grad()`: clears them.
/// A model without `step` is frozen: the paper's case of a pre-trained network whose weights must
/// not change. Optional members a trainer uses when present: `m.save(path)` / `m.load(path)`
/// (checkpoints of the accuracy-vs-data front), and `m.infer(x)`: logits for evaluation only, no
/// backward to follow — `evaluate` (train/evaluate.hpp) and so the trainer's validation and test
/// passes call it instead of `forward` (a libtorch network, for example, runs it in eval mode
/// without autograd: batch normalisation uses its running statistics, dropout is off).
///
/// ```cpp
/// static_assert(selmask::trainable_model<my_net, selmask::cpu>);
/// ```

#include <concepts>
#include <filesystem>

#include "../backend/backend.hpp"

namespace selmask {

template <class M, class B>
concept differentiable_model = tensor_backend<B> && requires(M& m, const tensor_t<B>& x) {
  { m.forward(x) } -> std::convertible_to<const tensor_t<B>&>;
  { m.backward(x) } -> std::convertible_to<const tensor_t<B>&>;
};

template <class M, class B>
concept trainable_model = differentiable_model<M, B> && requires(M& m) {
  m.step();
  m.zero_grad();
};

template <class M>
concept checkpointable_model = requires(M& m, const std::filesystem::path& p) {
  m.save(p);
  m.load(p);
};

} // namespace selmask
