// A channel(any) mask on synthetic remote-sensing data (io/synthetic.hpp): 128 correlated spectral
// bands of 4×4 patches, 4 land-cover classes, of which only a few bands carry the class signal
// (noise 0.1 here, harder than the generator's default 0.03). A small network (flatten, dense,
// relu, dense) learns jointly with the mask which bands to send. The program prints the front,
// checks the acceptance criterion at a budget of 20 % of the bands (the front point most accurate
// on validation among those sending at most 20 %: it should keep >= 90 % of the informative bands,
// drop >= 80 % of all bands and stay within 1 point of full-data test accuracy), and writes
//  - remote_channels_epochs.csv / .png: the hard mask after every epoch (the paper's Figure 7;
//    rows = epochs, columns = bands, kept = dark, informative bands marked in orange),
//  - remote_channels_front.csv / .png: the accuracy-versus-bands front.
//
//   remote_channels [--quick] [--noise X] [--width X] [--seed N] [--out DIR]
//     --quick: a reduced budget of a few seconds, as run by ctest
//     --seed:  initialisation and batch order of mask and network (the scene stays the same)
// Exit status 1 only when no front point sends <= 20 % of the bands or its test accuracy is < 0.8.
#include "plot.hpp"

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

/// Figure 7: one row per epoch, one column per band; kept bands dark, dropped ones light, a
/// coloured strip per row for the phase, orange ticks above and below for the informative bands,
/// Q and validation accuracy to the right.
void draw_epochs(const std::filesystem::path& path, const std::vector<epoch_row>& rows, std::size_t bands,
                 const std::vector<std::size_t>& informative) {
  namespace io = selmask::io;
  const int cw = 6, ch = 10;                               // cell size
  const int left = 70, top = 50, right = 190, bottom = 60; // margins
  const int gw = static_cast<int>(bands) * cw, gh = static_cast<int>(rows.size()) * ch;
  io::canvas cv(static_cast<std::size_t>(left + gw + right), static_cast<std::size_t>(top + gh + bottom));
  cv.text(left, 8, "hard channel mask after every epoch (dark: band sent)", io::colours::black, 2);
  const io::rgb kept_colour{30, 30, 30}, dropped_colour{235, 235, 235};
  const io::rgb phase_colour[3] = {{170, 170, 170}, io::colours::palette[0], io::colours::palette[2]};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const int y = top + static_cast<int>(i) * ch;
    cv.text(4, y + 1, std::to_string(rows[i].epoch), io::colours::black);
    cv.fill_rect(left - 36, y, left - 6, y + ch - 1, phase_colour[static_cast<std::size_t>(rows[i].current)]);
    for (std::size_t c = 0; c < bands; ++c) {
      const int x = left + static_cast<int>(c) * cw;
      cv.fill_rect(x, y, x + cw, y + ch - 1, rows[i].mask[c] == 1.0f ? kept_colour : dropped_colour);
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "Q %.3f  val %.3f", rows[i].q, rows[i].val_accuracy);
    cv.text(left + gw + 8, y + 1, buf, io::colours::black);
  }
  for (std::size_t b : informative) {
    const int x = left + static_cast<int>(b) * cw;
    cv.fill_rect(x, top - 8, x + cw, top - 2, io::colours::orange);
    cv.fill_rect(x, top + gh + 2, x + cw, top + gh + 8, io::colours::orange);
  }
  for (std::size_t b = 0; b <= bands; b += 16) {
    const int x = left + static_cast<int>(b) * cw;
    cv.fill_rect(x, top + gh + 10, x + 1, top + gh + 15, io::colours::black);
    const std::string label = std::to_string(b);
    cv.text(x - io::text_width(label) / 2, top + gh + 18, label, io::colours::black);
  }
  cv.text(left + gw / 2 - 20, top + gh + 32, "band", io::colours::black);
  cv.text(4, top - 12, "epoch", io::colours::black);
  cv.text(left, top + gh + 46,
          "phase: grey warm-up, blue exploration, green fixation; orange: informative bands",
          io::colours::black);
  cv.save_png(path);
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
    po.x_label = "fraction of bands sent";
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
    std::printf("wrote %s/remote_channels_{epochs,front}.{csv,png}\n", out.string().c_str());
    return p->test_accuracy >= 0.8 ? 0 : 1;
  } catch (const selmask::error& e) {
    std::fprintf(stderr, "remote_channels: %s\n", e.what());
    return 1;
  }
}
