// A small data-parallel training run for the MPI tests (tests/mpi/run.sh): the trainer's task of
// tests/train_support.hpp (12 bands, 3 informative; a dense network), written out by rank 0 so
// that runs can be compared byte for byte.
//   mpirun -np R mpi_train OUT [--timeout-ms T] [--die-at B | --hang-at B] [--state]
//   mpi_train OUT --local R      the same R shards in one process (local_shards)
//   mpi_train OUT --plain        one process, no shards
// OUT/front.txt: every front point (Q, accuracies, epoch, λ, τ, the hard masks), exactly (%a);
// OUT/weights.bin: the final weights as raw float32. --die-at B: rank 1 exits (status 3) when it
// reads global batch B; --hang-at B: rank 1 sleeps there for ever; --stop-at B: rank 1 asks to
// stop there (request_stop(); all ranks stop after that batch). --state: a training state in
// OUT/state, resumed when present.
// tests/mpi/nccl_train.cu compiles this file with SELMASK_TEST_NCCL defined: the same run on the
// CUDA backend, the ranks exchanging through NCCL (nccl_communicator), one GPU per rank.
#if defined(SELMASK_TEST_NCCL)
#include <selmask/cuda.cuh>
#include <selmask/train/nccl.hpp>
#else
#include <selmask/selmask.hpp>
#endif
#include "../train_support.hpp"

#include <selmask/nn/dense.hpp>
#include <selmask/nn/flatten.hpp>
#include <selmask/nn/sequential.hpp>
#include <selmask/train/mpi.hpp>
#include <selmask/train/trainer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

using namespace selmask;
namespace fs = std::filesystem;

namespace {
#if defined(SELMASK_TEST_NCCL)
using B = selmask::cuda;
#else
using B = cpu;
#endif

/// The in-memory training set, batch by batch; rank 1 dies or hangs at one global batch.
struct faulty_source {
  dataset_source inner;
  long fail_at = -1;
  long stop_at = -1;
  bool hang = false;
  bool rank1 = false;
  std::size_t read_so_far = 0;
  [[nodiscard]] std::size_t size() const { return inner.size(); }
  [[nodiscard]] std::size_t batches() const { return inner.batches(); }
  [[nodiscard]] shape sample_shape() const { return inner.sample_shape(); }
  [[nodiscard]] std::size_t classes() const { return inner.classes(); }
  void validate() const { inner.validate(); }
  void set_epoch(std::size_t e) { inner.set_epoch(e); }
  void read(std::size_t b, host_batch& out) {
    if (rank1 && fail_at >= 0 && static_cast<long>(read_so_far) == fail_at) {
      if (hang) {
        std::fprintf(stderr, "mpi_train: rank 1 hangs at batch %zu\n", read_so_far);
        std::this_thread::sleep_for(std::chrono::hours(1));
      }
      std::fprintf(stderr, "mpi_train: rank 1 exits at batch %zu\n", read_so_far);
      std::fflush(stderr);
      std::_Exit(3);
    }
    if (rank1 && static_cast<long>(read_so_far) == stop_at) {
      request_stop(); // on rank 1 only: every rank must stop after the same batch
    }
    ++read_so_far;
    inner.read(b, out);
  }
};

template <class Comm>
int train(const fs::path& out, Comm comm, faulty_source& source, bool state, bool root) {
  static const auto val = selmask_test::bands(121, 2);
  static const auto test = selmask_test::bands(77, 3);
  pipeline<any_mask<channel>>::on<B> masks(source.sample_shape(), 2);
  auto net = selmask_test::make_band_net<B>(5);
  trainer_options o = selmask_test::quick_options();
  o.mask_epochs = 6;
  if (state) {
    o.state_dir = out / "state";
    o.resume = true;
  }
  const auto r = learn_selection_masks(
    masks, net, source, val, &test, o,
    training_policies<>{}.with_lambda(round_schedule{2, 1, 1.5f}).with_communicator(comm));
  if (!root) {
    return 0;
  }
  fs::create_directories(out);
  std::ofstream f(out / "front.txt");
  for (const auto& p : r.front.points()) {
    char line[256];
    std::snprintf(line, sizeof line, "%a %a %a %zu %a %a", p.q, p.val_accuracy, p.test_accuracy, p.epoch,
                  static_cast<double>(p.lambda), static_cast<double>(p.tau));
    f << line;
    for (const auto& m : p.masks) {
      for (const float v : m) {
        f << ' ' << v;
      }
    }
    f << '\n';
  }
  std::ofstream w(out / "weights.bin", std::ios::binary);
  for (const auto* p : net.params()) {
    const auto v = B::to_host(*p);
    w.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  }
  std::printf("mpi_train: %zu front points written to %s\n", r.front.size(), out.string().c_str());
  return 0;
}

} // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::fprintf(
      stderr,
      "usage: mpi_train OUT [--local R | --plain] [--timeout-ms T] [--die-at B | --hang-at B] [--state]\n");
    return 2;
  }
  const fs::path out = argv[1];
  std::size_t local = 0;
  bool plain = false;
  bool state = false;
  long timeout_ms = 60000;
  static const auto train_set = selmask_test::bands(390, 1);
  faulty_source source{dataset_source(train_set, 40, true, 3)};
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string("?"); };
    if (a == "--local") {
      local = std::stoul(next());
    } else if (a == "--plain") {
      plain = true;
    } else if (a == "--timeout-ms") {
      timeout_ms = std::stol(next());
    } else if (a == "--die-at") {
      source.fail_at = std::stol(next());
    } else if (a == "--hang-at") {
      source.fail_at = std::stol(next());
      source.hang = true;
    } else if (a == "--stop-at") {
      source.stop_at = std::stol(next());
    } else if (a == "--state") {
      state = true;
    } else {
      std::fprintf(stderr, "mpi_train: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (plain) {
    return train(out, single_process{}, source, state, true);
  }
  if (local > 0) {
    return train(out, local_shards(local), source, state, true);
  }
  mpi_session mpi(argc, argv);
  source.rank1 = mpi_session::rank() == 1;
  try {
#if defined(SELMASK_TEST_NCCL)
    int devices = 1;
    cudaGetDeviceCount(&devices);
    return train(
      out,
      nccl_communicator(mpi_session::rank() % std::max(devices, 1), std::chrono::milliseconds(timeout_ms)),
      source, state, mpi_session::rank() == 0);
#else
    return train(out, mpi_communicator(std::chrono::milliseconds(timeout_ms)), source, state,
                 mpi_session::rank() == 0);
#endif
  } catch (const training_interrupted& e) {
    std::fprintf(stderr, "mpi_train (rank %d): %s\n", mpi_session::rank(), e.what());
    return 130;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_train (rank %d): %s\n", mpi_session::rank(), e.what());
    return 1; // the session aborts the job after a failed exchange
  }
} catch (const std::exception& e) {
  std::fprintf(stderr, "mpi_train: %s\n", e.what());
  return 1;
}
