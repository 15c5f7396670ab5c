#pragma once
/// \file train/policies.hpp
/// The trainer as a composition of policies: `training_policies<Loss, Lambda, Lr, MaskOptimizer,
/// Communicator>` bundles the five choices `learn_selection_masks` leaves to its user, each with a
/// default:
///
/// | policy | concept | default | others that ship |
/// |---|---|---|---|
/// | task loss | `task_loss` (train/loss.hpp) | `softmax_cross_entropy_loss` | `mean_squared_error_loss` |
/// | λ controller | `lambda_schedule` (train/schedule.hpp) | `round_schedule` | `plateau_schedule` |
/// | network learning rate | `lr_schedule` (train/lr_schedule.hpp) | `constant_lr` | `phase_lr` |
/// | mask optimiser | `mask_optimizer_policy` (below) | `adamw_mask_optimizer` | — |
/// | communicator | `communicator` (train/communicator.hpp) | `single_process` | `local_shards`,
/// `mpi_communicator`, `nccl_communicator` |
///
/// A third λ controller, `budget_controller` (train/budget.hpp), steers λ to a stated Q.
///
/// ```cpp
/// auto policies = selmask::training_policies<>{}
///                   .with_lambda(selmask::plateau_schedule{.patience = 3})
///                   .with_lr(selmask::phase_lr{.fixation = 0.5f});
/// auto result = selmask::learn_selection_masks(pipe, net, train, validation, &test, options, policies);
/// ```
///
/// A mask optimiser policy is a factory: `p.make<B>(options)` returns the optimiser the trainer
/// uses for one run, an object with `add(param, grad)` (called once per mask with its logits and
/// their gradient, and by stages with parameters of their own), `step()` and `zero_grad()`.

#include <concepts>
#include <utility>

#include "../backend/nn_backend.hpp"
#include "../nn/adamw.hpp"
#include "communicator.hpp"
#include "loss.hpp"
#include "lr_schedule.hpp"
#include "schedule.hpp"

namespace selmask {

struct trainer_options;

template <class O, class B>
concept mask_optimizer_object = requires(O& o, tensor_t<B>& t) {
  o.add(t, t);
  o.step();
  o.zero_grad();
};

template <class P, class B>
concept mask_optimizer_policy = requires(const P& p, const trainer_options& opt) {
  { p.template make<B>(opt) } -> mask_optimizer_object<B>;
};

/// AdamW over the mask logits with the hyper-parameters of `trainer_options::mask_optimizer`
/// (the reference settings: betas (0.5, 0.999), AMSGrad, weight decay 1e-7).
struct adamw_mask_optimizer {
  template <class B, class Options>
  [[nodiscard]] nn::adamw<B> make(const Options& opt) const {
    return nn::adamw<B>(opt.mask_optimizer);
  }
};

template <class Loss = softmax_cross_entropy_loss, class Lambda = round_schedule, class Lr = constant_lr,
          class MaskOptimizer = adamw_mask_optimizer, class Communicator = single_process>
struct training_policies {
  static_assert(communicator<Communicator>,
                "selmask::training_policies: Communicator must model selmask::communicator (sharded, "
                "shards(), first_shard(), last_shard(), root(), all_gather; train/communicator.hpp)");
  static_assert(lambda_schedule<Lambda>,
                "selmask::training_policies: Lambda must model selmask::lambda_schedule "
                "(validate(), phase_of(k), end_epoch(k, q, lambda); train/schedule.hpp)");
  static_assert(lr_schedule<Lr>, "selmask::training_policies: Lr must model selmask::lr_schedule "
                                 "(validate(), factor(context), constant(); train/lr_schedule.hpp)");
  Loss loss{};
  Lambda lambda{};
  Lr lr{};
  MaskOptimizer mask_optimizer{};
  Communicator communicator{};

  template <class L>
  [[nodiscard]] training_policies<L, Lambda, Lr, MaskOptimizer, Communicator> with_loss(L l) const {
    return {std::move(l), lambda, lr, mask_optimizer, communicator};
  }
  template <class S>
  [[nodiscard]] training_policies<Loss, S, Lr, MaskOptimizer, Communicator> with_lambda(S s) const {
    return {loss, std::move(s), lr, mask_optimizer, communicator};
  }
  template <class S>
  [[nodiscard]] training_policies<Loss, Lambda, S, MaskOptimizer, Communicator> with_lr(S s) const {
    return {loss, lambda, std::move(s), mask_optimizer, communicator};
  }
  template <class O>
  [[nodiscard]] training_policies<Loss, Lambda, Lr, O, Communicator> with_mask_optimizer(O o) const {
    return {loss, lambda, lr, std::move(o), communicator};
  }
  /// Data-parallel training (train/communicator.hpp).
  template <class C>
  [[nodiscard]] training_policies<Loss, Lambda, Lr, MaskOptimizer, C> with_communicator(C c) const {
    return {loss, lambda, lr, mask_optimizer, std::move(c)};
  }
};

template <class T>
inline constexpr bool is_training_policies = false;
template <class L, class S, class R, class O, class C>
inline constexpr bool is_training_policies<training_policies<L, S, R, O, C>> = true;

} // namespace selmask
