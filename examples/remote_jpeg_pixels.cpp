// JPEG per band plus pixels on synthetic remote-sensing data (the paper's Figure 13, "the
// combination JPEG-per-channel + pixels"): a three-stage pipeline
//   extend<cached_versions<jpeg_ladder<90, 50, 10>>> → xor_mask<channel> → merge<sum> → any_mask<pixel>
// where every spectral band picks one of {raw, JPEG 90, JPEG 50, JPEG 10, nothing} and a pixel
// mask then drops pixels of the merged image (in all bands). Q is the mean over the C×H×W values
// of the product of the two stages' cost factors, i.e. (mean cost of the bands' versions) ×
// (fraction of pixels kept), with the JPEG costs measured as bytes on the wire relative to one
// byte per raw value (cost/measured.hpp, with_measured_costs).
//
// Data: make_remote with 16 bands of 16×16-pixel patches (JPEG codes each band as one 16×16
// grayscale image), 4 classes, narrow class features (one informative band per class), signal
// 0.03 (the generator's 0.12 makes the task trivial), noise 0.1.
// JPEG needs values in [0, 1]: the generator's values (about 0.05–0.9 before noise) are mapped by
// the fixed affine map x → 0.1 + 0.8·x and then clamped to [0, 1] (the program prints how many
// values the clamp touched); nothing is standardised before the JPEG stage. The network (flatten,
// dense 32, relu, dense) sees the merged image centred per band (training-set means of the raw
// bands) and scaled by a fixed factor 4, inside the model functor.
//
// Writes to --out:
//  - remote_jpeg_pixels_front.csv / .png: Q versus test accuracy (every Q bucket, Pareto front);
//  - remote_jpeg_pixels_choice.csv / .png: for one front point (the smallest Q whose validation
//    accuracy is within 1 point of full data, Q < 1, else the best point with Q <= 0.2), the version of
//    every band and the pixel mask;
// the figures are drawn by gnuplot (with .svg) from the .dat and .gp files beside them.
//
//   remote_jpeg_pixels [--quick] [--noise X] [--signal X] [--seed N] [--out DIR]
//     --quick: a reduced budget of a few seconds, as run by ctest
//     --seed:  initialisation and batch order of masks and network (the scene stays the same)
// Exit status 1 only when the front is empty or its best test accuracy is below 0.5.
#include "gnuplot.hpp"

#include <selmask/cost/measured.hpp>
#include <selmask/io/csv.hpp>
#include <selmask/io/synthetic.hpp>
#include <selmask/model/adapters.hpp>
#include <selmask/nn/nn.hpp>
#include <selmask/ops/jpeg.hpp>
#include <selmask/ops/versions.hpp>
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
using B = selmask::cpu;
using ladder = selmask::jpeg_ladder<90, 50, 10>; // raw, JPEG 90, 50, 10, nothing
constexpr std::size_t V = ladder::versions;
const char* const version_names[V] = {"raw", "jpeg90", "jpeg50", "jpeg10", "nothing"};
const char version_letters[V + 1] = "R951-"; // one letter per version in band strings

/// Maps every value by x → 0.1 + 0.8·x and clamps to [0, 1]; returns how many values were clamped.
std::size_t to_unit_range(selmask::io::dataset& d) {
  std::size_t clamped = 0;
  for (float& x : d.images) {
    const float y = 0.1f + 0.8f * x;
    const float c = std::clamp(y, 0.0f, 1.0f);
    clamped += c != y ? 1 : 0;
    x = c;
  }
  return clamped;
}

