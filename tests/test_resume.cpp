// Resuming a training run (train/resume.hpp): the state file's format and its errors, the
// optimiser's and the network's state round trips, and runs stopped at chosen batches — by
// request_stop(), by a real SIGTERM, or "killed" by going back to a state written earlier — then
// resumed in fresh objects, against one uninterrupted run: the same front (Q, accuracies, masks),
// the same final weights bit for bit, the same epoch log (but for its wall-clock column).
#include "support.hpp"
#include "temp_dir.hpp"
#include "train_support.hpp"

#include <selmask/io/state_file.hpp>
#include <selmask/nn/dense.hpp>
#include <selmask/nn/flatten.hpp>
#include <selmask/nn/sequential.hpp>
#include <selmask/surrogate/stochastic.hpp>
#include <selmask/train/trainer.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace selmask;
using namespace selmask_test;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {
using B = cpu;
using net_t = band_net<B>;

net_t make_net(std::uint64_t seed) { return make_band_net<B>(seed); }

std::vector<std::vector<float>> weights_of(const net_t& net) {
  std::vector<std::vector<float>> out;
  for (const auto* p : net.params()) {
    out.push_back(B::to_host(*p));
  }
  return out;
}

/// The log without its last column (seconds: wall-clock time differs between any two runs).
std::string log_without_seconds(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::string out;
  while (std::getline(in, line)) {
    out += line.substr(0, line.rfind(',')) + "\n";
  }
  return out;
}

/// Stops the run after batch `batch` of epoch `epoch` (both 0-based): request_stop(), or a real
/// SIGTERM to this process; or copies the state file away at that moment (a later "kill" goes
/// back to it).
struct stopper {
  enum kind { request, sigterm, snapshot };
  stopper(std::size_t e, std::size_t b, kind k = request) : epoch(e), batch(b), how(k) {}
  std::size_t epoch;
  std::size_t batch;
  kind how;
  fs::path state{}, copy{};
  void on_batch_end(const batch_info& b) {
    if (b.epoch != epoch || b.batch != batch) {
      return;
    }
    if (how == request) {
      request_stop();
    } else if (how == sigterm) {
      std::raise(SIGTERM);
    } else {
      fs::copy_file(state, copy, fs::copy_options::overwrite_existing);
    }
  }
};

struct outcome {
  training_result result;
  std::vector<std::vector<float>> weights;
  std::vector<float> logits;
  std::string log;
};

/// One training run of `Pipe` in fresh objects (as a new process would build them).
template <class Pipe, class Policies, class... Extra>
outcome train_once(const trainer_options& o, const Policies& policies, const fs::path& log, Extra&... extra) {
  static const auto train = bands(400, 1);
  static const auto val = bands(120, 2);
  static const auto test = bands(120, 3);
  typename Pipe::template on<B> masks(train.sample, 2);
  net_t net = make_net(5);
  outcome r;
  epoch_csv_log csv(log);
  r.result = learn_selection_masks(masks, net, train, val, &test, o, policies, csv, extra...);
  r.weights = weights_of(net);
  r.logits = B::to_host(masks.template stage<0>().logits());
  r.log = log_without_seconds(log);
  return r;
}

void check_same(const outcome& a, const outcome& b) {
  const auto pa = a.result.front.points();
  const auto pb = b.result.front.points();
  REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    CHECK(pa[i].q == pb[i].q);
    CHECK(pa[i].val_accuracy == pb[i].val_accuracy);
    CHECK(pa[i].test_accuracy == pb[i].test_accuracy);
    CHECK(pa[i].epoch == pb[i].epoch);
    CHECK(pa[i].lambda == pb[i].lambda);
    CHECK(pa[i].tau == pb[i].tau);
    CHECK(pa[i].masks == pb[i].masks);
  }
  CHECK(a.result.epochs_run == b.result.epochs_run);
  CHECK(a.result.full_val_accuracy == b.result.full_val_accuracy);
  CHECK(a.result.final_point.has_value() == b.result.final_point.has_value());
  if (a.result.final_point && b.result.final_point) {
    CHECK(a.result.final_point->masks == b.result.final_point->masks);
    CHECK(a.result.final_point->val_accuracy == b.result.final_point->val_accuracy);
  }
  CHECK(a.result.notes == b.result.notes);
  CHECK(a.weights == b.weights); // bit for bit
  CHECK(a.logits == b.logits);
  CHECK(a.log == b.log);
}

