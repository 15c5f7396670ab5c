// Data-parallel training in one process (train/communicator.hpp, train/data_parallel.hpp): the
// shards of a batch, one shard against the plain path bit for bit, the gradients of R shards
// against one pass over the batch, R shards against one process, and the check that every process
// holds the same masks. The same runs across MPI ranks: tests/mpi/ (label mpi).
#include "support.hpp"
#include "train_support.hpp"

#include <selmask/nn/dense.hpp>
#include <selmask/nn/flatten.hpp>
#include <selmask/nn/sequential.hpp>
#include <selmask/surrogate/stochastic.hpp>
#include <selmask/train/trainer.hpp>

#include <cmath>
#include <vector>

using namespace selmask;
using namespace selmask_test;
using Catch::Contains;

namespace {
using B = cpu;
using net_t = band_net<B>;

net_t make_net(std::uint64_t seed) { return make_band_net<B>(seed); }

struct run {
  training_result result;
  std::vector<std::vector<float>> weights;
};

template <class Pipe = pipeline<any_mask<channel>>, class Comm>
run train_with(Comm comm, trainer_options o = quick_options()) {
  static const auto train = bands(390, 1); // 10 batches of 40, the last of 30
  static const auto val = bands(121, 2);
  static const auto test = bands(77, 3);
  typename Pipe::template on<B> masks(train.sample, 2);
  net_t net = make_net(5);
  run r;
  r.result = learn_selection_masks(
    masks, net, train, val, &test, o,
    training_policies<>{}.with_lambda(round_schedule{2, 1, 1.5f}).with_communicator(comm));
  for (const auto* p : net.params()) {
    r.weights.push_back(B::to_host(*p));
  }
  return r;
}

bool same_front(const run& a, const run& b) {
  const auto pa = a.result.front.points();
  const auto pb = b.result.front.points();
  if (pa.size() != pb.size()) {
    return false;
  }
  for (std::size_t i = 0; i < pa.size(); ++i) {
    if (pa[i].q != pb[i].q || pa[i].val_accuracy != pb[i].val_accuracy ||
        pa[i].test_accuracy != pb[i].test_accuracy || pa[i].masks != pb[i].masks ||
        pa[i].epoch != pb[i].epoch) {
      return false;
    }
  }
  return true;
}

double max_relative_difference(const run& a, const run& b) {
  double worst = 0.0;
  for (std::size_t t = 0; t < a.weights.size(); ++t) {
    for (std::size_t i = 0; i < a.weights[t].size(); ++i) {
      const double x = a.weights[t][i];
      const double y = b.weights[t][i];
      worst = std::max(worst, std::abs(x - y) / std::max(1e-3, std::abs(x)));
    }
  }
  return worst;
}

/// Two "processes" that disagree: the other one's values are this one's plus one.
struct disagreeing {
  static constexpr bool sharded = true;
  std::size_t shards() const { return 2; }
  std::size_t first_shard() const { return 0; }
  std::size_t last_shard() const { return 1; }
  bool root() const { return true; }
  template <class T>
  void all_gather(std::span<const T> mine, std::span<T> all) {
    for (std::size_t i = 0; i < mine.size(); ++i) {
      all[i] = mine[i];
      all[mine.size() + i] = mine[i] + T(1);
    }
  }
};
static_assert(communicator<disagreeing>);

} // namespace

TEST_CASE("shard_of: R consecutive shards cover a batch exactly; the last is never empty",
          "[data_parallel]") {
  CHECK(shard_of(10, 3, 0).first == 0);
  CHECK(shard_of(10, 3, 0).count == 3);
  CHECK(shard_of(10, 3, 1).first == 3);
  CHECK(shard_of(10, 3, 1).count == 3);
  CHECK(shard_of(10, 3, 2).first == 6);
  CHECK(shard_of(10, 3, 2).count == 4);
  for (std::size_t n = 1; n < 40; ++n) {
    for (std::size_t r = 1; r < 9; ++r) {
      std::size_t next = 0;
      for (std::size_t s = 0; s < r; ++s) {
        CHECK(shard_of(n, r, s).first == next);
        next += shard_of(n, r, s).count;
      }
      CHECK(next == n);
      CHECK(shard_of(n, r, r - 1).count >= 1);
    }
  }
  CHECK_THROWS_AS(local_shards(0), value_error);
}

TEST_CASE("local_shards(1) is the plain path, bit for bit", "[data_parallel][train]") {
  const run plain = train_with(single_process{});
  const run one = train_with(local_shards(1));
  CHECK(same_front(plain, one));
  CHECK(plain.weights == one.weights);
}

TEST_CASE("R shards: the same masks, weights within float rounding of one pass over the batch",
          "[data_parallel][train]") {
  trainer_options o = quick_options();
  o.mask_epochs = 4;
  const run plain = train_with(single_process{}, o);
  for (const std::size_t r : {2u, 3u, 7u}) {
    const run sharded = train_with(local_shards(r), o);
    CAPTURE(r);
    const auto pa = plain.result.front.points();
    const auto pb = sharded.result.front.points();
    REQUIRE(pa.size() == pb.size());
    for (std::size_t i = 0; i < pa.size(); ++i) {
      CHECK(pa[i].masks == pb[i].masks);
      CHECK(std::abs(pa[i].val_accuracy - pb[i].val_accuracy) <= 1.0 / 121 + 1e-12);
    }
    const double d = max_relative_difference(plain, sharded);
    INFO("largest relative weight difference " << d);
    CHECK(d < 1e-3);
    CHECK(d > 0.0); // the sums are taken in another order: not the same bits (else the shards were not used)
  }
}

TEST_CASE("shards draw the masks one process per shard would: a stochastic surrogate",
          "[data_parallel][train]") {
  trainer_options o = quick_options();
  o.mask_epochs = 4;
  using pipe = pipeline<any_mask<channel, hard_concrete>>;
  const run a = train_with<pipe>(local_shards(2), o);
  const run b = train_with<pipe>(local_shards(2), o);
  CHECK(same_front(a, b));
  CHECK(a.weights == b.weights);
}

TEST_CASE("processes holding different masks stop with a communication_error", "[data_parallel][errors]") {
  const std::vector<std::vector<float>> masks{{1, 0, 1}};
  disagreeing comm;
  CHECK_THROWS_WITH(selmask::detail::check_same_masks(masks, comm, 4),
                    Contains("after epoch 5") && Contains("differ"));
  local_shards fine(3);
  CHECK_NOTHROW(selmask::detail::check_same_masks(masks, fine, 4));
}
