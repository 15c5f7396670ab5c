#pragma once
/// \file train/front.hpp
/// The accuracy-versus-transferred-data front: per bucket of Q (default width 0.05), the epoch
/// with the best validation accuracy, with its masks, its test accuracy and (when the model can
/// be saved) its checkpoint. This is the main output of `learn_selection_masks`.

#include <cmath>
#include <cstddef>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../shape.hpp"

namespace selmask {

struct front_point {
  double q = 1.0;             ///< fraction of the data transferred (mask loss Q of the hard masks)
  double val_accuracy = 0.0;  ///< accuracy on the validation split (selects the point)
  double test_accuracy = NAN; ///< accuracy on the test set at the same epoch (NaN: no test set)
  std::size_t epoch = 0;
  float lambda = 0.0f;
  float tau = 1.0f;
  std::vector<std::vector<float>> masks; ///< the hard mask of every mask stage, host values
  std::vector<shape> mask_shapes;
  std::filesystem::path checkpoint; ///< saved model weights (empty when not saved)
};

class accuracy_front {
public:
  explicit accuracy_front(double bucket_width = 0.05) : width_(bucket_width) {
    if (!(bucket_width > 0.0) || bucket_width > 1.0) {
      throw value_error("selmask::accuracy_front: bucket width must be in (0, 1], got " +
                        std::to_string(bucket_width));
    }
  }
  [[nodiscard]] double bucket_width() const { return width_; }
  /// Bucket of a Q value: [0, w) → 0, [w, 2w) → 1, ...; Q = 1 has its own top bucket.
  [[nodiscard]] long bucket_of(double q) const { return static_cast<long>(std::floor(q / width_ + 1e-9)); }

  /// Keeps `p` if its bucket is empty or `p` beats the bucket's validation accuracy (ties: lower
  /// Q wins). Returns true when kept.
  bool offer(const front_point& p) {
    if (!would_accept(p)) {
      return false;
    }
    points_[bucket_of(p.q)] = p;
    return true;
  }
  /// Whether `offer(p)` would keep `p`.
  [[nodiscard]] bool would_accept(const front_point& p) const {
    const auto it = points_.find(bucket_of(p.q));
    return it == points_.end() || p.val_accuracy > it->second.val_accuracy ||
           (p.val_accuracy == it->second.val_accuracy && p.q < it->second.q);
  }
  /// Points in increasing Q.
  [[nodiscard]] std::vector<front_point> points() const {
    std::vector<front_point> v;
    for (const auto& [b, p] : points_) {
      v.push_back(p);
    }
    return v;
  }
  /// Points, in increasing Q, whose validation accuracy beats every point of lower Q.
  [[nodiscard]] std::vector<front_point> pareto() const {
    std::vector<front_point> v;
    double best = -std::numeric_limits<double>::infinity(); // scores may be negative (−MSE)
    for (const auto& p : points()) {
      if (p.val_accuracy > best) {
        v.push_back(p);
        best = p.val_accuracy;
      }
    }
    return v;
  }
  [[nodiscard]] std::size_t size() const { return points_.size(); }
  [[nodiscard]] bool empty() const { return points_.empty(); }
  /// The best point with Q ≤ `q_max` (by validation accuracy), or nullptr.
  [[nodiscard]] const front_point* best_within(double q_max) const {
    const front_point* best = nullptr;
    for (const auto& [b, p] : points_) {
      if (p.q <= q_max + 1e-12 && (!best || p.val_accuracy > best->val_accuracy)) {
        best = &p;
      }
    }
    return best;
  }

private:
  double width_;
  std::map<long, front_point> points_;
};

} // namespace selmask
