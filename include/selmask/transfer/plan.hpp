#pragma once
/// \file transfer/plan.hpp
/// `transfer::plan`: a selection plan — what a trained pipeline's hard masks select, and where
/// those values lie in the server's stored data.
///
/// A plan is built from hard masks (`make_plan(pipeline, storage)` from a pipeline on any
/// backend, or `plan::from_masks(masks, storage)` from host data: a 0/1 vector per mask plus its
/// `cell_geometry`, so tests and tools need no training) and a `storage` description
/// (transfer/storage.hpp). It holds:
///
///  - the masks themselves (`masks()`; each one's kept cells in ascending cell order, or for an
///    xOr-mask the version each cell picks);
///  - the per-location choice (`choices()`): for every value of a C×H×W sample, −1 when it is
///    dropped, else the version (stream) it is read from;
///  - per stream, the byte ranges of one sample that are read (`sample_ranges(v)`, ascending,
///    adjacent ranges coalesced) and the ranges of the whole stored array (`file_ranges(v)`: the
///    sample ranges repeated for every sample, coalesced across sample boundaries too);
///  - the exact payload size (`payload_bytes()`).
///
/// **Canonical order.** The payload is stream after stream (version 0 first); within a stream the
/// selected bytes in ascending file offset (sample after sample, and inside a sample in storage
/// order). `pack` writes and `unpack` reads exactly this order; both ends know the plan, so for
/// a static plan no indices travel.
///
/// **What is covered.** The values a pipeline hands to the network are reproduced exactly when,
/// at every location, the product of the masks keeps at most one version: any-masks of every
/// granularity (before or after an `extend`), and xOr-masks choosing among versions that the
/// server stores as separate arrays (one stream per version), merged with `merge<sum>`.
/// `make_plan` rejects at compile time pipelines it cannot replay (two extends, a merge other
/// than `merge<sum>`, user transform stages); `from_masks` rejects with `value_error` a location
/// that keeps several versions (e.g. an extend without an xOr-mask). Not covered: input-drop
/// upscaling (the client multiplies by the kept fraction itself), versions that are computed
/// on the client (e.g. decoded JPEG streams), per-instance (dynamic) masks.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../backend/backend.hpp"
#include "../error.hpp"
#include "../granularity/geometry.hpp"
#include "../granularity/granularity.hpp"
#include "../ops/merge.hpp"
#include "../pipeline/pipeline.hpp"
#include "../pipeline/stage.hpp"
#include "storage.hpp"

namespace selmask::transfer {

/// One mask's hard values on the host: `values[k]` (0 or 1) for every cell `k` of `geometry`
/// (the V×C×H×W tiling of `mask.geometry()`). An any-mask has `geometry.grid[0] == 1` (a cell
/// covers all versions, or there are none); an xOr-mask has `grid[0] == V` and `values` one-hot
/// over the versions of each cell (version-major: `values[v·K + k]`, as `mask.hard()`).
struct hard_mask {
  cell_geometry geometry;
  std::vector<float> values;

  /// True for an xOr-mask (one of several versions per cell).
  [[nodiscard]] bool is_xor() const noexcept { return geometry.grid[0] > 1; }
  /// Cells per version: gc·gh·gw.
  [[nodiscard]] std::size_t cells_per_version() const noexcept {
    return geometry.grid[1] * geometry.grid[2] * geometry.grid[3];
  }
  /// Indices of the cells whose value is 1, ascending (for an xOr-mask, indices into V×K).
  [[nodiscard]] std::vector<std::size_t> kept_cells() const {
    std::vector<std::size_t> out;
    for (std::size_t k = 0; k < values.size(); ++k) {
      if (values[k] == 1.0f) {
        out.push_back(k);
      }
    }
    return out;
  }
  /// For an xOr-mask: the version each of the K cells picks (requires a valid one-hot mask).
  [[nodiscard]] std::vector<std::size_t> chosen_versions() const {
    const std::size_t k_n = cells_per_version();
    std::vector<std::size_t> out(k_n, 0);
    for (std::size_t v = 0; v < geometry.grid[0]; ++v) {
      for (std::size_t k = 0; k < k_n; ++k) {
        if (values[v * k_n + k] == 1.0f) {
          out[k] = v;
        }
      }
    }
    return out;
  }

