// The main job: learn a pixel(any) selection mask jointly with LeNet on Fashion-MNIST, and show
// the accuracy-versus-transferred-data front.
//
//   fashion_mnist_pixels [--out DIR] [--full] [--rounds] [--mask-epochs N] [--warmup N] [--lambda L]
//                        [--lambda-factor F] [--mask-lr R] [--explore N] [--fixate N] [--fixate-lr F]
//                        [--final-fixate N] [--final-fixate-lr F] [--target-q Q]
//                        [--explore-lr F] [--final-cosine 0|1]
//                        [--budget Q] [--keep K] [--budget-eta E] [--budget-reach F]
//                        [--train-limit N]
//                        [--test-limit N] [--seed S] [--seeds N]
//                        [--weights FILE] [--state-every N] [--shards N]
//   fashion_mnist_pixels --resume DIR
//
// Writes to DIR (default out/fashion_pixels): front.csv, epochs.csv, front.png and front.svg (test
// accuracy vs fraction of pixels kept, drawn by gnuplot from front.dat with the script front.gp:
// edit it and run `gnuplot front.gp` in DIR to restyle), mask_qXXX.png for every front point (kept
// pixels over the average training image) with mask_qXXX.npy (the 28×28 mask of 0 / 1 as a NumPy
// array: numpy.load), summary.txt; checkpoints of every front point under
// DIR/checkpoints.
// Bytes on the wire (front_wire.hpp): where libcurl and nginx are found, front.csv also gives per
// test image the payload, the wire bytes of the default transport (coalesced ranges over nginx)
// and the full download, predicted from a transport model measured once at the start against a
// private nginx; front_wire.png plots accuracy against them and the summary line names them.
// Without nginx (or libcurl) the columns are left out, with a message.
// --seeds N trains N times, with seeds S, S+1, ..., S+N-1 (each its own validation split, mask
// and network initialisation and batch order), each run writing the files above to DIR/seed_K;
// DIR then holds the means over the seeds: seeds.csv (per seed and budget Q in {0.02, 0.05,
// 0.10, 0.25}: the front point of largest validation accuracy with Q at most the budget, and its
// test accuracy), front.csv (per budget: mean Q, mean, standard deviation, minimum and maximum of
// the test accuracy over the seeds that reached the budget), front.png (every seed's front, and
// the means, with bands for the standard deviation and for the minimum to maximum) and summary.txt.
// The validation split (5000 images) is carved from the training set; masks and checkpoints are
// chosen on it, and the test accuracy of each chosen point is reported.
// Without --full, --rounds, --budget, --keep, --lambda, --lambda-factor or --target-q, the job runs
// with --budget 0.05; --rounds runs the λ rounds of Algorithm 1 with the default settings instead.
// --budget Q steers λ with selmask::budget_controller (dual ascent, per batch, η = E per epoch)
// so that the mask keeps a fraction Q of the pixels by the end of the --mask-epochs, then projects
// it onto the budget (trainer_options::keep_q) and fine-tunes the network to it for --final-fixate
// epochs (default 3 with a budget); --keep K does the same for exactly K pixels (keep_cells).
// --budget-reach F: the part of the mask epochs over which the controller's aim falls from 1 to Q
// (default 0.5).
// Nothing lost: the whole training state is written to DIR/state/state.bin (DIR/seed_K/state with
// --seeds) after every epoch and every --state-every N batches (default 100; 0: epoch ends only),
// and the arguments to DIR/arguments.txt. Ctrl-C (SIGINT) or SIGTERM finishes the current batch,
// writes the state and exits (status 130 / 143) saying how to continue; after a kill, a crash or
// a power cut, `--resume DIR` continues from the last state with the arguments of DIR's run and
// gives the same front, masks, weights and epoch log (but for its seconds) as a run never stopped.
// fashion_mnist_pixels_mpi compiles this file with SELMASK_EXAMPLE_MPI defined: the same job over
// MPI ranks (scripts/run.sh --ranks N: mpirun underneath), every global batch split across the
// ranks (selmask::mpi_communicator), rank 0 writing every output: the same outputs, bit for bit,
// as `--shards N` in one process (selmask::local_shards: the N shards one after another).
// fashion_mnist_pixels_cuda.cu compiles this file with SELMASK_EXAMPLE_CUDA defined: the same job
// on the GPU (selmask::cuda), with selmask/cuda.cuh instead of the CPU umbrella header.
// fashion_mnist_pixels_torch compiles this file with SELMASK_EXAMPLE_TORCH defined: the same job
// with a network written in libtorch's C++ frontend (torch_resnet.hpp: a small residual network,
// trained by torch's AdamW) in place of LeNet, through selmask::torch_model (scripts/run.sh --torch).
#if defined(SELMASK_EXAMPLE_TORCH)
#include "torch_resnet.hpp" // the libtorch headers before everything else
#endif
#include "gnuplot.hpp"
#include "pictures.hpp"
#if defined(SELMASK_EXAMPLE_WIRE)
#include "front_wire.hpp"
#endif

