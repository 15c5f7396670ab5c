// Dynamic pixel masks on Fashion-MNIST with LeNet: every image gets its own mask, computed by a
// small mask model from a preview of that image (selmask::dynamic_any_mask, mask/dynamic.hpp).
//
// The preview is a grid of pixels of the image itself (--stride 7: the 16 pixels at rows and
// columns 3, 10, 17, 24, i.e. 2.0 % of the pixels); the mask model maps those 16 values to one
// logit per pixel (--mask-model mlp, the default: 16 → 256 → 784 with a ReLU; linear: one dense
// layer), plus a learned static prior per pixel. The network sees the preview pixels and the
// pixels the mask chose (dropped pixels hold --fill, default 0); Q of an image counts both.
// Training (selmask::learn_dynamic_mask): --warmup epochs of the network alone, up to
// --mask-epochs epochs in which the budget controller steers λ so that the mean Q falls to
// --budget, then --fixate epochs with each image's mask projected onto exactly floor(budget·784)
// pixels (the preview's included) and the network fine-tuned to those masks (--no-exact: the
// masks as they are, without the projection).
//
//   fashion_mnist_dynamic [--out DIR] [--budget Q] [--stride S] [--mask-model linear|mlp]
//                         [--warmup N] [--mask-epochs N] [--fixate N] [--seeds N] [--seed S]
//                         [--mask-lr LR] [--prior-lr LR] [--budget-eta E] [--train-limit N]
//                         [--test-limit N] [--validation N] [--fill F] [--transfer N] [--no-exact]
//
// Writes to DIR (default out/fashion_dynamic): dynamic.csv (per seed: the test accuracy, the mean,
// smallest and largest Q of the test images, the validation accuracy), epochs_seed_S.csv (per
// epoch: phase, λ, training loss and Q, validation accuracy and Q), masks_seed_S.png (the first 10
// test images, above: the image, below: what the network sees — preview pixels red, chosen pixels
// as the image, the rest black) and summary.txt (the mean and spread over the seeds).
// With libcurl and nginx, the first seed's mask then fetches the first --transfer N (default 1000;
// 0: none) test images from a private nginx as a client would (dynamic_wire.hpp): transfer.csv
// gives the data and wire bytes per image, one image per exchange and 100 per exchange, without
// and with range coalescing, and through selmask's packing server (the client's decisions sent as
// bitmaps, POST /select), beside one GET of the whole file.
#include "command_line.hpp"
#if defined(SELMASK_EXAMPLE_WIRE)
#include "dynamic_wire.hpp"
#endif

#include <selmask/io/atomic_file.hpp>
#include <selmask/io/fashion_mnist.hpp>
#include <selmask/io/png.hpp>
#include <selmask/mask/dynamic.hpp>
#include <selmask/nn/dense.hpp>
#include <selmask/nn/lenet.hpp>
#include <selmask/nn/relu.hpp>
#include <selmask/nn/sequential.hpp>
#include <selmask/selmask.hpp>
#include <selmask/train/budget.hpp>
#include <selmask/train/dynamic.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using B = selmask::cpu;
namespace nn = selmask::nn;

struct arguments {
  std::filesystem::path out = "out/fashion_dynamic";
  double budget = 0.05;
  std::size_t stride = 7;
  std::string mask_model = "mlp";
  std::size_t warmup = 2;
  std::size_t mask_epochs = 24;
  std::size_t fixate = 6;
  std::size_t seeds = 1;
  std::uint64_t seed = 1;
  float mask_lr = 1e-3f;
  float prior_lr = 0.02f;
  float budget_eta = 12.0f;
  std::size_t train_limit = 0;
  std::size_t test_limit = 0;
  std::size_t validation = 5000;
  bool no_exact = false;
  float fill = 0.0f;
  std::size_t transfer = 1000;
};

struct seed_result {
  std::uint64_t seed;
  selmask::dynamic_result r;
};