  friend bool operator==(const hard_mask& a, const hard_mask& b) {
    return a.geometry == b.geometry && a.values == b.values;
  }
};

/// `length` bytes from `offset`.
struct byte_range {
  std::size_t offset = 0;
  std::size_t length = 0;
  friend constexpr bool operator==(const byte_range&, const byte_range&) = default;
};

/// Unpack step: `count` elements from element `src` of a sample's part of a stream's payload go
/// to locations `dst, dst + stride, ...` of the C×H×W sample.
struct copy_run {
  std::size_t src = 0;
  std::size_t dst = 0;
  std::size_t count = 0;
  std::size_t stride = 1;
  friend constexpr bool operator==(const copy_run&, const copy_run&) = default;
};

/// Unpack step: locations `dst .. dst + count − 1` of a sample are dropped (get the fill value).
struct fill_run {
  std::size_t dst = 0;
  std::size_t count = 0;
  friend constexpr bool operator==(const fill_run&, const fill_run&) = default;
};

class plan {
public:
  /// A plan from host hard masks (see `hard_mask`) over data stored as `s`.
  ///
  /// Throws `shape_error` when `s` is invalid, a mask's geometry is inconsistent or does not
  /// cover s's C×H×W, its value count differs from its cell count, or it covers a number of
  /// versions other than `s.versions` (1 is allowed: such a mask applies to every version);
  /// `value_error` when a value is not 0 or 1, an xOr cell does not pick exactly one version, or
  /// a location keeps more than one version. With no masks, everything is kept.
  static plan from_masks(std::vector<hard_mask> masks, const storage& s) {
    const char* where = "selmask::transfer::plan::from_masks";
    s.validate(where);
    if (s.versions > 32767) {
      throw shape_error(std::string(where) + ": " + std::to_string(s.versions) +
                        " versions (at most 32767 supported)");
    }
    for (std::size_t i = 0; i < masks.size(); ++i) {
      check_mask(masks[i], i, s, where);
    }
    plan p;
    p.storage_ = s;
    p.masks_ = std::move(masks);
    p.build();
    return p;
  }

  /// The same selection over `n` samples instead of `source().samples`.
  [[nodiscard]] plan with_samples(std::size_t n) const {
    storage s = storage_;
    s.samples = n;
    return from_masks(masks_, s);
  }

  /// The stored data this plan reads.
  [[nodiscard]] const storage& source() const noexcept { return storage_; }
  [[nodiscard]] const std::vector<hard_mask>& masks() const noexcept { return masks_; }
  /// Per location of a C×H×W sample: −1 dropped, else the stream (version) it is read from.
  [[nodiscard]] std::span<const std::int16_t> choices() const noexcept { return choice_; }
  /// Number of streams (versions) the stored data has.
  [[nodiscard]] std::size_t streams() const noexcept { return storage_.versions; }
  /// Values of one sample that are transferred (over all streams).
  [[nodiscard]] std::size_t kept_values() const noexcept { return kept_; }

  /// Byte ranges of one sample in stream `v` (offsets from the sample's first byte).
  [[nodiscard]] std::span<const byte_range> sample_ranges(std::size_t v) const {
    return streams_.at(v).ranges;
  }
  /// Bytes of one sample read from stream `v`.
  [[nodiscard]] std::size_t sample_payload_bytes(std::size_t v) const {
    return streams_.at(v).sample_payload;
  }
  /// Bytes read from stream `v` in all (all samples).
  [[nodiscard]] std::size_t stream_payload_bytes(std::size_t v) const {
    return storage_.samples * sample_payload_bytes(v);
  }
  /// Where stream `v`'s bytes start in the payload.
  [[nodiscard]] std::size_t payload_offset(std::size_t v) const { return streams_.at(v).payload_offset; }
  /// Exact size of the payload.
  [[nodiscard]] std::size_t payload_bytes() const noexcept { return payload_; }
  /// Size of the stored data without selection: one stream, all samples (`Q × full_bytes()` is
  /// the payload for uniform costs).
  [[nodiscard]] std::size_t full_bytes() const noexcept { return storage_.stream_bytes(); }