#include <selmask/io/fashion_mnist.hpp>
#include <selmask/nn/lenet.hpp>
#if !defined(SELMASK_EXAMPLE_CUDA)
#include <selmask/selmask.hpp>
#endif
#include <selmask/train/trainer.hpp>
#if defined(SELMASK_EXAMPLE_MPI)
#include <selmask/train/mpi.hpp>
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct arguments {
  std::filesystem::path out = "out/fashion_pixels";
  bool full = false;
  std::size_t warmup = 2;
  std::size_t mask_epochs = 15;
  float lambda = 0.2f;
  float lambda_factor = 2.0f;
  float mask_lr = 0.02f;
  std::size_t explore = 2;
  std::size_t fixate = 1;
  float fixate_lr = 1.0f;
  std::size_t final_fixate = 0;
  float final_fixate_lr = 1.0f;
  double target_q = 0.0;
  std::optional<double> budget;
  std::optional<std::size_t> keep;
  float budget_eta = 12.0f;
  double budget_reach = 0.5;
  float explore_lr = 1.0f;
  bool final_cosine = false;
  std::size_t train_limit = 0;
  std::size_t test_limit = 0;
  std::size_t validation = 5000;
  std::uint64_t seed = 1;
  std::size_t seeds = 1;
  std::filesystem::path weights;
  std::size_t state_every = 100;
  std::size_t shards = 1;
  bool resume = false;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(
    stderr,
    "%s\nusage: fashion_mnist_pixels [--out DIR] [--full] [--rounds] [--mask-epochs N] [--warmup N] "
    "[--lambda L] [--lambda-factor F] [--mask-lr R] [--explore N] [--fixate N] [--fixate-lr F] "
    "[--final-fixate N] [--final-fixate-lr F] [--target-q Q] [--explore-lr F] "
    "[--final-cosine 0|1] [--budget Q] [--keep K] [--budget-eta E] [--budget-reach F] "
    "[--train-limit N] "
    "[--test-limit N] [--validation N] "
    "[--seed S] [--seeds N] [--weights FILE] [--state-every N] [--shards N]\n"
    "       fashion_mnist_pixels --resume DIR   (continue the run whose outputs are in DIR)\n",
    msg);
  std::exit(2);
}

