#pragma once
// A stage written by a user, the way any stage of one's own is written (pipeline/stage.hpp):
// `channel_affine` maps every value of channel c to x·scale[c] + shift[c] — a fixed per-channel
// normalisation, so that a pipeline takes the data as stored and its masks and the network see it
// centred and scaled. It has no parameters to learn and does not change the layout: its role is
// `stage_role::transform`. It uses the core of the backend concept (from_host, shape_of,
// scale_cells, axpy) and bk::full, a default written on it, so it runs on every backend.
#include <selmask/backend/backend.hpp>
#include <selmask/backend/ops.hpp>
#include <selmask/error.hpp>
#include <selmask/granularity/geometry.hpp>
#include <selmask/pipeline/stage.hpp>

#include <string>
#include <vector>

namespace user {

struct channel_affine {
  static constexpr selmask::stage_role role = selmask::stage_role::transform;
  std::vector<float> scale; ///< one per channel
  std::vector<float> shift; ///< one per channel

  template <selmask::tensor_backend B>
  class impl {
  public:
    using tensor = selmask::tensor_t<B>;

    impl(const channel_affine& cfg, selmask::stage_context& ctx)
      : geometry_(selmask::cell_geometry::make({1, ctx.channels, ctx.height, ctx.width},
                                               {1, 1, ctx.height, ctx.width})) {
      if (ctx.has_versions) {
        throw selmask::shape_error("user::channel_affine: expects data without versions (put it before an "
                                   "extend or after a merge)");
      }
      if (cfg.scale.size() != ctx.channels || cfg.shift.size() != ctx.channels) {
        throw selmask::shape_error("user::channel_affine: " + std::to_string(cfg.scale.size()) +
                                   " scales and " + std::to_string(cfg.shift.size()) + " shifts for " +
                                   std::to_string(ctx.channels) + " channels");
      }
      scale_ = B::from_host(geometry_.grid_shape(), cfg.scale);
      shift_ = B::from_host(geometry_.grid_shape(), cfg.shift);
      // the layout is unchanged: ctx is left as it is
    }

    /// y = x·scale[c] + shift[c]
    const tensor& forward(const tensor& x) {
      const selmask::shape s = B::shape_of(x);
      if (!(B::shape_of(ones_) == s)) {
        ones_ = selmask::bk::full<B>(s, 1.0f);
      }
      B::scale_cells(x, scale_, geometry_, y_);
      B::scale_cells(ones_, shift_, geometry_, tmp_);
      B::axpy(1.0f, tmp_, y_);
      return y_;
    }
    /// ∂L/∂x = ∂L/∂y · scale[c]
    const tensor& backward(const tensor& gy) {
      B::scale_cells(gy, scale_, geometry_, gx_);
      return gx_;
    }

  private:
    selmask::cell_geometry geometry_;
    tensor scale_, shift_, ones_, y_, tmp_, gx_;
  };
};

} // namespace user