  /// Calls `f(offset, length)` for each byte range of stream `v`'s whole array, ascending and
  /// coalesced (also across sample boundaries).
  template <class F>
  void for_each_file_range(std::size_t v, F&& f) const {
    const auto& st = streams_.at(v);
    const std::size_t stride = storage_.sample_bytes();
    bool open = false;
    byte_range cur{};
    for (std::size_t n = 0; n < storage_.samples; ++n) {
      for (const byte_range& r : st.ranges) {
        const std::size_t off = n * stride + r.offset;
        if (open && cur.offset + cur.length == off) {
          cur.length += r.length;
        } else {
          if (open) {
            f(cur.offset, cur.length);
          }
          cur = {off, r.length};
          open = true;
        }
      }
    }
    if (open) {
      f(cur.offset, cur.length);
    }
  }
  /// The byte ranges of stream `v`'s whole array (see `for_each_file_range`).
  [[nodiscard]] std::vector<byte_range> file_ranges(std::size_t v) const {
    std::vector<byte_range> out;
    for_each_file_range(v, [&](std::size_t o, std::size_t l) { out.push_back({o, l}); });
    return out;
  }

  /// Unpack steps of stream `v` for one sample, and the dropped locations of one sample.
  [[nodiscard]] std::span<const copy_run> copy_runs(std::size_t v) const { return streams_.at(v).runs; }
  [[nodiscard]] std::span<const fill_run> fill_runs() const noexcept { return fills_; }

  friend bool operator==(const plan& a, const plan& b) {
    return a.storage_ == b.storage_ && a.masks_ == b.masks_;
  }

private:
  struct stream_part {
    std::vector<byte_range> ranges;
    std::vector<copy_run> runs;
    std::size_t sample_payload = 0;
    std::size_t payload_offset = 0;
  };

  static void check_mask(const hard_mask& m, std::size_t i, const storage& s, const char* where) {
    const std::string w = std::string(where) + ": mask " + std::to_string(i) + ": ";
    const cell_geometry& g = m.geometry;
    for (std::size_t a = 0; a < 4; ++a) {
      if (g.dims[a] == 0 || g.block[a] == 0) {
        throw shape_error(w + "geometry has a zero extent on axis " + std::to_string(a));
      }
      if (g.grid[a] != (g.dims[a] + g.block[a] - 1) / g.block[a]) {
        throw shape_error(w + "geometry grid " + std::to_string(g.grid[a]) + " on axis " + std::to_string(a) +
                          " does not match dims/block (expected " +
                          std::to_string((g.dims[a] + g.block[a] - 1) / g.block[a]) + ")");
      }
    }
    const shape covered{g.dims[1], g.dims[2], g.dims[3]};
    if (!(covered == s.sample)) {
      throw shape_error(w + "covers samples of shape " + covered.str() + ", the storage's are " +
                        s.sample.str());
    }
    if (g.dims[0] != 1 && g.dims[0] != s.versions) {
      throw shape_error(w + "covers " + std::to_string(g.dims[0]) + " versions, the storage has " +
                        std::to_string(s.versions));
    }
    if (g.grid[0] != 1 && g.block[0] != 1) {
      throw shape_error(w + "cells must cover either one version or all of them");
    }
    if (m.values.size() != g.cells()) {
      throw shape_error(w + std::to_string(m.values.size()) + " values for " + std::to_string(g.cells()) +
                        " cells");
    }
    for (std::size_t k = 0; k < m.values.size(); ++k) {
      if (m.values[k] != 0.0f && m.values[k] != 1.0f) {
        throw value_error(w + "value " + std::to_string(m.values[k]) + " at cell " + std::to_string(k) +
                          " is not a hard 0/1 mask value");
      }
    }
    if (m.is_xor()) {
      const std::size_t k_n = m.cells_per_version();
      for (std::size_t k = 0; k < k_n; ++k) {
        std::size_t picked = 0;
        for (std::size_t v = 0; v < g.grid[0]; ++v) {
          picked += m.values[v * k_n + k] == 1.0f ? 1 : 0;
        }
        if (picked != 1) {
          throw value_error(w + "xOr cell " + std::to_string(k) + " picks " + std::to_string(picked) +
                            " versions (expected exactly 1)");
        }
      }
    }
  }

