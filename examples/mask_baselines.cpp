// The baselines a learned pixel mask has to beat, on Fashion-MNIST with LeNet: at each budget
// Q ∈ {0.02, 0.05, 0.10, 0.25} (k = round(Q·784) pixels) the same warm-up network is fine-tuned for
// the same number of epochs to each of
//   - random:       k pixels drawn uniformly (selmask::random_mask),
//   - mutual info:  the k pixels of largest plug-in mutual information with the label
//                   (model-free; selmask::mutual_information_ranking, 8 bins),
//   - saliency:     the k pixels of largest mean |∂loss/∂pixel| of the warm-up network
//                   (model-based; selmask::saliency_ranking),
// and, when --learned CSV is given, the learned masks' points read from the main job's front.csv
// (one run: the point of largest validation accuracy within each budget; --seeds N: the means);
// --dynamic A.csv,B.csv,... adds the dynamic masks' points from fashion_mnist_dynamic's dynamic.csv
// files (per budget, the means over their seeds); --reuse BASELINES_CSV takes the baselines from an
// earlier run's baselines.csv instead of training them again; --random-only trains the random
// masks only (e.g. with --epochs as long as the learned masks' schedule).
// Each baseline mask is frozen and the network trained to it with the trainer's final fixation
// (learning rate 1× the network's, no mask learning), so the comparison differs only in the mask.
//
//   mask_baselines [--out DIR] [--warmup N] [--epochs N] [--learned FILE] [--dynamic FILES]
//                  [--reuse BASELINES_CSV] [--random-only] [--train-limit N]
//                  [--test-limit N] [--validation N] [--seed S]
//
// Writes DIR/baselines.csv (method, budget, pixels, q, val_accuracy, test_accuracy) and
// DIR/baselines.png and .svg (test accuracy against the fraction of pixels kept, one series per
// method; drawn by gnuplot from baselines.dat with the script baselines.gp, see gnuplot.hpp).
#include "command_line.hpp"
#include "gnuplot.hpp"

#include <selmask/io/fashion_mnist.hpp>
#include <selmask/nn/lenet.hpp>
#include <selmask/selmask.hpp>
#include <selmask/train/baselines.hpp>
#include <selmask/train/trainer.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using B = selmask::cpu;
using pipe = selmask::pipeline<selmask::any_mask<selmask::pixel>>;
constexpr std::array<double, 4> budgets{0.02, 0.05, 0.10, 0.25};

struct row {
  std::string method;
  double budget;
  std::size_t pixels;
  double q, val, test;
};

/// The comma-separated cells of a CSV line (no quoting: the examples' CSVs have none).
std::vector<std::string> csv_cells(const std::string& line) {
  std::vector<std::string> v;
  std::stringstream ss(line);
  for (std::string cell; std::getline(ss, cell, ',');)
    v.push_back(cell);
  return v;
}

/// The trainer's options of every run here: `warmup` epochs on all pixels, then `epochs` mask
/// epochs that are all final fixation epochs (the mask stays as it is, the network trains).
selmask::trainer_options frozen_mask_options(std::size_t warmup, std::size_t epochs, std::uint64_t seed,
                                             const std::filesystem::path& dir) {
  selmask::trainer_options opt;
  opt.warmup_epochs = warmup;
  opt.mask_epochs = epochs;
  opt.final_fixation_epochs = epochs;
  opt.seed = seed;
  opt.mask_reach = selmask::mask_reach_policy::warn;
  opt.checkpoint_dir = dir;
  return opt;
}

/// Trains `net` (already warmed up) for `epochs` with the 0/1 `mask` frozen; the best validation
/// epoch's accuracies.
selmask::front_point fine_tune(selmask::nn::lenet<B>& net, const std::vector<float>& mask,
                               const selmask::io::dataset& train, const selmask::io::dataset& validation,
                               const selmask::io::dataset& test, std::size_t epochs, std::uint64_t seed,
                               const std::filesystem::path& dir) {
  pipe::on<B> masks(train.sample, seed);
  std::vector<float> logits(mask.size());
  for (std::size_t i = 0; i < mask.size(); ++i)
    logits[i] = mask[i] > 0.5f ? 10.0f : -10.0f;
  masks.for_each_mask([&](auto& m) { m.set_logits(B::from_host(m.geometry().grid_shape(), logits)); });
  const selmask::trainer_options opt = frozen_mask_options(0, epochs, seed, dir);
  const auto result =
    selmask::learn_selection_masks(masks, net, train, validation, &test, opt, selmask::training_policies<>{});
  if (!result.final_point)
    throw std::runtime_error("mask_baselines: the fine-tuning recorded no point");
  return *result.final_point;
}

