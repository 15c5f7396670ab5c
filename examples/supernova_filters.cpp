// Which parts of a light curve to send: synthetic supernova light curves (io/supernovae.hpp; 4
// filters × 120 daily epochs, 3 classes told apart by the curve's shape and colours) seen through
// an any-mask of block<1, 4> granularity — one cell is 4 consecutive days of one filter, 120 cells —
// learnt jointly with a small MLP (flatten, dense, relu, dense). The program prints the full-data
// accuracy and the front, and writes
//  - supernova_filters_front.csv / .png: the front (test accuracy vs fraction of the values sent),
//  - supernova_filters_mask.png: the kept (filter, day) cells of one front point (the smallest Q
//    whose validation accuracy is within 1 point of full data), under each class's mean curve;
// both figures are drawn by gnuplot (with .svg) from the .dat and .gp files beside them.
//
//   supernova_filters [--quick] [--noise X] [--seed N] [--out DIR]
//     --quick: a reduced budget of a few seconds, as run by ctest
// Exit status 1 only when training fails or the chosen point's test accuracy is below 0.7.
#include "gnuplot.hpp"

#include <selmask/io/csv.hpp>
#include <selmask/io/supernovae.hpp>
#include <selmask/nn/nn.hpp>
#include <selmask/selmask.hpp>
#include <selmask/train/trainer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "command_line.hpp"

namespace {
constexpr std::size_t block_days = 4;

/// The kept (filter, day) cells of `mask` (filters × ⌈times/4⌉ cells) as "f0:0-3 f0:4-7 ..." runs.
std::string kept_runs(const std::vector<float>& mask, std::size_t filters, std::size_t times) {
  const std::size_t cols = (times + block_days - 1) / block_days;
  std::string s;
  for (std::size_t f = 0; f < filters; ++f) {
    for (std::size_t j = 0; j < cols;) {
      if (mask[f * cols + j] != 1.0f) {
        ++j;
        continue;
      }
      std::size_t k = j;
      while (k < cols && mask[f * cols + k] == 1.0f) {
        ++k;
      }
      s += (s.empty() ? "" : " ") + std::string("f") + std::to_string(f) + ":" +
           std::to_string(j * block_days) + "-" + std::to_string(std::min(k * block_days, times) - 1);
      j = k;
    }
  }
  return s;
}

/// A gnuplot figure (light curves are plots, not pictures): one panel per filter, days along x,
/// the kept cells shaded orange and each class's mean light curve drawn over them.
void draw_mask(const std::filesystem::path& path, const std::vector<float>& mask,
               const selmask::io::dataset& data, const std::string& title) {
  namespace io = selmask::io;
  namespace gp = io::gp;
  const std::size_t filters = data.sample[0], times = data.sample[2];
  const std::size_t cols = (times + block_days - 1) / block_days;
  // class means
  std::vector<double> mean(data.classes * filters * times, 0.0);
  std::vector<double> count(data.classes, 0.0);
  double hi = 0.0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    const auto k = static_cast<std::size_t>(data.labels[i]);
    const auto img = data.image(i);
    count[k] += 1.0;
    for (std::size_t v = 0; v < filters * times; ++v) {
      mean[k * filters * times + v] += img[v];
    }
  }
  for (std::size_t k = 0; k < data.classes; ++k) {
    for (std::size_t v = 0; v < filters * times; ++v) {
      mean[k * filters * times + v] /= std::max(count[k], 1.0);
      hi = std::max(hi, mean[k * filters * times + v]);
    }
  }
  const char* const class_names[3] = {"Ia-like", "II-P-like", "Ib/c-like"};
  io::gnuplot_figure fig;
  fig.about = title;
  fig.width = 1000;
  fig.height = 130 + 170 * filters;
  fig.data =
    "# index 0: the mean light curve of every class; columns day, then for filter 0, 1, ... the mean "
    "flux of class 0, 1, ... (column 2 + filter * " +
    std::to_string(data.classes) + " + class)\n";
  for (std::size_t t = 0; t < times; ++t) {
    fig.data += std::to_string(t);
    for (std::size_t f = 0; f < filters; ++f) {
      for (std::size_t k = 0; k < data.classes; ++k) {
        fig.data += " " + gp::number(mean[(k * filters + f) * times + t]);
      }
    }
    fig.data += "\n";
  }
  fig.data +=
    "\n\n# index 1: the cells of the mask; columns filter, first day, last day, sent (1) or not (0)\n";
  for (std::size_t f = 0; f < filters; ++f) {
    for (std::size_t j = 0; j < cols; ++j) {
      fig.data += std::to_string(f) + " " + std::to_string(j * block_days) + " " +
                  std::to_string(std::min((j + 1) * block_days, times) - 1) + " " +
                  (mask[f * cols + j] == 1.0f ? "1" : "0") + "\n";
    }
  }
  std::string names;
  for (std::size_t k = 0; k < data.classes; ++k) {
    names += std::string(k == 0 ? "" : ", ") + gp::quote(class_names[k % 3]);
  }
  std::string& g = fig.setup;
  g = "filters = " + std::to_string(filters) + "\n";
  g += "classes = " + std::to_string(data.classes) + "\n";
  g += "array class_name[classes] = [" + names + "]\n";
  g += "# the mean curve of class k is drawn with line style k + 1\n";
  for (std::size_t k = 0; k < data.classes; ++k) {
    g += "set style line " + std::to_string(k + 1) + " lc " + gp::colour(io::colours::palette[k]) + " lw 2\n";
  }
  g += "cell_colour = " + gp::quote("#fdc896") + " # the cells sent\n";
  g += "set style fill solid 1.0 noborder\n";
  g += "set xrange [-0.5:" + gp::number(static_cast<double>(times) - 0.5) + "]\n";
  const double y_top = hi > 0.0 ? 1.08 * hi : 1.0;
  const double raw_step = y_top / 4.0, magnitude = std::pow(10.0, std::floor(std::log10(raw_step)));
  const double f_step = raw_step / magnitude;
  const double step = (f_step < 1.5 ? 1.0 : f_step < 3.5 ? 2.0 : f_step < 7.5 ? 5.0 : 10.0) * magnitude;
  g += "y_top = " + gp::number(y_top) + "\n";
  g += "set yrange [0:y_top]\n";
  g += "set xtics 0,20 out nomirror\n";
  g += "set ytics 0," + gp::number(step) + " out nomirror\n";
  g += "set lmargin 12\n";
  g += "set rmargin 4\n";
  g += "set key top right horizontal opaque box\n";
  std::string& p = fig.plot;
  p = "  set multiplot layout filters,1 title " + gp::quote(title + "\norange: the 4-day cells sent") + "\n";
  p += "  do for [f=0:filters-1] {\n";
  p += "    set ylabel sprintf('filter %d: mean flux', f)\n";
  p += "    if (f == filters - 1) { set xlabel 'day' } else { unset xlabel }\n";
  p += "    if (f == 0) { set key } else { unset key }\n";
  p += "    plot data index 1 using ($1 == f ? ($2 + $3) / 2.0 : NaN):($4 * y_top):($3 - $2 + 1) \\\n";
  p += "           with boxes fc rgb cell_colour notitle, \\\n";
  p += "         for [k=0:classes-1] data index 0 using 1:(column(2 + f * classes + k)) with lines ls k + 1 "
       "\\\n";
  p += "           title class_name[k + 1]\n";
  p += "  }\n";
  p += "  unset multiplot\n";
  io::render_figure(path, fig);
}
} // namespace