/// Grey image on top, what the network sees below (preview red, chosen pixels grey, rest black).
void write_mask_picture(const std::filesystem::path& path, const selmask::io::dataset& test,
                        const std::vector<std::vector<std::size_t>>& kept,
                        const selmask::cell_preview& preview) {
  const std::size_t n = kept.size(), side = 28, scale = 3, w = n * (side + 2) * scale,
                    h = 2 * (side + 2) * scale;
  std::vector<std::uint8_t> px(w * h * 3, 255);
  const auto put = [&](std::size_t x, std::size_t y, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
    for (std::size_t dy = 0; dy < scale; ++dy)
      for (std::size_t dx = 0; dx < scale; ++dx) {
        std::uint8_t* p = &px[((y * scale + dy) * w + x * scale + dx) * 3];
        p[0] = r;
        p[1] = g;
        p[2] = b;
      }
  };
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<char> on(side * side, 0), pv(side * side, 0);
    for (std::size_t k : kept[i])
      on[k] = 1;
    for (std::size_t k : preview.cells)
      pv[k] = 1;
    for (std::size_t k = 0; k < side * side; ++k) {
      const auto v = static_cast<std::uint8_t>(std::lround(255.0f * test.images[i * side * side + k]));
      const std::size_t x = i * (side + 2) + 1 + k % side, y = k / side;
      put(x, 1 + y, v, v, v);
      if (pv[k])
        put(x, side + 3 + y, 230, 30, 30);
      else if (on[k])
        put(x, side + 3 + y, std::max<std::uint8_t>(v, 40), std::max<std::uint8_t>(v, 40),
            std::max<std::uint8_t>(v, 40));
      else
        put(x, side + 3 + y, 0, 0, 0);
    }
  }
  selmask::io::write_png_rgb(path, w, h, px);
}

/// The first seed's mask over nginx (dynamic_wire.hpp): bytes per image, written to transfer.csv.
template <class Mask, class Net>
void transfer_demo(const arguments& a, Mask& mask, Net& net, const selmask::io::dataset& test) {
#if defined(SELMASK_EXAMPLE_WIRE)
  std::string why;
  const auto rep = example::dynamic_wire<B>(
    mask, net, std::filesystem::path(selmask::io::fashion_mnist_default_dir) / "t10k-images-idx3-ubyte.gz",
    test.labels, a.transfer, why);
  if (!rep) {
    std::fprintf(stderr, "no dynamic transfer: %s\n", why.c_str());
    return;
  }
  std::string csv = "how,images_per_exchange,data_bytes_per_image,wire_bytes_per_image,requests\n";
  std::printf("dynamic transfer of %zu test images over nginx (network accuracy on what arrived %.4f):\n",
              rep->images, rep->accuracy);
  for (const auto& r : rep->rows) {
    char line[256];
    std::snprintf(line, sizeof line, "%s,%zu,%.2f,%.2f,%zu\n", r.how.c_str(), r.group, r.data, r.wire,
                  r.requests);
    csv += line;
    std::printf("  %-40s data %6.1f B, wire %7.1f B per image (%zu requests)\n", r.how.c_str(), r.data,
                r.wire, r.requests);
  }
  char full[128];
  std::snprintf(full, sizeof full, "whole file in one GET,%zu,784,%.2f,1\n", rep->images,
                rep->full_download_per_image);
  csv += full;
  std::printf("  %-40s data  784.0 B, wire %7.1f B per image (1 request)\n", "whole file in one GET",
              rep->full_download_per_image);
  selmask::io::write_file_atomically(a.out / "transfer.csv", csv);
#else
  (void)a, (void)mask, (void)net, (void)test;
  std::fprintf(stderr, "no dynamic transfer: built without libcurl (selmask::http)\n");
#endif
}