/// The arguments of a run, as `--resume DIR` reads them back from DIR/arguments.txt.
std::vector<std::string> stored_arguments(const std::filesystem::path& dir) {
  const auto file = dir / "arguments.txt";
  if (!std::filesystem::exists(file))
    usage(("--resume " + dir.string() + ": no run to resume there (no arguments.txt)").c_str());
  std::istringstream in(selmask::io::read_file(file));
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

arguments parse(int argc, char** argv) {
  // --resume DIR alone: the arguments of the run in DIR, and its output folder
  if (argc >= 2 && std::string(argv[1]) == "--resume") {
    if (argc != 3)
      usage("--resume DIR takes no other arguments: the run continues with the arguments it began with");
    const std::filesystem::path dir = argv[2];
    std::vector<std::string> stored = stored_arguments(dir);
    std::vector<char*> v{argv[0]};
    for (auto& x : stored)
      v.push_back(x.data());
    arguments a = parse(static_cast<int>(v.size()), v.data());
    a.out = dir;
    a.resume = true;
    return a;
  }
  arguments a;
  bool rounds = false;
  bool epochs_given = false, warmup_given = false, lambda_given = false, factor_given = false,
       fixate_given = false, target_given = false, final_lr_given = false, cosine_given = false,
       final_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        usage(("missing value after " + k).c_str());
      return argv[++i];
    };
    try {
      if (k == "--out")
        a.out = value();
      else if (k == "--full")
        a.full = true;
      else if (k == "--rounds")
        rounds = true;
      else if (k == "--mask-epochs") {
        a.mask_epochs = std::stoul(value());
        epochs_given = true;
      } else if (k == "--warmup") {
        a.warmup = std::stoul(value());
        warmup_given = true;
      } else if (k == "--lambda") {
        a.lambda = std::stof(value());
        lambda_given = true;
      } else if (k == "--lambda-factor") {
        a.lambda_factor = std::stof(value());
        factor_given = true;
      } else if (k == "--mask-lr")
        a.mask_lr = std::stof(value());
      else if (k == "--explore")
        a.explore = std::stoul(value());
      else if (k == "--fixate") {
        a.fixate = std::stoul(value());
        fixate_given = true;
      } else if (k == "--final-cosine") {
        a.final_cosine = std::stoi(value()) != 0;
        cosine_given = true;
      } else if (k == "--explore-lr") {
        a.explore_lr = std::stof(value());
      } else if (k == "--target-q") {
        a.target_q = std::stod(value());
        target_given = true;
      } else if (k == "--final-fixate") {
        a.final_fixate = std::stoul(value());
        final_given = true;
      } else if (k == "--budget") {
        a.budget = std::stod(value());
      } else if (k == "--keep") {
        const std::string v = value();
        if (v.empty() || v.front() == '-')
          throw std::invalid_argument(v);
        a.keep = std::stoul(v);
      } else if (k == "--budget-eta") {
        a.budget_eta = std::stof(value());
      } else if (k == "--budget-reach") {
        a.budget_reach = std::stod(value());
      } else if (k == "--final-fixate-lr") {
        a.final_fixate_lr = std::stof(value());
        final_lr_given = true;
      } else if (k == "--fixate-lr") {
        a.fixate_lr = std::stof(value());
      } else if (k == "--train-limit")
        a.train_limit = std::stoul(value());
      else if (k == "--test-limit")
        a.test_limit = std::stoul(value());
      else if (k == "--validation")
        a.validation = std::stoul(value());
      else if (k == "--seed")
        a.seed = std::stoull(value());
      else if (k == "--seeds") {
        const std::string v = value();
        if (v.empty() || v.front() == '-')
          throw std::invalid_argument(v);
        a.seeds = std::stoul(v);
      } else if (k == "--weights")
        a.weights = value();
      else if (k == "--state-every")
        a.state_every = std::stoul(value());
      else if (k == "--shards") {
        const std::string v = value();
        if (v.empty() || v.front() == '-' || std::stoul(v) == 0)
          throw std::invalid_argument(v);
        a.shards = std::stoul(v);
#if defined(SELMASK_EXAMPLE_TORCH)
        if (a.shards > 1) // data-parallel training needs the kit's grads() (train/data_parallel.hpp)
          usage("--shards: the libtorch network of this build trains in one shard");
#endif
      } else if (k == "--help" || k == "-h")
        usage("learn a pixel mask for LeNet on Fashion-MNIST");
      else
        usage(("unknown argument " + k).c_str());
    } catch (const std::logic_error&) {
      usage(("bad value for " + k).c_str());
    }
  }
  // the full schedule: a longer warm-up; λ grows more gently through more rounds, so that the
  // front has points all the way down to a few percent of the pixels; two fixation epochs per
  // round let the network adapt to each frozen mask before the front records it; once the
  // validation Q is at most 5 % the mask stays and the remaining epochs fine-tune the network
  // to it, its learning rate falling from 0.5× along a half cosine
  if (a.full) {
    if (!epochs_given)
      a.mask_epochs = 70;
    if (!warmup_given)
      a.warmup = 5;
    if (!lambda_given)
      a.lambda = 0.1f;
    if (!factor_given)
      a.lambda_factor = 1.6f;
    if (!fixate_given)
      a.fixate = 2;
    if (!target_given)
      a.target_q = 0.05;
    if (!final_lr_given)
      a.final_fixate_lr = 0.5f;
    if (!cosine_given)
      a.final_cosine = true;
  }
  // without a schedule named, the job learns a mask for a budget of 5 % of the pixels (the
  // budget controller, then the projection and 3 epochs of fine-tuning): the quickest way to a
  // useful front; --rounds keeps the λ rounds of Algorithm 1 with the default settings
  if (!a.full && !rounds && !a.budget && !a.keep && !lambda_given && !factor_given && !target_given)
    a.budget = 0.05;
  if (a.seeds == 0)
    usage("--seeds must be at least 1");
  if (a.budget && a.keep)
    usage("--budget and --keep exclude each other");
  if (a.budget && !(*a.budget > 0.0 && *a.budget <= 1.0))
    usage(
      ("--budget must lie in (0, 1] (a fraction of the pixels), got " + std::to_string(*a.budget)).c_str());
  if (a.keep && (*a.keep == 0 || *a.keep > 28 * 28))
    usage(("--keep must lie in 1..784 (pixels), got " + std::to_string(*a.keep)).c_str());
  if ((a.budget || a.keep) && !final_given)
    a.final_fixate = 3; // the network settles on the projected mask
  return a;
}

