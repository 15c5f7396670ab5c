#pragma once
/// \file concepts.hpp
/// The public concepts of selmask in one place: the seams a user builds on (a backend, a stage, a
/// granularity, a surrogate, a cost, a model, the trainer's policies). Each concept is defined next to the
/// code that uses it; this header includes those headers, so including it makes every concept below
/// available, and the table says where each one lives and what it asks for. It defines nothing itself, so
/// it cannot drift from the real requirements; tests/test_concepts.cpp checks every example below, and
/// types each concept must reject.
///
/// Concepts are in namespace `selmask` (`nn::layer` in `selmask::nn`). Each row: the concept and its
/// header (under include/selmask/), what it requires, and a one-line example.
///
// clang-format off
/// tensor_backend<B>            backend/backend.hpp
///   requires `B::tensor` (semiregular) and static `name`, `zeros`, `from_host`, `to_host`, `shape_of`,
///            `reshape`, `copy`, `map`, `map2`, `axpy`, `sum`, `scale_cells`, `reduce_cells`; everything
///            else has a `bk::` default (backend/ops.hpp)
///   example  static_assert(selmask::tensor_backend<selmask::reference>);
///
/// nn_backend<B>                backend/nn_backend.hpp
///   requires a tensor_backend with `B::gemm(trans_a, trans_b, alpha, a, b, beta, c)`; the layers' other
///            primitives have `bk::` defaults (backend/nn_ops.hpp)
///   example  static_assert(selmask::nn_backend<selmask::cpu>);
///
/// stage_type<S>                pipeline/stage.hpp
///   requires `S::role`, a `stage_role` (mask, extend, merge or transform): what a pipeline checks first
///   example  static_assert(selmask::stage_type<selmask::any_mask<selmask::pixel>>);
///
/// pipeline_stage<S, B>         pipeline/stage.hpp
///   requires a stage_type whose `S::impl<B>` is constructible from `(const S&, stage_context&)`, with
///            `forward(t)` and `backward(t)` returning `const tensor_t<B>&`
///   example  static_assert(selmask::pipeline_stage<selmask::merge<selmask::sum>, selmask::cpu>);
///
/// mask_stage<S, B>             pipeline/stage.hpp
///   requires a pipeline_stage with a mask role whose impl has the trainer's handles: `cost_field`,
///            `add_cost_grad`, `finish_backward`, `zero_grad`, `freeze`, `set_tau`, ...
///   example  static_assert(selmask::mask_stage<selmask::xor_mask<selmask::channel>, selmask::cpu>);
///
/// granularity<G>               granularity/granularity.hpp
///   requires static `G::name` and `G::extent(c, h, w)` -> `std::array<std::size_t, 3>`, a cell's
///            channels x height x width
///   example  static_assert(selmask::granularity<selmask::block<2, 3>>);  (a user's own: test_concepts.cpp)
///
/// surrogate<S>                 surrogate/straight_through.hpp
///   requires static `S::kind` (`surrogate_kind::binary` or `categorical`) and `S::name`
///   example  static_assert(selmask::surrogate<selmask::st_sigmoid>);
///
/// cost_model<C>                cost/cost.hpp
///   requires `c.table(choices, cells, values)` -> the cost of every (choice, cell) as a
///            `std::vector<float>`
///   example  static_assert(selmask::cost_model<selmask::uniform_cost>);
///
/// extend_operator<Op>          ops/extend.hpp
///   requires static `Op::versions` and `op.costs()`, one cost per version
///   example  static_assert(selmask::extend_operator<selmask::identity_versions<3>>);
///
/// linear_merge_operator<Op>    ops/merge.hpp
///   requires `op.weights(versions)` -> a weight per version (empty: all ones)
///   example  static_assert(selmask::linear_merge_operator<selmask::weighted_sum>);
///
/// nn::layer<L, B>              nn/layer.hpp
///   requires on an nn_backend: `forward`, `backward`, `output_shape`, `params`, `grads`,
///            `reset_parameters(rng)`, `name()`
///   example  static_assert(selmask::nn::layer<selmask::nn::dense<selmask::cpu>, selmask::cpu>);
///
/// differentiable_model<M, B>   model/model.hpp
///   requires `m.forward(x)` -> logits and `m.backward(g)` -> dL/dx, both as `const tensor_t<B>&` (a
///            model without step() is frozen)
///   example  static_assert(selmask::differentiable_model<selmask::nn::lenet<selmask::cpu>, selmask::cpu>);
///
/// trainable_model<M, B>        model/model.hpp
///   requires a differentiable_model with `m.step()` and `m.zero_grad()`
///   example  static_assert(selmask::trainable_model<selmask::nn::lenet<selmask::cpu>, selmask::cpu>);
///
/// checkpointable_model<M>      model/model.hpp
///   requires `m.save(path)` and `m.load(path)`: the front's checkpoints
///   example  static_assert(selmask::checkpointable_model<selmask::nn::lenet<selmask::cpu>>);
///
/// task_loss<L, B>              train/loss.hpp
///   requires static `L::name`, `l.check(out_shape, batch)` and `l.evaluate<B>(out, batch, grad)` ->
///            `loss_sums`
///   example  static_assert(selmask::task_loss<selmask::softmax_cross_entropy_loss, selmask::cpu>);
///
/// lambda_schedule<S>           train/schedule.hpp
///   requires `validate()`, `phase_of(epoch)` -> `phase`, `end_epoch(epoch, q, lambda)` -> whether
///            lambda grew
///   example  static_assert(selmask::lambda_schedule<selmask::plateau_schedule>);
///
/// lr_schedule<S>               train/lr_schedule.hpp
///   requires `validate()`, `factor(lr_context)` -> the rate's factor, `constant()` -> whether it is
///            always 1
///   example  static_assert(selmask::lr_schedule<selmask::phase_lr>);
///
/// mask_optimizer_policy<P, B>  train/policies.hpp
///   requires `p.make<B>(options)` -> an object with `add(param, grad)`, `step()` and `zero_grad()`
///   example  static_assert(selmask::mask_optimizer_policy<selmask::adamw_mask_optimizer, selmask::cpu>);
///
/// batch_source<S>              train/batch_source.hpp
///   requires `size()`, `batches()`, `sample_shape()`, `classes()`, `validate()`, `set_epoch(k)`,
///            `read(k, host_batch&)`
///   example  static_assert(selmask::batch_source<selmask::dataset_source>);
///
// clang-format on
/// Including this header brings in no backend: `cpu` (backend/cpu/cpu.hpp, or selmask.hpp),
/// `reference` (backend/reference/reference.hpp) and `cuda` (cuda.cuh) are included where they
/// are used, so the header of a user's own backend can include this one alone.

#include "backend/backend.hpp"
#include "backend/nn_backend.hpp"
#include "cost/cost.hpp"
#include "granularity/granularity.hpp"
#include "model/model.hpp"
#include "nn/layer.hpp"
#include "ops/extend.hpp"
#include "ops/merge.hpp"
#include "pipeline/stage.hpp"
#include "surrogate/straight_through.hpp"
#include "train/batch_source.hpp"
#include "train/loss.hpp"
#include "train/lr_schedule.hpp"
#include "train/policies.hpp"
#include "train/schedule.hpp"