template <class MaskModel>
seed_result run_seed(const arguments& a, MaskModel& model, const selmask::io::dataset& train,
                     const selmask::io::dataset& validation, const selmask::io::dataset& test,
                     std::uint64_t seed) {
  const selmask::cell_preview preview = selmask::cell_preview::strided(train.sample, a.stride);
  selmask::dynamic_mask_options mo;
  mo.prior_optimizer.lr = a.prior_lr;
  mo.prior_optimizer.beta1 = 0.5f;
  mo.fill = a.fill;
  selmask::dynamic_any_mask<B, MaskModel> mask(train.sample, preview, model, mo, seed);
  nn::lenet<B> net(seed);

  const std::size_t cells = train.sample.size();
  const auto total = static_cast<std::size_t>(std::floor(a.budget * static_cast<double>(cells) + 1e-9));
  if (total <= preview.size()) {
    throw selmask::value_error("--budget " + std::to_string(a.budget) + " keeps " + std::to_string(total) +
                               " pixels, no more than the preview's " + std::to_string(preview.size()) +
                               " (use a larger budget or a larger --stride)");
  }
  selmask::dynamic_training_options opt;
  opt.warmup_epochs = a.warmup;
  opt.mask_epochs = a.mask_epochs;
  opt.fixation_epochs = a.fixate;
  opt.seed = seed;
  if (!a.no_exact) {
    opt.keep_per_sample = total - preview.size();
  }
  const std::size_t batches = (train.size() + opt.batch_size - 1) / opt.batch_size;
  const selmask::budget_controller controller{.target_q = a.budget,
                                              .by_epoch = a.mask_epochs,
                                              .eta = a.budget_eta / static_cast<float>(batches),
                                              .per_batch = true,
                                              .reach_fraction = 0.5};
  const std::filesystem::path log = a.out / ("epochs_seed_" + std::to_string(seed) + ".csv");
  std::ofstream csv(log);
  csv << "epoch,phase,lambda,train_loss,train_q,validation_accuracy,validation_q\n";
  const auto on_epoch = [&](const selmask::dynamic_epoch& e) {
    csv << e.epoch << ',' << selmask::phase_name(e.stage) << ',' << e.lambda << ',' << e.train_loss << ','
        << e.train_q << ',' << e.validation_accuracy << ',' << e.validation_q << '\n';
    csv.flush();
    std::fprintf(stderr,
                 "seed %llu epoch %zu %-11s lambda %.4f loss %.4f train Q %.4f  val acc %.4f Q %.4f\n",
                 static_cast<unsigned long long>(seed), e.epoch, selmask::phase_name(e.stage), e.lambda,
                 e.train_loss, e.train_q, e.validation_accuracy, e.validation_q);
  };
  seed_result out{
    seed, selmask::learn_dynamic_mask<B>(mask, net, train, validation, &test, opt, controller, on_epoch)};

  const std::size_t show = std::min<std::size_t>(10, test.size());
  std::vector<float> head(test.images.begin(),
                          test.images.begin() + static_cast<std::ptrdiff_t>(show * cells));
  const auto x = B::from_host(selmask::shape{show, 1, 28, 28}, head);
  write_mask_picture(a.out / ("masks_seed_" + std::to_string(seed) + ".png"), test,
                     mask.choose(mask.previews_of(x)), preview);
  if (seed == a.seed && a.transfer > 0) {
    transfer_demo(a, mask, net, test);
  }
  return out;
}

seed_result run_seed(const arguments& a, const selmask::io::dataset& train,
                     const selmask::io::dataset& validation, const selmask::io::dataset& test,
                     std::uint64_t seed) {
  const std::size_t p = selmask::cell_preview::strided(train.sample, a.stride).size();
  const std::size_t k = train.sample.size();
  const nn::sequential_options mo{.seed = seed + 1000, .optimizer = {.lr = a.mask_lr}};
  if (a.mask_model == "linear") {
    nn::sequential<B, nn::dense<B>> model(mo, nn::dense<B>(p, k));
    return run_seed(a, model, train, validation, test, seed);
  }
  if (a.mask_model == "mlp") {
    nn::sequential<B, nn::dense<B>, nn::relu<B>, nn::dense<B>> model(mo, nn::dense<B>(p, 256), nn::relu<B>{},
                                                                     nn::dense<B>(256, k));
    return run_seed(a, model, train, validation, test, seed);
  }
  throw selmask::value_error("--mask-model must be linear or mlp, got '" + a.mask_model + "'");
}

} // namespace