#if defined(SELMASK_EXAMPLE_MPI)
using communicator_t = selmask::mpi_communicator;
#else
using communicator_t = selmask::single_process;
#endif
int rank = 0; ///< of this process (MPI), 0 without MPI
bool is_root() { return rank == 0; }

#if defined(SELMASK_EXAMPLE_TORCH)
const char* const network_name = "libtorch ResNet"; ///< in the figures' titles
#else
const char* const network_name = "LeNet";
#endif

#if defined(SELMASK_EXAMPLE_CUDA)
using backend_t = selmask::cuda;
#else
using backend_t = selmask::cpu;
#endif

/// Bytes on the wire per test image of a mask: payload, coalesced ranges over nginx, full download.
using wire_fn = std::function<std::array<double, 3>(const std::vector<float>&)>;

struct seed_run {
  selmask::training_result result;
  std::vector<selmask::front_point> points; ///< the Pareto points, chosen on validation
};

/// One training run of the job with `seed`, its checkpoints and epoch log under `out`.
seed_run train_seed(const arguments& args, const selmask::io::dataset& train,
                    const selmask::io::dataset& validation, const selmask::io::dataset& test,
                    std::uint64_t seed, const std::filesystem::path& out) {
  using B = backend_t;
  using pipe = selmask::pipeline<selmask::any_mask<selmask::pixel>>;
  pipe::on<B> masks(train.sample, seed);
#if defined(SELMASK_EXAMPLE_TORCH)
  auto net = example::make_torch_resnet<B>(seed);
#else
  selmask::nn::lenet<B> net(seed);
#endif

  selmask::trainer_options opt;
  opt.lambda = args.lambda;
  opt.warmup_epochs = args.warmup;
  opt.mask_epochs = args.mask_epochs + args.final_fixate; // the final fixation comes after the rounds
  opt.final_fixation_epochs = args.final_fixate;
  opt.target_q = args.target_q;
  opt.seed = seed;
  opt.mask_optimizer.lr = args.mask_lr;
  opt.checkpoint_dir = out / "checkpoints";
  opt.state_dir = out / "state";
  opt.state_every_batches = args.state_every;
  opt.resume = args.resume;
  if (!args.weights.empty()) {
    net.load(args.weights); // warm start from saved weights instead of (or before) the warm-up
  }
  const auto lr = selmask::phase_lr{.exploration = args.explore_lr,
                                    .fixation = args.fixate_lr,
                                    .final_fixation = args.final_fixate_lr,
                                    .final_cosine = args.final_cosine};
  const auto train_with = [&](auto controller) {
    const auto policies = selmask::training_policies<>{}.with_lambda(controller).with_lr(lr);
    const auto learn = [&](auto communicator) {
      return selmask::learn_selection_masks(
        masks, net, train, validation, &test, opt, policies.with_communicator(communicator),
        selmask::progress_display{25}, selmask::epoch_csv_log(out / "epochs.csv"));
    };
#if !defined(SELMASK_EXAMPLE_MPI) && !defined(SELMASK_EXAMPLE_CUDA) && !defined(SELMASK_EXAMPLE_TORCH)
    if (args.shards > 1) // the shards of --ranks N, computed one after another in this process
      return learn(selmask::local_shards(args.shards));
#endif
    return learn(communicator_t{});
  };
  seed_run run;
  selmask::training_result& result = run.result;
  if (args.budget || args.keep) {
    // λ follows the budget: dual ascent after every batch, η per epoch spread over its batches
    const double cells = static_cast<double>(train.sample[1] * train.sample[2]);
    const double target = args.keep ? static_cast<double>(*args.keep) / cells : *args.budget;
    const std::size_t batches = (train.size() + opt.batch_size - 1) / opt.batch_size;
    opt.keep_cells = args.keep;
    if (!args.keep)
      opt.keep_q = args.budget;
    result = train_with(selmask::budget_controller{.target_q = target,
                                                   .by_epoch = args.mask_epochs,
                                                   .eta = args.budget_eta / static_cast<float>(batches),
                                                   .per_batch = true,
                                                   .reach_fraction = args.budget_reach});
  } else {
    result = train_with(selmask::round_schedule{args.explore, args.fixate, args.lambda_factor});
  }

  run.points = run.result.front.pareto();
  return run;
}

