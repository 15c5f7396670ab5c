#pragma once
/// \file libtorch/model.hpp
/// Model adapters for networks that live in libtorch: a module of the C++ frontend
/// (`torch::nn::Sequential`, any `torch::nn::ModuleHolder`, or a `std::shared_ptr` to a class
/// derived from `torch::nn::Module`) or a TorchScript module (`torch::jit::load(path)`). Link
/// `selmask::torch`.
///
/// - `torch_network<B, Net>`: the network as a *differentiable model* (model/model.hpp) on backend
///   `B`: `forward` and `backward` only, the weights frozen (`requires_grad` off, so backward
///   computes ∂L/∂x alone) and the network put in eval mode (batch normalisation uses and keeps its
///   running statistics, dropout is off) — the paper's pre-trained network with a fixed input layout.
/// - `torch_model<B, Net>`: a *trainable model*: `step` and `zero_grad` run the torch optimiser it
///   is given (`torch::optim::SGD`, `Adam`, ... over the network's parameters), and
///   `learning_rate` / `set_learning_rate` read and set the rate of its parameter groups, so
///   selmask's learning-rate policies drive it.
///
/// No copies of the input: `forward(x)` hands the network an `at::Tensor` over `x`'s own storage
/// (`torch::from_blob` for the CPU and reference backends, the tensor itself for `selmask::aten`),
/// detached and with `requires_grad`. `backward(g)` sets that tensor's gradient to a view of the
/// adapter's ∂L/∂x buffer before running autograd, so autograd accumulates ∂L/∂x straight into the
/// buffer that `backward` returns (were libtorch ever to put it elsewhere, it is copied in). The
/// logits (N×K, small) are copied into a tensor of `B`. The loss stays selmask's: the trainer gives
/// `backward` the gradient of its loss with respect to the logits. `infer` (used by `evaluate` for
/// validation and test) runs the network in eval mode without autograd; `forward` leaves the mode
/// as it is (training mode for `torch_model`, unless the user changes it).
///
/// `save(path)` / `load(path)` store the parameters and buffers (in the order `parameters()` and
/// `buffers()` list them) with `torch::save`, written to a temporary file and renamed into place
/// (`io::write_file_atomically`);
/// `load` copies into the network's own tensors, so an optimiser over them stays valid.
/// `save_state` / `load_state` put the same tensors, and `torch_model`'s optimiser state, into a
/// training state (train/resume.hpp), so runs through these adapters resume. libtorch's own random
/// stream (dropout) is not part of it: a network with dropout resumes, but not bit for bit.
///
/// libtorch's OpenMP threads: on a machine busy with other work, spin-waiting threads slow each
/// step many times over; set `OMP_WAIT_POLICY=PASSIVE` or `at::set_num_threads(1)`.

#include <torch/script.h>
#include <torch/torch.h>

#include "glog_check.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <memory>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "../backend/backend.hpp"
#include "../backend/nn_backend.hpp"
#include "../backend/reference/reference.hpp"
#include "../error.hpp"
#include "../io/atomic_file.hpp"
#include "../io/state_file.hpp"
#include "../shape.hpp"
#include "aten.hpp"

