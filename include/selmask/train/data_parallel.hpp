#pragma once
/// \file train/data_parallel.hpp
/// The trainer's sharded steps (train/communicator.hpp says what a shard is): one global batch
/// computed as shards, the gradients gathered and summed in shard order; scores of a data set
/// computed on shards and summed the same way; the check that every process holds the same hard
/// masks.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../backend/nn_backend.hpp"
#include "../backend/ops.hpp"
#include "../error.hpp"
#include "../io/dataset.hpp"
#include "../surrogate/formulas.hpp"
#include "communicator.hpp"
#include "evaluate.hpp"
#include "loss.hpp"

namespace selmask {

/// A model whose parameter gradients a data-parallel trainer can gather: `grads()` lists the
/// tensors `backward` accumulates into and `step` reads (as `nn::sequential::grads()`).
template <class M, class B>
concept gradient_model = requires(M& m) {
  { m.grads() } -> std::convertible_to<std::vector<tensor_t<B>*>>;
};

namespace detail {

/// Samples [r.first, r.first + r.count) of `in`.
inline void slice_batch(const host_batch& in, shard_range r, host_batch& out) {
  const std::size_t per = in.size() == 0 ? 0 : in.x.size() / in.size();
  out.x.assign(in.x.begin() + static_cast<std::ptrdiff_t>(r.first * per),
               in.x.begin() + static_cast<std::ptrdiff_t>((r.first + r.count) * per));
  out.x_shape = in.x_shape;
  out.x_shape[0] = r.count;
  out.labels.clear();
  if (!in.labels.empty()) {
    out.labels.assign(in.labels.begin() + static_cast<std::ptrdiff_t>(r.first),
                      in.labels.begin() + static_cast<std::ptrdiff_t>(r.first + r.count));
  }
  out.targets.clear();
  if (!in.targets.empty()) {
    out.targets.assign(in.targets.begin() + static_cast<std::ptrdiff_t>(r.first * in.target_size),
                       in.targets.begin() +
                         static_cast<std::ptrdiff_t>((r.first + r.count) * in.target_size));
  }
  out.target_size = in.target_size;
  out.classes = in.classes;
}

/// The gradient tensors of a sharded step (the network's, then every mask's), copied to the host
/// per shard, gathered, summed in shard order and written back.
template <class B>
class gradient_exchange {
public:
  void bind(std::vector<tensor_t<B>*> grads, std::size_t local_shards) {
    grads_ = std::move(grads);
    per_shard_ = 0;
    for (const auto* g : grads_) {
      per_shard_ += B::shape_of(*g).size();
    }
    mine_.assign(per_shard_ * local_shards, 0.0f);
  }
  /// Copies the gradients into local slot `slot` and sets them to zero.
  void collect(std::size_t slot) {
    std::size_t at = slot * per_shard_;
    for (auto* g : grads_) {
      const std::vector<float> v = B::to_host(*g);
      std::copy(v.begin(), v.end(), mine_.begin() + static_cast<std::ptrdiff_t>(at));
      at += v.size();
      B::map(*g, *g, formula::scale_by{0.0f});
    }
  }
  /// Every shard's gradients, summed in shard order (shard 0 first), into the gradient tensors.
  /// A communicator with `all_to_all` and one shard per process exchanges in two steps, as a ring
  /// all-reduce moves data: each process receives one R-th of every other's vector and sums that
  /// chunk in shard order, then the summed chunks are gathered — 2(R−1)/R of the vector on the
  /// wire per process instead of (R−1) vectors, and the same sums, bit for bit.
  template <class Comm>
  void reduce(Comm& comm) {
    const std::size_t shards = comm.shards();
    if constexpr (requires(std::span<const float> a, std::span<float> b) { comm.all_to_all(a, b); }) {
      if (comm.last_shard() - comm.first_shard() == 1 && shards > 1) {
        reduce_in_chunks(comm);
        write_back();
        return;
      }
    }
    all_.resize(per_shard_ * shards);
    comm.all_gather(std::span<const float>(mine_), std::span<float>(all_));
    sum_.assign(all_.begin(), all_.begin() + static_cast<std::ptrdiff_t>(per_shard_));
    for (std::size_t s = 1; s < shards; ++s) {
      const float* p = all_.data() + s * per_shard_;
      for (std::size_t i = 0; i < per_shard_; ++i) {
        sum_[i] += p[i];
      }
    }
    write_back();
  }

private:
  template <class Comm>
  void reduce_in_chunks(Comm& comm) {
    const std::size_t shards = comm.shards();
    const std::size_t chunk = (per_shard_ + shards - 1) / shards;
    mine_.resize(chunk * shards, 0.0f); // padded: chunk j goes to process j
    all_.resize(chunk * shards);
    comm.all_to_all(std::span<const float>(mine_), std::span<float>(all_)); // chunk `rank` of every process
    std::vector<float>& part = part_; // kept between batches: no allocation per step
    part.assign(all_.begin(), all_.begin() + static_cast<std::ptrdiff_t>(chunk));
    for (std::size_t s = 1; s < shards; ++s) {
      const float* p = all_.data() + s * chunk;
      for (std::size_t i = 0; i < chunk; ++i) {
        part[i] += p[i];
      }
    }
    sum_.resize(chunk * shards);
    comm.all_gather(std::span<const float>(part), std::span<float>(sum_));
    mine_.resize(per_shard_);
  }