/// The files of one run (front.csv, plots, mask pictures, summary.txt) under `out`; returns the
/// summary line.
std::string write_seed_outputs(const seed_run& run, const selmask::io::dataset& train,
                               const std::filesystem::path& out, const wire_fn& wire_of,
                               const std::string& no_wire) {
  // ---- the front ------------------------------------------------------------------------------------
  const auto& points = run.points;
  const auto& result = run.result;
  {
    std::string csv = "q,val_accuracy,test_accuracy,epoch,lambda,tau,checkpoint";
    csv += wire_of ? ",payload_bytes_per_image,wire_bytes_per_image,full_download_bytes_per_image\n" : "\n";
    for (const auto& p : points) {
      char row[512];
      std::snprintf(row, sizeof row, "%.6f,%.6f,%.6f,%zu,%.6g,%.6g,%s", p.q, p.val_accuracy, p.test_accuracy,
                    p.epoch, static_cast<double>(p.lambda), static_cast<double>(p.tau),
                    p.checkpoint.string().c_str());
      csv += row;
      if (wire_of) {
        const auto w = wire_of(p.masks[0]);
        std::snprintf(row, sizeof row, ",%.2f,%.2f,%.2f", w[0], w[1], w[2]);
        csv += row;
      }
      csv += "\n";
    }
    selmask::io::write_file_atomically(out / "front.csv", [&](std::ostream& os) { os << csv; });
  }

  // average training image as the background of the mask pictures
  std::vector<float> mean(28 * 28, 0.0f);
  for (std::size_t i = 0; i < train.size(); ++i) {
    const auto img = train.image(i);
    for (std::size_t k = 0; k < mean.size(); ++k)
      mean[k] += img[k] / static_cast<float>(train.size());
  }
  selmask::io::plot_series test_curve;
  test_curve.label = "test accuracy (front)";
  selmask::io::plot_series val_curve;
  val_curve.label = "validation accuracy";
  for (const auto& p : points) {
    test_curve.x.push_back(p.q);
    test_curve.y.push_back(p.test_accuracy);
    val_curve.x.push_back(p.q);
    val_curve.y.push_back(p.val_accuracy);
    char name[64];
    std::snprintf(name, sizeof name, "mask_q%.3f", p.q);
    selmask::io::mask_image(out / (std::string(name) + ".png"), p.masks[0], mean, 28, 28, 8);
    // the mask itself for Python: numpy.load("mask_q0.050.npy") is a 28×28 float32 array of 0 / 1
    selmask::io::write_npy(out / (std::string(name) + ".npy"), selmask::shape{28, 28}, p.masks[0]);
  }
  selmask::io::plot_series full;
  full.label = "full data, test (after warm-up)";
  full.x = {1.0};
  full.y = {result.full_test_accuracy};
  full.marker = selmask::io::marker_shape::square;
  selmask::io::plot_options po;
  po.title = std::string(network_name) + " + pixel(any) mask on Fashion-MNIST";
  po.y_label = "accuracy";
  if (wire_of && !points.empty()) { // the default transport's bytes of the smallest point, in the title
    const auto& smallest =
      *std::min_element(points.begin(), points.end(), [](const auto& a, const auto& b) { return a.q < b.q; });
    const auto w = wire_of(smallest.masks[0]);
    char t[256];
    std::snprintf(t, sizeof t, "%s, pixel(any): Q %.3f = %.0f wire B/image (full %.0f)", network_name,
                  smallest.q, w[1], w[2]);
    po.title = t;
  }
  selmask::io::plot_xy(out / "front.png", {test_curve, val_curve, full}, po);
  if (wire_of) { // the same front against bytes per test image
    selmask::io::plot_series payload_curve;
    payload_curve.label = "payload";
    selmask::io::plot_series wire_curve;
    wire_curve.label = "wire: coalesced ranges over nginx";
    double full_bytes = 0;
    for (const auto& p : points) {
      const auto w = wire_of(p.masks[0]);
      payload_curve.x.push_back(w[0]);
      payload_curve.y.push_back(p.test_accuracy);
      wire_curve.x.push_back(w[1]);
      wire_curve.y.push_back(p.test_accuracy);
      full_bytes = w[2];
    }
    selmask::io::plot_series full_wire = full;
    full_wire.label = "full download, test (after warm-up)";
    full_wire.x = {full_bytes};
    selmask::io::plot_options pw = po;
    pw.title = "the front against bytes on the wire";
    pw.x_label = "bytes per test image (HTTP requests, headers and bodies)";
    pw.x_max = 1.05 * full_bytes;
    selmask::io::plot_xy(out / "front_wire.png", {payload_curve, wire_curve, full_wire}, pw);
  }

  // ---- summary --------------------------------------------------------------------------------------
  std::printf("\nfront (Pareto points, chosen on validation):\n   q(kept)  val acc  test acc  epoch\n");
  for (const auto& p : points) {
    std::printf("  %7.4f   %.4f    %.4f  %5zu\n", p.q, p.val_accuracy, p.test_accuracy, p.epoch);
  }
  const selmask::front_point* best_small = nullptr;
  for (const double budget : {0.05, 0.10, 0.25, 0.5}) {
    if ((best_small = result.front.best_within(budget)))
      break;
  }
  char line[512];
  if (best_small && wire_of) {
    const auto w = wire_of(best_small->masks[0]);
    std::snprintf(line, sizeof line,
                  "keeps %.1f %% of the pixels at %.1f %% test accuracy; full data %.1f %%; per test image "
                  "%.1f payload bytes, %.1f wire bytes (coalesced ranges over nginx), full download %.1f",
                  100 * best_small->q, 100 * best_small->test_accuracy, 100 * result.full_test_accuracy, w[0],
                  w[1], w[2]);
  } else if (best_small) {
    std::snprintf(line, sizeof line,
                  "keeps %.1f %% of the pixels at %.1f %% test accuracy; full data %.1f %%; wire bytes not "
                  "measured (%s)",
                  100 * best_small->q, 100 * best_small->test_accuracy, 100 * result.full_test_accuracy,
                  no_wire.c_str());
  } else {
    std::snprintf(line, sizeof line, "no point below half of the pixels yet; full data %.1f %%",
                  100 * result.full_test_accuracy);
  }
  if (result.final_point) { // the mask training ended with (after --budget / --keep: projected)
    const auto& f = *result.final_point;
    const double kept = std::accumulate(f.masks[0].begin(), f.masks[0].end(), 0.0);
    std::snprintf(line + std::strlen(line), sizeof line - std::strlen(line),
                  "\nfinal mask: %.0f pixels, Q %.4f, val %.4f, test %.4f (epoch %zu)", kept, f.q,
                  f.val_accuracy, f.test_accuracy, f.epoch);
  }
  std::printf("\n%s\n", line);
  selmask::io::write_file_atomically(out / "summary.txt", [&](std::ostream& os) { os << line << "\n"; });
  std::printf("wrote %s/{front.csv,front.{png,svg,dat,gp}%s,epochs.csv,summary.txt,mask_q*.{png,npy}}\n",
              out.string().c_str(), wire_of ? ",front_wire.{png,svg,dat,gp}" : "");
  return line;
}

