#pragma once
/// \file train/batch_source.hpp
/// Where the trainer's batches come from. A *batch source* models `batch_source`:
///
/// | member | meaning |
/// |---|---|
/// | `size()` | samples per epoch |
/// | `batches()` | batches per epoch |
/// | `sample_shape()` | per-sample shape (C×H×W), as the pipeline expects |
/// | `classes()` | number of classes (0 for a regression source) |
/// | `validate()` | throws when the source is unusable (empty, inconsistent, NaN where it can tell) |
/// | `set_epoch(e)` | arranges the order of epoch `e` (a fixed seed gives a fixed order) |
/// | `read(b, out)` | fills `out` (a `host_batch`) with batch `b < batches()` of the current epoch |
///
/// Two ship: `dataset_source` over an in-memory `io::dataset` (what the one-call trainer uses),
/// and `io::idx_stream_source` (io/idx_stream.hpp), which reads each batch from uncompressed IDX
/// files on disk so that data larger than memory trains.

#include <concepts>
#include <cstddef>
#include <cstdint>

#include "../io/dataset.hpp"
#include "../shape.hpp"
#include "loss.hpp"

namespace selmask {

template <class S>
concept batch_source = requires(S& s, const S& cs, std::size_t k, host_batch& out) {
  { cs.size() } -> std::convertible_to<std::size_t>;
  { cs.batches() } -> std::convertible_to<std::size_t>;
  { cs.sample_shape() } -> std::convertible_to<shape>;
  { cs.classes() } -> std::convertible_to<std::size_t>;
  cs.validate();
  s.set_epoch(k);
  s.read(k, out);
};

/// Batches of an in-memory data set (not owned: it must outlive the source), shuffled per epoch
/// with `seed` (`io::batch_sampler`) or in order.
class dataset_source {
public:
  dataset_source(const io::dataset& d, std::size_t batch_size, bool shuffle = true, std::uint64_t seed = 0)
    : d_(&d), sampler_(d.size(), batch_size, shuffle, seed) {}

  [[nodiscard]] std::size_t size() const { return d_->size(); }
  [[nodiscard]] std::size_t batches() const { return sampler_.batches(); }
  [[nodiscard]] shape sample_shape() const { return d_->sample; }
  [[nodiscard]] std::size_t classes() const { return d_->classes; }
  [[nodiscard]] const io::dataset& data() const { return *d_; }
  void validate() const { d_->validate(); }
  void set_epoch(std::size_t e) { sampler_.set_epoch(e); }
  void read(std::size_t b, host_batch& out) {
    out.x_shape = io::gather_batch(*d_, sampler_.batch(b), out.x, out.labels, out.targets);
    out.target_size = d_->target_size;
    out.classes = d_->classes;
  }

private:
  const io::dataset* d_;
  io::batch_sampler sampler_;
};

static_assert(batch_source<dataset_source>);

} // namespace selmask