  void build() {
    const storage& s = storage_;
    const std::size_t c_n = s.channels(), h_n = s.height(), w_n = s.width();
    const std::size_t values = s.sample_values();
    const std::size_t v_n = s.versions;
    choice_.assign(values, -1);
    kept_ = 0;
    // 1. per location: which versions survive the product of all masks
    std::size_t loc = 0;
    for (std::size_t c = 0; c < c_n; ++c) {
      for (std::size_t h = 0; h < h_n; ++h) {
        for (std::size_t w = 0; w < w_n; ++w, ++loc) {
          std::size_t survivors = 0;
          for (std::size_t v = 0; v < v_n; ++v) {
            bool kept = true;
            for (const hard_mask& m : masks_) {
              const std::size_t mv = m.geometry.dims[0] == 1 ? 0 : v;
              if (m.values[m.geometry.cell_of(mv, c, h, w)] == 0.0f) {
                kept = false;
                break;
              }
            }
            if (kept) {
              ++survivors;
              choice_[loc] = static_cast<std::int16_t>(v);
            }
          }
          if (survivors > 1) {
            throw value_error("selmask::transfer::plan::from_masks: location (c=" + std::to_string(c) +
                              ", h=" + std::to_string(h) + ", w=" + std::to_string(w) + ") keeps " +
                              std::to_string(survivors) +
                              " versions; a plan reads one version per value (put an xor_mask "
                              "after the extend)");
          }
          kept_ += survivors;
        }
      }
    }
    // 2. walk the storage order once: byte ranges and copy runs per stream
    const std::size_t ds = dtype_size(s.type);
    streams_.assign(v_n, stream_part{});
    std::vector<std::size_t> next_src(v_n, 0);
    std::size_t j = 0;
    for_each_storage_location(s, [&](std::size_t l) {
      const std::int16_t chosen = choice_[l];
      if (chosen >= 0) {
        const auto v = static_cast<std::size_t>(chosen);
        stream_part& st = streams_[v];
        const std::size_t off = j * ds;
        if (!st.ranges.empty() && st.ranges.back().offset + st.ranges.back().length == off) {
          st.ranges.back().length += ds;
        } else {
          st.ranges.push_back({off, ds});
        }
        const std::size_t src = next_src[v]++;
        extend_run(st.runs, src, l);
      }
      ++j;
    });
    payload_ = 0;
    for (std::size_t v = 0; v < v_n; ++v) {
      streams_[v].sample_payload = next_src[v] * ds;
      streams_[v].payload_offset = payload_;
      payload_ += streams_[v].sample_payload * s.samples;
    }
    // 3. dropped locations, in C×H×W order
    fills_.clear();
    for (std::size_t l = 0; l < values; ++l) {
      if (choice_[l] < 0) {
        if (!fills_.empty() && fills_.back().dst + fills_.back().count == l) {
          ++fills_.back().count;
        } else {
          fills_.push_back({l, 1});
        }
      }
    }
  }

  /// Appends element (src → dst) to the runs, extending the last run when it continues it.
  static void extend_run(std::vector<copy_run>& runs, std::size_t src, std::size_t dst) {
    if (!runs.empty()) {
      copy_run& r = runs.back();
      if (r.src + r.count == src) {
        if (r.count == 1 && dst > r.dst) {
          r.stride = dst - r.dst;
          r.count = 2;
          return;
        }
        if (dst == r.dst + r.count * r.stride) {
          ++r.count;
          return;
        }
      }
    }
    runs.push_back({src, dst, 1, 1});
  }

