#pragma once
/// \file train/keep_masks.hpp
/// The trainer's `keep_cells` / `keep_q` step (trainer_options): checked before training, and
/// applied to every any-mask when the masks become final — the k cells of largest logit, or the
/// cells of largest σ(w)/cost within a cost budget (`keep_best_cells`, train/budget.hpp).

#include <cstddef>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "../error.hpp"
#include "../granularity/geometry.hpp"
#include "budget.hpp"

namespace selmask::detail {

/// A mask the keep projection can handle: the masks of mask/mask.hpp.
template <class M>
concept keep_projectable = requires(M& m) {
  m.costs();
  m.cost_geometry();
  m.choices();
  m.cells();
  m.name();
  m.set_logits(m.logits());
};

/// `keep_cells` / `keep_q`: in range for every any-mask, and a point where the masks become final.
template <class Pipeline>
void check_keep(Pipeline& pipe, const std::optional<std::size_t>& keep_cells,
                const std::optional<double>& keep_q, bool masks_become_final, const char* who) {
  if (!keep_cells && !keep_q) {
    return;
  }
  if (keep_cells && keep_q) {
    throw value_error(std::string(who) + "set keep_cells or keep_q, not both");
  }
  if (keep_q && !(*keep_q > 0.0 && *keep_q <= 1.0)) {
    throw value_error(std::string(who) + "keep_q must lie in (0, 1], got " + std::to_string(*keep_q));
  }
  std::size_t any_masks = 0;
  pipe.for_each_mask([&](auto& m) {
    if constexpr (keep_projectable<std::remove_cvref_t<decltype(m)>>) {
      if (m.choices() == 1) {
        ++any_masks;
        if (keep_cells && (*keep_cells == 0 || *keep_cells > m.cells())) {
          throw value_error(std::string(who) + "keep_cells must lie in 1.." + std::to_string(m.cells()) +
                            " (the cells of " + m.name() + "), got " + std::to_string(*keep_cells));
        }
      }
    }
  });
  if (any_masks == 0) {
    throw value_error(std::string(who) +
                      "keep_cells / keep_q need an any_mask (mask/mask.hpp) in the pipeline");
  }
  if (!masks_become_final) {
    throw value_error(std::string(who) + "keep_cells / keep_q apply when the masks become final: set "
                                         "final_fixation_epochs >= 1, target_q, or a budget_controller");
  }
}

/// The `keep_cells` / `keep_q` projection of every any-mask (train/budget.hpp); xOr-masks
/// already keep one version per cell and stay as they are.
template <class Pipeline>
void project_masks(Pipeline& pipe, const std::optional<std::size_t>& keep_cells,
                   const std::optional<double>& keep_q) {
  using B = typename Pipeline::backend;
  if (!keep_cells && !keep_q) {
    return;
  }
  pipe.for_each_mask([&](auto& m) {
    if constexpr (keep_projectable<std::remove_cvref_t<decltype(m)>>) {
      if (m.choices() != 1) {
        return;
      }
      const std::vector<float> w = B::to_host(m.logits());
      const std::vector<float> c = B::to_host(m.costs());
      const cell_geometry& g = m.cost_geometry();
      std::vector<float> share(w.size());
      for (std::size_t i = 0; i < w.size(); ++i) {
        share[i] = c[i] * static_cast<float>(g.cell_size(i)) / static_cast<float>(g.values());
      }
      const auto keep = keep_best_cells(w, share, keep_cells, keep_q);
      m.set_logits(B::from_host(B::shape_of(m.logits()), logits_keeping(w, keep)));
    }
  });
}

} // namespace selmask::detail