int main(int argc, char** argv) {
  using B = selmask::cpu;
  namespace nn = selmask::nn;
  namespace io = selmask::io;
  bool quick = false;
  std::uint64_t seed = 0;
  std::filesystem::path out = ".";
  io::supernova_options o{}; // 4 filters, 120 days, 3 classes
  o.noise = 0.3f;            // harder than the generator's default 0.05, where 8 cells reach 100 %
  example::command_line cl("supernova_filters");
  cl.flag("--quick", quick)
    .option("--noise", "X", o.noise)
    .option("--seed", "N", seed)
    .option("--out", "DIR", out);
  if (!cl.parse(argc, argv)) {
    return 2;
  }
  try {
    std::filesystem::create_directories(out);
    const auto train = io::make_supernovae(quick ? 800 : 3000, o, 1);
    const auto val = io::make_supernovae(quick ? 300 : 1000, o, 2);
    const auto test = io::make_supernovae(quick ? 300 : 1000, o, 3);
    const std::size_t cells = o.filters * ((o.times + block_days - 1) / block_days);

    using pipe = selmask::pipeline<selmask::any_mask<selmask::block<1, block_days>>>;
    pipe::on<B> masks(train.data.sample, /*seed=*/7 + seed);
    using network = nn::sequential<B, nn::flatten<B>, nn::dense<B>, nn::relu<B>, nn::dense<B>>;
    network net(nn::sequential_options{3 + seed, {3e-3f, 0.5f, 0.999f, 1e-8f, 1e-4f, true}}, nn::flatten<B>{},
                nn::dense<B>(train.data.sample.size(), 64), nn::relu<B>{}, nn::dense<B>(64, o.classes));
    selmask::trainer_options opt;
    opt.lambda = 0.05f;
    opt.warmup_epochs = quick ? 2 : 3;
    opt.mask_epochs = quick ? 8 : 24;
    opt.batch_size = 50;
    opt.mask_optimizer.lr = 0.05f;
    opt.seed = seed;
    const auto result =
      selmask::learn_selection_masks(masks, net, train.data, val.data, &test.data, opt,
                                     selmask::round_schedule{2, 1, 1.5f}, selmask::progress_display{0});

    std::printf(
      "supernovae: %zu filters x %zu days, %zu classes, noise %.3g; mask block<1, %zu>: %zu cells\n",
      o.filters, o.times, o.classes, static_cast<double>(o.noise), block_days, cells);
    std::printf("full data: val accuracy %.3f, test accuracy %.3f\n", result.full_val_accuracy,
                result.full_test_accuracy);
    std::printf("front (q = fraction of values sent):\n     q    val   test  cells  kept (filter:days)\n");
    const auto pareto = result.front.pareto();
    io::csv_table csv(
      {"q", "val_accuracy", "test_accuracy", "cells_kept", "pareto", "epoch", "lambda", "kept"});
    io::plot_series all;
    all.label = "front (every Q bucket)";
    all.colour = io::colours::palette[7];
    all.connect = false;
    io::plot_series best;
    best.label = "Pareto front";
    best.colour = io::colours::palette[0];
    for (const auto& p : result.front.points()) {
      const bool on_pareto =
        std::any_of(pareto.begin(), pareto.end(), [&](const auto& o2) { return o2.epoch == p.epoch; });
      const auto kept = static_cast<std::size_t>(std::count(p.masks[0].begin(), p.masks[0].end(), 1.0f));
      const std::string runs = kept_runs(p.masks[0], o.filters, o.times);
      csv.add_row({p.q, p.val_accuracy, p.test_accuracy, kept, on_pareto ? 1 : 0, p.epoch, p.lambda, runs});
      (on_pareto ? best : all).x.push_back(p.q);
      (on_pareto ? best : all).y.push_back(p.test_accuracy);
      if (on_pareto) {
        std::printf("%6.4f  %.3f  %.3f  %5zu  %s\n", p.q, p.val_accuracy, p.test_accuracy, kept,
                    p.q < 0.5 ? runs.c_str() : "...");
      }
    }
    csv.save(out / "supernova_filters_front.csv");
    io::plot_series full;
    full.label = "full data";
    full.x = {0.0, 1.0};
    full.y = {result.full_test_accuracy, result.full_test_accuracy};
    full.colour = io::colours::palette[3];
    full.marker = io::marker_shape::none;
    io::plot_options po;
    po.title = "supernova light curves, block<1,4> (filter, 4 days) mask";
    po.x_label = "fraction of the values sent (Q)";
    io::plot_xy(out / "supernova_filters_front.png", {full, all, best}, po);

    // the point drawn: the smallest Q within 1 point of full data on validation (else the best)
    const auto points = result.front.points();
    const selmask::front_point* chosen = nullptr;
    for (const auto& p : points) {
      if (p.val_accuracy >= result.full_val_accuracy - 0.01 && (!chosen || p.q < chosen->q)) {
        chosen = &p;
      }
    }
    if (chosen == nullptr) {
      chosen = result.front.best_within(1.0);
    }
    if (chosen == nullptr) {
      std::printf("the front is empty\n");
      return 1;
    }
    const auto& p = *chosen;
    char title[128];
    std::snprintf(title, sizeof title, "cells sent at Q %.3f: test %.3f (full data %.3f)", p.q,
                  p.test_accuracy, result.full_test_accuracy);
    draw_mask(out / "supernova_filters_mask.png", p.masks[0], train.data, title);
    std::printf("drawn: Q %.4f (%s), val %.3f, test %.3f (full data %.3f)\n", p.q,
                kept_runs(p.masks[0], o.filters, o.times).c_str(), p.val_accuracy, p.test_accuracy,
                result.full_test_accuracy);
    std::printf("wrote %s/supernova_filters_{front.csv,front.{png,svg,dat,gp},mask.{png,svg,dat,gp}}\n",
                out.string().c_str());
    return p.test_accuracy >= 0.7 ? 0 : 1;
  } catch (const selmask::error& e) {
    std::fprintf(stderr, "supernova_filters: %s\n", e.what());
    return 1;
  }
}