  void write_back() {
    std::size_t at = 0;
    for (auto* g : grads_) {
      const shape s = B::shape_of(*g);
      B::copy(B::from_host(s, std::span<const float>(sum_.data() + at, s.size())), *g);
      at += s.size();
    }
  }

  std::vector<tensor_t<B>*> grads_;
  std::size_t per_shard_ = 0;
  std::vector<float> mine_, all_, sum_, part_;
};

/// What a sharded batch reports: the global batch's summed loss and score, Q, and whether any
/// process was asked to stop (so that all stop after the same batch).
struct sharded_batch_result {
  loss_sums sums{};
  double q = 1.0;
  bool stop = false;
};

/// One global batch as shards: this process's shards forward and backward (the loss gradient
/// scaled by n_s/n, λ on the last shard, which is never empty), each shard drawing its masks from
/// the same state of the pipeline's random stream (as one process per shard would), then the
/// gradients summed over all shards. The caller steps the optimisers.
template <class B, class Pipe, class Model, class Loss, class Comm>
sharded_batch_result sharded_batch(Pipe& pipe, Model& model, const Loss& loss, const host_batch& batch,
                                   Comm& comm, float lambda, bool explore, bool stop_here,
                                   gradient_exchange<B>& exchange, host_batch& shard, tensor_t<B>& dout) {
  const std::size_t n = batch.size();
  const std::size_t shards = comm.shards();
  std::vector<double> mine;
  sharded_batch_result r;
  auto& rng = pipe.random_stream();
  const auto start = rng;
  for (std::size_t s = comm.first_shard(); s < comm.last_shard(); ++s) {
    rng = start;
    const shard_range range = shard_of(n, shards, s);
    loss_sums l{};
    if (range.count > 0) {
      slice_batch(batch, range, shard);
      const auto fr = pipe.forward(B::from_host(shard.x_shape, shard.x));
      r.q = fr.q;
      const auto& out = model.forward(fr.output);
      l = loss.template evaluate<B>(out, shard, dout);
      B::map(
        dout, dout,
        formula::scale_by{static_cast<float>(static_cast<double>(range.count) / static_cast<double>(n))});
      const auto& gx = model.backward(dout);
      if (explore) {
        pipe.backward(gx, s + 1 == shards ? lambda : 0.0f);
      }
    }
    exchange.collect(s - comm.first_shard());
    mine.insert(mine.end(), {l.loss, l.score, stop_here ? 1.0 : 0.0});
  }
  std::vector<double> all(3 * shards);
  comm.all_gather(std::span<const double>(mine), std::span<double>(all));
  for (std::size_t s = 0; s < shards; ++s) {
    r.sums.loss += all[3 * s];
    r.sums.score += all[3 * s + 1];
    r.stop = r.stop || all[3 * s + 2] != 0.0;
  }
  exchange.reduce(comm);
  return r;
}

/// Samples [first, first + count) of a data set, in order, `batch_size` at a time (a batch source).
class range_source {
public:
  range_source(const io::dataset& d, shard_range r, std::size_t batch_size)
    : d_(&d), r_(r), batch_(batch_size) {}
  [[nodiscard]] std::size_t size() const { return r_.count; }
  [[nodiscard]] std::size_t batches() const { return (r_.count + batch_ - 1) / batch_; }
  void read(std::size_t b, host_batch& out) const {
    std::vector<std::size_t> idx;
    for (std::size_t i = b * batch_; i < std::min(r_.count, (b + 1) * batch_); ++i) {
      idx.push_back(r_.first + i);
    }
    out.x_shape = io::gather_batch(*d_, idx, out.x, out.labels, out.targets);
    out.target_size = d_->target_size;
    out.classes = d_->classes;
  }

private:
  const io::dataset* d_;
  shard_range r_;
  std::size_t batch_;
};

/// The score of `data` through the hard masks, computed on shards and summed in shard order (the
/// mean over all samples), and Q.
template <class Pipe, class Model, class Loss, class Comm>
std::pair<double, double> evaluate_sharded(Pipe& pipe, Model& model, const io::dataset& data,
                                           std::size_t batch_size, const Loss& loss, Comm& comm) {
  using B = typename Pipe::backend;
  std::vector<double> mine;
  double q = 1.0;
  for (std::size_t s = comm.first_shard(); s < comm.last_shard(); ++s) {
    range_source src(data, shard_of(data.size(), comm.shards(), s), batch_size);
    const auto [score, shard_q] = score_sum(pipe, model, src, loss);
    mine.push_back(score);
    if (src.size() > 0) {
      q = shard_q;
    }
  }
  if (data.empty()) {
    return {0.0, q};
  }
  if (data.size() < comm.shards()) { // a shard of no sample: Q of the hard masks from one forward
    q = pipe.forward(B::zeros(shape{1, data.sample[0], data.sample[1], data.sample[2]})).q;
  }
  std::vector<double> all(comm.shards());
  comm.all_gather(std::span<const double>(mine), std::span<double>(all));
  double total = 0.0;
  for (const double v : all) {
    total += v;
  }
  return {total / static_cast<double>(data.size()), q};
}

/// Throws `communication_error` unless every process holds the same hard masks (FNV-1a of their
/// values, gathered as two exact 32-bit halves).
template <class Comm>
void check_same_masks(const std::vector<std::vector<float>>& masks, Comm& comm, std::size_t epoch) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const auto& m : masks) {
    for (const float v : m) {
      std::uint32_t bits = 0;
      std::memcpy(&bits, &v, sizeof bits);
      for (int k = 0; k < 4; ++k) {
        h = (h ^ ((bits >> (8 * k)) & 0xffu)) * 1099511628211ULL;
      }
    }
  }
  const std::size_t local = comm.last_shard() - comm.first_shard();
  std::vector<double> mine;
  for (std::size_t i = 0; i < local; ++i) {
    mine.push_back(static_cast<double>(h >> 32));
    mine.push_back(static_cast<double>(h & 0xffffffffULL));
  }
  std::vector<double> all(2 * comm.shards());
  comm.all_gather(std::span<const double>(mine), std::span<double>(all));
  for (std::size_t s = 1; s < comm.shards(); ++s) {
    if (all[2 * s] != all[0] || all[2 * s + 1] != all[1]) {
      throw communication_error("selmask::learn_selection_masks: after epoch " + std::to_string(epoch + 1) +
                                " the hard masks of shard " + std::to_string(s) +
                                " differ from shard 0's (the processes diverged: different data, seeds "
                                "or builds?)");
    }
  }
}

/// Waits until every process reaches this point (an exchange of nothing).
template <class Comm>
void wait_for_root(Comm& comm) {
  std::vector<double> all(comm.shards());
  const std::vector<double> mine(comm.last_shard() - comm.first_shard());
  comm.all_gather(std::span<const double>(mine), std::span<double>(all));
}

} // namespace detail

} // namespace selmask
