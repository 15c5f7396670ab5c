// A pipeline stage written by a user (examples/channel_affine.hpp): the bands of a synthetic
// remote-sensing scene are stored as raw values around 100 with spreads that differ per band. The
// pipeline takes them as stored: a per-band affine stage standardises them, then a channel(any)
// mask picks the bands to send; a dropped band reaches the network as 0, its mean. (The
// standardisation is a fixed function of each band, so the client applies it after the transfer.)
// Prints the bands kept and the accuracy at a small Q.
#include "channel_affine.hpp"

#include <selmask/nn/dense.hpp>
#include <selmask/nn/flatten.hpp>
#include <selmask/nn/sequential.hpp>
#include <selmask/selmask.hpp>
#include <selmask/train/trainer.hpp>

#include <cmath>
#include <cstdio>
#include <random>

namespace {
using B = selmask::cpu;

/// 16 bands of 3×3; bands 3, 8 and 12 decide the class (of 3). Band c is stored as
/// 100 + (1 + c)·z for a standard-normal z shifted by the class signal.
selmask::io::dataset make_scene(std::size_t n, std::uint64_t seed) {
  selmask::io::dataset d;
  d.sample = selmask::shape{16, 3, 3};
  d.classes = 3;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  const std::size_t informative[3] = {3, 8, 12};
  for (std::size_t i = 0; i < n; ++i) {
    const auto y = static_cast<std::int32_t>(rng() % 3);
    d.labels.push_back(y);
    for (std::size_t c = 0; c < 16; ++c) {
      float signal = 0.0f;
      for (std::size_t j = 0; j < 3; ++j) {
        if (c == informative[j]) {
          signal = y == static_cast<std::int32_t>(j) ? 1.5f : -0.5f;
        }
      }
      for (std::size_t p = 0; p < 9; ++p) {
        d.images.push_back(100.0f + static_cast<float>(1 + c) * (signal + noise(rng)));
      }
    }
  }
  return d;
}

/// Per band: scale = 1/std, shift = −mean/std of the training data.
user::channel_affine standardiser(const selmask::io::dataset& d) {
  const std::size_t bands = d.sample[0], plane = d.sample[1] * d.sample[2];
  user::channel_affine a;
  for (std::size_t c = 0; c < bands; ++c) {
    double s = 0.0, sq = 0.0;
    for (std::size_t i = 0; i < d.size(); ++i) {
      for (std::size_t p = 0; p < plane; ++p) {
        const double v = d.images[(i * bands + c) * plane + p];
        s += v;
        sq += v * v;
      }
    }
    const double count = static_cast<double>(d.size() * plane);
    const double mean = s / count, sd = std::sqrt(std::max(sq / count - mean * mean, 1e-12));
    a.scale.push_back(static_cast<float>(1.0 / sd));
    a.shift.push_back(static_cast<float>(-mean / sd));
  }
  return a;
}
} // namespace

int main() {
  const auto train = make_scene(1200, 1), val = make_scene(400, 2), test = make_scene(400, 3);

  using pipe = selmask::pipeline<user::channel_affine, selmask::any_mask<selmask::channel>>;
  pipe::on<B> masks(train.sample, /*seed=*/7, standardiser(train), selmask::any_mask<selmask::channel>{});
  using net_t = selmask::nn::sequential<B, selmask::nn::flatten<B>, selmask::nn::dense<B>>;
  selmask::nn::sequential_options no;
  no.seed = 7;
  no.optimizer.lr = 0.01f;
  net_t net(no, selmask::nn::flatten<B>{}, selmask::nn::dense<B>(16 * 9, 3));

  selmask::trainer_options opt;
  opt.lambda = 0.5f;
  opt.warmup_epochs = 2;
  opt.mask_epochs = 15;
  opt.batch_size = 50;
  opt.mask_optimizer.lr = 0.05f;
  const auto result =
    selmask::learn_selection_masks(masks, net, train, val, &test, opt, selmask::round_schedule{2, 1, 1.5f});

  std::printf("full data: test accuracy %.3f\n", result.full_test_accuracy);
  const auto* small = result.front.best_within(0.25);
  if (!small) {
    std::printf("no point with q <= 0.25\n");
    return 1;
  }
  std::printf("with %.1f %% of the bands (", 100 * small->q);
  for (std::size_t c = 0; c < 16; ++c) {
    if (small->masks[0][c] == 1.0f) {
      std::printf(" %zu", c);
    }
  }
  std::printf(" ): test accuracy %.3f\n", small->test_accuracy);
  return small->test_accuracy > 0.9 ? 0 : 1;
}
