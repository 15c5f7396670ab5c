// The public concepts of include/selmask/concepts.hpp: every example of its table holds, on every
// backend of support.hpp where the concept takes one, and types that lack a requirement are
// rejected (so the concepts are not vacuous). Checked at compile time; the test cases repeat the
// checks at run time so that the report shows them.
#include <selmask/concepts.hpp>

#include "support.hpp"

#include <selmask/nn/dense.hpp>
#include <selmask/nn/lenet.hpp>

#include <array>
#include <cstddef>

using namespace selmask;
using namespace selmask_test;

namespace {
/// The table's example of a user's granularity: one cell per row, across the width.
struct rows {
  static constexpr const char* name = "rows";
  static constexpr std::array<std::size_t, 3> extent(std::size_t, std::size_t, std::size_t w) {
    return {1, 1, w};
  }
};
struct no_extent {
  static constexpr const char* name = "no_extent";
};
/// A model with forward and backward only: differentiable (frozen), not trainable.
template <class B>
struct frozen {
  typename B::tensor t;
  const typename B::tensor& forward(const typename B::tensor&) { return t; }
  const typename B::tensor& backward(const typename B::tensor&) { return t; }
};
struct not_a_backend {
  using tensor = int;
};

static_assert(granularity<rows> && granularity<pixel> && granularity<block<2, 3>>);
static_assert(!granularity<no_extent> && !granularity<int>);
static_assert(surrogate<st_sigmoid> && surrogate<st_softmax> && !surrogate<rows>);
static_assert(cost_model<uniform_cost> && cost_model<table_cost> && !cost_model<rows>);
static_assert(extend_operator<identity_versions<3>> && !extend_operator<weighted_sum>);
static_assert(linear_merge_operator<weighted_sum> && !linear_merge_operator<identity_versions<3>>);
static_assert(stage_type<any_mask<pixel>> && stage_type<merge<sum>> && !stage_type<rows>);
static_assert(lambda_schedule<round_schedule> && lambda_schedule<plateau_schedule> &&
              !lambda_schedule<tau_schedule>);
static_assert(lr_schedule<phase_lr> && lr_schedule<constant_lr> && !lr_schedule<round_schedule>);
static_assert(batch_source<dataset_source> && !batch_source<io::dataset>);
static_assert(checkpointable_model<nn::lenet<cpu>> && !checkpointable_model<frozen<cpu>>);
static_assert(!tensor_backend<not_a_backend> && !tensor_backend<int>);

/// The concepts that take a backend, for backend `B`; `false` names the first that fails.
template <class B>
constexpr bool backend_concepts_hold() {
  return tensor_backend<B> && nn_backend<B> && pipeline_stage<extend<identity_versions<3>>, B> &&
         pipeline_stage<any_mask<rows>, B> && pipeline_stage<merge<sum>, B> &&
         mask_stage<any_mask<pixel>, B> && mask_stage<xor_mask<channel>, B> && !mask_stage<merge<sum>, B> &&
         nn::layer<nn::dense<B>, B> && differentiable_model<frozen<B>, B> && !trainable_model<frozen<B>, B> &&
         trainable_model<nn::lenet<B>, B> && task_loss<softmax_cross_entropy_loss, B> &&
         mask_optimizer_policy<adamw_mask_optimizer, B> && !mask_optimizer_policy<rows, B>;
}
static_assert(backend_concepts_hold<cpu>() && backend_concepts_hold<reference>() &&
              backend_concepts_hold<cuda_host_emulation>());
} // namespace

TEMPLATE_LIST_TEST_CASE("concepts: the table's backend concepts hold on every backend", "[concepts]",
                        backends) {
  using B = TestType;
  CHECK(tensor_backend<B>);
  CHECK(nn_backend<B>);
  CHECK(mask_stage<any_mask<pixel>, B>);
  CHECK_FALSE(mask_stage<merge<sum>, B>);
  CHECK(trainable_model<nn::lenet<B>, B>);
  CHECK_FALSE(trainable_model<frozen<B>, B>);
  CHECK(backend_concepts_hold<B>());
}

TEST_CASE("concepts: a user's granularity gives the cells it describes", "[concepts]") {
  // rows on a 3×4×5 sample: one cell per (channel, row), 5 values each
  const auto g = make_geometry<rows>(1, 3, 4, 5, false);
  CHECK(g.cells() == 12);
  CHECK(g.cell_of(0) == g.cell_of(4));
  CHECK(g.cell_of(4) != g.cell_of(5));
}
