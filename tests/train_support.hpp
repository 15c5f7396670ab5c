#pragma once
// The small training task shared by the trainer's tests: 12 bands of 3×3 of which 3 carry the
// class, and quick trainer settings that learn it in a few epochs.
#include <selmask/io/dataset.hpp>
#include <selmask/nn/dense.hpp>
#include <selmask/nn/flatten.hpp>
#include <selmask/nn/sequential.hpp>
#include <selmask/train/trainer.hpp>

#include <cstdint>
#include <random>

namespace selmask_test {
using selmask::shape;
using selmask::trainer_options;
using selmask::io::dataset;

/// 12 bands of 3×3; bands 1, 6 and 10 decide the class (3 classes), the others are noise.
inline dataset bands(std::size_t n, std::uint64_t seed) {
  dataset d;
  d.sample = shape{12, 3, 3};
  d.classes = 3;
  std::mt19937_64 r(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  const std::size_t informative[3] = {1, 6, 10};
  for (std::size_t i = 0; i < n; ++i) {
    const auto y = static_cast<std::int32_t>(r() % 3);
    d.labels.push_back(y);
    for (std::size_t c = 0; c < 12; ++c) {
      float shift = 0.0f;
      for (std::size_t j = 0; j < 3; ++j) {
        if (c == informative[j]) {
          shift = y == static_cast<std::int32_t>(j) ? 1.5f : -0.5f;
        }
      }
      for (std::size_t p = 0; p < 9; ++p) {
        d.images.push_back(shift + noise(r));
      }
    }
  }
  return d;
}

inline trainer_options quick_options() {
  trainer_options o;
  o.lambda = 0.5f;
  o.warmup_epochs = 2;
  o.mask_epochs = 12;
  o.batch_size = 40;
  o.mask_optimizer.lr = 0.05f;
  o.seed = 3;
  return o;
}

/// A dense network for `bands` (108 inputs, 3 classes), parameters drawn from `seed`.
template <class B>
using band_net = selmask::nn::sequential<B, selmask::nn::flatten<B>, selmask::nn::dense<B>>;
template <class B>
band_net<B> make_band_net(std::uint64_t seed, float lr = 1e-2f) {
  selmask::nn::sequential_options o;
  o.seed = seed;
  o.optimizer.lr = lr;
  return band_net<B>(o, selmask::nn::flatten<B>{}, selmask::nn::dense<B>(108, 3));
}

} // namespace selmask_test