  storage storage_;
  std::vector<hard_mask> masks_;
  std::vector<std::int16_t> choice_;
  std::vector<stream_part> streams_;
  std::vector<fill_run> fills_;
  std::size_t kept_ = 0;
  std::size_t payload_ = 0;
};

namespace detail {

template <class P>
struct pipeline_stage_list;
template <class... S>
struct pipeline_stage_list<pipeline<S...>> {
  static constexpr std::size_t extends = ((S::role == stage_role::extend ? 1u : 0u) + ... + 0u);
  static constexpr std::size_t transforms = ((S::role == stage_role::transform ? 1u : 0u) + ... + 0u);
  static constexpr bool merges_are_sums =
    ((S::role != stage_role::merge || std::is_same_v<S, merge<sum>>)&&...);
  static constexpr std::size_t versions() {
    std::size_t v = 1;
    (
      [&] {
        if constexpr (S::role == stage_role::extend) {
          v = S::versions;
        }
      }(),
      ...);
    return v;
  }
};

} // namespace detail

/// A pipeline instance (`pipeline<...>::on<B>`) whose hard masks a plan can read.
template <class P>
concept plannable_pipeline = requires(P& p) {
  typename P::pipeline_type;
  typename P::backend;
  { p.sample_shape() } -> std::convertible_to<const shape&>;
};

/// The number of versions (streams) a pipeline type reads: V of its extend stage, else 1.
template <class Pipeline>
constexpr std::size_t pipeline_versions = detail::pipeline_stage_list<Pipeline>::versions();

/// The plan of a pipeline's current hard masks (`mask.hard()`, whatever the mask mode) over
/// data stored as `s`. Throws `shape_error` when `s.sample` differs from the pipeline's sample
/// shape or `s.versions` from the pipeline's number of versions, and what `plan::from_masks`
/// throws.
template <plannable_pipeline P>
plan make_plan(P& p, const storage& s) {
  using list = detail::pipeline_stage_list<typename P::pipeline_type>;
  static_assert(list::extends <= 1,
                "selmask::transfer::make_plan: a plan can replay at most one extend stage (versions "
                "of versions are not stored data)");
  static_assert(list::merges_are_sums,
                "selmask::transfer::make_plan: only merge<selmask::sum> can be replayed from stored "
                "versions (a one-hot xOr-mask then picks one stored version per value)");
  static_assert(list::transforms == 0,
                "selmask::transfer::make_plan: user transform stages cannot be replayed by a plan");
  using B = typename P::backend;
  if (!(p.sample_shape() == s.sample)) {
    throw shape_error("selmask::transfer::make_plan: storage sample shape " + s.sample.str() +
                      " differs from the pipeline's " + p.sample_shape().str());
  }
  constexpr std::size_t v_n = list::versions();
  if (s.versions != v_n) {
    throw shape_error("selmask::transfer::make_plan: storage has " + std::to_string(s.versions) +
                      " versions, the pipeline reads " + std::to_string(v_n));
  }
  std::vector<hard_mask> masks;
  p.for_each_mask([&](auto& m) { masks.push_back(hard_mask{m.geometry(), B::to_host(m.hard())}); });
  return plan::from_masks(std::move(masks), s);
}

/// As above, with the storage described by the pipeline's sample shape and versions.
template <plannable_pipeline P>
plan make_plan(P& p, std::size_t samples, dtype type,
               storage_layout layout = storage_layout::band_sequential()) {
  storage s;
  s.sample = p.sample_shape();
  s.samples = samples;
  s.type = type;
  s.layout = layout;
  s.versions = pipeline_versions<typename P::pipeline_type>;
  return make_plan(p, s);
}

} // namespace selmask::transfer
