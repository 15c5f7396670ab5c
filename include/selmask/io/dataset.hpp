#pragma once
/// \file io/dataset.hpp
/// `selmask::io::dataset`: a labelled classification data set held in host memory, and what a
/// trainer does with one: validate it, split off a validation part, take subsets, normalise,
/// and cut epochs into batches gathered into reusable buffers.
///
/// Images are float32, row-major, `size() × sample` (e.g. `sample = [1,28,28]`); labels are class
/// indices in `[0, classes)`. Everything here is host-side; a trainer uploads a gathered batch
/// with `B::from_host(d.batch_shape(n), x)`.
///
/// Randomness (split, shuffled batches) comes from `std::mt19937_64` and a bounded draw written
/// here, not from `std::shuffle`/`std::uniform_int_distribution`, whose results differ between
/// standard libraries: the same seed gives the same split and the same batches everywhere.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../shape.hpp"

namespace selmask::io {

/// A data set: `size()` samples of shape `sample`, each with a class label in `[0, classes)`
/// (classification) and/or `target_size` real-valued targets (regression, e.g. for a
/// mean-squared-error loss). A regression data set may have no labels; then `size()` counts the
/// targets' samples and `classes` is 0.
struct dataset {
  shape sample;                     ///< per-sample extents, e.g. [1,28,28] (C×H×W)
  std::vector<float> images;        ///< `size() · sample.size()` values, sample after sample
  std::vector<std::int32_t> labels; ///< one class index per sample (empty: a regression set)
  std::size_t classes = 0;          ///< number of classes (0 without labels)
  std::vector<float> targets;       ///< `size() · target_size` values (empty: no targets)
  std::size_t target_size = 0;      ///< targets per sample

  /// Number of samples: the number of labels, or of target rows when there are no labels.
  [[nodiscard]] std::size_t size() const noexcept {
    if (!labels.empty() || target_size == 0) {
      return labels.size();
    }
    return targets.size() / target_size;
  }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  /// The shape of a batch of `n` samples: `sample` with `n` in front.
  [[nodiscard]] shape batch_shape(std::size_t n) const { return sample.prepend(n); }
  /// The values of sample `i` (unchecked beyond the span's own bounds).
  [[nodiscard]] std::span<const float> image(std::size_t i) const {
    const std::size_t per = sample.size();
    return std::span<const float>(images).subspan(i * per, per);
  }

  /// Throws unless the data set is usable for training: not empty (`value_error` "empty data
  /// set"), a non-empty sample shape and `classes > 0`, `images.size() == size()·sample.size()`
  /// (`shape_error`), every label in `[0, classes)` (`value_error` naming the index and the
  /// label), every value finite (`value_error` naming the sample and the value's position).
  void validate() const {
    const std::string where = "selmask::io::dataset::validate: ";
    if (empty()) {
      throw value_error(where + "empty data set (no labels" + (target_size ? " and no targets)" : ")"));
    }
    if (sample.rank() == 0 || sample.size() == 0) {
      throw shape_error(where + "sample shape " + sample.str() + " holds no values");
    }
    if (!labels.empty() && classes == 0) {
      throw value_error(where + "classes is 0 (expected at least 1)");
    }
    if (images.size() != size() * sample.size()) {
      throw shape_error(where + std::to_string(images.size()) + " image values for " +
                        std::to_string(size()) + " samples of sample shape " + sample.str() + " (expected " +
                        std::to_string(size() * sample.size()) + ")");
    }
    if (!targets.empty() || target_size != 0) {
      if (target_size == 0 || targets.size() != size() * target_size) {
        throw shape_error(where + std::to_string(targets.size()) + " target values for " +
                          std::to_string(size()) + " samples of " + std::to_string(target_size) +
                          " targets each (expected " + std::to_string(size() * target_size) + ")");
      }
      for (std::size_t k = 0; k < targets.size(); ++k) {
        if (!std::isfinite(targets[k])) {
          throw value_error(where + "target " + std::to_string(k % target_size) + " of sample " +
                            std::to_string(k / target_size) + " is not finite");
        }
      }
    }
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= classes) {
        throw value_error(where + "label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                          " is outside [0, " + std::to_string(classes) + ")");
      }
    }
    const std::size_t per = sample.size();
    for (std::size_t k = 0; k < images.size(); ++k) {
      if (!std::isfinite(images[k])) {
        throw value_error(where + "image " + std::to_string(k / per) + " contains " +
                          (std::isnan(images[k]) ? "NaN" : "infinity") + " at value " +
                          std::to_string(k % per));
      }
    }
  }
};

