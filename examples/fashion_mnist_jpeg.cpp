// JPEG quality selection for a pre-trained, frozen network on Fashion-MNIST (the paper's Figure 10,
// on a reduced budget): extend<cached jpeg_ladder> → xor_mask<block<7, 7>> → merge<sum>, versions
// {raw, JPEG 90, 70, 50, 30, 10, nothing} with measured-bytes costs, each 7×7 block picking one.
//  1. pre-train a small MLP on the raw images (the pipeline starts on raw everywhere);
//  2. freeze it and learn the selection (no weight updates);
//  3. baseline: the same frozen network fed one fixed version for every image.
// Prints the baseline table, the learned front (Q = predicted fraction of the raw bytes) and the
// version each block chose.
//
//   fashion_mnist_jpeg [--quick] [--dir DIR]
#include <selmask/cost/measured.hpp>
#include <selmask/io/fashion_mnist.hpp>
#include <selmask/nn/nn.hpp>
#include <selmask/ops/jpeg.hpp>
#include <selmask/ops/versions.hpp>
#include <selmask/selmask.hpp>
#include <selmask/train/trainer.hpp>

#include <cstdio>
#include <string>

namespace {
using B = selmask::cpu;
namespace nn = selmask::nn;

/// A network used as it is: forward and backward (for ∂L/∂x), no step, so it stays frozen.
template <class Net>
struct frozen {
  Net* net;
  const B::tensor& forward(const B::tensor& x) { return net->forward(x); }
  const B::tensor& backward(const B::tensor& g) { return net->backward(g); }
};
} // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string dir(selmask::io::fashion_mnist_default_dir);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: fashion_mnist_jpeg [--quick] [--dir DIR]\n");
      return 2;
    }
  }
  try {
    auto data = selmask::io::load_fashion_mnist(dir, quick ? 4000 : 12000, quick ? 1000 : 5000);
    auto [train, val] = selmask::io::split(data.train, quick ? 1000 : 2000, 1);
    const auto& test = data.test;

    using ladder = selmask::jpeg_ladder<90, 70, 50, 30, 10>;
    const char* names[] = {"raw", "jpeg90", "jpeg70", "jpeg50", "jpeg30", "jpeg10", "nothing"};
    const auto measured = selmask::measure_version_costs(ladder{}, train, 2000);
    ladder op;
    op.version_costs = measured.relative;
    const auto cached = selmask::precompute_versions(op, train); // val and test are cached at first use

    using stage = selmask::extend<selmask::cached_versions<ladder>>;
    using mask = selmask::xor_mask<selmask::block<7, 7>>;
    using pipe = selmask::pipeline<stage, mask, selmask::merge<selmask::sum>>::on<B>;
    const selmask::shape sample = train.sample;

    // 1. pre-train on raw images
    using network = nn::sequential<B, nn::flatten<B>, nn::dense<B>, nn::relu<B>, nn::dense<B>>;
    network net(nn::sequential_options{1, {}}, nn::flatten<B>{}, nn::dense<B>(784, 128), nn::relu<B>{},
                nn::dense<B>(128, 10));
    {
      pipe p(sample, 1, stage{cached}, mask{}, {});
      selmask::trainer_options pre;
      pre.warmup_epochs = quick ? 3 : 8;
      pre.mask_epochs = 0;
      pre.batch_size = 64;
      selmask::learn_selection_masks(p, net, train, val, &test, pre, selmask::round_schedule{},
                                     selmask::progress_display{0});
    }
    frozen<network> fixed{&net};

    // 3. baseline: one fixed version for every image
    std::printf("\nbaseline, one version for every image (frozen network):\n");
    std::printf("%-8s %8s %10s\n", "version", "Q", "test acc");
    for (std::size_t v = 0; v < ladder::versions; ++v) {
      mask m;
      m.initial_version = v;
      pipe p(sample, 1, stage{cached}, m, {});
      const auto [acc, q] = selmask::evaluate(p, fixed, test);
      std::printf("%-8s %8.4f %10.4f\n", names[v], q, acc);
    }

    // 2. learn the selection for the frozen network
    pipe p(sample, 1, stage{cached}, mask{}, {});
    selmask::trainer_options opt;
    opt.lambda = 0.2f;
    opt.warmup_epochs = 0;
    opt.mask_epochs = quick ? 6 : 24;
    opt.batch_size = 64;
    opt.mask_optimizer.lr = 0.05f;
    const auto result = selmask::learn_selection_masks(
      p, fixed, train, val, &test, opt, selmask::round_schedule{2, 1, 1.5f}, selmask::progress_display{0});
    std::printf("\nlearned front (Q = predicted fraction of the raw bytes):\n");
    std::printf("%8s %10s %10s  versions per 7x7 block (0 raw .. 6 nothing)\n", "Q", "val acc", "test acc");
    for (const auto& pt : result.front.pareto()) {
      std::printf("%8.4f %10.4f %10.4f  ", pt.q, pt.val_accuracy, pt.test_accuracy);
      const auto& h = pt.masks[0]; // V × 16 one-hot
      const std::size_t cells = h.size() / ladder::versions;
      for (std::size_t k = 0; k < cells; ++k) {
        for (std::size_t v = 0; v < ladder::versions; ++v) {
          if (h[v * cells + k] == 1.0f) {
            std::printf("%zu", v);
          }
        }
      }
      std::printf("\n");
    }
  } catch (const selmask::error& e) {
    std::fprintf(stderr, "fashion_mnist_jpeg: %s\n", e.what());
    return 1;
  }
  return 0;
}