namespace selmask {

/// How a backend's tensors are seen as `at::Tensor` without a copy: `of(t)` shares `t`'s storage.
/// Given for `selmask::aten`, the CPU backend (whose tensors have `float* data()`) and the
/// reference backend; specialise it for a backend of your own with host-resident float storage.
template <class B>
struct aten_view;

template <>
struct aten_view<aten> {
  static at::Tensor of(const aten::tensor& t) {
    return t.get().defined() ? t.get() : at::empty({0}, at::kFloat);
  }
};
template <class B>
requires(std::string_view(B::name) == "cpu") && requires(tensor_t<B>& t) {
  { t.data() } -> std::convertible_to<float*>;
}
struct aten_view<B> {
  static at::Tensor of(const tensor_t<B>& t) {
    std::vector<std::int64_t> d;
    for (std::size_t e : B::shape_of(t)) {
      d.push_back(static_cast<std::int64_t>(e));
    }
    // torch only reads through the view of an input; writes go to views of selmask's own buffers
    return torch::from_blob(const_cast<float*>(t.data()), d, at::kFloat);
  }
};
template <>
struct aten_view<reference> {
  static at::Tensor of(const reference::tensor& t) {
    std::vector<std::int64_t> d;
    for (std::size_t e : t.extents) {
      d.push_back(static_cast<std::int64_t>(e));
    }
    return torch::from_blob(const_cast<float*>(t.values.data()), d, at::kFloat);
  }
};

namespace detail {
/// `net`'s forward on one tensor: the C++ frontend (`net->forward(x)`) or TorchScript
/// (`net.forward({x})`).
template <class Net>
at::Tensor torch_forward(Net& net, const at::Tensor& x) {
  if constexpr (requires { net->forward(x); }) {
    return net->forward(x);
  } else {
    return net.forward(std::vector<c10::IValue>{x}).toTensor();
  }
}
/// Whether `net` is in training mode, and setting it (C++ frontend or TorchScript).
template <class Net>
bool torch_is_training(Net& net) {
  if constexpr (requires { net->is_training(); }) {
    return net->is_training();
  } else {
    return net.is_training();
  }
}
template <class Net>
void torch_set_training(Net& net, bool on) {
  if constexpr (requires { net->train(on); }) {
    net->train(on);
  } else {
    net.train(on);
  }
}
/// Eval mode for a scope; the mode before is restored at its end.
template <class Net>
class torch_eval_scope {
public:
  explicit torch_eval_scope(Net& net) : net_(net), was_training_(torch_is_training(net)) {
    torch_set_training(net_, false);
  }
  torch_eval_scope(const torch_eval_scope&) = delete;
  torch_eval_scope& operator=(const torch_eval_scope&) = delete;
  ~torch_eval_scope() { torch_set_training(net_, was_training_); }

private:
  Net& net_;
  bool was_training_;
};

/// The network's parameters, then its buffers (running statistics, ...), as tensors.
template <class Net>
std::vector<at::Tensor> torch_tensors(Net& net, bool with_buffers) {
  std::vector<at::Tensor> out;
  const auto add = [&](const auto& list) {
    for (const at::Tensor& t : list) {
      out.push_back(t);
    }
  };
  if constexpr (requires { net->parameters(); }) {
    add(net->parameters());
    if (with_buffers) {
      add(net->buffers());
    }
  } else {
    add(net.parameters());
    if (with_buffers) {
      add(net.buffers());
    }
  }
  return out;
}
} // namespace detail

/// torch's AdamW over `params` with the settings of selmask's own AdamW (`adamw_hyper`, which
/// follows PyTorch's AdamW semantics; defaults lr 1e-3, β (0.5, 0.999), eps 1e-8, weight decay
/// 1e-4, AMSGrad), so that a libtorch network trains as the network kit's would.
inline std::unique_ptr<torch::optim::AdamW> torch_adamw(std::vector<at::Tensor> params,
                                                        const adamw_hyper& h = {}) {
  return std::make_unique<torch::optim::AdamW>(std::move(params), torch::optim::AdamWOptions(h.lr)
                                                                    .betas({h.beta1, h.beta2})
                                                                    .eps(h.eps)
                                                                    .weight_decay(h.weight_decay)
                                                                    .amsgrad(h.amsgrad));
}

/// A libtorch network with frozen weights as a differentiable model on backend `B`.
template <tensor_backend B, class Net>
class torch_network {
public:
  using tensor = tensor_t<B>;

  explicit torch_network(Net net) : torch_network(std::move(net), false) {}

  /// Logits (N×K) of the batch `x` (N×C×H×W); the network sees `x`'s storage.
  const tensor& forward(const tensor& x) {
    x_ = aten_view<B>::of(x).detach().requires_grad_(true);
    logits_ = run("forward", x, x_);
    return logits_to_backend(logits_);
  }

