#pragma once
/// \file pipeline/pipeline.hpp
/// `pipeline<Stage...>`: a chain of masks and extend/merge operators, written as a type that
/// reads like the paper:
///
/// ```cpp
/// using version_masks = selmask::pipeline<selmask::extend<my_versions>, selmask::xor_mask<selmask::channel>,
///                                selmask::merge<selmask::sum>, selmask::any_mask<selmask::pixel>>;
/// version_masks::on<selmask::cpu> p(selmask::shape{3, 32, 32});         // all stages default-configured
/// auto [y, q] = p.forward(x);        // masked input for the network, and the mask loss Q
/// p.backward(dL_dy, lambda);         // logit gradients of L + λ·Q in every unfrozen mask
/// ```
///
/// Compile-time rules (each broken rule is a `static_assert` naming it): every stage is a stage
/// type; an `xor_mask` needs versions (an `extend` before it with no `merge` in between); a
/// `merge` needs versions to merge; no `extend` on data that already has versions; versions must
/// be merged before the pipeline ends (the network takes N×C×H×W).
///
/// The mask loss: each mask gives a per-location cost factor over the C×H×W grid of the input;
/// `Q = mean over locations of Π_masks factor` (cost/cost.hpp). Its gradient reaches each mask
/// through the same surrogate as the task loss.

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <boost/hana/at.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/range.hpp>
#include <boost/hana/reverse.hpp>
#include <boost/hana/tuple.hpp>

#include "../backend/backend.hpp"
#include "../backend/ops.hpp"
#include "../error.hpp"
#include "../io/state_file.hpp"
#include "../surrogate/straight_through.hpp"
#include "stage.hpp"

namespace selmask {

namespace detail {

enum class pipeline_problem {
  none,
  xor_without_versions,
  merge_without_versions,
  extend_on_versions,
  unmerged_versions
};

template <stage_role... Roles>
constexpr pipeline_problem check_roles() {
  bool versions = false;
  const std::array<stage_role, sizeof...(Roles)> roles{Roles...};
  for (stage_role r : roles) {
    switch (r) {
      case stage_role::mask_xor:
        if (!versions) {
          return pipeline_problem::xor_without_versions;
        }
        break;
      case stage_role::merge:
        if (!versions) {
          return pipeline_problem::merge_without_versions;
        }
        versions = false;
        break;
      case stage_role::extend:
        if (versions) {
          return pipeline_problem::extend_on_versions;
        }
        versions = true;
        break;
      default:
        break;
    }
  }
  return versions ? pipeline_problem::unmerged_versions : pipeline_problem::none;
}

} // namespace detail

/// Result of `pipeline<...>::on<B>::forward`: the masked input and the mask loss Q.
template <class Tensor>
struct forward_result {
  const Tensor& output;
  double q;
};

template <class... Stages>
struct pipeline {
  static_assert((stage_type<Stages> && ...),
                "selmask::pipeline<Stage...>: every stage must be a stage type: a mask (selmask::any_mask, "
                "selmask::xor_mask), selmask::extend, selmask::merge, or a user's stage with a "
                "`static constexpr stage_role role` and an `impl<B>` (pipeline/stage.hpp)");

private:
  static constexpr detail::pipeline_problem problem = detail::check_roles<Stages::role...>();

public:
  static_assert(problem != detail::pipeline_problem::xor_without_versions,
                "selmask::pipeline: an xor_mask needs versions to choose from: put a "
                "selmask::extend<...> before it (with no merge in between)");
  static_assert(problem != detail::pipeline_problem::merge_without_versions,
                "selmask::pipeline: a merge has nothing to merge: put a selmask::extend<...> "
                "before it");
  static_assert(problem != detail::pipeline_problem::extend_on_versions,
                "selmask::pipeline: extend applied to data that already has versions: merge "
                "them first");
  static_assert(problem != detail::pipeline_problem::unmerged_versions,
                "selmask::pipeline: the pipeline ends with versions that are not merged: end it "
                "with selmask::merge<...> so that the network gets N x C x H x W");

  static constexpr std::size_t stage_count = sizeof...(Stages);
  static constexpr std::size_t mask_count = ((is_mask_stage<Stages> ? 1u : 0u) + ... + 0u);

  /// The pipeline on backend `B`: holds the logits of every mask and the workspaces.
  /// `pipeline<>` (no stage) is the identity with Q = 1.
  template <tensor_backend B>
  class on {
    static_assert(
      (pipeline_stage<Stages, B> && ...),
      "selmask::pipeline::on<B>: every stage's impl<B> must be constructible from (config, "
      "stage_context&) and have forward(x) and backward(g) returning a tensor (pipeline/stage.hpp)");
    static_assert(
      ((!is_mask_stage<Stages> || mask_stage<Stages, B>)&&...),
      "selmask::pipeline::on<B>: a stage whose role is mask_any or mask_xor must have every member "
      "of selmask::mask_stage (cost_field, add_cost_grad, ..., pipeline/stage.hpp)");
    static constexpr std::array<bool, stage_count> mask_flags{is_mask_stage<Stages>...};

