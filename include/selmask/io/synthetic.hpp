#pragma once
/// \file io/synthetic.hpp
/// Synthetic multi-spectral ("remote sensing") data with the properties the paper relies on:
/// many strongly correlated spectral bands, of which only a few carry the class signal, and a
/// generator that knows which ones.
///
/// `make_remote(n, options)` draws `n` patches of `bands × height × width` values:
///  1. *Material spectra* (`options.materials`, drawn once from `options.seed`): smooth curves over
///     the bands, each a base level plus three wide Gaussian bumps (width 8–30 % of the band
///     range), values in about [0.05, 0.8] — the shared, class-independent background
///     (vegetation, soil, water...). Neighbouring bands are therefore strongly correlated.
///  2. *Land-cover classes* (`options.classes`): class `k` has one narrow absorption-like feature,
///     a Gaussian of width `feature_width` bands centred on a signature band drawn once (distinct
///     between classes, away from the edges).
///  3. A patch (a land parcel): abundances of the materials drawn per patch (U(0, 1) each), varied
///     per pixel by a factor U(0.8, 1.2) and normalised to sum 1 — the same distribution for every
///     class —, times a per-patch illumination factor in [0.8, 1.2]; the
///     class feature with per-patch amplitude `signal`·U(0.7, 1) added to every pixel; then
///     Gaussian noise of standard deviation `noise` on every value.
///
/// Labels are uniform over the classes. The *informative bands* are those where some class
/// feature reaches at least 5 % of its peak (centre ± ⌈2.45·feature_width⌉ − 1, about 3 bands per
/// class with the defaults): only they separate the classes; every other band is a mix of the
/// class-independent materials plus noise. The same `(n, options)` give the same data on every
/// platform (only `std::mt19937_64` and hand-written draws are used).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../shape.hpp"
#include "dataset.hpp"

