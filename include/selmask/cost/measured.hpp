#pragma once
/// \file cost/measured.hpp
/// Measured-bytes costs (for the mask loss Q): the cost of each version of an extend
/// operator is its mean encoded size relative to the raw data, measured on (a sample of) the
/// training data — beside the paper's heuristic (JPEG quality/100, the default of
/// `jpeg_versions`).
///
/// ```cpp
/// selmask::jpeg_versions<90, 50, 10> op;
/// const auto m = selmask::measure_version_costs(op, train, 1000); // first 1000 samples
/// op.version_costs = m.relative;                                    // or: with_measured_costs(op, train)
/// ```
///
/// The operator must have `encoded_bytes(v, sample, values)`: what version `v` of one sample
/// occupies on the wire (ops/versions.hpp; JPEG counts per-image bytes of an abbreviated stream,
/// see ops/jpeg.hpp). The raw data count 1 byte per value (8-bit data, C·H·W bytes per sample), so
/// `relative[v] = mean_bytes[v] / (C·H·W)`; a version can cost more than the raw data (JPEG at
/// quality 100 of small images often does).

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../io/dataset.hpp"
#include "../ops/versions.hpp"
#include "../shape.hpp"

namespace selmask {

/// An extend operator that can say how many bytes a version of a sample takes.
template <class Op>
concept measurable_versions = requires(const Op& op, std::size_t v, const shape& s,
                                       std::span<const float> in) {
  { Op::versions } -> std::convertible_to<std::size_t>;
  { op.encoded_bytes(v, s, in) } -> std::convertible_to<std::size_t>;
};

namespace detail {
/// Throws `value_error` for an empty data set, `shape_error` unless it holds C×H×W samples.
inline void check_measured_data(const std::string& who, const io::dataset& data) {
  if (data.empty()) {
    throw value_error(who + "empty data set");
  }
  if (data.sample.rank() != 3 || data.sample.size() == 0 ||
      data.images.size() != data.size() * data.sample.size()) {
    throw shape_error(who + "the data set must hold C x H x W samples, got sample shape " +
                      data.sample.str() + " and " + std::to_string(data.images.size()) + " values for " +
                      std::to_string(data.size()) + " samples");
  }
}
} // namespace detail

/// Result of `measure_version_costs`.
struct version_cost_report {
  std::vector<double> mean_bytes; ///< per version, mean bytes per sample
  std::vector<float> relative;    ///< per version, mean_bytes / raw_bytes
  double raw_bytes = 0.0;         ///< bytes of one raw sample (C·H·W)
  std::size_t samples = 0;        ///< samples measured
};

/// Measures every version of `op` on the first `max_samples` samples of `data` (0: all).
/// Throws `value_error` for an empty data set, `shape_error` unless samples are C×H×W.
template <measurable_versions Op>
version_cost_report measure_version_costs(const Op& op, const io::dataset& data,
                                          std::size_t max_samples = 0) {
  const std::string who = "selmask::measure_version_costs: ";
  detail::check_measured_data(who, data);
  const std::size_t n = max_samples == 0 ? data.size() : std::min(max_samples, data.size());
  version_cost_report r;
  r.samples = n;
  r.raw_bytes = static_cast<double>(data.sample.size());
  r.mean_bytes.assign(Op::versions, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t v = 0; v < Op::versions; ++v) {
      r.mean_bytes[v] += static_cast<double>(op.encoded_bytes(v, data.sample, data.image(i)));
    }
  }
  r.relative.resize(Op::versions);
  for (std::size_t v = 0; v < Op::versions; ++v) {
    r.mean_bytes[v] /= static_cast<double>(n);
    r.relative[v] = static_cast<float>(r.mean_bytes[v] / r.raw_bytes);
  }
  return r;
}

/// Result of `measure_block_costs`: per version and 8×8 block (cells of `block<8, 8>`, channel by
/// channel, rows of blocks).
struct block_cost_report {
  std::vector<double> mean_bytes;      ///< V × cells: mean bytes of the block at that version
  std::vector<std::size_t> block_area; ///< cells: values in the block (64 inside, fewer at edges)
  std::vector<float> relative;         ///< V × cells: mean_bytes / block_area, a `table_cost`
  std::size_t samples = 0;             ///< samples measured

  /// Blocks per sample, C · ⌈H/8⌉ · ⌈W/8⌉.
  [[nodiscard]] std::size_t cells() const { return block_area.size(); }
  /// Expected bytes per sample of a choice of one version per block (`choice[cell]`).
  [[nodiscard]] double predicted_bytes(std::span<const std::size_t> choice) const {
    if (choice.size() != cells()) {
      throw value_error("selmask::block_cost_report::predicted_bytes: " + std::to_string(choice.size()) +
                        " choices for " + std::to_string(cells()) + " blocks");
    }
    double b = 0.0;
    for (std::size_t k = 0; k < cells(); ++k) {
      if (choice[k] * cells() >= mean_bytes.size()) {
        throw value_error("selmask::block_cost_report::predicted_bytes: version " +
                          std::to_string(choice[k]) + " out of range");
      }
      b += mean_bytes[choice[k] * cells() + k];
    }
    return b;
  }
};

/// Per-block costs for an `xor_mask<block<8, 8>>` over `op`'s versions: the mean bytes of each
/// 8×8 block at each version (`op.block_bytes`, e.g. JPEG segments of a restart-coded stream,
/// see ops/jpeg.hpp) over the first `max_samples` samples of `data` (0: all), relative to the
/// block's raw bytes (one per value). With these costs, Q times the raw bytes of a sample is the
/// expected bytes that travel per sample: `table_cost{report.relative}` for the mask.
template <class Op>
requires block_size_operator<Op> block_cost_report measure_block_costs(const Op& op, const io::dataset& data,
                                                                       std::size_t max_samples = 0) {
  const std::string who = "selmask::measure_block_costs: ";
  detail::check_measured_data(who, data);
  constexpr std::size_t V = Op::versions;
  block_cost_report r;
  r.block_area = detail::block_areas(data.sample);
  const std::size_t cells = r.cells();
  r.samples = max_samples == 0 ? data.size() : std::min(max_samples, data.size());
  r.mean_bytes.assign(V * cells, 0.0);
  for (std::size_t i = 0; i < r.samples; ++i) {
    for (std::size_t v = 0; v < V; ++v) {
      const auto b = op.block_bytes(v, data.sample, data.image(i));
      if (b.size() != cells) {
        throw shape_error(who + "block_bytes gave " + std::to_string(b.size()) + " counts for " +
                          std::to_string(cells) + " blocks");
      }
      for (std::size_t k = 0; k < cells; ++k) {
        r.mean_bytes[v * cells + k] += static_cast<double>(b[k]);
      }
    }
  }
  r.relative.resize(V * cells);
  for (std::size_t j = 0; j < V * cells; ++j) {
    r.mean_bytes[j] /= static_cast<double>(r.samples);
    r.relative[j] = static_cast<float>(r.mean_bytes[j] / static_cast<double>(r.block_area[j % cells]));
  }
  return r;
}

/// A copy of `op` whose `version_costs` are the measured relative sizes.
template <measurable_versions Op>
Op with_measured_costs(Op op, const io::dataset& data, std::size_t max_samples = 0) {
  op.version_costs = measure_version_costs(op, data, max_samples).relative;
  return op;
}

} // namespace selmask
