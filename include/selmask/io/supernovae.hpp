#pragma once
/// \file io/supernovae.hpp
/// Synthetic supernova light curves, a stand-in for survey data that cannot be had here:
/// brightness in a few filters over time,
/// where the class shows in the shape of the curve and in its colours.
///
/// `make_supernovae(n, options, sample_seed)` draws `n` samples of shape `filters × 1 × times`
/// (C×H×W: channel = filter, width = observation epoch, one day apart), so that a channel mask
/// chooses filters, a pixel mask observation epochs and a subpixel mask single measurements.
/// Time `t` runs over 0 … times−1 days; a sample's flux in filter `f` is
///
///     flux(f, t) = A · c_k(f) · shape_k(t − t0) + noise,
///
/// with per-sample peak day `t0 ~ U(0.15, 0.45)·times`, amplitude `A ~ U(0.5, 1.5)` (distance) and
/// Gaussian noise of standard deviation `noise`. Per class `k` (time scales in days, each
/// multiplied per sample by U(0.85, 1.15)):
///  - class 0, "Ia-like": rise exp(−(s/8)²/2) before the peak, decline exp(−s/25) after it, plus a
///    second bump of 0.35·exp(−((s−30)/8)²/2) in the reddest filter; colours blue to red
///    1.0, 0.9, 0.75, 0.7 (cycled for more filters);
///  - class 1, "II-P-like": rise exp(−(s/6)²/2), then 0.8 + 0.2·exp(−s/5) (a plateau at 0.8)
///    until day 70 after the peak, then a drop 0.8·exp(−(s−70)/8); colours 0.6, 0.8, 1.0, 1.0;
///  - class 2, "Ib/c-like": rise exp(−(s/5)²/2), decline exp(−s/12); colours 0.5, 0.7, 1.0, 1.1.
/// (`s = t − t0`; every shape is 1 at the peak.) Labels are uniform over the
/// `classes` (2 or 3: the first classes of the list). The same `(n, options, sample_seed)` give
/// the same data on every platform (only `std::mt19937_64` and hand-written draws are used).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../shape.hpp"
#include "dataset.hpp"
#include "synthetic.hpp"

namespace selmask::io {

/// Settings of `make_supernovae` (see the file comment).
struct supernova_options {
  std::size_t filters = 4; ///< channels, blue to red
  std::size_t times = 120; ///< observation epochs, one day apart
  std::size_t classes = 3; ///< 2 or 3
  float noise = 0.05f;     ///< standard deviation of the per-value noise
};

/// A generated data set with what the generator knows about it.
struct supernova_data {
  dataset data;
  std::vector<float> peak_day; ///< per sample, `t0`
};

namespace detail {
/// The light-curve shape of class `k` at `s` days after the peak, time scales multiplied by `stretch`.
inline double supernova_shape(std::size_t k, double s, double stretch) {
  const double x = s / stretch;
  switch (k) {
    case 0:
      return x < 0.0 ? std::exp(-0.5 * (x / 8.0) * (x / 8.0)) : std::exp(-x / 25.0);
    case 1:
      if (x < 0.0) {
        return std::exp(-0.5 * (x / 6.0) * (x / 6.0));
      }
      return x < 70.0 ? 0.8 + 0.2 * std::exp(-x / 5.0) : 0.8 * std::exp(-(x - 70.0) / 8.0);
    default:
      return x < 0.0 ? std::exp(-0.5 * (x / 5.0) * (x / 5.0)) : std::exp(-x / 12.0);
  }
}
/// The colour factor of class `k` in filter `f` of `filters` (blue to red, the list cycled).
inline double supernova_colour(std::size_t k, std::size_t f) {
  static constexpr double colours[3][4] = {{1.0, 0.9, 0.75, 0.7}, {0.6, 0.8, 1.0, 1.0}, {0.5, 0.7, 1.0, 1.1}};
  return colours[k][f % 4];
}
} // namespace detail

/// `n` light curves drawn with `sample_seed` (use different seeds for training, validation and
/// test). Throws `value_error` for no filters, fewer than 40 epochs, classes other than 2 or 3,
/// or a negative or non-finite noise.
inline supernova_data make_supernovae(std::size_t n, const supernova_options& o, std::uint64_t sample_seed) {
  const std::string who = "selmask::io::make_supernovae: ";
  if (o.filters == 0) {
    throw value_error(who + "at least one filter is needed");
  }
  if (o.times < 40) {
    throw value_error(who + "at least 40 observation epochs are needed, got " + std::to_string(o.times));
  }
  if (o.classes < 2 || o.classes > 3) {
    throw value_error(who + "classes must be 2 or 3, got " + std::to_string(o.classes));
  }
  if (!(o.noise >= 0.0f) || !std::isfinite(o.noise)) {
    throw value_error(who + "noise must be finite and >= 0, got " + std::to_string(o.noise));
  }
  supernova_data r;
  dataset& d = r.data;
  d.sample = shape{o.filters, 1, o.times};
  d.classes = o.classes;
  d.images.resize(n * d.sample.size());
  d.labels.resize(n);
  r.peak_day.resize(n);
  std::mt19937_64 rng(detail::splitmix64(sample_seed ^ 0x5375706e6f766165ULL));
  const double nt = static_cast<double>(o.times);
  for (std::size_t i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(detail::uniform_below(rng, o.classes));
    d.labels[i] = static_cast<std::int32_t>(k);
    const double t0 = nt * (0.15 + 0.3 * detail::uniform01(rng));
    const double amp = 0.5 + detail::uniform01(rng);
    const double stretch = 0.85 + 0.3 * detail::uniform01(rng);
    r.peak_day[i] = static_cast<float>(t0);
    float* img = d.images.data() + i * d.sample.size();
    for (std::size_t f = 0; f < o.filters; ++f) {
      const double colour = detail::supernova_colour(k, f);
      const bool reddest = f + 1 == o.filters;
      for (std::size_t t = 0; t < o.times; ++t) {
        const double s = static_cast<double>(t) - t0;
        double v = detail::supernova_shape(k, s, stretch);
        if (k == 0 && reddest) {
          const double b = (s / stretch - 30.0) / 8.0;
          v += 0.35 * std::exp(-0.5 * b * b);
        }
        img[f * o.times + t] =
          static_cast<float>(amp * colour * v + static_cast<double>(o.noise) * detail::standard_normal(rng));
      }
    }
  }
  return r;
}

} // namespace selmask::io