  /// Logits for evaluation only (train/evaluate.hpp calls it for validation and test): no
  /// autograd, the network in eval mode for the call (batch normalisation on its running
  /// statistics, dropout off), its mode restored after; `backward` does not follow it.
  const tensor& infer(const tensor& x) {
    const torch::NoGradGuard no_grad;
    const detail::torch_eval_scope<Net> eval(net_);
    return logits_to_backend(run("infer", x, aten_view<B>::of(x)));
  }

  /// ∂L/∂x (N×C×H×W) for `g` = ∂L/∂logits; accumulates parameter gradients when trainable.
  const tensor& backward(const tensor& g) {
    if (!logits_.defined()) {
      throw value_error(
        "selmask::torch_network::backward: no forward pass to go back through (call forward first)");
    }
    const at::Tensor gl = aten_view<B>::of(g);
    if (gl.sizes() != logits_.sizes()) {
      throw shape_error("selmask::torch_network::backward: gradient of shape " + B::shape_of(g).str() +
                        " for logits of " + std::to_string(logits_.size(0)) + "×" +
                        std::to_string(logits_.size(1)));
    }
    const auto d = x_.sizes();
    const shape xs(d.begin(), d.end());
    if (B::shape_of(gx_) != xs) {
      gx_ = B::zeros(xs);
    }
    at::Tensor buffer = aten_view<B>::of(gx_);
    buffer.zero_();
    x_.mutable_grad() = buffer; // autograd accumulates ∂L/∂x here, in place
    logits_.backward(gl);
    if (x_.grad().data_ptr() != buffer.data_ptr()) {
      buffer.copy_(x_.grad());
    }
    logits_ = at::Tensor{}; // the graph is spent
    return gx_;
  }

  /// The `at::Tensor` the network saw in the last forward pass (its gradient after `backward`).
  [[nodiscard]] const at::Tensor& last_input() const { return x_; }
  [[nodiscard]] Net& network() { return net_; }

  /// Parameters and buffers to `path` (`io::write_file_atomically`: a temporary, then a rename).
  void save(const std::filesystem::path& path) {
    io::write_file_atomically(path, [&](std::ostream& os) { write_tensors(os); });
  }
  /// Parameters and buffers from a file of `save`, into the network's own tensors.
  void load(const std::filesystem::path& path) {
    std::ifstream is(path, std::ios::binary);
    if (!is) {
      throw io_error("selmask::torch_network::load: cannot open " + path.string());
    }
    read_tensors(is, path.string());
  }
  /// The parameters and buffers as record `prefix + "tensors"` of a training state
  /// (train/resume.hpp); `torch_model` adds its optimiser's state.
  void save_state(io::state_file& state, const std::string& prefix) {
    std::ostringstream os;
    write_tensors(os);
    state.put(prefix + "tensors", os.str());
  }
  void load_state(const io::state_file& state, const std::string& prefix) {
    std::istringstream is(state.bytes(prefix + "tensors"));
    read_tensors(is, "record " + prefix + "tensors");
  }

protected:
  torch_network(Net net, bool trainable) : net_(std::move(net)) {
    for (at::Tensor& p : detail::torch_tensors(net_, false)) {
      p.requires_grad_(trainable);
    }
    if (!trainable) { // frozen: batch normalisation keeps its running statistics, no dropout
      detail::torch_set_training(net_, false);
    }
  }