namespace detail {

/// splitmix64: turns a seed (and an epoch) into well-mixed 64-bit state.
constexpr std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// A uniform draw in `[0, bound)` (bound > 0), identical on every standard library.
inline std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t bound) {
  const std::uint64_t threshold = (0 - bound) % bound; // 2^64 mod bound
  for (;;) {
    const std::uint64_t r = rng();
    if (r >= threshold) {
      return r % bound;
    }
  }
}

/// Fisher–Yates shuffle of `v` with a generator seeded from `seed`.
inline void shuffle_seeded(std::span<std::size_t> v, std::uint64_t seed) {
  std::mt19937_64 rng(splitmix64(seed));
  for (std::size_t i = v.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(uniform_below(rng, i));
    std::swap(v[i - 1], v[j]);
  }
}

} // namespace detail

/// The samples at `indices` (in that order; repeats allowed), as a new data set.
/// Throws `value_error` naming the first index ≥ `d.size()`.
inline dataset subset(const dataset& d, std::span<const std::size_t> indices) {
  dataset out;
  out.sample = d.sample;
  out.classes = d.classes;
  out.target_size = d.target_size;
  const std::size_t per = d.sample.size();
  if (d.images.size() != d.size() * per) {
    throw shape_error("selmask::io::subset: the data set has " + std::to_string(d.images.size()) +
                      " image values for " + std::to_string(d.size()) + " samples of shape " +
                      d.sample.str());
  }
  const bool has_targets = d.target_size != 0 && d.targets.size() == d.size() * d.target_size;
  out.labels.reserve(d.labels.empty() ? 0 : indices.size());
  out.images.reserve(indices.size() * per);
  for (std::size_t i : indices) {
    if (i >= d.size()) {
      throw value_error("selmask::io::subset: index " + std::to_string(i) +
                        " is out of range for a data set of " + std::to_string(d.size()) + " samples");
    }
    if (!d.labels.empty()) {
      out.labels.push_back(d.labels[i]);
    }
    if (has_targets) {
      const auto t = std::span<const float>(d.targets).subspan(i * d.target_size, d.target_size);
      out.targets.insert(out.targets.end(), t.begin(), t.end());
    }
    const auto src = d.image(i);
    out.images.insert(out.images.end(), src.begin(), src.end());
  }
  return out;
}

/// The first `n` samples. Throws `value_error` if `n > d.size()`.
inline dataset subset(const dataset& d, std::size_t n) {
  if (n > d.size()) {
    throw value_error("selmask::io::subset: asked for the first " + std::to_string(n) +
                      " samples of a data set of " + std::to_string(d.size()));
  }
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  return subset(d, idx);
}

/// Splits `d` into `{training, validation}`: a seeded shuffle picks `n_validation` samples for
/// the validation part, the rest form the training part. Within each part the samples keep their
/// original relative order. Same seed, same split (on every platform).
/// Throws `value_error` if `n_validation > d.size()`.
inline std::pair<dataset, dataset> split(const dataset& d, std::size_t n_validation, std::uint64_t seed) {
  if (n_validation > d.size()) {
    throw value_error("selmask::io::split: n_validation " + std::to_string(n_validation) +
                      " exceeds the data set's " + std::to_string(d.size()) + " samples");
  }
  std::vector<std::size_t> perm(d.size());
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  detail::shuffle_seeded(perm, seed);
  const auto cut = perm.begin() + static_cast<std::ptrdiff_t>(n_validation);
  std::sort(perm.begin(), cut);
  std::sort(cut, perm.end());
  const std::span<const std::size_t> all(perm);
  dataset validation = subset(d, all.first(n_validation));
  dataset training = subset(d, all.subspan(n_validation));
  return {std::move(training), std::move(validation)};
}

