// A channel(any) mask on synthetic remote-sensing data (io/synthetic.hpp): 128 correlated spectral
// bands of 4×4 patches, 4 land-cover classes, of which only a few bands carry the class signal.
// A small network (flatten, dense, relu, dense) learns jointly with the mask which bands to send;
// the program prints the kept bands, the bands the generator made informative, and test accuracy.
//
//   remote_channels [--quick]     (--quick: a reduced budget of a few seconds, as run by ctest)
#include <selmask/io/synthetic.hpp>
#include <selmask/nn/nn.hpp>
#include <selmask/selmask.hpp>
#include <selmask/train/trainer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {
/// Standardises every band with the training part's per-band mean and standard deviation.
void standardise_bands(const selmask::io::dataset& train, std::vector<selmask::io::dataset*> parts) {
  const std::size_t bands = train.sample[0], hw = train.sample[1] * train.sample[2];
  std::vector<double> mean(bands, 0.0), sq(bands, 0.0);
  for (std::size_t i = 0; i < train.size(); ++i) {
    const auto img = train.image(i);
    for (std::size_t k = 0; k < img.size(); ++k) {
      mean[k / hw] += img[k];
      sq[k / hw] += static_cast<double>(img[k]) * img[k];
    }
  }
  const double count = static_cast<double>(train.size() * hw);
  std::vector<float> m(bands), inv(bands);
  for (std::size_t b = 0; b < bands; ++b) {
    mean[b] /= count;
    m[b] = static_cast<float>(mean[b]);
    inv[b] = static_cast<float>(1.0 / std::sqrt(std::max(sq[b] / count - mean[b] * mean[b], 1e-12)));
  }
  for (auto* d : parts) {
    for (std::size_t k = 0; k < d->images.size(); ++k) {
      const std::size_t b = (k / hw) % bands;
      d->images[k] = (d->images[k] - m[b]) * inv[b];
    }
  }
}
} // namespace

int main(int argc, char** argv) {
  using B = selmask::cpu;
  namespace nn = selmask::nn;
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (argc > 1 && !quick) {
    std::fprintf(stderr, "usage: remote_channels [--quick]\n");
    return 2;
  }
  try {
    const selmask::io::remote_options scene{}; // 128 bands, 4×4 pixels, 4 classes, seed 1
    const std::size_t n_train = quick ? 800 : 3000;
    auto train = selmask::io::make_remote(n_train, scene, 1);
    auto val = selmask::io::make_remote(quick ? 300 : 1000, scene, 2);
    auto test = selmask::io::make_remote(quick ? 300 : 1000, scene, 3);
    const selmask::io::dataset raw_train = train.data;
    standardise_bands(raw_train, {&train.data, &val.data, &test.data});
    const std::size_t bands = scene.bands;

    using pipe = selmask::pipeline<selmask::any_mask<selmask::channel>>;
    pipe::on<B> masks(train.data.sample, /*seed=*/7);
    using network = nn::sequential<B, nn::flatten<B>, nn::dense<B>, nn::relu<B>, nn::dense<B>>;
    network net(nn::sequential_options{3, {3e-3f, 0.5f, 0.999f, 1e-8f, 1e-4f, true}}, nn::flatten<B>{},
                nn::dense<B>(train.data.sample.size(), 32), nn::relu<B>{}, nn::dense<B>(32, scene.classes));

    selmask::trainer_options opt;
    opt.lambda = 0.1f;
    opt.warmup_epochs = quick ? 2 : 3;
    opt.mask_epochs = quick ? 8 : 24;
    opt.batch_size = 50;
    opt.mask_optimizer.lr = 0.05f;
    const auto result =
      selmask::learn_selection_masks(masks, net, train.data, val.data, &test.data, opt,
                                     selmask::round_schedule{2, 1, 1.5f}, selmask::progress_display{0});

    std::printf("informative bands (generator):");
    for (std::size_t b : train.informative) {
      std::printf(" %zu", b);
    }
    std::printf("\nfull data: test accuracy %.3f\n", result.full_test_accuracy);
    std::printf("front (q = fraction of bands sent):\n    q    val   test  kept bands\n");
    for (const auto& p : result.front.pareto()) {
      std::printf("%6.4f  %.3f  %.3f ", p.q, p.val_accuracy, p.test_accuracy);
      for (std::size_t c = 0; c < bands; ++c) {
        if (p.masks[0][c] == 1.0f) {
          std::printf(" %zu", c);
        }
      }
      std::printf("\n");
    }
    const auto* small = result.front.best_within(0.1);
    if (small == nullptr) {
      std::printf("no front point sends at most 10 %% of the bands\n");
      return 1;
    }
    std::size_t kept = 0, kept_informative = 0, kept_signature = 0;
    for (std::size_t c = 0; c < bands; ++c) {
      if (small->masks[0][c] == 1.0f) {
        ++kept;
        kept_informative += std::count(train.informative.begin(), train.informative.end(), c) > 0 ? 1u : 0u;
        kept_signature += std::count(train.signature.begin(), train.signature.end(), c) > 0 ? 1u : 0u;
      }
    }
    std::printf(
      "with %zu of %zu bands: test accuracy %.3f (full data %.3f); kept %zu of %zu informative bands, "
      "%zu of %zu signature (feature centre) bands\n",
      kept, bands, small->test_accuracy, result.full_test_accuracy, kept_informative,
      train.informative.size(), kept_signature, train.signature.size());
    return small->test_accuracy >= 0.8 ? 0 : 1;
  } catch (const selmask::error& e) {
    std::fprintf(stderr, "remote_channels: %s\n", e.what());
    return 1;
  }
}