  public:
    using tensor = tensor_t<B>;
    using backend = B;
    /// The pipeline type this is an instance of (lets tools such as transfer plans read the
    /// stage types).
    using pipeline_type = pipeline;

    /// `sample`: the shape of one input sample, C×H×W. Every stage is default-configured.
    explicit on(const shape& sample, std::uint64_t seed = 0)
      : on(configured{}, sample, seed, default_config<Stages>()...) {}
    /// As above, with one configuration value per stage, in order.
    on(const shape& sample, std::uint64_t seed, const Stages&... configs) requires(sizeof...(Stages) > 0)
      : on(configured{}, sample, seed, configs...) {}

    /// Masks (and extends/merges) applied to a batch `x` of shape N×C×H×W; Q of the current masks.
    forward_result<tensor> forward(const tensor& x) {
      const shape xs = B::shape_of(x);
      if (xs.rank() != 4 || !(xs.drop_front() == sample_)) {
        throw shape_error("selmask::pipeline::forward: input shape " + xs.str() +
                          " does not match the pipeline's sample shape " + sample_.str() + " (expected [N," +
                          sample_.str().substr(1) + ")");
      }
      if (xs[0] == 0) {
        throw shape_error("selmask::pipeline::forward: empty batch (N = 0)");
      }
      const tensor* cur = &x;
      boost::hana::for_each(stages_, [&](auto& s) { cur = &s.forward(*cur); });
      return {*cur, q()};
    }

    /// Backward pass of `L_task + λ·Q`: `gy = ∂L_task/∂(output of forward)`. Accumulates logit
    /// gradients in every unfrozen mask and returns ∂L_task/∂x.
    const tensor& backward(const tensor& gy, float lambda) {
      if (!(lambda >= 0.0f) || !std::isfinite(lambda)) {
        throw value_error("selmask::pipeline::backward: lambda must be finite and >= 0, got " +
                          std::to_string(lambda));
      }
      const tensor* cur = &gy;
      constexpr auto indices =
        boost::hana::make_range(boost::hana::size_c<0>, boost::hana::size_c<stage_count>);
      boost::hana::for_each(boost::hana::reverse(boost::hana::to_tuple(indices)),
                            [&](auto i) { cur = &boost::hana::at(stages_, i).backward(*cur); });
      if constexpr (mask_count > 0) {
        if (lambda > 0.0f) {
          collect_fields();
          std::size_t i = 0;
          for_each_mask([&](auto& m) {
            // ∂Q/∂field_i = Π_{j≠i} field_j / L
            B::copy(ones_, tmp_);
            for (std::size_t j = 0; j < mask_count; ++j) {
              if (j != i) {
                B::map2(tmp_, fields_[j], tmp_, formula::multiply{});
              }
            }
            B::map(tmp_, tmp_, formula::scale_by{1.0f / static_cast<float>(locations_)});
            m.add_cost_grad(tmp_, lambda);
            ++i;
          });
        }
      }
      for_each_mask([](auto& m) { m.finish_backward(); });
      return *cur;
    }

    /// The mask loss Q of the masks as the last forward applied them (hard, or soft in soft mode).
    double q() {
      if constexpr (mask_count == 0) {
        return 1.0;
      } else {
        collect_fields();
        B::copy(fields_[0], tmp_);
        for (std::size_t j = 1; j < mask_count; ++j) {
          B::map2(tmp_, fields_[j], tmp_, formula::multiply{});
        }
        return B::sum(tmp_) / static_cast<double>(locations_);
      }
    }

    void zero_grad() {
      for_each_mask([](auto& m) { m.zero_grad(); });
    }
    /// Freeze (fixation phase) or unfreeze every mask.
    void freeze_masks(bool f = true) {
      for_each_mask([f](auto& m) { m.freeze(f); });
    }
    void set_tau(float tau) {
      for_each_mask([tau](auto& m) { m.set_tau(tau); });
    }
    void set_mode(mask_mode mode) {
      for_each_mask([mode](auto& m) {
        m.set_mode(mode);
        m.refresh();
      });
    }

