#pragma once
/// \file model/adapters.hpp
/// Model adapters: wrappers that turn a network into the model a trainer should see.
///
/// - `frozen<Net>`: the network used as it is — `forward` and `backward` (for ∂L/∂x), no `step`,
///   so the trainer never changes its weights (the paper's case of a pre-trained network with a
///   fixed input layout, whose masks are learned through extend → xor_mask → merge).
/// - `standardised<B, Net>`: a fixed per-channel affine map `z = (x − mean_c) · inv_std_c` in front
///   of the network, so that masks and extend stages see the data in its stored range while the
///   network sees it centred and scaled; ∂L/∂x = ∂L/∂z · inv_std_c. The network's members that a
///   trainer uses when present (`step`, `zero_grad`, `learning_rate`, `set_learning_rate`, `save`,
///   `load`) are forwarded. Runs on the core of the backend concept only.

#include <cstddef>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "../backend/backend.hpp"
#include "../backend/ops.hpp"
#include "../error.hpp"
#include "../granularity/geometry.hpp"

namespace selmask {

template <class Net>
class frozen {
public:
  explicit frozen(Net& net) : net_(&net) {}
  template <class T>
  decltype(auto) forward(const T& x) {
    return net_->forward(x);
  }
  template <class T>
  decltype(auto) backward(const T& g) {
    return net_->backward(g);
  }
  [[nodiscard]] Net& network() { return *net_; }

private:
  Net* net_;
};

template <tensor_backend B, class Net>
class standardised {
public:
  using tensor = tensor_t<B>;

  /// `mean` and `inv_std`: one value per channel (`inv_std` finite and non-zero).
  standardised(Net net, std::vector<float> mean, std::vector<float> inv_std)
    : net_(std::move(net)), mean_(std::move(mean)), inv_std_(std::move(inv_std)) {
    if (mean_.size() != inv_std_.size() || mean_.empty()) {
      throw shape_error("selmask::standardised: " + std::to_string(mean_.size()) + " means and " +
                        std::to_string(inv_std_.size()) +
                        " inverse deviations (expected one of each per channel)");
    }
  }

  const tensor& forward(const tensor& x) {
    prepare(B::shape_of(x));
    B::scale_cells(x, scale_, geometry_, z_);
    B::scale_cells(ones_, shift_, geometry_, tmp_);
    B::axpy(1.0f, tmp_, z_);
    return net_.forward(z_);
  }
  const tensor& backward(const tensor& g) {
    const tensor& gz = net_.backward(g);
    B::scale_cells(gz, scale_, geometry_, gx_);
    return gx_;
  }

  void step() requires requires(Net& n) { n.step(); }
  { net_.step(); }
  void zero_grad() requires requires(Net& n) { n.zero_grad(); }
  { net_.zero_grad(); }
  [[nodiscard]] float learning_rate() const requires requires(const Net& n) { n.learning_rate(); }
  { return static_cast<float>(net_.learning_rate()); }
  void set_learning_rate(float lr) requires requires(Net& n, float r) { n.set_learning_rate(r); }
  { net_.set_learning_rate(lr); }
  void save(const std::filesystem::path& p) requires requires(Net& n) { n.save(p); }
  { net_.save(p); }
  void load(const std::filesystem::path& p) requires requires(Net& n) { n.load(p); }
  { net_.load(p); }
  [[nodiscard]] Net& network() { return net_; }

private:
  void prepare(const shape& s) {
    if (s.rank() != 4 || s[1] != mean_.size()) {
      throw shape_error("selmask::standardised::forward: input of shape " + s.str() + " for " +
                        std::to_string(mean_.size()) + " channels (expected N×" +
                        std::to_string(mean_.size()) + "×H×W)");
    }
    if (B::shape_of(ones_) == s) {
      return;
    }
    geometry_ = cell_geometry::make({1, s[1], s[2], s[3]}, {1, 1, s[2], s[3]});
    std::vector<float> shift(mean_.size());
    for (std::size_t c = 0; c < mean_.size(); ++c) {
      shift[c] = -mean_[c] * inv_std_[c];
    }
    scale_ = B::from_host(geometry_.grid_shape(), inv_std_);
    shift_ = B::from_host(geometry_.grid_shape(), shift);
    ones_ = bk::full<B>(s, 1.0f);
  }

  Net net_;
  std::vector<float> mean_, inv_std_;
  cell_geometry geometry_;
  tensor scale_, shift_, ones_, z_, tmp_, gx_;
};

} // namespace selmask