namespace selmask::io {

/// Settings of `make_remote` (see the file comment).
struct remote_options {
  std::size_t bands = 128;
  std::size_t height = 4;
  std::size_t width = 4;
  std::size_t materials = 5;
  std::size_t classes = 4;
  float feature_width = 0.8f; ///< standard deviation of a class feature, in bands
  float signal = 0.12f;       ///< peak amplitude of a class feature
  float noise = 0.03f;        ///< standard deviation of the per-value noise
  std::uint64_t seed = 1;     ///< the spectra and signature bands (the scene)
};

/// A generated data set with what the generator knows about it.
struct remote_data {
  dataset data;
  std::vector<std::vector<float>> spectra; ///< materials × bands
  std::vector<std::size_t> signature;      ///< per class, the centre band of its feature
  std::vector<std::size_t> informative;    ///< sorted bands that carry the class signal
};

namespace detail {

/// U[0, 1) from 53 random bits (identical on every standard library).
inline double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

/// N(0, 1) by Box–Muller (identical on every standard library).
inline double standard_normal(std::mt19937_64& rng) {
  const double u1 = 1.0 - uniform01(rng); // (0, 1]
  const double u2 = uniform01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

} // namespace detail

/// `n` patches of the scene `options.seed`; `sample_seed` draws the patches (use different ones
/// for training, validation and test parts of the same scene). Throws `value_error` for fewer
/// than 2 classes, more classes than fit in the bands, or non-positive extents / widths.
inline remote_data make_remote(std::size_t n, const remote_options& o, std::uint64_t sample_seed) {
  const std::string who = "selmask::io::make_remote: ";
  if (o.bands == 0 || o.height == 0 || o.width == 0 || o.materials == 0) {
    throw value_error(who + "bands, height, width and materials must be positive");
  }
  if (o.classes < 2) {
    throw value_error(who + "at least 2 classes are needed, got " + std::to_string(o.classes));
  }
  if (!(o.feature_width > 0.0f) || !std::isfinite(o.signal) || !(o.noise >= 0.0f)) {
    throw value_error(who + "feature_width must be positive, signal finite and noise >= 0");
  }
  const auto reach = static_cast<std::size_t>(std::ceil(2.45 * static_cast<double>(o.feature_width)));
  if (o.bands < 2 * reach + 3 * o.classes) {
    throw value_error(who + std::to_string(o.classes) + " class features of width " +
                      std::to_string(o.feature_width) + " do not fit in " + std::to_string(o.bands) +
                      " bands");
  }
  remote_data r;
  const double nb = static_cast<double>(o.bands);

  // the scene: material spectra and signature bands
  std::mt19937_64 scene(detail::splitmix64(o.seed));
  r.spectra.assign(o.materials, std::vector<float>(o.bands));
  for (auto& s : r.spectra) {
    const double base = 0.05 + 0.15 * detail::uniform01(scene);
    double centre[3], width[3], height[3];
    for (int k = 0; k < 3; ++k) {
      centre[k] = nb * detail::uniform01(scene);
      width[k] = nb * (0.08 + 0.22 * detail::uniform01(scene));
      height[k] = 0.2 * detail::uniform01(scene);
    }
    for (std::size_t b = 0; b < o.bands; ++b) {
      double v = base;
      for (int k = 0; k < 3; ++k) {
        const double d = (static_cast<double>(b) - centre[k]) / width[k];
        v += height[k] * std::exp(-0.5 * d * d);
      }
      s[b] = static_cast<float>(v);
    }
  }
  // distinct signature bands more than 2·reach apart (any band after many failed draws)
  for (std::size_t attempt = 0; r.signature.size() < o.classes; ++attempt) {
    const std::size_t b = reach + static_cast<std::size_t>(detail::uniform_below(scene, o.bands - 2 * reach));
    const bool clear = std::all_of(r.signature.begin(), r.signature.end(),
                                   [&](std::size_t s) { return (b > s ? b - s : s - b) > 2 * reach; });
    if (clear || attempt > 10000) {
      r.signature.push_back(b);
    }
  }
  std::vector<std::vector<float>> feature(o.classes, std::vector<float>(o.bands));
  std::vector<bool> informative(o.bands, false);
  for (std::size_t k = 0; k < o.classes; ++k) {
    for (std::size_t b = 0; b < o.bands; ++b) {
      const double d =
        (static_cast<double>(b) - static_cast<double>(r.signature[k])) / static_cast<double>(o.feature_width);
      const double g = std::exp(-0.5 * d * d);
      feature[k][b] = static_cast<float>(g);
      if (g >= 0.05) {
        informative[b] = true;
      }
    }
  }
  for (std::size_t b = 0; b < o.bands; ++b) {
    if (informative[b]) {
      r.informative.push_back(b);
    }
  }

  // the patches
  std::mt19937_64 rng(detail::splitmix64(sample_seed ^ detail::splitmix64(o.seed)));
  dataset& d = r.data;
  d.sample = shape{o.bands, o.height, o.width};
  d.classes = o.classes;
  const std::size_t hw = o.height * o.width;
  d.images.resize(n * d.sample.size());
  d.labels.resize(n);
  std::vector<double> mix(o.materials), patch_mix(o.materials);
  for (std::size_t i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(detail::uniform_below(rng, o.classes));
    d.labels[i] = static_cast<std::int32_t>(k);
    const double light = 0.8 + 0.4 * detail::uniform01(rng);
    const double amp = static_cast<double>(o.signal) * (0.7 + 0.3 * detail::uniform01(rng));
    float* img = d.images.data() + i * d.sample.size();
    for (double& m : patch_mix) {
      m = detail::uniform01(rng) + 1e-3;
    }
    for (std::size_t p = 0; p < hw; ++p) {
      double total = 0.0;
      for (std::size_t m = 0; m < o.materials; ++m) {
        mix[m] = patch_mix[m] * (0.8 + 0.4 * detail::uniform01(rng));
        total += mix[m];
      }
      for (std::size_t b = 0; b < o.bands; ++b) {
        double v = 0.0;
        for (std::size_t m = 0; m < o.materials; ++m) {
          v += mix[m] / total * static_cast<double>(r.spectra[m][b]);
        }
        v = light * v + amp * static_cast<double>(feature[k][b]) +
            static_cast<double>(o.noise) * detail::standard_normal(rng);
        img[b * hw + p] = static_cast<float>(v);
      }
    }
  }
  return r;
}

} // namespace selmask::io