/// `x ← (x − mean) / std` for every image value. Throws `value_error` unless `mean` is finite and
/// `std` is finite and positive.
inline void normalise(dataset& d, float mean, float std) {
  if (!std::isfinite(mean) || !std::isfinite(std) || !(std > 0.0f)) {
    throw value_error("selmask::io::normalise: mean " + std::to_string(mean) + " and std " +
                      std::to_string(std) + " must be finite, std positive");
  }
  const float inv = 1.0f / std;
  for (float& x : d.images) {
    x = (x - mean) * inv;
  }
}

/// Standardises every channel (the first extent of a C×H×W sample, e.g. a spectral band) of each
/// of `parts` with the mean and standard deviation of that channel over all of `reference`'s
/// values: `x ← (x − mean_c) / std_c` (a constant channel is only centred). Statistics come from
/// `reference` alone, so pass the training part there and every part, itself included, in `parts`.
/// Throws `value_error` for an empty reference, `shape_error` if a part's sample shape differs.
inline void standardise_channels(const dataset& reference, std::initializer_list<dataset*> parts) {
  if (reference.empty()) {
    throw value_error("selmask::io::standardise_channels: empty reference data set");
  }
  const std::size_t channels = reference.sample.rank() > 0 ? reference.sample[0] : 1;
  const std::size_t per = reference.sample.size() / std::max<std::size_t>(1, channels);
  std::vector<double> mean(channels, 0.0), sq(channels, 0.0);
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const auto img = reference.image(i);
    for (std::size_t k = 0; k < img.size(); ++k) {
      mean[k / per] += img[k];
      sq[k / per] += static_cast<double>(img[k]) * img[k];
    }
  }
  const double count = static_cast<double>(reference.size() * per);
  std::vector<float> m(channels), inv(channels);
  for (std::size_t c = 0; c < channels; ++c) {
    mean[c] /= count;
    const double var = sq[c] / count - mean[c] * mean[c];
    m[c] = static_cast<float>(mean[c]);
    inv[c] = var > 1e-12 ? static_cast<float>(1.0 / std::sqrt(var)) : 1.0f;
  }
  for (dataset* d : parts) {
    if (d->sample != reference.sample) {
      throw shape_error("selmask::io::standardise_channels: a part of sample shape " + d->sample.str() +
                        " for a reference of sample shape " + reference.sample.str());
    }
    for (std::size_t k = 0; k < d->images.size(); ++k) {
      const std::size_t c = (k / per) % channels;
      d->images[k] = (d->images[k] - m[c]) * inv[c];
    }
  }
}

/// The mean image (`sample.size()` values): the average over all samples, e.g. as the grey
/// background of a mask picture. Throws `value_error` for an empty data set.
inline std::vector<float> mean_image(const dataset& d) {
  if (d.empty()) {
    throw value_error("selmask::io::mean_image: empty data set");
  }
  const std::size_t per = d.sample.size();
  std::vector<double> acc(per, 0.0);
  for (std::size_t i = 0; i < d.size(); ++i) {
    const auto img = d.image(i);
    for (std::size_t k = 0; k < per; ++k) {
      acc[k] += img[k];
    }
  }
  std::vector<float> out(per);
  for (std::size_t k = 0; k < per; ++k) {
    out[k] = static_cast<float>(acc[k] / static_cast<double>(d.size()));
  }
  return out;
}

/// The order of samples in each epoch, cut into batches: consecutive runs of `batch_size`
/// indices of a permutation of `[0, n)` (the last batch may be shorter). With `shuffle`, epoch
/// `e`'s permutation depends only on `(seed, e)` — a resumed run sees the same batches — and
/// differs between epochs; without, it is `0, 1, …, n−1`.
///
/// `set_epoch` reorders in place: after construction nothing allocates.
class batch_sampler {
public:
  batch_sampler(std::size_t n, std::size_t batch_size, bool shuffle = true, std::uint64_t seed = 0)
    : order_(n), batch_size_(batch_size), shuffle_(shuffle), seed_(seed) {
    if (batch_size == 0) {
      throw value_error("selmask::io::batch_sampler: batch_size must be positive, got 0");
    }
    set_epoch(0);
  }

  /// Arranges the order for epoch `epoch`.
  void set_epoch(std::size_t epoch) {
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    if (shuffle_) {
      detail::shuffle_seeded(order_, detail::splitmix64(seed_) ^ static_cast<std::uint64_t>(epoch));
    }
  }

