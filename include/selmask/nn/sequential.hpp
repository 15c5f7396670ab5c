#pragma once
/// \file nn/sequential.hpp
/// `nn::sequential<B, Layers...>`: a chain of layers as a type, trained with AdamW — the network
/// a user brings to selmask when it has no network of its own. It models `trainable_model` and
/// `checkpointable_model` (model/model.hpp):
///  - `forward(x)` → logits, `backward(dlogits)` → ∂L/∂x (parameter gradients accumulate),
///  - `zero_grad()`, `step()` (one `nn::adamw` update, AMSGrad; defaults lr 1e-3, betas
///    (0.5, 0.999), eps 1e-8, weight decay 1e-4), `set_learning_rate(lr)`,
///  - `save(path)` / `load(path)` in the weights-file format of nn/weights_file.hpp.
///
/// ```cpp
/// nn::sequential net(nn::dense<cpu>(2, 16), nn::relu<cpu>{}, nn::dense<cpu>(16, 2));
/// static_assert(selmask::trainable_model<decltype(net), cpu>);
/// ```
///
/// Parameters are drawn in the constructor from `std::mt19937_64(options.seed)`, layer by layer,
/// as PyTorch does (U(±1/√fan_in)). A layer that rejects its input throws a `shape_error` that
/// names the layer's position, the layer and both shapes. Copies and moves are independent
/// networks with their own optimiser state.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "../backend/nn_backend.hpp"
#include "../error.hpp"
#include "../shape.hpp"
#include "adamw.hpp"
#include "layer.hpp"
#include "weights_file.hpp"

namespace selmask::nn {

/// Run-time settings of a `sequential`: the seed of its initial parameters and its optimiser.
struct sequential_options {
  std::uint64_t seed = 0;
  adamw_hyper optimizer{};
};

template <nn_backend B, class... Layers>
class sequential {
  static_assert(sizeof...(Layers) > 0, "selmask::nn::sequential: a network needs at least one layer");
  static_assert((layer<Layers, B> && ...),
                "selmask::nn::sequential<B, Layers...>: every layer must model selmask::nn::layer<L, B> "
                "(forward, backward, output_shape, params, grads, reset_parameters, name on backend "
                "B; see selmask/nn/layer.hpp)");

public:
  using backend = B;
  using tensor = tensor_t<B>;
  static constexpr std::size_t layer_count = sizeof...(Layers);

  /// The given layers, parameters drawn from `options.seed`, AdamW with `options.optimizer`.
  explicit sequential(const sequential_options& options, Layers... layers)
    : layers_(std::move(layers)...), opt_(options.optimizer) {
    draw_parameters(options.seed);
    const auto p = params();
    const auto g = grads();
    for (std::size_t i = 0; i < p.size(); ++i) {
      opt_.add(*p[i], *g[i]);
    }
  }
  /// The given layers with seed 0 and the default optimiser settings.
  explicit sequential(Layers... layers) : sequential(sequential_options{}, std::move(layers)...) {}

  sequential(const sequential& o) : layers_(o.layers_), opt_(o.opt_) { rebind(); }
  sequential(sequential&& o) : layers_(std::move(o.layers_)), opt_(std::move(o.opt_)) { rebind(); }
  sequential& operator=(const sequential& o) {
    if (this != &o) {
      layers_ = o.layers_;
      opt_ = o.opt_;
      rebind();
    }
    return *this;
  }
  sequential& operator=(sequential&& o) {
    if (this != &o) {
      layers_ = std::move(o.layers_);
      opt_ = std::move(o.opt_);
      rebind();
    }
    return *this;
  }
  ~sequential() = default;

  /// Logits for a batch; valid until the next `forward`.
  const tensor& forward(const tensor& x) { return forward_impl(x, std::index_sequence_for<Layers...>{}); }

  /// ∂L/∂x for ∂L/∂logits of the last `forward`; accumulates the parameter gradients.
  const tensor& backward(const tensor& dlogits) {
    return backward_impl(dlogits, std::index_sequence_for<Layers...>{});
  }

