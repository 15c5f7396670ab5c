// A channel(any) mask on synthetic remote-sensing data (io/synthetic.hpp): 128 correlated spectral
// bands of 4×4 patches, 4 land-cover classes, of which only a few bands carry the class signal
// (noise 0.1 here, harder than the generator's default 0.03). A small network (flatten, dense,
// relu, dense) learns jointly with the mask which bands to send. The program prints the front,
// checks the acceptance criterion at a budget of 20 % of the bands (the front point most accurate
// on validation among those sending at most 20 %: it should keep >= 90 % of the informative bands,
// drop >= 80 % of all bands and stay within 1 point of full-data test accuracy), and writes
//  - remote_channels_epochs.csv / .png: the hard mask after every epoch (the paper's Figure 7;
//    rows = epochs, columns = bands, kept = dark, informative bands marked in orange),
//  - remote_channels_front.csv / .png: the accuracy-versus-bands front;
// the two figures are drawn by gnuplot (with .svg) from the .dat and .gp files beside them.
//
//   remote_channels [--quick] [--noise X] [--width X] [--seed N] [--out DIR]
//     --quick: a reduced budget of a few seconds, as run by ctest
//     --seed:  initialisation and batch order of mask and network (the scene stays the same)
// Exit status 1 only when no front point sends <= 20 % of the bands or its test accuracy is < 0.8.
#include "gnuplot.hpp"

#include <selmask/io/csv.hpp>
#include <selmask/io/synthetic.hpp>
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
/// One row of the per-epoch record.
struct epoch_row {
  std::size_t epoch = 0; // 1-based
  selmask::phase current = selmask::phase::warmup;
  float lambda = 0.0f;
  double q = 1.0;
  double val_accuracy = 0.0;
  double test_accuracy = 0.0;
  std::vector<float> mask; // the hard channel mask after the epoch, one value per band
};

/// A training callback that records the hard channel mask after every epoch: `epoch_info` carries
/// no masks, but the trainer calls `on_epoch_end` right after evaluating the epoch's hard masks,
/// so the pipeline (held by reference) still has them.
template <class Pipeline>
struct mask_recorder {
  Pipeline& pipe;
  std::vector<epoch_row>& rows;

  void on_epoch_end(const selmask::epoch_info& e) {
    using B = typename Pipeline::backend;
    epoch_row r{e.epoch + 1, e.current, e.lambda, e.q, e.val_accuracy, e.test_accuracy, {}};
    pipe.for_each_mask([&](auto& m) { r.mask = B::to_host(m.hard()); });
    rows.push_back(std::move(r));
  }
};

std::vector<std::size_t> kept_bands(const std::vector<float>& mask) {
  std::vector<std::size_t> kept;
  for (std::size_t c = 0; c < mask.size(); ++c) {
    if (mask[c] == 1.0f) {
      kept.push_back(c);
    }
  }
  return kept;
}

std::size_t count_in(const std::vector<std::size_t>& kept, const std::vector<std::size_t>& set) {
  return static_cast<std::size_t>(std::count_if(kept.begin(), kept.end(), [&](std::size_t c) {
    return std::find(set.begin(), set.end(), c) != set.end();
  }));
}

std::string band_list(const std::vector<std::size_t>& kept) {
  std::string s;
  for (std::size_t c : kept) {
    s += (s.empty() ? "" : " ") + std::to_string(c);
  }
  return s;
}

