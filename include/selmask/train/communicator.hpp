#pragma once
/// \file train/communicator.hpp
/// Data-parallel training: the communicator policy of `training_policies` (train/policies.hpp).
///
/// Every global batch (the batch and its order exactly as in a one-process run) is cut into R
/// *shards* of consecutive samples, shard s holding samples [⌊s·n/R⌋, ⌊(s+1)·n/R⌋) of the n. Each
/// shard's gradients — of the network, of the mask logits — are computed from its samples with
/// the loss gradient scaled to the global batch (n_s/n of the shard's mean), the λ·∂Q term on
/// shard 0 only; the R gradient vectors are then gathered on every process and summed in shard
/// order, 0 first, so that every process steps with the same numbers, whatever the timing, and R
/// processes give the same result, bit for bit, as R shards computed one after another in one
/// process (`local_shards`). Validation and test scores are computed on shards the same way.
///
/// A communicator has:
///
/// | member | meaning |
/// |---|---|
/// | `sharded` (static constexpr bool) | false: the one-process path (no shards, no exchange) |
/// | `shards()` | R, the shards of every batch |
/// | `first_shard()`, `last_shard()` | the shards this process computes: [first, last) |
/// | `root()` | whether this process writes outputs, checkpoints, the state and calls callbacks |
/// | `all_gather(mine, all)` | floats or doubles: every process's values (its shards' in order), in shard
/// order, on every process; `communication_error` when another process does not answer in time |
///
/// Three ship: `single_process` (the default: today's behaviour), `local_shards` (R shards in one
/// process: the reference a multi-process run is checked against, and gradient accumulation for a
/// batch too large to compute at once) and `mpi_communicator` (train/mpi.hpp, target
/// `selmask::mpi`: one shard per MPI rank). `nccl_communicator` (train/nccl.cuh, target
/// `selmask::nccl`) gathers through NCCL between GPUs.

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>

#include "../error.hpp"

namespace selmask {

/// Another process did not take part in an exchange in time (it died or hangs), or the processes
/// disagree (different masks, different data).
class communication_error : public error {
public:
  using error::error;
};

template <class C>
concept communicator = requires(C& c, const C& cc, std::span<const float> f, std::span<float> fo,
                                std::span<const double> d, std::span<double> dout) {
  { C::sharded } -> std::convertible_to<bool>;
  { cc.shards() } -> std::convertible_to<std::size_t>;
  { cc.first_shard() } -> std::convertible_to<std::size_t>;
  { cc.last_shard() } -> std::convertible_to<std::size_t>;
  { cc.root() } -> std::convertible_to<bool>;
  c.all_gather(f, fo);
  c.all_gather(d, dout);
};

/// One process, no shards: the trainer's plain path.
struct single_process {
  static constexpr bool sharded = false;
  [[nodiscard]] std::size_t shards() const { return 1; }
  [[nodiscard]] std::size_t first_shard() const { return 0; }
  [[nodiscard]] std::size_t last_shard() const { return 1; }
  [[nodiscard]] bool root() const { return true; }
  void all_gather(std::span<const float> mine, std::span<float> all) {
    std::copy(mine.begin(), mine.end(), all.begin());
  }
  void all_gather(std::span<const double> mine, std::span<double> all) {
    std::copy(mine.begin(), mine.end(), all.begin());
  }
};

/// R shards of every batch, computed one after another in this process and summed in shard order:
/// the arithmetic of R processes in one.
class local_shards {
public:
  static constexpr bool sharded = true;
  explicit local_shards(std::size_t shards = 2) : shards_(shards) {
    if (shards == 0) {
      throw value_error("selmask::local_shards: at least one shard, got 0");
    }
  }
  [[nodiscard]] std::size_t shards() const { return shards_; }
  [[nodiscard]] std::size_t first_shard() const { return 0; }
  [[nodiscard]] std::size_t last_shard() const { return shards_; }
  [[nodiscard]] bool root() const { return true; }
  void all_gather(std::span<const float> mine, std::span<float> all) {
    std::copy(mine.begin(), mine.end(), all.begin());
  }
  void all_gather(std::span<const double> mine, std::span<double> all) {
    std::copy(mine.begin(), mine.end(), all.begin());
  }

private:
  std::size_t shards_;
};

static_assert(communicator<single_process>);
static_assert(communicator<local_shards>);

/// Samples [first, first + count) of shard `s` of R in a batch of n.
struct shard_range {
  std::size_t first = 0;
  std::size_t count = 0;
};
inline shard_range shard_of(std::size_t n, std::size_t shards, std::size_t s) {
  const std::size_t a = s * n / shards;
  const std::size_t b = (s + 1) * n / shards;
  return {a, b - a};
}

} // namespace selmask
