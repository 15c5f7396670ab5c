#pragma once
/// \file nn/adamw.hpp
/// `nn::adamw<B>`: the AdamW optimiser (decoupled weight decay; AMSGrad by default) over any list
/// of (parameter, gradient) tensor pairs on backend `B` — the weights of an `nn::sequential`, or
/// the logits of selmask's masks (whose reference weight decay is 1e-7).
///
/// ```cpp
/// nn::adamw<cpu> opt({.lr = 1e-2f, .weight_decay = 1e-7f});
/// opt.add(mask.logits_for_update(), mask.grad());
/// ...  // forward, backward
/// opt.step();
/// opt.zero_grad();
/// ```
///
/// The optimiser keeps pointers to the tensors it updates: they must outlive it, and an owner
/// that is copied or moved calls `rebind` with the new addresses (the state carries over). The
/// per-parameter state (first and second moments, running maximum) lives on the backend and is
/// allocated once, in `add`. The update itself is `bk::adamw_step` (see `adamw_hyper`).

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "../backend/nn_backend.hpp"
#include "../backend/nn_ops.hpp"
#include "../error.hpp"
#include "../io/state_file.hpp"
#include "layer.hpp"

namespace selmask::nn {

template <nn_backend B>
class adamw {
public:
  using tensor = tensor_t<B>;
  using options = adamw_hyper;

  explicit adamw(const options& opt = {}) { set_options(opt); }

  /// Optimises `params[i]` with `grads[i]`.
  adamw(const std::vector<tensor*>& params, const std::vector<tensor*>& grads, const options& opt = {})
    : adamw(opt) {
    check_lists("selmask::nn::adamw", params, grads);
    for (std::size_t i = 0; i < params.size(); ++i) {
      add(*params[i], *grads[i]);
    }
  }

  /// Adds a parameter and its gradient (same number of values); its state starts at zero.
  void add(tensor& param, tensor& grad) {
    if (B::shape_of(param).size() != B::shape_of(grad).size()) {
      throw shape_error("selmask::nn::adamw::add: parameter of shape " + B::shape_of(param).str() +
                        " with a gradient of shape " + B::shape_of(grad).str());
    }
    const shape s = B::shape_of(param);
    entries_.push_back(
      entry{&param, &grad, B::zeros(s), B::zeros(s), opt_.amsgrad ? B::zeros(s) : B::zeros(shape{0})});
  }

  /// Points the optimiser at new tensors, in the order they were added, keeping the state (for
  /// an owner that was copied or moved). Sizes must match the ones added.
  void rebind(const std::vector<tensor*>& params, const std::vector<tensor*>& grads) {
    check_lists("selmask::nn::adamw::rebind", params, grads);
    if (params.size() != entries_.size()) {
      throw shape_error("selmask::nn::adamw::rebind: " + std::to_string(params.size()) +
                        " parameters for an optimiser of " + std::to_string(entries_.size()));
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      entries_[i].param = params[i];
      entries_[i].grad = grads[i];
    }
  }

  /// One update of every parameter with its accumulated gradient.
  void step() {
    ++steps_;
    for (entry& e : entries_) {
      bk::adamw_step<B>(*e.param, *e.grad, e.m, e.v, e.vmax, opt_, steps_);
    }
  }

  /// Sets every gradient to zero (shapes and memory kept).
  void zero_grad() {
    for (entry& e : entries_) {
      detail::fill_zero<B>(*e.grad);
    }
  }

  /// Forgets the moments and the step count (e.g. after loading other weights).
  void reset_state() {
    steps_ = 0;
    for (entry& e : entries_) {
      detail::fill_zero<B>(e.m);
      detail::fill_zero<B>(e.v);
      detail::fill_zero<B>(e.vmax);
    }
  }

  void set_learning_rate(float lr) {
    options o = opt_;
    o.lr = lr;
    set_options(o);
  }
  [[nodiscard]] float learning_rate() const noexcept { return opt_.lr; }

