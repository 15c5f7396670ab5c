#pragma once
/// \file cost/cost.hpp
/// Cost models: the relative cost of each choice of each mask cell.
///
/// A cost is a per-location factor: a location (one value of the C×H×W input) that a kept cell
/// covers costs `cost[choice, cell]`, a dropped one 0. For a pipeline, Q is the mean over all
/// locations of the product of the stages' factors, so with `uniform_cost` Q is exactly the
/// fraction of the data that is transferred, and with measured relative sizes it is the fraction
/// of the bytes.
///
/// A cost model has `table(choices, cells, version_costs)` returning `choices × cells` factors
/// (row-major, choice-major); `choices` is 1 for an any-mask, V for an xOr-mask, and
/// `version_costs` are the costs an extend stage declares for its versions.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "../error.hpp"

namespace selmask {

/// Every kept location costs 1 (any-masks); every version costs what the extend stage before
/// the mask declares (xOr-masks).
struct uniform_cost {
  static std::vector<float> table(std::size_t choices, std::size_t cells,
                                  std::span<const float> version_costs) {
    std::vector<float> t(choices * cells, 1.0f);
    if (choices > 1) {
      if (version_costs.size() != choices) {
        throw value_error("selmask::uniform_cost: " + std::to_string(version_costs.size()) +
                          " version costs for " + std::to_string(choices) + " choices");
      }
      for (std::size_t v = 0; v < choices; ++v) {
        std::fill_n(t.begin() + static_cast<std::ptrdiff_t>(v * cells), cells, version_costs[v]);
      }
    }
    return t;
  }
};

/// A user table: `per_choice` (V values, one per version, any-masks: 1 value) or a full
/// `choices × cells` table. Costs must be finite and non-negative.
struct table_cost {
  std::vector<float> values;

  [[nodiscard]] std::vector<float> table(std::size_t choices, std::size_t cells,
                                         std::span<const float> /*version_costs*/) const {
    for (float v : values) {
      if (!std::isfinite(v) || v < 0.0f) {
        throw value_error("selmask::table_cost: costs must be finite and >= 0, got " + std::to_string(v));
      }
    }
    if (values.size() == choices * cells) {
      return values;
    }
    if (values.size() == choices) {
      std::vector<float> t(choices * cells);
      for (std::size_t v = 0; v < choices; ++v) {
        std::fill_n(t.begin() + static_cast<std::ptrdiff_t>(v * cells), cells, values[v]);
      }
      return t;
    }
    throw value_error("selmask::table_cost: " + std::to_string(values.size()) + " costs given; expected " +
                      std::to_string(choices) + " (one per choice) or " + std::to_string(choices * cells) +
                      " (choices x cells)");
  }
};

template <class C>
concept cost_model = requires(const C& c, std::size_t n, std::span<const float> v) {
  { c.table(n, n, v) } -> std::same_as<std::vector<float>>;
};

} // namespace selmask