/// Figure 7 as a gnuplot figure (a heatmap, not a picture: it has axes and labels): one row per
/// epoch, one column per band, kept bands dark and dropped ones light; a coloured strip left of
/// every row for the phase, orange triangles above the first row for the informative bands, Q and
/// validation accuracy of every row on the right-hand axis.
void draw_epochs(const std::filesystem::path& path, const std::vector<epoch_row>& rows, std::size_t bands,
                 const std::vector<std::size_t>& informative) {
  namespace io = selmask::io;
  namespace gp = io::gp;
  if (rows.empty()) {
    return;
  }
  const io::rgb phase_colour[3] = {{170, 170, 170}, io::colours::palette[0], io::colours::palette[2]};
  io::gnuplot_figure fig;
  fig.about = "the hard channel mask after every epoch (remote_channels)";
  fig.width = 1000;
  fig.height = std::max<std::size_t>(420, 170 + 16 * rows.size());
  fig.data =
    "# index 0: the mask; columns band, epoch, sent (1) or dropped (0); one line of bands per epoch\n";
  for (const auto& r : rows) {
    for (std::size_t c = 0; c < bands; ++c) {
      fig.data +=
        std::to_string(c) + " " + std::to_string(r.epoch) + " " + (r.mask[c] == 1.0f ? "1" : "0") + "\n";
    }
    fig.data += "\n";
  }
  fig.data += "\n# index 1: per epoch; columns epoch, phase (0 warm-up, 1 exploration, 2 fixation), Q, "
              "validation accuracy, the phase's colour (0xRRGGBB)\n";
  std::string right_tics;
  for (const auto& r : rows) {
    const auto ph = static_cast<std::size_t>(r.current);
    fig.data += std::to_string(r.epoch) + " " + std::to_string(ph) + " " + gp::number(r.q) + " " +
                gp::number(r.val_accuracy) + " " + gp::colour_value(phase_colour[ph]) + "\n";
    char label[64];
    std::snprintf(label, sizeof label, "Q %.3f  val %.3f", r.q, r.val_accuracy);
    right_tics +=
      std::string(right_tics.empty() ? "" : ", ") + gp::quote(label) + " " + std::to_string(r.epoch);
  }
  fig.data += "\n\n# index 2: the informative bands (of the generator); column band\n";
  for (std::size_t b : informative) {
    fig.data += std::to_string(b) + "\n";
  }
  const std::string yrange = "[" + gp::number(static_cast<double>(rows.size()) + 0.5) + ":-0.7]";
  const char* tics = rows.size() > 30 ? "5,5" : "1,1";
  std::string& g = fig.setup;
  g = "set title 'hard channel mask after every epoch (dark: band sent)'\n";
  g += "set xlabel 'band (index of the spectral band)'\n";
  g += "set ylabel 'epoch'\n";
  g += "set xrange [-4.5:" + gp::number(static_cast<double>(bands) - 0.5) +
       "] # the phase strip left of band 0\n";
  g += "set yrange " + yrange + " # epoch 1 at the top, the informative bands above it\n";
  g += "set y2range " + yrange + "\n";
  g += "set xtics 0,16 out nomirror\n";
  g += std::string("set ytics ") + tics + " out nomirror\n";
  g += "set y2tics (" + right_tics + ") out\n";
  g += "set palette defined (0 '#ebebeb', 1 '#1e1e1e') # dropped, sent\n";
  g += "set cbrange [0:1]\n";
  g += "unset colorbox\n";
  g += "set key below horizontal height 1\n";
  g += "set style fill solid 1.0 noborder\n";
  std::string& p = fig.plot;
  p = "  plot data index 0 using 1:2:3 with image notitle, \\\n";
  p += "       data index 1 using (-2.5):1:(1.5):(0.45):5 with boxxyerror lc rgb variable notitle";
  const char* phase_title[3] = {"warm-up", "exploration", "fixation"};
  for (std::size_t k = 0; k < 3; ++k) {
    p +=
      ", \\\n       NaN with boxes lc " + gp::colour(phase_colour[k]) + " title " + gp::quote(phase_title[k]);
  }
  if (!informative.empty()) {
    p += ", \\\n       data index 2 using 1:(-0.2) with points pt 11 ps 1.2 lc " +
         gp::colour(io::colours::orange) + " title 'informative band'";
  }
  p += "\n";
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
  io::remote_options scene{}; // 128 bands, 4×4 pixels, 4 classes, scene seed 1
  scene.noise = 0.1f;
  example::command_line cl("remote_channels");
  cl.flag("--quick", quick)
    .option("--noise", "X", scene.noise)
    .option("--width", "X", scene.feature_width)
    .option("--seed", "N", seed)
    .option("--out", "DIR", out);
  if (!cl.parse(argc, argv)) {
    return 2;
  }
  try {
    std::filesystem::create_directories(out);
    auto train = io::make_remote(quick ? 800 : 3000, scene, 1);
    auto val = io::make_remote(quick ? 300 : 1000, scene, 2);
    auto test = io::make_remote(quick ? 300 : 1000, scene, 3);
    io::standardise_channels(train.data, {&train.data, &val.data, &test.data});
    const std::size_t bands = scene.bands;
    const auto& informative = train.informative;

    using pipe = selmask::pipeline<selmask::any_mask<selmask::channel>>;
    pipe::on<B> masks(train.data.sample, /*seed=*/7 + seed);
    using network = nn::sequential<B, nn::flatten<B>, nn::dense<B>, nn::relu<B>, nn::dense<B>>;
    network net(nn::sequential_options{3 + seed, {3e-3f, 0.5f, 0.999f, 1e-8f, 1e-4f, true}}, nn::flatten<B>{},
                nn::dense<B>(train.data.sample.size(), 32), nn::relu<B>{}, nn::dense<B>(32, scene.classes));

    selmask::trainer_options opt;
    opt.lambda = 0.1f;
    opt.warmup_epochs = quick ? 2 : 3;
    opt.mask_epochs = quick ? 8 : 24;
    opt.batch_size = 50;
    opt.mask_optimizer.lr = 0.05f;
    opt.seed = seed;
    std::vector<epoch_row> rows;
    const auto result = selmask::learn_selection_masks(
      masks, net, train.data, val.data, &test.data, opt, selmask::round_schedule{2, 1, 1.5f},
      selmask::progress_display{0}, mask_recorder<pipe::on<B>>{masks, rows});

    std::printf("noise %.3g, feature width %.3g, seed %llu\n", static_cast<double>(scene.noise),
                static_cast<double>(scene.feature_width), static_cast<unsigned long long>(seed));
    std::printf("informative bands (generator): %s\n", band_list(informative).c_str());
    std::printf("full data: test accuracy %.3f\n", result.full_test_accuracy);
    std::printf("front (q = fraction of bands sent):\n     q    val   test  kept bands\n");
    const auto pareto = result.front.pareto();
    for (const auto& p : pareto) {
      std::printf("%6.4f  %.3f  %.3f  %s\n", p.q, p.val_accuracy, p.test_accuracy,
                  band_list(kept_bands(p.masks[0])).c_str());
    }

    // ---- files ------------------------------------------------------------------------------------
    io::csv_table epochs_csv({"epoch", "phase", "lambda", "q", "val_accuracy", "test_accuracy", "kept",
                              "informative_kept", "kept_bands"});
    for (const auto& r : rows) {
      const auto kept = kept_bands(r.mask);
      epochs_csv.add_row({r.epoch, selmask::phase_name(r.current), r.lambda, r.q, r.val_accuracy,
                          r.test_accuracy, kept.size(), count_in(kept, informative), band_list(kept)});
    }
    epochs_csv.save(out / "remote_channels_epochs.csv");
    draw_epochs(out / "remote_channels_epochs.png", rows, bands, informative);

    io::csv_table front_csv({"q", "val_accuracy", "test_accuracy", "kept", "informative_kept", "pareto",
                             "epoch", "lambda", "kept_bands"});
    io::plot_series all{"front (every Q bucket)", {},   {}, io::colours::palette[7],
                        io::marker_shape::circle, false};
    io::plot_series best{"Pareto front", {}, {}, io::colours::palette[0]};
    for (const auto& p : result.front.points()) {
      const auto kept = kept_bands(p.masks[0]);
      const bool on_pareto =
        std::any_of(pareto.begin(), pareto.end(), [&](const auto& o) { return o.epoch == p.epoch; });
      front_csv.add_row({p.q, p.val_accuracy, p.test_accuracy, kept.size(), count_in(kept, informative),
                         on_pareto ? 1 : 0, p.epoch, p.lambda, band_list(kept)});
      (on_pareto ? best : all).x.push_back(p.q);
      (on_pareto ? best : all).y.push_back(p.test_accuracy);
    }
    front_csv.save(out / "remote_channels_front.csv");
    io::plot_series full{"full data",
                         {0.0, 1.0},
                         {result.full_test_accuracy, result.full_test_accuracy},
                         io::colours::palette[3],
                         io::marker_shape::none};
    io::plot_options po;
    po.title = "remote sensing, channel(any) mask, noise " + io::csv_cell(scene.noise).text();
    po.x_label = "fraction of bands sent (Q)";
    io::plot_xy(out / "remote_channels_front.png", {full, all, best}, po);

    // ---- the acceptance criterion at a budget of 20 % of the bands ---------------------------------
    const double budget = 0.2;
    const auto* p = result.front.best_within(budget);
    if (p == nullptr) {
      std::printf("no front point sends at most %.0f %% of the bands\n", 100 * budget);
      return 1;
    }
    const auto kept = kept_bands(p->masks[0]);
    const std::size_t kept_informative = count_in(kept, informative);
    std::printf("budget %.0f %% (best validation point with Q <= %.2f): Q %.4f, %zu of %zu bands: %s\n",
                100 * budget, budget, p->q, kept.size(), bands, band_list(kept).c_str());
    std::printf("informative kept %zu/%zu; test accuracy %.3f (full data %.3f, difference %+.3f)\n",
                kept_informative, informative.size(), p->test_accuracy, result.full_test_accuracy,
                p->test_accuracy - result.full_test_accuracy);
    std::string failed;
    if (10 * kept_informative < 9 * informative.size()) {
      failed += std::string(failed.empty() ? "" : "; ") + "keeps < 90 % of the informative bands";
    }
    if (5 * kept.size() > bands) {
      failed += std::string(failed.empty() ? "" : "; ") + "drops < 80 % of the bands";
    }
    if (p->test_accuracy < result.full_test_accuracy - 0.01) {
      failed += std::string(failed.empty() ? "" : "; ") + "test accuracy more than 1 point below full data";
    }
    std::printf("criterion: %s\n", failed.empty() ? "met" : ("NOT met (" + failed + ")").c_str());
    std::printf("wrote %s/remote_channels_{epochs,front}.{csv,png,svg,dat,gp}\n", out.string().c_str());
    return p->test_accuracy >= 0.8 ? 0 : 1;
  } catch (const selmask::error& e) {
    std::fprintf(stderr, "remote_channels: %s\n", e.what());
    return 1;
  }
}