/// Means over the seeds at the budgets Q ≤ 0.02, 0.05, 0.10, 0.25: per seed the front point of
/// largest validation accuracy within the budget (as a user would pick it), then the mean, standard
/// deviation, minimum and maximum of its test accuracy. Writes seeds.csv, front.csv, front.png and
/// summary.txt to args.out.
void write_seed_means(const arguments& args, const std::vector<seed_run>& runs) {
  const std::array<double, 4> budgets{0.02, 0.05, 0.10, 0.25};
  std::string per_seed = "seed,budget,q,val_accuracy,test_accuracy,epoch\n";
  std::string means = "budget,seeds_reaching,mean_q,mean_test_accuracy,std_test_accuracy,min_test_accuracy,"
                      "max_test_accuracy\n";
  // the mean with a band of ± one standard deviation, over a lighter band from the minimum to the
  // maximum (a series of its own that draws its band only)
  selmask::io::plot_series mean_curve, spread;
  mean_curve.label = "mean over seeds (test, best within Q)";
  mean_curve.band_label = "mean ± standard deviation";
  mean_curve.colour = spread.colour = selmask::io::colours::palette[0];
  spread.band_label = "minimum to maximum over seeds";
  spread.marker = selmask::io::marker_shape::none;
  spread.connect = false;
  spread.band_bars = true; // the band has no width where budgets share one mean Q
  std::string line;
  char row[256];
  for (const double budget : budgets) {
    std::vector<double> qs, accs;
    for (std::size_t k = 0; k < runs.size(); ++k) {
      const selmask::front_point* p = runs[k].result.front.best_within(budget);
      if (!p)
        continue;
      std::snprintf(row, sizeof row, "%llu,%.2f,%.6f,%.6f,%.6f,%zu\n",
                    static_cast<unsigned long long>(args.seed + k), budget, p->q, p->val_accuracy,
                    p->test_accuracy, p->epoch);
      per_seed += row;
      qs.push_back(p->q);
      accs.push_back(p->test_accuracy);
    }
    if (accs.empty()) {
      std::snprintf(row, sizeof row, "%.2f,0,,,,,\n", budget);
      means += row;
      std::snprintf(row, sizeof row, "Q <= %.2f: no seed reached it\n", budget);
      line += row;
      continue;
    }
    const double n = static_cast<double>(accs.size());
    const double mq = std::accumulate(qs.begin(), qs.end(), 0.0) / n;
    const double ma = std::accumulate(accs.begin(), accs.end(), 0.0) / n;
    double var = 0.0;
    for (const double a : accs)
      var += (a - ma) * (a - ma);
    const double sd = accs.size() > 1 ? std::sqrt(var / (n - 1.0)) : 0.0;
    const auto [lo, hi] = std::minmax_element(accs.begin(), accs.end());
    std::snprintf(row, sizeof row, "%.2f,%zu,%.6f,%.6f,%.6f,%.6f,%.6f\n", budget, accs.size(), mq, ma, sd,
                  *lo, *hi);
    means += row;
    mean_curve.x.push_back(mq);
    mean_curve.y.push_back(ma);
    mean_curve.lower.push_back(ma - sd);
    mean_curve.upper.push_back(ma + sd);
    spread.x.push_back(mq);
    spread.y.push_back(ma);
    spread.lower.push_back(*lo);
    spread.upper.push_back(*hi);
    std::snprintf(
      row, sizeof row,
      "Q <= %.2f: mean Q %.4f, test accuracy %.4f +- %.4f (min %.4f, max %.4f, %zu of %zu seeds)\n", budget,
      mq, ma, sd, *lo, *hi, accs.size(), runs.size());
    line += row;
  }
  selmask::io::write_file_atomically(args.out / "seeds.csv", [&](std::ostream& os) { os << per_seed; });
  selmask::io::write_file_atomically(args.out / "front.csv", [&](std::ostream& os) { os << means; });
  selmask::io::plot_series fronts; // every seed's Pareto front, light markers (seeds.csv has them per seed)
  fronts.label = "each seed's front (seeds " + std::to_string(args.seed) + " to " +
                 std::to_string(args.seed + runs.size() - 1) + ")";
  for (const auto& run : runs) {
    for (const auto& p : run.points) {
      fronts.x.push_back(p.q);
      fronts.y.push_back(p.test_accuracy);
    }
  }
  fronts.colour = selmask::io::rgb{170, 170, 170};
  fronts.marker = selmask::io::marker_shape::triangle;
  fronts.connect = false;
  const std::vector<selmask::io::plot_series> series{fronts, spread, mean_curve};
  selmask::io::plot_options po;
  po.title = std::string(network_name) + " + pixel(any) mask, " + std::to_string(runs.size()) + " seeds";
  po.y_label = "test accuracy";
  po.height = 620; // room for the legend below
  selmask::io::plot_xy(args.out / "front.png", std::span<const selmask::io::plot_series>(series), po);
  std::printf("\nmeans over %zu seeds (points chosen on validation):\n%s", runs.size(), line.c_str());
  selmask::io::write_file_atomically(args.out / "summary.txt", [&](std::ostream& os) { os << line; });
  std::printf("wrote %s/{seeds.csv,front.csv,front.{png,svg,dat,gp},summary.txt} and seed_*/\n",
              args.out.string().c_str());
}
} // namespace