/// Per-band mean and 1/std of a data set's values.
void band_statistics(const selmask::io::dataset& d, std::vector<float>& mean, std::vector<float>& inv) {
  const std::size_t bands = d.sample[0], hw = d.sample[1] * d.sample[2];
  std::vector<double> m(bands, 0.0), sq(bands, 0.0);
  for (std::size_t k = 0; k < d.images.size(); ++k) {
    const std::size_t c = (k / hw) % bands;
    m[c] += d.images[k];
    sq[c] += static_cast<double>(d.images[k]) * d.images[k];
  }
  const double count = static_cast<double>(d.size() * hw);
  mean.resize(bands);
  inv.resize(bands);
  for (std::size_t c = 0; c < bands; ++c) {
    const double mu = m[c] / count;
    mean[c] = static_cast<float>(mu);
    inv[c] = static_cast<float>(1.0 / std::sqrt(std::max(sq[c] / count - mu * mu, 1e-12)));
  }
}

/// The version each band sends, from the xor mask's hard values (V × C).
std::vector<std::size_t> band_versions(const std::vector<float>& mask, std::size_t bands) {
  std::vector<std::size_t> v(bands, 0);
  for (std::size_t c = 0; c < bands; ++c) {
    for (std::size_t k = 0; k < V; ++k) {
      if (mask[k * bands + c] == 1.0f) {
        v[c] = k;
      }
    }
  }
  return v;
}

std::string version_string(const std::vector<std::size_t>& v) {
  std::string s;
  for (std::size_t k : v) {
    s += version_letters[k];
  }
  return s;
}

double kept_fraction(const std::vector<float>& pixel_mask) {
  double kept = 0.0;
  for (float m : pixel_mask) {
    kept += m;
  }
  return pixel_mask.empty() ? 0.0 : kept / static_cast<double>(pixel_mask.size());
}

/// The chosen point as a gnuplot figure of two panels (plots, not pictures: they have axes): the
/// version every band sends (informative bands in orange), and the H×W pixel mask as a heatmap.
void draw_choice(const std::filesystem::path& path, const std::vector<std::size_t>& versions,
                 const std::vector<float>& pixels, std::size_t height, std::size_t width,
                 const std::vector<std::size_t>& informative, const std::string& title) {
  namespace io = selmask::io;
  namespace gp = io::gp;
  const io::rgb informative_colour = io::colours::orange, other_colour = io::colours::palette[0];
  io::gnuplot_figure fig;
  fig.about = "the version per band and the pixel mask of one front point (remote_jpeg_pixels)";
  fig.width = 1100;
  fig.height = 520;
  fig.data =
    "# index 0: per band; columns band, version (0 raw, 1 JPEG 90, 2 JPEG 50, 3 JPEG 10, 4 nothing), "
    "informative (1) or not (0), the marker's colour (0xRRGGBB)\n";
  for (std::size_t c = 0; c < versions.size(); ++c) {
    const bool inf = std::find(informative.begin(), informative.end(), c) != informative.end();
    fig.data += std::to_string(c) + " " + std::to_string(versions[c]) + " " + (inf ? "1 " : "0 ") +
                gp::colour_value(inf ? informative_colour : other_colour) + "\n";
  }
  fig.data +=
    "\n\n# index 1: the pixel mask; columns column, row, sent (1) or dropped (0); one line per row\n";
  for (std::size_t r = 0; r < height; ++r) {
    for (std::size_t c = 0; c < width; ++c) {
      fig.data += std::to_string(c) + " " + std::to_string(r) + " " +
                  (pixels[r * width + c] == 1.0f ? "1" : "0") + "\n";
    }
    fig.data += "\n";
  }
  std::string version_tics;
  for (std::size_t v = 0; v < V; ++v) {
    version_tics += std::string(v == 0 ? "" : ", ") + gp::quote(version_names[v]) + " " + std::to_string(v);
  }
  fig.setup = "set style fill solid 1.0 noborder\n"
              "set palette defined (0 '#ebebeb', 1 '#1e1e1e') # pixel dropped, sent\n"
              "set cbrange [0:1]\n"
              "unset colorbox\n";
  std::string& p = fig.plot;
  p = "  set multiplot layout 1,2 title " + gp::quote(title) + "\n";
  p += "  # left: the version of every band\n";
  p += "  set title 'version per band'\n";
  p += "  set xlabel 'band (index of the spectral band)'\n";
  p += "  set ylabel 'version sent'\n";
  p += "  set xrange [-0.5:" + gp::number(static_cast<double>(versions.size()) - 0.5) + "]\n";
  p += "  set yrange [-0.5:" + gp::number(static_cast<double>(V) - 0.5) + "]\n";
  p += "  set xtics 0,1 out nomirror\n";
  p += "  set ytics (" + version_tics + ") out nomirror\n";
  p += "  set grid ytics lt 1 lc rgb '#dadada'\n";
  p += "  set key below horizontal height 1\n";
  p += "  plot data index 0 using 1:2:4 with points pt 5 ps 2.2 lc rgb variable notitle, \\\n";
  p += "       NaN with points pt 5 ps 2.2 lc " + gp::colour(informative_colour) +
       " title 'informative band', \\\n";
  p += "       NaN with points pt 5 ps 2.2 lc " + gp::colour(other_colour) + " title 'other band'\n";
  p += "  # right: the pixel mask\n";
  p += "  set title 'pixel mask (dark: sent)'\n";
  p += "  set xlabel 'pixel column'\n";
  p += "  set ylabel 'pixel row'\n";
  p += "  set xrange [-0.5:" + gp::number(static_cast<double>(width) - 0.5) + "]\n";
  p += "  set yrange [" + gp::number(static_cast<double>(height) - 0.5) + ":-0.5] # row 0 at the top\n";
  p += "  set xtics 0,4 out nomirror\n";
  p += "  set ytics 0,4 out nomirror\n";
  p += "  unset grid\n";
  p += "  set size ratio -1\n";
  p += "  plot data index 1 using 1:2:3 with image notitle\n";
  p += "  set size noratio\n";
  p += "  unset multiplot\n";
  io::render_figure(path, fig);
}
} // namespace