/// The learned masks' points at each budget from the main job's front.csv (one run or --seeds).
std::vector<row> read_learned(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("mask_baselines: cannot read --learned " + path.string());
  std::string header;
  std::getline(in, header);
  std::vector<std::vector<double>> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<double> v;
    for (const std::string& cell : csv_cells(line))
      v.push_back(cell.empty() ? NAN : std::atof(cell.c_str()));
    rows.push_back(v);
  }
  std::vector<row> out;
  if (header.rfind("budget,seeds_reaching,mean_q,mean_test_accuracy", 0) == 0) { // --seeds N
    for (const auto& v : rows)
      if (v.size() >= 4 && std::isfinite(v[2]))
        out.push_back({"learned (mean of seeds)", v[0], static_cast<std::size_t>(std::lround(v[2] * 784)),
                       v[2], NAN, v[3]});
    return out;
  }
  if (header.rfind("q,val_accuracy,test_accuracy", 0) != 0)
    throw std::runtime_error("mask_baselines: " + path.string() +
                             " is not a front.csv of fashion_mnist_pixels");
  for (const double b : budgets) {
    const std::vector<double>* best = nullptr;
    for (const auto& v : rows)
      if (v.size() >= 3 && v[0] <= b + 1e-12 && (!best || v[1] > (*best)[1]))
        best = &v;
    if (best)
      out.push_back({"learned", b, static_cast<std::size_t>(std::lround((*best)[0] * 784)), (*best)[0],
                     (*best)[1], (*best)[2]});
  }
  return out;
}

/// The dynamic masks' points from fashion_mnist_dynamic's dynamic.csv files (one per budget; the
/// rows of a file are seeds): per budget the mean test Q and the mean test accuracy.
std::vector<row> read_dynamic(const std::string& files) {
  std::map<double, std::array<double, 4>> sums; // budget → Σq, Σacc, Σval, count
  std::stringstream list(files);
  for (std::string path; std::getline(list, path, ',');) {
    std::ifstream in(path);
    if (!in)
      throw std::runtime_error("mask_baselines: cannot read --dynamic " + path);
    std::string header;
    std::getline(in, header);
    if (header.rfind("seed,mask_model,budget,test_accuracy,test_mean_q", 0) != 0)
      throw std::runtime_error("mask_baselines: " + path + " is not a dynamic.csv of fashion_mnist_dynamic");
    for (std::string line; std::getline(in, line);) {
      const std::vector<std::string> v = csv_cells(line);
      if (v.size() < 9)
        throw std::runtime_error("mask_baselines: short row in " + path + ": " + line);
      auto& t = sums[std::atof(v[2].c_str())];
      t[0] += std::atof(v[4].c_str());
      t[1] += std::atof(v[3].c_str());
      t[2] += std::atof(v[7].c_str());
      t[3] += 1.0;
    }
  }
  std::vector<row> out;
  for (const auto& [b, t] : sums)
    out.push_back({"learned dynamic (mean of seeds)", b,
                   static_cast<std::size_t>(std::lround(t[0] / t[3] * 784)), t[0] / t[3], t[2] / t[3],
                   t[1] / t[3]});
  return out;
}

/// The rows of an earlier baselines.csv (to add learned points without training the baselines again).
std::vector<row> read_rows(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string header;
  if (!in || !std::getline(in, header) || header != "method,budget,pixels,q,val_accuracy,test_accuracy")
    throw std::runtime_error("mask_baselines: " + path.string() + " is not a baselines.csv");
  std::vector<row> out;
  for (std::string line; std::getline(in, line);) {
    const std::vector<std::string> v = csv_cells(line);
    if (v.size() != 6)
      throw std::runtime_error("mask_baselines: bad row in " + path.string() + ": " + line);
    if (v[0].rfind("learned", 0) == 0)
      continue; // learned points come from --learned / --dynamic
    out.push_back({v[0], std::atof(v[1].c_str()), static_cast<std::size_t>(std::atol(v[2].c_str())),
                   std::atof(v[3].c_str()), std::atof(v[4].c_str()), std::atof(v[5].c_str())});
  }
  return out;
}

