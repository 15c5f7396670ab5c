// JPEG quality selection for a pre-trained, frozen LeNet on Fashion-MNIST (the paper's Figure 10):
// extend<cached jpeg_ladder> → xor_mask<block<8, 8>> → merge<sum>, versions {raw, JPEG 90, 70,
// 50, 30, 10, nothing}; each 8×8 block of the JPEG grid picks one version.
//  1. pre-train LeNet on the raw images (or load it: --weights FILE, saved there when missing);
//  2. measure what each block costs at each version on the wire (a restart-coded JPEG stream,
//     one segment per block; raw: a byte per value; nothing: 0), on training images;
//  3. baseline: the frozen network fed one fixed version for every image, with its bytes;
//  4. learn the selection for the frozen network (no weight updates) and compare: its front, the
//     bytes its costs predict and the bytes actually encoded on the test set.
// Writes jpeg_front.csv, jpeg_baseline.csv and jpeg_front.png to --out (with jpeg_front.svg, drawn by
// gnuplot from jpeg_front.dat with the script jpeg_front.gp; see gnuplot.hpp).
//
//   fashion_mnist_jpeg [--quick] [--dir DIR] [--out DIR] [--weights FILE] [--pretrain E]
//                      [--epochs E] [--lambda L] [--seed S]
//
// fashion_mnist_jpeg_torchscript compiles this file with SELMASK_EXAMPLE_TORCHSCRIPT defined: step 1
// loads a network trained elsewhere instead — a TorchScript file (`--torchscript FILE`, e.g. from
// `python3 examples/lenet_torchscript.py --out lenet.pt`), frozen through selmask::torch_network —
// the paper's case of a pre-trained network with a fixed input layout that lives in PyTorch.
//
//   fashion_mnist_jpeg_torchscript --torchscript FILE [--quick] [--dir DIR] [--out DIR] [--epochs E]
//                                  [--lambda L] [--seed S]
#if defined(SELMASK_EXAMPLE_TORCHSCRIPT)
#include <selmask/libtorch/model.hpp> // the libtorch headers first (selmask/libtorch/glog_check.hpp)
#endif
#include "gnuplot.hpp"

#include <selmask/cost/measured.hpp>
#include <selmask/io/fashion_mnist.hpp>
#include <selmask/model/adapters.hpp>
#include <selmask/nn/lenet.hpp>
#include <selmask/ops/jpeg.hpp>
#include <selmask/ops/versions.hpp>
#include <selmask/selmask.hpp>
#include <selmask/train/trainer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "command_line.hpp"

namespace {
using B = selmask::cpu;
using ladder = selmask::jpeg_ladder<90, 70, 50, 30, 10>;
constexpr std::size_t V = ladder::versions;
const char* const version_names[V] = {"raw", "jpeg90", "jpeg70", "jpeg50", "jpeg30", "jpeg10", "nothing"};

/// Bytes on the wire of every test image: per image, version and block (block stream), and per
/// image and version as one whole-image abbreviated JPEG (`jpeg_image_bytes`).
struct wire_bytes {
  std::size_t cells = 0;
  std::vector<float> per_block;   // N × V × cells
  std::vector<double> whole_mean; // V: mean bytes per image, one whole-image stream
  std::vector<double> block_mean; // V: mean bytes per image, the block stream
};

wire_bytes measure_wire(const ladder& op, const selmask::io::dataset& d) {
  wire_bytes w;
  w.whole_mean.assign(V, 0.0);
  w.block_mean.assign(V, 0.0);
  for (std::size_t i = 0; i < d.size(); ++i) {
    for (std::size_t v = 0; v < V; ++v) {
      const auto b = op.block_bytes(v, d.sample, d.image(i));
      if (w.cells == 0) {
        w.cells = b.size();
        w.per_block.resize(d.size() * V * w.cells);
      }
      std::size_t sum = 0;
      for (std::size_t k = 0; k < w.cells; ++k) {
        w.per_block[(i * V + v) * w.cells + k] = static_cast<float>(b[k]);
        sum += b[k];
      }
      w.block_mean[v] += static_cast<double>(sum);
      w.whole_mean[v] += static_cast<double>(op.encoded_bytes(v, d.sample, d.image(i)));
    }
  }
  for (std::size_t v = 0; v < V; ++v) {
    w.block_mean[v] /= static_cast<double>(d.size());
    w.whole_mean[v] /= static_cast<double>(d.size());
  }
  return w;
}

/// Accuracy of the fixed-version curve at `bytes`, linear between its points (sorted by bytes);
/// NaN outside its range.
double baseline_at(const std::vector<std::pair<double, double>>& curve, double bytes) {
  for (std::size_t i = 1; i < curve.size(); ++i) {
    const auto [b0, a0] = curve[i - 1];
    const auto [b1, a1] = curve[i];
    if (bytes >= b0 && bytes <= b1) {
      return b1 > b0 ? a0 + (a1 - a0) * (bytes - b0) / (b1 - b0) : std::max(a0, a1);
    }
  }
  return NAN;
}
} // namespace

