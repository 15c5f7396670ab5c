// The paper's Figures 14 and 15 on the synthetic remote-sensing scene of remote_channels (128
// bands, noise 0.1), on a reduced budget: a channel(any) mask and a small MLP trained with the
// round schedule while one setting changes,
//  (a) λ's growth factor λ_fac (1.2, 1.5, 2, 3; rounds of 2 exploration + 1 fixation epochs),
//  (b) the exploration/fixation ratio (rounds of 1+3, 2+2, 3+1 epochs; λ_fac 1.5),
// with the same data, initialisation and number of mask epochs (24) for every setting, starting
// gently (λ 0.02, mask learning rate 0.02; remote_channels uses 0.1 and 0.05, where the first
// exploration epoch already drops ~85 % of the bands and the schedule hardly matters). For each
// setting the program prints the Pareto front and the test accuracy at a few budgets, and writes
// remote_sweep_lambda_fac.csv/.png and remote_sweep_ratio.csv/.png (every front point; the plots
// show the Pareto fronts, test accuracy vs fraction of bands sent; gnuplot draws them, with .svg,
// from the .dat and .gp files beside them, see gnuplot.hpp).
//
//   remote_sweeps [--quick] [--seed N] [--lambda X] [--mask-lr X] [--out DIR]
//     --quick: 2 settings each on a tiny budget (a few seconds, as run by ctest; λ 0.1, rate 0.05)
#include "gnuplot.hpp"

#include <selmask/io/csv.hpp>
#include <selmask/io/synthetic.hpp>
#include <selmask/nn/nn.hpp>
#include <selmask/selmask.hpp>
#include <selmask/train/trainer.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "command_line.hpp"

namespace {
struct setting {
  std::string label;
  selmask::round_schedule schedule;
};

struct data_parts {
  selmask::io::remote_data train, val, test;
};

/// One training run of the channel(any) mask and the MLP with `schedule`.
selmask::training_result run(const data_parts& d, std::size_t classes,
                             const selmask::round_schedule& schedule, bool quick, std::uint64_t seed,
                             float lambda, float mask_lr) {
  using B = selmask::cpu;
  namespace nn = selmask::nn;
  using pipe = selmask::pipeline<selmask::any_mask<selmask::channel>>;
  const auto& sample = d.train.data.sample;
  pipe::on<B> masks(sample, /*seed=*/7 + seed);
  using network = nn::sequential<B, nn::flatten<B>, nn::dense<B>, nn::relu<B>, nn::dense<B>>;
  network net(nn::sequential_options{3 + seed, {3e-3f, 0.5f, 0.999f, 1e-8f, 1e-4f, true}}, nn::flatten<B>{},
              nn::dense<B>(sample.size(), 32), nn::relu<B>{}, nn::dense<B>(32, classes));
  selmask::trainer_options opt;
  opt.lambda = lambda;
  opt.warmup_epochs = quick ? 2 : 3;
  opt.mask_epochs = quick ? 8 : 24;
  opt.batch_size = 50;
  opt.mask_optimizer.lr = mask_lr;
  opt.seed = seed;
  return selmask::learn_selection_masks(masks, net, d.train.data, d.val.data, &d.test.data, opt, schedule);
}

std::size_t informative_kept(const std::vector<float>& mask, const std::vector<std::size_t>& informative) {
  return static_cast<std::size_t>(
    std::count_if(informative.begin(), informative.end(), [&](std::size_t c) { return mask[c] == 1.0f; }));
}

/// Runs every setting of one sweep, prints a summary, writes `<name>.csv` and `<name>.png`.
void sweep(const std::string& name, const std::string& column, const std::string& title,
           const std::vector<setting>& settings, const data_parts& d, std::size_t classes, bool quick,
           std::uint64_t seed, float lambda, float mask_lr, const std::filesystem::path& out) {
  namespace io = selmask::io;
  const auto& informative = d.train.informative;
  io::csv_table csv({column, "q", "val_accuracy", "test_accuracy", "kept", "informative_kept", "pareto",
                     "epoch", "lambda", "full_test_accuracy"});
  std::vector<io::plot_series> series;
  std::printf("\n== %s ==\n", title.c_str());
  std::printf("%-10s  full   test at Q<=0.05  Q<=0.10  Q<=0.20   Pareto front (Q: test, informative kept)\n",
              column.c_str());
  for (const auto& s : settings) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = run(d, classes, s.schedule, quick, seed, lambda, mask_lr);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto pareto = r.front.pareto();
    io::plot_series ps;
    ps.label = column + " " + s.label;
    for (const auto& p : r.front.points()) {
      const bool on_pareto =
        std::any_of(pareto.begin(), pareto.end(), [&](const auto& o) { return o.epoch == p.epoch; });
      const auto kept = static_cast<std::size_t>(std::count(p.masks[0].begin(), p.masks[0].end(), 1.0f));
      csv.add_row({s.label, p.q, p.val_accuracy, p.test_accuracy, kept,
                   informative_kept(p.masks[0], informative), on_pareto ? 1 : 0, p.epoch, p.lambda,
                   r.full_test_accuracy});
      if (on_pareto) {
        ps.x.push_back(p.q);
        ps.y.push_back(p.test_accuracy);
      }
    }
    series.push_back(std::move(ps));
    std::printf("%-10s  %.3f ", s.label.c_str(), r.full_test_accuracy);
    for (double budget : {0.05, 0.10, 0.20}) {
      const auto* p = r.front.best_within(budget);
      if (p != nullptr) {
        std::printf("  %.3f   ", p->test_accuracy);
      } else {
        std::printf("    -     ");
      }
    }
    std::printf(" ");
    for (const auto& p : pareto) {
      std::printf(" %.3f: %.3f %zu/%zu,", p.q, p.test_accuracy, informative_kept(p.masks[0], informative),
                  informative.size());
    }
    std::printf("  (%.1f s)\n", secs);
  }
  csv.save(out / (name + ".csv"));
  io::plot_options po;
  po.title = title;
  po.x_label = "fraction of bands sent (Q)";
  po.x_max = std::numeric_limits<double>::quiet_NaN();
  io::plot_xy(out / (name + ".png"), series, po);
}
} // namespace