int main(int argc, char** argv) {
  namespace nn = selmask::nn;
  namespace io = selmask::io;
  bool quick = false;
  std::uint64_t seed = 0;
  std::filesystem::path out = ".";
  selmask::io::remote_options scene{};
  scene.bands = 16;
  scene.height = 16;
  scene.width = 16;
  scene.feature_width = 0.4f; // one informative band per class
  scene.noise = 0.1f;
  scene.signal = 0.03f; // the default 0.12 gives 1.000 full-data accuracy
  example::command_line cl("remote_jpeg_pixels");
  cl.flag("--quick", quick)
    .option("--noise", "X", scene.noise)
    .option("--signal", "X", scene.signal)
    .option("--seed", "N", seed)
    .option("--out", "DIR", out);
  if (!cl.parse(argc, argv)) {
    return 2;
  }
  try {
    std::filesystem::create_directories(out);
    auto train = io::make_remote(quick ? 600 : 3000, scene, 1);
    auto val = io::make_remote(quick ? 200 : 1000, scene, 2);
    auto test = io::make_remote(quick ? 200 : 1000, scene, 3);
    std::size_t clamped = 0;
    for (auto* d : {&train.data, &val.data, &test.data}) {
      clamped += to_unit_range(*d);
    }
    const std::size_t all_values =
      train.data.images.size() + val.data.images.size() + test.data.images.size();
    const std::size_t bands = scene.bands;
    const auto& informative = train.informative;
    std::printf("scene: %zu bands x %zux%zu pixels, %zu classes, noise %.3g, seed %llu; values mapped by "
                "0.1 + 0.8x, %.3f %% clamped to [0, 1]\n",
                bands, scene.height, scene.width, scene.classes, static_cast<double>(scene.noise),
                static_cast<unsigned long long>(seed),
                100.0 * static_cast<double>(clamped) / static_cast<double>(all_values));
    std::string inf_list;
    for (std::size_t b : informative) {
      inf_list += (inf_list.empty() ? "" : " ") + std::to_string(b);
    }
    std::printf("informative bands (generator): %s\n", inf_list.c_str());

    // measured costs and the version cache (val and test are cached at their first evaluation)
    const auto op = selmask::with_measured_costs(ladder{}, train.data, quick ? 200 : 1000);
    const auto costs = op.costs();
    std::printf("measured cost per version (bytes / raw bytes):");
    for (std::size_t v = 0; v < V; ++v) {
      std::printf(" %s %.3f", version_names[v], static_cast<double>(costs[v]));
    }
    std::printf("\n");
    const auto cached = selmask::precompute_versions(op, train.data);
    using stage = selmask::extend<selmask::cached_versions<ladder>>;
    using pipe = selmask::pipeline<stage, selmask::xor_mask<selmask::channel>, selmask::merge<selmask::sum>,
                                   selmask::any_mask<selmask::pixel>>;
    pipe::on<B> masks(train.data.sample, /*seed=*/7 + seed, stage{cached}, {}, {}, {});

    using network = nn::sequential<B, nn::flatten<B>, nn::dense<B>, nn::relu<B>, nn::dense<B>>;
    std::vector<float> mean, inv_std;
    band_statistics(train.data, mean, inv_std);
    // centre per band but scale all bands by one fixed factor: with per-band standard deviations a
    // band switched to "nothing" (0) lands 3-5 deviations away and killed the network in a test run
    std::fill(inv_std.begin(), inv_std.end(), 4.0f);
    selmask::standardised<B, network> model(
      network(nn::sequential_options{3 + seed, {3e-3f, 0.5f, 0.999f, 1e-8f, 1e-4f, true}}, nn::flatten<B>{},
              nn::dense<B>(train.data.sample.size(), 32), nn::relu<B>{}, nn::dense<B>(32, scene.classes)),
      mean, inv_std);
    static_assert(selmask::trainable_model<selmask::standardised<B, network>, B>);

    selmask::trainer_options opt;
    opt.lambda = 0.1f;
    opt.warmup_epochs = quick ? 2 : 4;
    opt.mask_epochs = quick ? 6 : 30;
    opt.batch_size = 50;
    opt.mask_optimizer.lr = 0.05f;
    opt.seed = seed;
    const auto result =
      selmask::learn_selection_masks(masks, model, train.data, val.data, &test.data, opt,
                                     selmask::round_schedule{2, 1, 1.5f}, selmask::progress_display{0});

    std::printf("full data: validation accuracy %.3f, test accuracy %.3f\n", result.full_val_accuracy,
                result.full_test_accuracy);
    std::printf("front (Q = mean band cost x fraction of pixels; versions per band: R raw, 9/5/1 JPEG "
                "90/50/10, - nothing):\n       Q    val   test  pixels  versions\n");
    const auto pareto = result.front.pareto();
    for (const auto& p : pareto) {
      std::printf("%8.4f  %.3f  %.3f  %6.3f  %s\n", p.q, p.val_accuracy, p.test_accuracy,
                  kept_fraction(p.masks[1]), version_string(band_versions(p.masks[0], bands)).c_str());
    }

    // ---- front files ------------------------------------------------------------------------------
    io::csv_table front_csv({"q", "val_accuracy", "test_accuracy", "pixels_kept", "mean_band_cost", "pareto",
                             "epoch", "lambda", "band_versions"});
    io::plot_series all{"front (every Q bucket)", {},   {}, io::colours::palette[7],
                        io::marker_shape::circle, false};
    io::plot_series best{"Pareto front", {}, {}, io::colours::palette[0]};
    double q_max = 1.0;
    for (const auto& p : result.front.points()) {
      const auto vs = band_versions(p.masks[0], bands);
      double band_cost = 0.0;
      for (std::size_t v : vs) {
        band_cost += static_cast<double>(costs[v]) / static_cast<double>(bands);
      }
      const bool on_pareto =
        std::any_of(pareto.begin(), pareto.end(), [&](const auto& o) { return o.epoch == p.epoch; });
      front_csv.add_row({p.q, p.val_accuracy, p.test_accuracy, kept_fraction(p.masks[1]), band_cost,
                         on_pareto ? 1 : 0, p.epoch, p.lambda, version_string(vs)});
      (on_pareto ? best : all).x.push_back(p.q);
      (on_pareto ? best : all).y.push_back(p.test_accuracy);
      q_max = std::max(q_max, p.q);
    }
    front_csv.save(out / "remote_jpeg_pixels_front.csv");
    io::plot_series full{"full data",
                         {0.0, q_max},
                         {result.full_test_accuracy, result.full_test_accuracy},
                         io::colours::palette[3],
                         io::marker_shape::none};
    io::plot_options po;
    po.title = "remote sensing, JPEG version per band + pixel mask";
    po.x_label = "Q (measured bytes / raw bytes)";
    po.x_max = q_max;
    io::plot_xy(out / "remote_jpeg_pixels_front.png", {full, all, best}, po);

    // ---- the chosen point --------------------------------------------------------------------------
    const auto points = result.front.points(); // increasing Q
    const selmask::front_point* chosen = nullptr;
    std::string rule;
    for (const auto& p : points) {
      if (p.q < 0.999 && p.val_accuracy >= result.full_val_accuracy - 0.01) {
        chosen = &p;
        rule = "smallest Q within 1 point of full data on validation";
        break;
      }
    }
    if (chosen == nullptr) {
      chosen = result.front.best_within(0.2);
      rule = "best validation point with Q <= 0.2";
    }
    if (chosen == nullptr) {
      std::printf("the front is empty\n");
      return 1;
    }
    const auto vs = band_versions(chosen->masks[0], bands);
    const auto& pixel_mask = chosen->masks[1];
    std::printf("chosen point (%s): Q %.4f, validation %.3f, test %.3f (full data %.3f, difference %+.3f), "
                "pixels kept %.3f\n",
                rule.c_str(), chosen->q, chosen->val_accuracy, chosen->test_accuracy,
                result.full_test_accuracy, chosen->test_accuracy - result.full_test_accuracy,
                kept_fraction(pixel_mask));
    std::printf("version per band:");
    io::csv_table choice_csv({"kind", "index", "value", "name", "informative"});
    for (std::size_t c = 0; c < bands; ++c) {
      const bool inf = std::find(informative.begin(), informative.end(), c) != informative.end();
      std::printf(" %zu:%s%s", c, version_names[vs[c]], inf ? "*" : "");
      choice_csv.add_row({"band", c, vs[c], version_names[vs[c]], inf ? 1 : 0});
    }
    std::printf("   (* informative)\n");
    for (std::size_t k = 0; k < pixel_mask.size(); ++k) {
      choice_csv.add_row({"pixel", k, pixel_mask[k], pixel_mask[k] == 1.0f ? "sent" : "dropped", 0});
    }
    choice_csv.save(out / "remote_jpeg_pixels_choice.csv");
    char title[160];
    std::snprintf(title, sizeof title, "Q %.3f, test %.3f (full %.3f)", chosen->q, chosen->test_accuracy,
                  result.full_test_accuracy);
    draw_choice(out / "remote_jpeg_pixels_choice.png", vs, pixel_mask, scene.height, scene.width, informative,
                title);
    std::printf("wrote %s/remote_jpeg_pixels_{front,choice}.{csv,png,svg,dat,gp}\n", out.string().c_str());
    double best_test = 0.0;
    for (const auto& p : points) {
      best_test = std::max(best_test, p.test_accuracy);
    }
    return best_test >= 0.5 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "remote_jpeg_pixels: %s\n", e.what());
    return 1;
  }
}
