#pragma once
/// \file nn/layer.hpp
/// The `nn::layer` concept: what `nn::sequential` asks of each of its layers, plus the helpers the
/// built-in layers share (PyTorch-like uniform initialisation, shape messages).
///
/// A layer `L` on backend `B` is a small object that owns its parameters, their gradients and
/// the workspaces of its passes:
///  - `l.forward(x)`: the output for a batch `x`, as `const tensor_t<B>&` (valid until the next
///    `forward`); the layer keeps what its backward pass needs;
///  - `l.backward(g)`: given ∂L/∂output of the last `forward`, *accumulates* the parameter
///    gradients and returns ∂L/∂input;
///  - `l.output_shape(s)`: the output shape for an input shape `s` (batch axis included), or a
///    `shape_error` naming the layer and both shapes;
///  - `l.params()`, `l.grads()`: pointers to the parameter tensors and to their gradients, in the
///    same order (empty for layers without parameters); `std::as_const(l).params()` gives
///    pointers to const;
///  - `l.reset_parameters(rng)`: draws fresh parameters from a `std::mt19937_64`;
///  - `l.name()`: how messages name the layer, e.g. "selmask::nn::dense(800, 500)".

#include <cmath>
#include <concepts>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "../backend/backend.hpp"
#include "../backend/nn_backend.hpp"
#include "../backend/nn_ops.hpp"
#include "../detail/config.hpp"
#include "../error.hpp"
#include "../shape.hpp"

namespace selmask::nn {

template <class L, class B>
concept layer = nn_backend<B> &&
  requires(L& l, const L& cl, const tensor_t<B>& x, const shape& s, std::mt19937_64& rng) {
  { l.forward(x) } -> std::same_as<const tensor_t<B>&>;
  { l.backward(x) } -> std::same_as<const tensor_t<B>&>;
  { cl.output_shape(s) } -> std::same_as<shape>;
  { l.params() } -> std::same_as<std::vector<tensor_t<B>*>>;
  { l.grads() } -> std::same_as<std::vector<tensor_t<B>*>>;
  { cl.params() } -> std::same_as<std::vector<const tensor_t<B>*>>;
  l.reset_parameters(rng);
  { cl.name() } -> std::convertible_to<std::string>;
};

namespace detail {

/// A tensor of shape `s` with values drawn from U(−bound, bound) (host draws, then `from_host`,
/// so every backend gets the same numbers for the same seed).
template <nn_backend B>
tensor_t<B> uniform_tensor(const shape& s, float bound, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> d(-bound, bound);
  std::vector<float> v(s.size());
  for (float& x : v) {
    x = d(rng);
  }
  return B::from_host(s, v);
}

/// PyTorch's default bound for weights and biases: kaiming-uniform with a = √5 gives
/// gain·√(3 / fan_in) = √(1/3)·√(3 / fan_in) = 1 / √fan_in.
inline float default_init_bound(std::size_t fan_in) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(fan_in)));
}

/// "selmask::nn::dense(800, 500): input shape [128,50,4,4] does not fit; expected [N,800]"
[[noreturn]] inline void throw_input_mismatch(const std::string& layer_name, const shape& actual,
                                              const std::string& expected) {
  throw shape_error(layer_name + ": input shape " + actual.str() + " does not fit; expected " + expected);
}

/// Checks a gradient against the shape of the last forward output (the layer's name is only
/// built for a message, so the check allocates nothing).
template <nn_backend B, class L>
void check_backward(const L& l, bool has_forward, const tensor_t<B>& g, const tensor_t<B>& out) {
  if (!has_forward) {
    throw error(std::string(l.name()) + ": backward called before forward");
  }
  const shape gs = B::shape_of(g);
  const shape os = B::shape_of(out);
  if (!(gs == os)) {
    throw shape_error(std::string(l.name()) + ": gradient shape " + gs.str() +
                      " differs from the output shape " + os.str() + " of the last forward");
  }
}

struct zero_fn {
  SELMASK_HOST_DEVICE float operator()(float) const { return 0.0f; }
};

/// Sets every value of `t` to 0, keeping its shape and its memory.
template <nn_backend B>
void fill_zero(tensor_t<B>& t) {
  B::map(t, t, zero_fn{});
}

/// The weight and bias of an affine layer (`dense`, `conv2d`) with their gradients, accessors and
/// PyTorch's default initialisation, U(±1/√fan_in) for both. `Layer` supplies `name()`.
template <class Layer, nn_backend B>
class weight_and_bias {
public:
  using tensor = tensor_t<B>;

  std::vector<tensor*> params() { return {&w_, &b_}; }
  std::vector<const tensor*> params() const { return {&w_, &b_}; }
  std::vector<tensor*> grads() { return {&dw_, &db_}; }

  [[nodiscard]] const tensor& weight() const noexcept { return w_; }
  [[nodiscard]] const tensor& bias() const noexcept { return b_; }
  [[nodiscard]] const tensor& weight_grad() const noexcept { return dw_; }
  [[nodiscard]] const tensor& bias_grad() const noexcept { return db_; }
  /// Replaces the weight (same shape).
  void set_weight(const tensor& w) { set_param("weight", w, w_); }
  /// Replaces the bias (same shape).
  void set_bias(const tensor& b) { set_param("bias", b, b_); }

protected:
  weight_and_bias(const shape& weight_shape, std::size_t outputs)
    : w_(B::zeros(weight_shape)), b_(B::zeros(shape{outputs})), dw_(B::zeros(weight_shape)),
      db_(B::zeros(shape{outputs})) {}

  void draw(std::size_t fan_in, std::mt19937_64& rng) {
    const float bound = default_init_bound(fan_in);
    w_ = uniform_tensor<B>(B::shape_of(dw_), bound, rng);
    b_ = uniform_tensor<B>(B::shape_of(db_), bound, rng);
  }

  tensor w_, b_, dw_, db_;

private:
  void set_param(const char* what, const tensor& src, tensor& dst) {
    if (!(B::shape_of(src) == B::shape_of(dst))) {
      throw shape_error(static_cast<const Layer&>(*this).name() + ": " + what + " of shape " +
                        B::shape_of(src).str() + ", expected " + B::shape_of(dst).str());
    }
    B::copy(src, dst);
  }
};

} // namespace detail
} // namespace selmask::nn