/// Runs with stops at `stops` (each resumed in fresh objects), against one uninterrupted run.
template <class Pipe, class Policies>
void check_resume(trainer_options o, const Policies& policies, const std::vector<stopper>& stops) {
  selmask_test::temp_dir dir;
  o.state_dir = dir.path / "uninterrupted";
  const outcome reference = train_once<Pipe>(o, policies, dir.path / "reference.csv");
  CHECK(fs::exists(o.state_dir / "state.bin"));

  o.state_dir = dir.path / "state";
  const fs::path log = dir.path / "resumed.csv";
  std::size_t interruptions = 0;
  for (stopper s : stops) {
    s.state = o.state_dir / "state.bin";
    s.copy = dir.path / "earlier.bin";
    if (s.how == stopper::snapshot) { // runs on past the copy, then is "killed" back to it
      train_once<Pipe>(o, policies, log, s);
      fs::copy_file(s.copy, s.state, fs::copy_options::overwrite_existing);
      ++interruptions;
    } else {
      try {
        train_once<Pipe>(o, policies, log, s);
        FAIL("the run was not stopped at epoch " << s.epoch << ", batch " << s.batch);
      } catch (const training_interrupted& e) {
        CHECK(e.state_file() == s.state);
        CHECK(e.signal() == (s.how == stopper::sigterm ? SIGTERM : 0));
        CHECK_THAT(e.what(), Contains("run again with resume"));
        ++interruptions;
      }
    }
    o.resume = true;
  }
  CHECK(interruptions == stops.size());
  check_same(reference, train_once<Pipe>(o, policies, log));
}

} // namespace

TEST_CASE("state_file: records round-trip; truncation, corruption and bad headers are named",
          "[resume][io]") {
  io::state_file s;
  io::record_writer w;
  w.put(3.25)
    .put(std::uint64_t{7})
    .put_string("selmask")
    .put_array(std::span<const float>(std::vector<float>{1, 2}));
  s.put("a", std::move(w));
  s.put("b", std::string());
  s.put("c", std::string("\0\1\2", 3));
  const std::string bytes = s.serialise();
  const io::state_file back = io::state_file::parse(bytes);
  CHECK(back.records() == s.records());
  io::record_reader r = back.reader("a");
  CHECK(r.get<double>() == 3.25);
  CHECK(r.get<std::uint64_t>() == 7);
  CHECK(r.get_string() == "selmask");
  CHECK(r.get_array<float>() == std::vector<float>{1, 2});
  r.finish();
  CHECK_THROWS_WITH(r.get<float>(), Contains("record 'a'") && Contains("runs past the record's end"));
  CHECK_THROWS_WITH(back.bytes("z"), Contains("no record 'z'"));
  for (std::size_t n = 0; n < bytes.size(); ++n) { // every truncation is an io_error, not a crash
    CHECK_THROWS_AS(io::state_file::parse(bytes.substr(0, n)), io_error);
  }
  for (std::size_t i = 12; i < bytes.size(); ++i) { // every flipped byte after the header
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    CHECK_THROWS_WITH(io::state_file::parse(bad), Contains("checksum mismatch"));
  }
  std::string magic = bytes;
  magic[0] = 'X';
  CHECK_THROWS_WITH(io::state_file::parse(magic), Contains("wrong magic"));
  std::string version = bytes;
  version[8] = 9;
  CHECK_THROWS_WITH(io::state_file::parse(version), Contains("format version 9"));
  CHECK_THROWS_WITH(io::state_file::parse(bytes + "x"), Contains("checksum mismatch"));
  CHECK_THROWS_AS(s.put("", std::string()), value_error);
}

TEST_CASE("adamw and sequential: save_state / load_state restore training bit for bit", "[resume][nn]") {
  const auto data = bands(80, 7);
  const auto step = [&](net_t& net, std::size_t i) {
    host_batch b;
    const std::vector<std::size_t> idx{i % 80, (i + 1) % 80, (i + 2) % 80};
    b.x_shape = io::gather_batch(data, idx, b.x, b.labels, b.targets);
    b.classes = 3;
    net.zero_grad();
    const auto& out = net.forward(B::from_host(b.x_shape, b.x));
    tensor_t<B> g;
    softmax_cross_entropy_loss{}.evaluate<B>(out, b, g);
    net.backward(g);
    net.step();
  };
  net_t a = make_net(1);
  for (std::size_t i = 0; i < 5; ++i) {
    step(a, i);
  }
  io::state_file s;
  a.save_state(s, "net.");
  net_t b = make_net(2); // other weights, fresh optimiser
  b.load_state(io::state_file::parse(s.serialise()), "net.");
  CHECK(b.optimizer().steps() == 5);
  for (std::size_t i = 5; i < 10; ++i) {
    step(a, i);
    step(b, i);
  }
  CHECK(weights_of(a) == weights_of(b));

  // another architecture: refused, nothing changed
  nn::sequential<B, nn::flatten<B>, nn::dense<B>> other(nn::sequential_options{}, nn::flatten<B>{},
                                                        nn::dense<B>(108, 4));
  const auto before = B::to_host(*other.params()[0]);
  CHECK_THROWS_WITH(other.load_state(s, "net."), Contains("shape") && Contains("net.params"));
  CHECK(B::to_host(*other.params()[0]) == before);
  CHECK_THROWS_WITH(other.load_state(s, "nothing."), Contains("no record 'nothing.params'"));
}