  Net net_;

private:
  /// The network on `in` (a view of `x`), its errors and wrong outputs named.
  at::Tensor run(const char* fn, const tensor& x, const at::Tensor& in) {
    at::Tensor logits;
    try {
      logits = detail::torch_forward(net_, in);
    } catch (const c10::Error& e) {
      throw shape_error(std::string("selmask::torch_network::") + fn +
                        ": the network refused a batch of shape " + B::shape_of(x).str() + ": " +
                        e.what_without_backtrace());
    }
    if (logits.dim() != 2 || logits.size(0) != in.size(0) || logits.scalar_type() != at::kFloat) {
      throw shape_error(std::string("selmask::torch_network::") + fn + ": the network gave " +
                        std::string(logits.toString()) + " of " + std::to_string(logits.dim()) +
                        " dimensions for a batch of " + std::to_string(in.size(0)) +
                        " (expected float logits N×K)");
    }
    return logits;
  }
  /// The logits copied into a tensor of `B`.
  const tensor& logits_to_backend(const at::Tensor& logits) {
    const at::Tensor l = logits.detach().contiguous();
    const auto d = l.sizes();
    out_ = B::from_host(shape(d.begin(), d.end()),
                        std::span<const float>(l.data_ptr<float>(), static_cast<std::size_t>(l.numel())));
    return out_;
  }
  void write_tensors(std::ostream& os) {
    std::vector<at::Tensor> values;
    for (const at::Tensor& t : detail::torch_tensors(net_, true)) {
      values.push_back(t.detach());
    }
    torch::save(values, os);
  }
  /// Reads tensors written by `write_tensors` from `is` (`what` names it in errors) into the
  /// network's own tensors, after checking their number and shapes.
  void read_tensors(std::istream& is, const std::string& what) {
    constexpr const char* who = "selmask::torch_network: ";
    std::vector<at::Tensor> values;
    try {
      torch::load(values, is);
    } catch (const c10::Error& e) {
      throw io_error(who + ("cannot read " + what) + ": " + e.what_without_backtrace());
    }
    std::vector<at::Tensor> mine = detail::torch_tensors(net_, true);
    if (values.size() != mine.size()) {
      throw io_error(who + what + " holds " + std::to_string(values.size()) + " tensors, the network has " +
                     std::to_string(mine.size()) + " parameters and buffers");
    }
    for (std::size_t i = 0; i < mine.size(); ++i) {
      if (values[i].sizes() != mine[i].sizes()) {
        throw io_error(who + ("tensor " + std::to_string(i)) + " of " + what + " has shape " +
                       c10::str(values[i].sizes()) + ", the network's " + c10::str(mine[i].sizes()));
      }
    }
    const torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < mine.size(); ++i) {
      mine[i].copy_(values[i]);
    }
  }

  at::Tensor x_, logits_;
  tensor out_, gx_;
};

/// A libtorch network trained by a torch optimiser, as a trainable model on backend `B`.
template <tensor_backend B, class Net>
class torch_model : public torch_network<B, Net> {
public:
  /// `optimizer` updates `net`'s parameters (build it over `net->parameters()`).
  torch_model(Net net, std::unique_ptr<torch::optim::Optimizer> optimizer)
    : torch_network<B, Net>(std::move(net), true), opt_(std::move(optimizer)) {
    if (!opt_) {
      throw value_error(
        "selmask::torch_model: no optimiser (for a network with fixed weights use torch_network)");
    }
  }

  void step() { opt_->step(); }
  void zero_grad() { opt_->zero_grad(); }
  /// The rate of the first parameter group.
  [[nodiscard]] float learning_rate() const {
    return static_cast<float>(opt_->param_groups().at(0).options().get_lr());
  }
  /// Sets the rate of every parameter group.
  void set_learning_rate(float lr) {
    for (auto& group : opt_->param_groups()) {
      group.options().set_lr(static_cast<double>(lr));
    }
  }
  [[nodiscard]] torch::optim::Optimizer& optimizer() { return *opt_; }

  /// The network's tensors and the optimiser's state (moments, step counts) in a training state.
  void save_state(io::state_file& state, const std::string& prefix) {
    torch_network<B, Net>::save_state(state, prefix);
    std::ostringstream os;
    torch::save(*opt_, os);
    state.put(prefix + "optimizer", os.str());
  }
  void load_state(const io::state_file& state, const std::string& prefix) {
    torch_network<B, Net>::load_state(state, prefix);
    std::istringstream is(state.bytes(prefix + "optimizer"));
    try {
      torch::load(*opt_, is);
    } catch (const c10::Error& e) {
      throw io_error("selmask::torch_model: cannot read record " + prefix +
                     "optimizer: " + e.what_without_backtrace());
    }
  }

private:
  std::unique_ptr<torch::optim::Optimizer> opt_;
};

} // namespace selmask