  /// Replaces the hyper-parameters (checked: lr, eps and weight decay finite and non-negative,
  /// eps positive, betas in [0, 1)). AMSGrad cannot be switched on once parameters were added.
  void set_options(const options& o) {
    const auto bad = [](const std::string& what) { throw value_error("selmask::nn::adamw: " + what); };
    if (!std::isfinite(o.lr) || o.lr < 0.0f) {
      bad("learning rate must be finite and >= 0, got " + std::to_string(o.lr));
    }
    if (!(o.beta1 >= 0.0f && o.beta1 < 1.0f) || !(o.beta2 >= 0.0f && o.beta2 < 1.0f)) {
      bad("betas must lie in [0, 1), got (" + std::to_string(o.beta1) + ", " + std::to_string(o.beta2) + ")");
    }
    if (!std::isfinite(o.eps) || o.eps <= 0.0f) {
      bad("eps must be finite and > 0, got " + std::to_string(o.eps));
    }
    if (!std::isfinite(o.weight_decay) || o.weight_decay < 0.0f) {
      bad("weight decay must be finite and >= 0, got " + std::to_string(o.weight_decay));
    }
    if (o.amsgrad && !opt_.amsgrad && !entries_.empty()) {
      bad("AMSGrad cannot be switched on after parameters were added");
    }
    opt_ = o;
  }
  [[nodiscard]] const options& settings() const noexcept { return opt_; }

  /// Number of updates made so far.
  [[nodiscard]] std::size_t steps() const noexcept { return steps_; }
  /// Number of parameter tensors.
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  /// Writes the optimiser's whole state — settings, step count, every parameter's moments — as
  /// record `name` of `state` (io/state_file.hpp); `load_state` restores it bit for bit into an
  /// optimiser holding the same parameters (same count and shapes: else `io_error`).
  void save_state(io::state_file& state, const std::string& name) const {
    io::record_writer w;
    w.put(opt_).put(static_cast<std::uint64_t>(steps_)).put(static_cast<std::uint64_t>(entries_.size()));
    for (const entry& e : entries_) {
      w.put_tensor<B>(e.m);
      w.put_tensor<B>(e.v);
      w.put_tensor<B>(e.vmax);
    }
    state.put(name, std::move(w));
  }
  void load_state(const io::state_file& state, const std::string& name) {
    io::record_reader r = state.reader(name);
    const auto o = r.get<options>();
    const auto steps = r.get<std::uint64_t>();
    const auto count = r.get<std::uint64_t>();
    if (count != entries_.size()) {
      r.fail(std::to_string(count) + " parameters in the state, the optimiser has " +
             std::to_string(entries_.size()));
    }
    std::vector<entry> loaded = entries_;
    for (std::size_t i = 0; i < loaded.size(); ++i) {
      const std::string what = "parameter " + std::to_string(i) + "'s ";
      r.get_tensor_into<B>(loaded[i].m, what + "first moment");
      r.get_tensor_into<B>(loaded[i].v, what + "second moment");
      r.get_tensor_into<B>(loaded[i].vmax, what + "running maximum");
    }
    r.finish();
    options merged = o;
    merged.amsgrad = opt_.amsgrad; // fixed once parameters were added; the state's must agree
    if (o.amsgrad != opt_.amsgrad) {
      r.fail(std::string("AMSGrad is ") + (o.amsgrad ? "on" : "off") + " in the state, " +
             (opt_.amsgrad ? "on" : "off") + " here");
    }
    set_options(merged);
    entries_ = std::move(loaded);
    steps_ = static_cast<std::size_t>(steps);
  }
  /// The state of parameter `i`: first moment, second moment, running maximum of the second.
  [[nodiscard]] const tensor& first_moment(std::size_t i) const { return entries_.at(i).m; }
  [[nodiscard]] const tensor& second_moment(std::size_t i) const { return entries_.at(i).v; }
  [[nodiscard]] const tensor& max_second_moment(std::size_t i) const { return entries_.at(i).vmax; }

private:
  struct entry {
    tensor* param;
    tensor* grad;
    tensor m, v, vmax;
  };

  static void check_lists(const char* where, const std::vector<tensor*>& params,
                          const std::vector<tensor*>& grads) {
    if (params.size() != grads.size()) {
      throw shape_error(std::string(where) + ": " + std::to_string(params.size()) + " parameters with " +
                        std::to_string(grads.size()) + " gradients");
    }
  }

  options opt_{};
  std::vector<entry> entries_;
  std::size_t steps_ = 0;
};

} // namespace selmask::nn