int main(int argc, char** argv) try {
  namespace nn = selmask::nn;
  bool quick = false;
  std::string dir(selmask::io::fashion_mnist_default_dir);
  std::filesystem::path out = ".", weights, torchscript;
  std::size_t pretrain = 0, epochs = 0;
  float lambda = 0.05f;
  std::uint64_t seed = 1;
#if defined(SELMASK_EXAMPLE_TORCHSCRIPT)
  example::command_line cl("fashion_mnist_jpeg_torchscript");
#else
  example::command_line cl("fashion_mnist_jpeg");
#endif
  cl.flag("--quick", quick)
    .option("--dir", "DIR", dir)
    .option("--out", "DIR", out)
    .option("--epochs", "E", epochs)
    .option("--lambda", "L", lambda)
    .option("--seed", "S", seed);
#if defined(SELMASK_EXAMPLE_TORCHSCRIPT)
  cl.option("--torchscript", "FILE", torchscript);
#else
  cl.option("--weights", "FILE", weights).option("--pretrain", "E", pretrain);
#endif
  if (!cl.parse(argc, argv)) {
    return 2;
  }
#if defined(SELMASK_EXAMPLE_TORCHSCRIPT)
  if (torchscript.empty()) {
    std::fprintf(stderr, "fashion_mnist_jpeg_torchscript: --torchscript FILE is needed (python3 "
                         "examples/lenet_torchscript.py --out FILE writes one)\n");
    return 2;
  }
#endif
  if (pretrain == 0) {
    pretrain = quick ? 1 : 4;
  }
  if (epochs == 0) {
    epochs = quick ? 3 : 15;
  }
  std::filesystem::create_directories(out);

  auto data = selmask::io::load_fashion_mnist(dir, quick ? 3000 : 0, quick ? 1000 : 0);
  auto [train, val] = selmask::io::split(data.train, quick ? 500 : 5000, seed);
  const auto& test = data.test;
  const selmask::shape sample = train.sample;
  const double raw_bytes = static_cast<double>(sample.size());
  std::printf("train %zu, validation %zu, test %zu images\n", train.size(), val.size(), test.size());

  double full_test = NAN;
#if defined(SELMASK_EXAMPLE_TORCHSCRIPT)
  // 1. the pre-trained network, from its TorchScript file, frozen
  torch::jit::Module scripted;
  try {
    scripted = torch::jit::load(torchscript.string());
  } catch (const c10::Error& e) {
    throw selmask::io_error("cannot load the TorchScript file " + torchscript.string() + ": " +
                            e.what_without_backtrace());
  }
  selmask::torch_network<B, torch::jit::Module> fixed(std::move(scripted));
  std::printf("loaded the pre-trained TorchScript network from %s\n", torchscript.string().c_str());
#else
  // 1. pre-train LeNet on the raw images (or warm-start from saved weights)
  nn::lenet<B> net(seed);
  if (!weights.empty() && std::filesystem::exists(weights)) {
    net.load(weights);
    std::printf("loaded the pre-trained weights from %s\n", weights.string().c_str());
  } else {
    selmask::pipeline<selmask::any_mask<selmask::pixel>>::on<B> all_pixels(sample, seed);
    selmask::trainer_options pre;
    pre.warmup_epochs = pretrain;
    pre.mask_epochs = 0;
    pre.seed = seed;
    const auto r = selmask::learn_selection_masks(all_pixels, net, train, val, &test, pre,
                                                  selmask::round_schedule{}, selmask::progress_display{0});
    full_test = r.full_test_accuracy;
    if (!weights.empty()) {
      net.save(weights);
    }
  }
  selmask::frozen<nn::lenet<B>> fixed(net);
#endif

  // 2. costs per block and version, measured on training images
  const ladder op;
  const auto costs = selmask::measure_block_costs(op, train, quick ? 500 : 5000);
  const auto cached = selmask::precompute_versions(op, train); // val and test are cached at first use
  using stage = selmask::extend<selmask::cached_versions<ladder>>;
  using mask = selmask::xor_mask<selmask::block<8, 8>, selmask::st_softmax, selmask::table_cost>;
  using pipe = selmask::pipeline<stage, mask, selmask::merge<selmask::sum>>::on<B>;
  const std::size_t cells = costs.cells();

  // 3. baseline: one version for every image, frozen network
  const wire_bytes wire = measure_wire(op, test);
  std::printf("\nbaseline, one version for every image (frozen network; bytes per test image):\n");
  std::printf("%-8s %13s %13s %9s\n", "version", "whole-image", "block stream", "test acc");
  std::vector<std::pair<double, double>> curve; // (bytes, accuracy), the cheaper transport
  std::string base_csv = "version,whole_image_bytes,block_stream_bytes,bytes,fraction_of_raw,test_accuracy\n";
  for (std::size_t v = 0; v < V; ++v) {
    mask m;
    m.initial_version = v;
    m.cost.values = costs.relative;
    pipe p(sample, 1, stage{cached}, m, {});
    const double acc = selmask::evaluate(p, fixed, test).first;
    const double whole = v == 0 ? raw_bytes : wire.whole_mean[v];
    const double bytes = std::min(whole, wire.block_mean[v]);
    if (v == 0 && std::isnan(full_test)) {
      full_test = acc;
    }
    std::printf("%-8s %13.1f %13.1f %9.4f\n", version_names[v], whole, wire.block_mean[v], acc);
    curve.emplace_back(bytes, acc);
    char row[256];
    std::snprintf(row, sizeof row, "%s,%.2f,%.2f,%.2f,%.5f,%.5f\n", version_names[v], whole,
                  wire.block_mean[v], bytes, bytes / raw_bytes, acc);
    base_csv += row;
  }
  std::sort(curve.begin(), curve.end());

  // 4. learn the selection for the frozen network
  mask m;
  m.cost.values = costs.relative; // starts on raw everywhere, the most expensive version
  pipe p(sample, seed, stage{cached}, m, {});
  selmask::trainer_options opt;
  opt.lambda = lambda;
  opt.warmup_epochs = 0;
  opt.mask_epochs = epochs;
  opt.seed = seed;
  opt.mask_optimizer.lr = 0.05f;
  const auto result = selmask::learn_selection_masks(
    p, fixed, train, val, &test, opt, selmask::round_schedule{2, 1, 1.6f}, selmask::progress_display{0});

  std::printf("\nlearned front (frozen network; bytes per test image; predicted from the training costs):\n");
  std::printf("%8s %10s %10s %8s %9s %9s %9s  version of each 8x8 block (0 raw .. 6 nothing)\n", "Q",
              "predicted", "encoded", "error", "val acc", "test acc", "baseline");
  std::string front_csv = "q,predicted_bytes,encoded_bytes,relative_error,val_accuracy,test_accuracy,"
                          "baseline_accuracy_at_bytes,blocks\n";
  selmask::io::plot_series learned{
    "learned per-block selection", {}, {}, {}, selmask::io::marker_shape::circle};
  double worst_error = 0.0, worst_shortfall = -1.0;
  const selmask::front_point* half = nullptr;
  double half_bytes = 0.0;
  const auto points = result.front.pareto(); // `half` points into it
  for (const auto& pt : points) {
    std::vector<std::size_t> choice(cells, 0);
    std::string blocks;
    for (std::size_t k = 0; k < cells; ++k) {
      for (std::size_t v = 0; v < V; ++v) {
        if (pt.masks[0][v * cells + k] == 1.0f) {
          choice[k] = v;
        }
      }
      blocks += static_cast<char>('0' + choice[k]);
    }
    const double predicted = costs.predicted_bytes(choice);
    double encoded = 0.0;
    for (std::size_t i = 0; i < test.size(); ++i) {
      for (std::size_t k = 0; k < cells; ++k) {
        encoded += wire.per_block[(i * V + choice[k]) * cells + k];
      }
    }
    encoded /= static_cast<double>(test.size());
    const double error = encoded > 0.0 ? (predicted - encoded) / encoded : 0.0;
    const double base = baseline_at(curve, encoded);
    worst_error = std::max(worst_error, std::abs(error));
    if (!std::isnan(base)) {
      worst_shortfall = std::max(worst_shortfall, base - pt.test_accuracy);
    }
    if (encoded <= 0.5 * raw_bytes && pt.test_accuracy >= full_test - 0.01 &&
        (half == nullptr || pt.q < half->q)) {
      half = &pt;
      half_bytes = encoded;
    }
    std::printf("%8.4f %10.1f %10.1f %+7.2f%% %9.4f %9.4f %9.4f  %s\n", pt.q, predicted, encoded,
                100.0 * error, pt.val_accuracy, pt.test_accuracy, base, blocks.c_str());
    char row[256];
    std::snprintf(row, sizeof row, "%.6f,%.2f,%.2f,%.5f,%.5f,%.5f,%.5f,%s\n", pt.q, predicted, encoded, error,
                  pt.val_accuracy, pt.test_accuracy, base, blocks.c_str());
    front_csv += row;
    learned.x.push_back(encoded / raw_bytes);
    learned.y.push_back(pt.test_accuracy);
  }
  selmask::io::write_file_atomically(out / "jpeg_front.csv", [&](std::ostream& os) { os << front_csv; });
  selmask::io::write_file_atomically(out / "jpeg_baseline.csv", [&](std::ostream& os) { os << base_csv; });
  selmask::io::plot_series fixed_curve{
    "one JPEG quality for every image", {}, {}, {}, selmask::io::marker_shape::square};
  for (const auto& [b, a] : curve) {
    if (b > 0.0) {
      fixed_curve.x.push_back(b / raw_bytes);
      fixed_curve.y.push_back(a);
    }
  }
  selmask::io::plot_options po;
#if defined(SELMASK_EXAMPLE_TORCHSCRIPT)
  po.title = "frozen TorchScript LeNet, JPEG version per 8x8 block";
#else
  po.title = "frozen LeNet, JPEG version per 8x8 block";
#endif
  po.x_label = "bytes sent per test image / raw bytes per image";
  po.y_min = std::max(0.0, full_test - 0.15);
  po.y_max = std::min(1.0, full_test + 0.03);
  selmask::io::plot_xy(out / "jpeg_front.png", {learned, fixed_curve}, po);

  std::printf("\nfull data (raw, frozen network): test accuracy %.4f\n", full_test);
  if (half != nullptr) {
    std::printf(
      "<= 50 %% of the raw bytes with <= 1 point lost: met (%.1f bytes = %.1f %% of raw, test %.4f)\n",
      half_bytes, 100.0 * half_bytes / raw_bytes, half->test_accuracy);
  } else {
    std::printf("<= 50 %% of the raw bytes with <= 1 point lost: NOT met\n");
  }
  std::printf("largest shortfall below the fixed-quality curve at equal bytes: %.2f points (target <= 0.5)\n",
              100.0 * worst_shortfall);
  std::printf("largest |predicted - encoded| / encoded bytes: %.2f %% (target <= 2 %%)\n",
              100.0 * worst_error);
  std::printf("wrote %s/{jpeg_front.csv,jpeg_baseline.csv,jpeg_front.{png,svg,dat,gp}}\n",
              out.string().c_str());
  return points.empty() ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fashion_mnist_jpeg: %s\n", e.what());
  return 1;
}