  /// Number of batches per epoch: ⌈n / batch_size⌉.
  [[nodiscard]] std::size_t batches() const noexcept {
    return (order_.size() + batch_size_ - 1) / batch_size_;
  }
  /// The indices of batch `b` (`b < batches()`).
  [[nodiscard]] std::span<const std::size_t> batch(std::size_t b) const {
    const std::size_t first = b * batch_size_;
    if (first >= order_.size()) {
      throw value_error("selmask::io::batch_sampler::batch: batch " + std::to_string(b) + " of " +
                        std::to_string(batches()));
    }
    return std::span<const std::size_t>(order_).subspan(first, std::min(batch_size_, order_.size() - first));
  }
  /// The whole epoch's order.
  [[nodiscard]] std::span<const std::size_t> order() const noexcept { return order_; }
  [[nodiscard]] std::size_t batch_size() const noexcept { return batch_size_; }

private:
  std::vector<std::size_t> order_;
  std::size_t batch_size_;
  bool shuffle_;
  std::uint64_t seed_;
};

/// The batches of epoch `epoch` as lists of indices (see `batch_sampler`).
inline std::vector<std::vector<std::size_t>> batch_indices(std::size_t n, std::size_t batch_size,
                                                           bool shuffle, std::uint64_t seed,
                                                           std::size_t epoch) {
  batch_sampler s(n, batch_size, shuffle, seed);
  s.set_epoch(epoch);
  std::vector<std::vector<std::size_t>> out;
  out.reserve(s.batches());
  for (std::size_t b = 0; b < s.batches(); ++b) {
    const auto idx = s.batch(b);
    out.emplace_back(idx.begin(), idx.end());
  }
  return out;
}

/// Copies the samples at `idx` into `x_out` (`idx.size() · sample.size()` floats) and their labels
/// into `y_out`, resizing both; once their capacity suffices (after the first full batch) nothing
/// allocates. Returns the batch's shape, `d.batch_shape(idx.size())`, for `B::from_host`.
/// Throws `value_error` naming an index ≥ `d.size()`.
inline shape gather_batch(const dataset& d, std::span<const std::size_t> idx, std::vector<float>& x_out,
                          std::vector<std::int32_t>& y_out) {
  const std::size_t per = d.sample.size();
  if (d.images.size() != d.size() * per) {
    throw shape_error("selmask::io::gather_batch: the data set has " + std::to_string(d.images.size()) +
                      " image values for " + std::to_string(d.size()) + " samples of shape " +
                      d.sample.str());
  }
  x_out.resize(idx.size() * per);
  y_out.resize(d.labels.empty() ? 0 : idx.size());
  for (std::size_t j = 0; j < idx.size(); ++j) {
    const std::size_t i = idx[j];
    if (i >= d.size()) {
      throw value_error("selmask::io::gather_batch: index " + std::to_string(i) +
                        " is out of range for a data set of " + std::to_string(d.size()) + " samples");
    }
    const auto src = d.image(i);
    std::copy(src.begin(), src.end(), x_out.begin() + static_cast<std::ptrdiff_t>(j * per));
    if (!d.labels.empty()) {
      y_out[j] = d.labels[i];
    }
  }
  return d.batch_shape(idx.size());
}

/// `gather_batch`, and the targets of the same samples into `t_out` (`idx.size() · target_size`
/// values; empty when the data set has none).
inline shape gather_batch(const dataset& d, std::span<const std::size_t> idx, std::vector<float>& x_out,
                          std::vector<std::int32_t>& y_out, std::vector<float>& t_out) {
  const shape s = gather_batch(d, idx, x_out, y_out);
  t_out.clear();
  if (d.target_size != 0) {
    if (d.targets.size() != d.size() * d.target_size) {
      throw shape_error("selmask::io::gather_batch: " + std::to_string(d.targets.size()) +
                        " target values for " + std::to_string(d.size()) + " samples of " +
                        std::to_string(d.target_size));
    }
    t_out.resize(idx.size() * d.target_size);
    for (std::size_t j = 0; j < idx.size(); ++j) {
      const auto t = std::span<const float>(d.targets).subspan(idx[j] * d.target_size, d.target_size);
      std::copy(t.begin(), t.end(), t_out.begin() + static_cast<std::ptrdiff_t>(j * d.target_size));
    }
  }
  return s;
}

} // namespace selmask::io