/// Trains the warm-up network, then fine-tunes it to each baseline mask at each budget.
std::vector<row> train_baselines(const std::filesystem::path& out, std::size_t warmup, std::size_t epochs,
                                 std::size_t train_limit, std::size_t test_limit, std::size_t n_validation,
                                 std::uint64_t seed, bool random_only) {
  auto data =
    selmask::io::load_fashion_mnist(selmask::io::fashion_mnist_default_dir, train_limit, test_limit);
  auto [train, validation] = selmask::io::split(data.train, n_validation, seed);
  const std::size_t cells = train.sample[0] * train.sample[1] * train.sample[2];

  // the warm-up network on all pixels, saved so that every baseline starts from it
  selmask::nn::lenet<B> net(seed);
  const std::filesystem::path warm = out / "warmup.weights";
  {
    pipe::on<B> all(train.sample, seed);
    // all pixels kept (initial logits 3): the one fixation epoch is one more full-data epoch
    const selmask::trainer_options opt = frozen_mask_options(warmup, 1, seed, out / "checkpoints");
    const auto r = selmask::learn_selection_masks(all, net, train, validation, &data.test, opt,
                                                  selmask::training_policies<>{});
    std::printf("warm-up network: test accuracy %.4f on all pixels\n",
                r.final_point ? r.final_point->test_accuracy : NAN);
    net.save(warm);
  }
  const std::vector<float> mi = selmask::mutual_information_ranking(train, 8);
  const std::vector<float> saliency = selmask::saliency_ranking<B>(net, train);

  std::vector<row> rows;
  for (const double b : budgets) {
    const auto k = static_cast<std::size_t>(std::lround(b * static_cast<double>(cells)));
    const std::array<std::pair<const char*, std::vector<float>>, 3> masks{
      {{"random", selmask::random_mask(cells, k, seed + 1000)},
       {"mutual information top-k", selmask::top_k_mask(mi, k)},
       {"saliency top-k", selmask::top_k_mask(saliency, k)}}};
    for (const auto& [name, m] : masks) {
      if (random_only && std::string(name) != "random")
        continue;
      net.load(warm);
      const auto p = fine_tune(net, m, train, validation, data.test, epochs, seed, out / "checkpoints");
      rows.push_back({name, b, k, p.q, p.val_accuracy, p.test_accuracy});
      std::printf("Q %.2f (%3zu pixels) %-26s val %.4f test %.4f\n", b, k, name, p.val_accuracy,
                  p.test_accuracy);
      std::fflush(stdout);
    }
  }
  return rows;
}

void write_outputs(const std::filesystem::path& out, const std::vector<row>& rows) {
  std::string csv = "method,budget,pixels,q,val_accuracy,test_accuracy\n";
  std::map<std::string, selmask::io::plot_series> series;
  for (const row& r : rows) {
    char line[256];
    std::snprintf(line, sizeof line, "%s,%.2f,%zu,%.6f,%.6f,%.6f\n", r.method.c_str(), r.budget, r.pixels,
                  r.q, r.val, r.test);
    csv += line;
    auto& s = series[r.method];
    s.label = r.method;
    s.x.push_back(r.q);
    s.y.push_back(r.test);
  }
  selmask::io::write_file_atomically(out / "baselines.csv", [&](std::ostream& os) { os << csv; });
  std::vector<selmask::io::plot_series> all;
  for (auto& [name, s] : series)
    all.push_back(s);
  selmask::io::plot_options po;
  po.title = "learned masks against the baselines (LeNet, Fashion-MNIST)";
  po.x_max = 0.3;
  selmask::io::plot_xy(out / "baselines.png", std::span<const selmask::io::plot_series>(all), po);
  std::printf("wrote %s/{baselines.csv,baselines.{png,svg,dat,gp}}\n", out.string().c_str());
}

} // namespace

int main(int argc, char** argv) try {
  std::filesystem::path out = "out/baselines", learned, reuse;
  std::string dynamic;
  std::size_t warmup = 2, epochs = 3, train_limit = 0, test_limit = 0, n_validation = 5000;
  std::uint64_t seed = 1;
  bool random_only = false;
  example::command_line cl("mask_baselines");
  cl.option("--out", "DIR", out)
    .option("--warmup", "N", warmup)
    .option("--epochs", "N", epochs)
    .option("--learned", "FILE", learned)
    .option("--dynamic", "FILE[,FILE...]", dynamic)
    .option("--reuse", "BASELINES_CSV", reuse)
    .option("--train-limit", "N", train_limit)
    .option("--test-limit", "N", test_limit)
    .option("--validation", "N", n_validation)
    .option("--seed", "S", seed)
    .flag("--random-only", random_only);
  if (!cl.parse(argc, argv))
    return 2;
  if (epochs == 0)
    throw std::invalid_argument("mask_baselines: --epochs must be at least 1");
  std::filesystem::create_directories(out);
  std::vector<row> rows;
  if (!reuse.empty()) {
    rows = read_rows(reuse);
  } else {
    rows = train_baselines(out, warmup, epochs, train_limit, test_limit, n_validation, seed, random_only);
  }
  if (!learned.empty())
    for (const row& r : read_learned(learned))
      rows.push_back(r);
  if (!dynamic.empty())
    for (const row& r : read_dynamic(dynamic))
      rows.push_back(r);
  write_outputs(out, rows);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "mask_baselines: %s\n", e.what());
  return 1;
}