TEST_CASE("resume: λ rounds, stopped in the warm-up, mid-epoch and after an epoch's last batch",
          "[resume][train]") {
  trainer_options o = quick_options();
  o.mask_epochs = 7;
  o.state_every_batches = 4;
  const auto policies = training_policies<>{}
                          .with_lambda(round_schedule{2, 1, 1.5f})
                          .with_lr(phase_lr{.exploration = 0.5f, .fixation = 0.8f});
  using pipe = pipeline<any_mask<channel>>;
  check_resume<pipe>(o, policies, {{0, 4}, {3, 6}, {5, 9}});
  // a real SIGTERM, and a kill that goes back to a state written by state_every_batches
  check_resume<pipe>(o, policies, {{2, 1, stopper::sigterm}, {4, 8, stopper::snapshot}, {6, 2}});
}

TEST_CASE("resume: a per-batch budget controller, keep_cells and final fixation", "[resume][train]") {
  trainer_options o = quick_options();
  o.mask_epochs = 8;
  o.final_fixation_epochs = 2;
  o.keep_cells = 3;
  const auto policies = training_policies<>{}.with_lambda(
    budget_controller{.target_q = 0.25, .by_epoch = 6, .eta = 0.05f, .per_batch = true});
  check_resume<pipeline<any_mask<channel>>>(o, policies, {{3, 2}, {8, 0}, {9, 5}});
}

TEST_CASE("resume: a stochastic surrogate's random stream and the plateau rule's state", "[resume][train]") {
  trainer_options o = quick_options();
  o.warmup_epochs = 1;
  o.mask_epochs = 8;
  o.state_every_batches = 3;
  const auto policies = training_policies<>{}.with_lambda(plateau_schedule{.patience = 1});
  using pipe = pipeline<any_mask<channel, hard_concrete>>;
  check_resume<pipe>(o, policies, {{2, 5}, {4, 7, stopper::snapshot}, {6, 0}});
}

TEST_CASE("resume: other settings, a corrupt state and unsaveable models are refused by name",
          "[resume][train][errors]") {
  selmask_test::temp_dir dir;
  trainer_options o = quick_options();
  o.mask_epochs = 2;
  o.state_dir = dir.path;
  const auto policies = training_policies<>{};
  using pipe = pipeline<any_mask<channel>>;
  stopper s{1, 3};
  CHECK_THROWS_AS(train_once<pipe>(o, policies, dir.path / "log.csv", s), training_interrupted);
  const std::string state = io::read_file(dir.path / "state.bin");

  o.resume = true;
  trainer_options other = o;
  other.mask_epochs = 3;
  CHECK_THROWS_WITH(train_once<pipe>(other, policies, dir.path / "log.csv"),
                    Contains("other settings") && Contains("mask_epochs=2 there, mask_epochs=3 here"));
  other = o;
  other.seed = 99;
  CHECK_THROWS_WITH(train_once<pipe>(other, policies, dir.path / "log.csv"),
                    Contains("first difference: seed"));

  std::string cut = state.substr(0, state.size() / 2);
  io::write_file_atomically(dir.path / "state.bin", cut);
  CHECK_THROWS_WITH(train_once<pipe>(o, policies, dir.path / "log.csv"), Contains("state.bin"));
  CHECK(io::read_file(dir.path / "state.bin") == cut); // a failed resume writes nothing

  // a trainable model that cannot save its optimiser state cannot be resumed bit for bit
  struct plain_model {
    net_t net = make_net(1);
    const tensor_t<B>& forward(const tensor_t<B>& x) { return net.forward(x); }
    const tensor_t<B>& backward(const tensor_t<B>& g) { return net.backward(g); }
    void step() { net.step(); }
    void zero_grad() { net.zero_grad(); }
  } plain;
  const auto train = bands(80, 1);
  pipe::on<B> masks(train.sample, 2);
  CHECK_THROWS_WITH(learn_selection_masks(masks, plain, train, train, nullptr, o),
                    Contains("the model has no save_state"));
  trainer_options no_dir = quick_options();
  no_dir.resume = true;
  CHECK_THROWS_WITH(learn_selection_masks(masks, plain, train, train, nullptr, no_dir),
                    Contains("resume needs a state_dir"));

  // resume with no state yet: a fresh start (and the same result as one)
  trainer_options fresh = quick_options();
  fresh.mask_epochs = 2;
  fresh.state_dir = dir.path / "empty";
  fresh.resume = true;
  const outcome a = train_once<pipe>(fresh, policies, dir.path / "a.csv");
  fresh.resume = false;
  fresh.state_dir = dir.path / "empty2";
  const outcome b = train_once<pipe>(fresh, policies, dir.path / "b.csv");
  check_same(a, b);
}