    /// The pipeline's training state as records of `state` (io/state_file.hpp), for a resumable
    /// run (train/resume.hpp): every mask's logits (`PREFIX mask.K`), the state of every stage
    /// with `save_state(state, name)` / `load_state(state, name)` members (`PREFIX stage.I`), and
    /// the random stream of the stochastic surrogates (`PREFIX rng`). `load_state` checks every
    /// record before anything changes (`io_error` naming the record).
    void save_state(io::state_file& state, const std::string& prefix) {
      std::size_t k = 0;
      for_each_mask([&](auto& m) {
        io::record_writer w;
        w.put_tensor<B>(m.logits_for_update());
        state.put(prefix + "mask." + std::to_string(k++), std::move(w));
      });
      for_each_stage([&](auto& stage, std::size_t i) {
        if constexpr (requires { stage.save_state(state, prefix); }) {
          stage.save_state(state, prefix + "stage." + std::to_string(i));
        }
      });
      std::ostringstream rng;
      rng << *rng_;
      state.put(prefix + "rng", rng.str());
    }
    void load_state(const io::state_file& state, const std::string& prefix) {
      std::vector<tensor> logits;
      std::size_t k = 0;
      for_each_mask([&](auto& m) {
        const std::string name = prefix + "mask." + std::to_string(k++);
        io::record_reader r = state.reader(name);
        logits.push_back(m.logits_for_update());
        r.get_tensor_into<B>(logits.back(), m.name() + "'s logits");
        r.finish();
        if (!bk::all_finite<B>(logits.back())) {
          r.fail("the logits contain NaN or infinity");
        }
      });
      std::mt19937_64 rng;
      std::istringstream text(state.bytes(prefix + "rng"));
      text >> rng;
      if (!text) {
        throw io_error("selmask::pipeline::load_state: record '" + prefix +
                       "rng' is not a random stream's state");
      }
      k = 0;
      for_each_mask([&](auto& m) {
        B::copy(logits[k++], m.logits_for_update());
        if constexpr (requires { m.refresh(); }) {
          m.refresh();
        }
      });
      for_each_stage([&](auto& stage, std::size_t i) {
        if constexpr (requires { stage.load_state(state, prefix); }) {
          stage.load_state(state, prefix + "stage." + std::to_string(i));
        }
      });
      *rng_ = rng;
    }

    /// Calls `f(mask)` for every mask stage, in order.
    template <class F>
    void for_each_mask(F&& f) {
      constexpr auto indices =
        boost::hana::make_range(boost::hana::size_c<0>, boost::hana::size_c<stage_count>);
      boost::hana::for_each(indices, [&](auto i) {
        if constexpr (mask_flags[decltype(i)::value]) {
          f(boost::hana::at(stages_, i));
        }
      });
    }
    /// The random stream of the stochastic surrogates (a data-parallel trainer resets it so that
    /// every shard of a batch draws the same masks).
    std::mt19937_64& random_stream() { return *rng_; }
    /// Calls `f(stage, index)` for every stage, in order.
    template <class F>
    void for_each_stage(F&& f) {
      constexpr auto indices =
        boost::hana::make_range(boost::hana::size_c<0>, boost::hana::size_c<stage_count>);
      boost::hana::for_each(indices, [&](auto i) { f(boost::hana::at(stages_, i), decltype(i)::value); });
    }
    /// Stage `I` (0-based, in the order of the type).
    template <std::size_t I>
    auto& stage() {
      static_assert(I < stage_count, "selmask::pipeline::stage<I>: I is past the last stage");
      return boost::hana::at_c<I>(stages_);
    }
    [[nodiscard]] const shape& sample_shape() const { return sample_; }

  private:
    struct configured {};
    // default-configured stages come from one value-initialised object per type, not from
    // temporaries: GCC 12 reported the (empty) cost members of such temporaries as possibly
    // uninitialised once these constructors were inlined
    template <class S>
    static const S& default_config() {
      static const S config{};
      return config;
    }
    on(configured, const shape& sample, std::uint64_t seed, const Stages&... configs)
      : rng_(std::make_unique<std::mt19937_64>(seed)),
        ctx_(initial_context(sample, rng_.get())), stages_{
                                                     typename Stages::template impl<B>(configs, ctx_)...} {
      sample_ = sample;
      locations_ = sample.size();
      ones_ = bk::full<B>(shape{1, 1, sample[0], sample[1], sample[2]}, 1.0f);
    }

    static stage_context initial_context(const shape& sample, std::mt19937_64* rng) {
      if (sample.rank() != 3 || sample.size() == 0) {
        throw shape_error("selmask::pipeline: the sample shape must be C x H x W with no zero "
                          "extent, got " +
                          sample.str());
      }
      stage_context c;
      c.channels = sample[0];
      c.height = sample[1];
      c.width = sample[2];
      c.rng = rng;
      return c;
    }
    void collect_fields() {
      std::size_t i = 0;
      for_each_mask([&](auto& m) { m.cost_field(fields_.at(i++)); });
    }

    std::unique_ptr<std::mt19937_64> rng_;
    stage_context ctx_;
    boost::hana::tuple<typename Stages::template impl<B>...> stages_;
    shape sample_;
    std::size_t locations_ = 1;
    std::array<tensor, mask_count> fields_{};
    tensor ones_, tmp_;
  };
};

} // namespace selmask