  void zero_grad() { opt_.zero_grad(); }
  void step() { opt_.step(); }
  void set_learning_rate(float lr) { opt_.set_learning_rate(lr); }
  [[nodiscard]] float learning_rate() const noexcept { return opt_.learning_rate(); }
  [[nodiscard]] adamw<B>& optimizer() noexcept { return opt_; }
  [[nodiscard]] const adamw<B>& optimizer() const noexcept { return opt_; }

  /// The logits' shape for an input shape (batch axis included), or the `shape_error` the first
  /// layer that rejects it would throw.
  [[nodiscard]] shape output_shape(const shape& in) const {
    return output_shape_impl(in, std::index_sequence_for<Layers...>{});
  }

  template <std::size_t I>
  [[nodiscard]] auto& layer() noexcept {
    return std::get<I>(layers_);
  }
  template <std::size_t I>
  [[nodiscard]] const auto& layer() const noexcept {
    return std::get<I>(layers_);
  }

  /// Every parameter tensor, layer by layer (the order of the weights file).
  [[nodiscard]] std::vector<tensor*> params() {
    std::vector<tensor*> out;
    std::apply([&](auto&... l) { (append(out, l.params()), ...); }, layers_);
    return out;
  }
  [[nodiscard]] std::vector<const tensor*> params() const {
    std::vector<const tensor*> out;
    std::apply([&](const auto&... l) { (append(out, l.params()), ...); }, layers_);
    return out;
  }
  [[nodiscard]] std::vector<tensor*> grads() {
    std::vector<tensor*> out;
    std::apply([&](auto&... l) { (append(out, l.grads()), ...); }, layers_);
    return out;
  }
  /// Total number of trainable values.
  [[nodiscard]] std::size_t parameter_count() const {
    std::size_t n = 0;
    for (const tensor* p : params()) {
      n += B::shape_of(*p).size();
    }
    return n;
  }

  /// Draws fresh parameters from `seed`, clears the gradients and the optimiser state.
  void reset_parameters(std::uint64_t seed) {
    draw_parameters(seed);
    opt_.zero_grad();
    opt_.reset_state();
  }

  /// Writes the parameters to `path` (atomically; see nn/weights_file.hpp).
  void save(const std::filesystem::path& path) const {
    std::vector<host_tensor> out;
    for (const tensor* p : params()) {
      out.push_back(host_tensor{B::shape_of(*p), B::to_host(*p)});
    }
    write_weights_file(path, out);
  }

  /// Reads parameters saved by `save` from a network of the same architecture. The file is
  /// checked completely (format, checksum, number and shapes of the tensors) before any
  /// parameter changes; then the optimiser state is reset. Throws `io_error`.
  void load(const std::filesystem::path& path) {
    const std::vector<host_tensor> in = read_weights_file(path);
    const std::string where = "selmask::nn::sequential::load: " + path.string() + ": ";
    const std::vector<tensor*> p = params();
    if (in.size() != p.size()) {
      throw io_error(where + "the file holds " + std::to_string(in.size()) + " tensors, the network has " +
                     std::to_string(p.size()));
    }
    const std::vector<std::string> what = param_descriptions();
    for (std::size_t i = 0; i < p.size(); ++i) {
      const shape expected = B::shape_of(*p[i]);
      if (!(in[i].dims == expected)) {
        throw io_error(where + "tensor " + std::to_string(i) + " (" + what[i] + ") has shape " +
                       in[i].dims.str() + " in the file, the network expects " + expected.str());
      }
    }
    for (std::size_t i = 0; i < p.size(); ++i) {
      B::copy(B::from_host(in[i].dims, in[i].values), *p[i]);
    }
    opt_.reset_state();
  }