int job(int argc, char** argv) try {
  const arguments args = parse(argc, argv);
  std::filesystem::create_directories(args.out);
  if (!args.resume && is_root()) { // what --resume OUT reads back
    std::string lines;
    for (int i = 1; i < argc; ++i)
      lines += std::string(argv[i]) + "\n";
    selmask::io::write_file_atomically(args.out / "arguments.txt", lines);
  }

  std::fprintf(stderr, "loading Fashion-MNIST from %s\n",
               std::string(selmask::io::fashion_mnist_default_dir).c_str());
  auto data = selmask::io::load_fashion_mnist(selmask::io::fashion_mnist_default_dir, args.train_limit,
                                              args.test_limit);

  // bytes on the wire per test image: payload, coalesced ranges over nginx, full download
  wire_fn wire_of;
#if defined(SELMASK_EXAMPLE_WIRE)
  std::optional<example::front_wire> wire; // rank 0 measures (and writes every output)
  std::string no_wire = "measured on rank 0 only";
  if (is_root()) {
    wire.emplace(std::filesystem::path(selmask::io::fashion_mnist_default_dir) / "t10k-images-idx3-ubyte.gz",
                 data.test.size());
    no_wire = wire->why();
    if (wire->available()) {
      wire_of = [&wire](const std::vector<float>& m) {
        const example::wire_per_image w = wire->price(m);
        return std::array<double, 3>{w.payload, w.wire, w.full};
      };
    }
  }
#else
  const std::string no_wire = "built without libcurl (selmask::http)";
#endif
  if (wire_of) {
    std::fprintf(stderr, "transport model of the test images on nginx measured (coalesced ranges)\n");
  } else if (is_root()) {
    std::fprintf(stderr, "no wire bytes in front.csv: %s\n", no_wire.c_str());
  }

  std::vector<seed_run> runs;
  for (std::size_t k = 0; k < args.seeds; ++k) {
    const std::uint64_t seed = args.seed + k;
    const std::filesystem::path out =
      args.seeds == 1 ? args.out : args.out / ("seed_" + std::to_string(seed));
    std::filesystem::create_directories(out);
    auto [train, validation] = selmask::io::split(data.train, args.validation, seed);
    std::fprintf(stderr, "seed %llu: train %zu, validation %zu, test %zu images\n",
                 static_cast<unsigned long long>(seed), train.size(), validation.size(), data.test.size());
    runs.push_back(train_seed(args, train, validation, data.test, seed, out));
    if (is_root())
      write_seed_outputs(runs.back(), train, out, wire_of, no_wire);
  }
  if (args.seeds > 1 && is_root()) {
    write_seed_means(args, runs);
  }
  return 0;
} catch (const selmask::training_interrupted& e) {
  if (is_root()) {
    const std::string out = parse(argc, argv).out.string();
#if defined(SELMASK_EXAMPLE_MPI)
    const std::string again = "mpirun -np N " + std::string(argv[0]) + " --resume " + out +
                              "   (or scripts/run.sh --ranks N --resume " + out + ")";
#else
    const std::string again =
      std::string(argv[0]) + " --resume " + out + "   (or scripts/run.sh --resume " + out + ")";
#endif
    std::fprintf(stderr, "fashion_mnist_pixels: %s\nto continue: %s\n", e.what(), again.c_str());
  }
  return e.signal() == SIGTERM ? 143 : 130;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fashion_mnist_pixels: %s\n", e.what());
  return 1;
}

int main(int argc, char** argv) {
#if defined(SELMASK_EXAMPLE_MPI)
  selmask::mpi_session mpi(argc,
                           argv); // outlives the job's error handling (MPI_Abort after a failed exchange)
  rank = selmask::mpi_session::rank();
#endif
  return job(argc, argv);
}