int main(int argc, char** argv) {
  namespace io = selmask::io;
  bool quick = false;
  std::uint64_t seed = 0;
  std::filesystem::path out = ".";
  float lambda = -1.0f, mask_lr = -1.0f; // defaults below
  example::command_line cl("remote_sweeps");
  cl.flag("--quick", quick)
    .option("--seed", "N", seed)
    .option("--lambda", "X", lambda)
    .option("--mask-lr", "X", mask_lr)
    .option("--out", "DIR", out);
  if (!cl.parse(argc, argv)) {
    return 2;
  }
  // a gentle start (few bands dropped per epoch) so that the schedule matters; --quick's 8 epochs
  // need a faster one to drop anything
  if (lambda < 0.0f) {
    lambda = quick ? 0.1f : 0.02f;
  }
  if (mask_lr < 0.0f) {
    mask_lr = quick ? 0.05f : 0.02f;
  }
  try {
    std::filesystem::create_directories(out);
    io::remote_options scene{};
    scene.noise = 0.1f;
    data_parts d{io::make_remote(quick ? 800 : 3000, scene, 1), io::make_remote(quick ? 300 : 1000, scene, 2),
                 io::make_remote(quick ? 300 : 1000, scene, 3)};
    io::standardise_channels(d.train.data, {&d.train.data, &d.val.data, &d.test.data});

    std::vector<setting> factors, ratios;
    for (float f : quick ? std::vector<float>{1.5f, 3.0f} : std::vector<float>{1.2f, 1.5f, 2.0f, 3.0f}) {
      factors.push_back({io::csv_cell(f).text(), selmask::round_schedule{2, 1, f}});
    }
    for (std::size_t e : quick ? std::vector<std::size_t>{1, 3} : std::vector<std::size_t>{1, 2, 3}) {
      ratios.push_back(
        {std::to_string(e) + "+" + std::to_string(4 - e), selmask::round_schedule{e, 4 - e, 1.5f}});
    }
    std::printf("remote sensing scene: %zu bands, noise %.3g, informative bands", scene.bands,
                static_cast<double>(scene.noise));
    for (std::size_t b : d.train.informative) {
      std::printf(" %zu", b);
    }
    std::printf("; %zu mask epochs per run, initial lambda %.3g, mask learning rate %.3g, seed %llu\n",
                quick ? std::size_t{8} : std::size_t{24}, static_cast<double>(lambda),
                static_cast<double>(mask_lr), static_cast<unsigned long long>(seed));
    sweep("remote_sweep_lambda_fac", "lambda_fac", "growth factor of lambda (rounds 2+1)", factors, d,
          scene.classes, quick, seed, lambda, mask_lr, out);
    sweep("remote_sweep_ratio", "rounds", "exploration+fixation epochs per round (lambda_fac 1.5)", ratios, d,
          scene.classes, quick, seed, lambda, mask_lr, out);
    std::printf("\nwrote %s/remote_sweep_{lambda_fac,ratio}.{csv,png,svg,dat,gp}\n", out.string().c_str());
    return 0;
  } catch (const selmask::error& e) {
    std::fprintf(stderr, "remote_sweeps: %s\n", e.what());
    return 1;
  }
}
