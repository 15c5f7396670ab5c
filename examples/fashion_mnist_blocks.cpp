// block(any) on Fashion-MNIST: LeNet learns jointly with an any-mask over 4×4 pixel blocks (7×7
// cells) which parts of the image to send — the main job's pixel(any) at a coarser granularity.
// Writes blocks_front.csv, blocks_front.png (and .svg, drawn by gnuplot from blocks_front.dat with
// the script blocks_front.gp) and blocks_mask_qXXX.png (the kept blocks over the average training
// image) to --out, and prints the front.
//
//   fashion_mnist_blocks [--quick] [--out DIR] [--mask-epochs N] [--lambda L] [--seed S]
#include "gnuplot.hpp"
#include "pictures.hpp"

#include <selmask/io/fashion_mnist.hpp>
#include <selmask/nn/lenet.hpp>
#include <selmask/selmask.hpp>
#include <selmask/train/trainer.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "command_line.hpp"

int main(int argc, char** argv) try {
  using B = selmask::cpu;
  constexpr std::size_t side = 4, grid = 28 / side;
  bool quick = false;
  std::filesystem::path out = "out/fashion_blocks";
  std::size_t mask_epochs = 0;
  float lambda = 0.2f;
  std::uint64_t seed = 1;
  example::command_line cl("fashion_mnist_blocks");
  cl.flag("--quick", quick)
    .option("--out", "DIR", out)
    .option("--mask-epochs", "N", mask_epochs)
    .option("--lambda", "L", lambda)
    .option("--seed", "S", seed);
  if (!cl.parse(argc, argv)) {
    return 2;
  }
  if (mask_epochs == 0) {
    mask_epochs = quick ? 3 : 15;
  }
  std::filesystem::create_directories(out);
  auto data = selmask::io::load_fashion_mnist(selmask::io::fashion_mnist_default_dir, quick ? 2500 : 0,
                                              quick ? 1000 : 0);
  auto [train, val] = selmask::io::split(data.train, quick ? 500 : 5000, seed);

  using pipe = selmask::pipeline<selmask::any_mask<selmask::block<side, side>>>;
  pipe::on<B> masks(train.sample, seed);
  selmask::nn::lenet<B> net(seed);
  selmask::trainer_options opt;
  opt.lambda = lambda;
  opt.warmup_epochs = quick ? 1 : 2;
  opt.mask_epochs = mask_epochs;
  opt.seed = seed;
  opt.mask_optimizer.lr = 0.02f;
  const auto result = selmask::learn_selection_masks(masks, net, train, val, &data.test, opt,
                                                     selmask::round_schedule{2, 1, 2.0f},
                                                     selmask::progress_display{quick ? 0u : 50u});

  const std::vector<float> mean = selmask::io::mean_image(train);
  std::string csv = "q,val_accuracy,test_accuracy,epoch,kept_blocks\n";
  selmask::io::plot_series curve{"test accuracy (front)", {}, {}, {}, selmask::io::marker_shape::circle};
  std::printf("\nfull data: test accuracy %.4f\nfront (4x4 blocks of 28x28; Pareto points chosen on "
              "validation):\n       q  val acc  test acc  kept blocks (of %zu)\n",
              result.full_test_accuracy, grid * grid);
  const auto points = result.front.pareto();
  for (const auto& p : points) {
    std::size_t kept = 0;
    std::vector<float> per_pixel(28 * 28);
    for (std::size_t y = 0; y < 28; ++y) {
      for (std::size_t x = 0; x < 28; ++x) {
        per_pixel[y * 28 + x] = p.masks[0][(y / side) * grid + x / side];
      }
    }
    for (float m : p.masks[0]) {
      kept += m == 1.0f ? 1u : 0u;
    }
    std::printf("  %6.4f   %.4f    %.4f  %zu\n", p.q, p.val_accuracy, p.test_accuracy, kept);
    char row[160];
    std::snprintf(row, sizeof row, "%.6f,%.6f,%.6f,%zu,%zu\n", p.q, p.val_accuracy, p.test_accuracy, p.epoch,
                  kept);
    csv += row;
    curve.x.push_back(p.q);
    curve.y.push_back(p.test_accuracy);
    char name[64];
    std::snprintf(name, sizeof name, "blocks_mask_q%.3f.png", p.q);
    selmask::io::mask_image(out / name, per_pixel, mean, 28, 28, 8);
  }
  selmask::io::write_file_atomically(out / "blocks_front.csv", [&](std::ostream& os) { os << csv; });
  selmask::io::plot_options po;
  po.title = "LeNet + block<4,4>(any) mask on Fashion-MNIST";
  po.x_label = "fraction of pixels kept (Q)";
  selmask::io::plot_xy(out / "blocks_front.png", {curve}, po);
  std::printf("wrote %s/{blocks_front.csv,blocks_front.{png,svg,dat,gp},blocks_mask_q*.png}\n",
              out.string().c_str());
  return points.empty() ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fashion_mnist_blocks: %s\n", e.what());
  return 1;
}