  /// The whole training state — parameters and the optimiser's moments and step count — as
  /// records `prefix + "params"` and `prefix + "optimizer"` of `state` (io/state_file.hpp), for
  /// a resumable training run (train/resume.hpp). `load_state` restores it bit for bit into a
  /// network of the same architecture; the state is checked before anything changes.
  void save_state(io::state_file& state, const std::string& prefix) const {
    io::record_writer w;
    const std::vector<const tensor*> p = params();
    w.put(static_cast<std::uint64_t>(p.size()));
    for (const tensor* t : p) {
      w.put_tensor<B>(*t);
    }
    state.put(prefix + "params", std::move(w));
    opt_.save_state(state, prefix + "optimizer");
  }
  void load_state(const io::state_file& state, const std::string& prefix) {
    io::record_reader r = state.reader(prefix + "params");
    const std::vector<tensor*> p = params();
    if (r.get<std::uint64_t>() != p.size()) {
      r.fail("the number of parameter tensors differs from the network's " + std::to_string(p.size()));
    }
    const std::vector<std::string> what = param_descriptions();
    std::vector<tensor> loaded;
    for (std::size_t i = 0; i < p.size(); ++i) {
      loaded.push_back(*p[i]);
      r.get_tensor_into<B>(loaded.back(), what[i]);
    }
    r.finish();
    adamw<B> opt = opt_;
    opt.load_state(state, prefix + "optimizer"); // checked before the network changes
    for (std::size_t i = 0; i < p.size(); ++i) {
      B::copy(loaded[i], *p[i]);
    }
    opt_ = std::move(opt);
    rebind();
  }

private:
  template <class T, class U>
  static void append(std::vector<T*>& out, const std::vector<U*>& more) {
    out.insert(out.end(), more.begin(), more.end());
  }

  void draw_parameters(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::apply([&](auto&... l) { (l.reset_parameters(rng), ...); }, layers_);
  }

  void rebind() { opt_.rebind(params(), grads()); }

  /// "layer 3 selmask::nn::conv2d(20, 50, 5, pad=0), parameter 0" for every parameter tensor.
  [[nodiscard]] std::vector<std::string> param_descriptions() const {
    std::vector<std::string> out;
    std::size_t index = 0;
    std::apply(
      [&](const auto&... l) {
        (
          [&] {
            const std::size_t n = l.params().size();
            for (std::size_t j = 0; j < n; ++j) {
              out.push_back("layer " + std::to_string(index) + " " + std::string(l.name()) + ", parameter " +
                            std::to_string(j));
            }
            ++index;
          }(),
          ...);
      },
      layers_);
    return out;
  }

  template <std::size_t I>
  [[noreturn]] void rethrow_at(const shape_error& e) const {
    throw shape_error("selmask::nn::sequential, layer " + std::to_string(I) + ": " + e.what());
  }

  template <std::size_t I>
  const tensor& forward_one(const tensor& x) {
    try {
      return std::get<I>(layers_).forward(x);
    } catch (const shape_error& e) {
      rethrow_at<I>(e);
    }
  }
  template <std::size_t I>
  const tensor& backward_one(const tensor& g) {
    try {
      return std::get<I>(layers_).backward(g);
    } catch (const shape_error& e) {
      rethrow_at<I>(e);
    }
  }
  template <std::size_t I>
  shape output_shape_one(const shape& s) const {
    try {
      return std::get<I>(layers_).output_shape(s);
    } catch (const shape_error& e) {
      rethrow_at<I>(e);
    }
  }

  template <std::size_t... I>
  const tensor& forward_impl(const tensor& x, std::index_sequence<I...>) {
    const tensor* cur = &x;
    ((cur = &forward_one<I>(*cur)), ...);
    return *cur;
  }
  template <std::size_t... I>
  const tensor& backward_impl(const tensor& g, std::index_sequence<I...>) {
    const tensor* cur = &g;
    ((cur = &backward_one<layer_count - 1 - I>(*cur)), ...);
    return *cur;
  }
  template <std::size_t... I>
  shape output_shape_impl(const shape& in, std::index_sequence<I...>) const {
    shape cur = in;
    ((cur = output_shape_one<I>(cur)), ...);
    return cur;
  }

  std::tuple<Layers...> layers_;
  adamw<B> opt_;
};

/// `nn::sequential net(nn::dense<cpu>(2, 8), nn::relu<cpu>{}, ...)`: the backend is the first
/// layer's `backend`.
template <class L0, class... L>
sequential(L0, L...) -> sequential<typename L0::backend, L0, L...>;
template <class L0, class... L>
sequential(const sequential_options&, L0, L...) -> sequential<typename L0::backend, L0, L...>;

} // namespace selmask::nn