int main(int argc, char** argv) try {
  arguments a;
  example::command_line cl("fashion_mnist_dynamic");
  cl.option("--out", "DIR", a.out)
    .option("--budget", "Q", a.budget)
    .option("--stride", "S", a.stride)
    .option("--mask-model", "linear|mlp", a.mask_model)
    .option("--warmup", "N", a.warmup)
    .option("--mask-epochs", "N", a.mask_epochs)
    .option("--fixate", "N", a.fixate)
    .option("--seeds", "N", a.seeds)
    .option("--seed", "S", a.seed)
    .option("--mask-lr", "LR", a.mask_lr)
    .option("--prior-lr", "LR", a.prior_lr)
    .option("--budget-eta", "E", a.budget_eta)
    .option("--train-limit", "N", a.train_limit)
    .option("--test-limit", "N", a.test_limit)
    .option("--validation", "N", a.validation)
    .option("--fill", "F", a.fill)
    .option("--transfer", "N", a.transfer)
    .flag("--no-exact", a.no_exact);
  if (!cl.parse(argc, argv)) {
    return 2;
  }
  if (!(a.budget > 0.0 && a.budget <= 1.0)) {
    throw selmask::value_error("--budget must lie in (0, 1], got " + std::to_string(a.budget));
  }
  if (a.seeds == 0) {
    throw selmask::value_error("--seeds must be at least 1");
  }
  std::filesystem::create_directories(a.out);
  auto data =
    selmask::io::load_fashion_mnist(selmask::io::fashion_mnist_default_dir, a.train_limit, a.test_limit);
  std::vector<seed_result> runs;
  for (std::size_t s = 0; s < a.seeds; ++s) {
    const std::uint64_t seed = a.seed + s;
    auto [train, validation] =
      selmask::io::split(data.train, std::min(a.validation, data.train.size() / 2), seed);
    runs.push_back(run_seed(a, train, validation, data.test, seed));
  }

  std::ostringstream csv;
  csv << "seed,mask_model,budget,test_accuracy,test_mean_q,test_min_q,test_max_q,validation_accuracy,"
         "validation_q\n";
  double sum = 0.0, sum2 = 0.0, qsum = 0.0;
  for (const seed_result& s : runs) {
    const auto& t = *s.r.test;
    const auto [lo, hi] = std::minmax_element(t.sample_q.begin(), t.sample_q.end());
    csv << s.seed << ',' << a.mask_model << ',' << a.budget << ',' << t.accuracy << ',' << t.mean_q << ','
        << *lo << ',' << *hi << ',' << s.r.validation.accuracy << ',' << s.r.validation.mean_q << '\n';
    sum += t.accuracy;
    sum2 += t.accuracy * t.accuracy;
    qsum += t.mean_q;
  }
  const double n = static_cast<double>(runs.size());
  const double mean = sum / n;
  const double sd = runs.size() > 1 ? std::sqrt(std::max(0.0, (sum2 - n * mean * mean) / (n - 1.0))) : 0.0;
  char line[256];
  std::snprintf(line, sizeof line,
                "dynamic %s mask, budget %.3f: test accuracy %.4f +- %.4f over %zu seed(s), mean Q %.4f\n",
                a.mask_model.c_str(), a.budget, mean, sd, runs.size(), qsum / n);
  selmask::io::write_file_atomically(a.out / "dynamic.csv", csv.str());
  selmask::io::write_file_atomically(a.out / "summary.txt", std::string_view(line));
  std::fputs(line, stdout);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fashion_mnist_dynamic: %s\n", e.what());
  return 1;
}
