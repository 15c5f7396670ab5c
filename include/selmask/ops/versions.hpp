#pragma once
/// \file ops/versions.hpp
/// Host-side extend operators: versions of a sample computed on the host
/// per batch, usable as `selmask::extend<Op>`:
///
/// | operator | versions | default cost of each version |
/// |---|---|---|
/// | `raw_version` | the sample itself | 1 |
/// | `nothing_version` | zeros ("send nothing") | 0 |
/// | `thumbnail_versions<F...>` | box-downsample by F, nearest-upsample back to H×W | ⌈H/F⌉·⌈W/F⌉ / (H·W) |
/// | `versions_of<Op...>` | the versions of each `Op`, concatenated in order | those of each `Op` |
/// | `cached_versions<Op>` | `Op`'s versions, looked up by sample content | those of `Op` |
///
/// JPEG versions (`jpeg_versions<Q...>`) live in ops/jpeg.hpp (they need libjpeg-turbo, CMake
/// target `selmask::jpeg`).
///
/// A *host version operator* models `selmask::host_version_operator`: `Op::versions`,
/// `op.costs()` (V relative costs, 1 = the raw data), and
/// `op.make(v, sample, in, out)` writing version `v` of one sample `in` (C×H×W values of shape
/// `sample`) into `out` (same size). It may also have `op.encoded_bytes(v, sample, in)`: the bytes
/// version `v` of that sample occupies on the wire (cost/measured.hpp measures costs with it).
/// `detail::host_versions_forward` turns `make` into the `forward<B>` an extend stage calls; the
/// gradient is passed straight through (ops/extend.hpp).
///
/// **Precomputing once per data set** (`precompute_versions`): JPEG encoding every batch of every
/// epoch is wasteful. The pipeline hands an extend stage a batch of samples `N×C×H×W`, not their
/// indices in the data set, so the cache is keyed by *content*: `cached_versions<Op>` hashes
/// each sample's values (FNV-1a over the float bits), finds the sample in its store (the stored
/// raw values are compared exactly, so a hash collision can never return wrong versions) and copies
/// its V versions; a sample not in the store is computed with `Op` and, with `fill_on_miss`
/// (default), added. `precompute_versions(op, data)` fills the store for a whole `io::dataset`, so
/// training and evaluation on it never call the codec again. The store is shared between copies
/// (the pipeline copies its operator) and holds `(V + 1)·C·H·W` floats per distinct sample
/// (Fashion-MNIST's 60000 training images with 5 versions: about 1.1 GB; precompute a subset, or
/// fewer versions, where memory is short). It is not thread-safe.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../backend/backend.hpp"
#include "../backend/ops.hpp"
#include "../error.hpp"
#include "../io/dataset.hpp"
#include "../shape.hpp"

namespace selmask {

/// What a host version operator provides (see the file comment).
template <class Op>
concept host_version_operator = requires(const Op& op, std::size_t v, const shape& s,
                                         std::span<const float> in, std::span<float> out) {
  { Op::versions } -> std::convertible_to<std::size_t>;
  { op.costs() } -> std::same_as<std::vector<float>>;
  op.make(v, s, in, out);
};

/// A version operator that can say how many bytes version `v` of a sample takes on the wire.
template <class Op>
concept encoded_size_operator = requires(const Op& op, std::size_t v, const shape& s,
                                         std::span<const float> in) {
  { op.encoded_bytes(v, s, in) } -> std::convertible_to<std::size_t>;
};

/// The side of the blocks that `block_bytes` counts bytes for: JPEG's 8×8 grid.
inline constexpr std::size_t transport_block = 8;

/// A version operator that can say how many bytes each `transport_block`² block of version `v`
/// of a sample takes (C × ⌈H/8⌉ × ⌈W/8⌉ counts, channel by channel, rows of blocks), for
/// per-block selection (ops/jpeg.hpp; cost/measured.hpp `measure_block_costs`).
template <class Op>
concept block_size_operator = requires(const Op& op, std::size_t v, const shape& s,
                                       std::span<const float> in) {
  { op.block_bytes(v, s, in) } -> std::same_as<std::vector<std::size_t>>;
};

namespace detail {

/// Bytes of each 8×8 block of a C×H×W sample when every value costs one byte (edge blocks hold
/// fewer values).
inline std::vector<std::size_t> block_areas(const shape& s) {
  const std::size_t b = transport_block;
  std::vector<std::size_t> a;
  a.reserve(s[0] * ((s[1] + b - 1) / b) * ((s[2] + b - 1) / b));
  for (std::size_t c = 0; c < s[0]; ++c) {
    for (std::size_t y = 0; y < s[1]; y += b) {
      for (std::size_t x = 0; x < s[2]; x += b) {
        a.push_back(std::min(b, s[1] - y) * std::min(b, s[2] - x));
      }
    }
  }
  return a;
}

/// `out` (N×V×C×H×W) from `x` (N×C×H×W) by calling `op.make` for every sample and version.
template <tensor_backend B, class Op>
void host_versions_forward(const Op& op, const tensor_t<B>& x, tensor_t<B>& out) {
  constexpr std::size_t V = Op::versions;
  const shape xs = B::shape_of(x);
  const shape sample = xs.drop_front();
  const std::vector<float> in = B::to_host(x);
  const std::size_t n = xs[0];
  const std::size_t r = sample.size();
  std::vector<float> res(n * V * r);
  for (std::size_t i = 0; i < n; ++i) {
    const std::span<const float> src(in.data() + i * r, r);
    for (std::size_t v = 0; v < V; ++v) {
      op.make(v, sample, src, std::span<float>(res.data() + (i * V + v) * r, r));
    }
  }
  out = B::from_host(sample.prepend(V).prepend(n), res);
}

/// The checks every host operator makes on one sample: sizes agree, the sample is C×H×W.
inline void check_sample(const char* who, const shape& sample, std::span<const float> in,
                         std::span<float> out) {
  if (sample.rank() != 3 || in.size() != sample.size() || out.size() != sample.size()) {
    throw shape_error(std::string(who) + ": a sample of shape " + sample.str() +
                      " (expected C x H x W) with " + std::to_string(in.size()) + " input and " +
                      std::to_string(out.size()) + " output values");
  }
}

} // namespace detail

/// The sample itself (cost 1): e.g. `versions_of<raw_version, jpeg_versions<50, 10>>`.
struct raw_version {
  static constexpr std::size_t versions = 1;
  std::vector<float> version_costs{1.0f};

  [[nodiscard]] std::vector<float> costs() const { return version_costs; }
  void make(std::size_t /*v*/, const shape& sample, std::span<const float> in, std::span<float> out) const {
    detail::check_sample("selmask::raw_version", sample, in, out);
    for (std::size_t i = 0; i < in.size(); ++i) { // (std::copy: a false -Wstringop-overflow in GCC 12)
      out[i] = in[i];
    }
  }
  /// 8 bits per value.
  [[nodiscard]] std::size_t encoded_bytes(std::size_t /*v*/, const shape& sample,
                                          std::span<const float> /*in*/) const {
    return sample.size();
  }
  /// 8 bits per value of each 8×8 block.
  [[nodiscard]] std::vector<std::size_t> block_bytes(std::size_t /*v*/, const shape& sample,
                                                     std::span<const float> /*in*/) const {
    return detail::block_areas(sample);
  }
  template <tensor_backend B>
  void forward(const tensor_t<B>& x, tensor_t<B>& out) const {
    detail::host_versions_forward<B>(*this, x, out);
  }
  template <tensor_backend B>
  void backward(const tensor_t<B>& gy, tensor_t<B>& gx) const {
    bk::sum_versions<B>(gy, nullptr, gx);
  }
};

/// All zeros, "send nothing" (cost 0).
struct nothing_version {
  static constexpr std::size_t versions = 1;
  std::vector<float> version_costs{0.0f};

  [[nodiscard]] std::vector<float> costs() const { return version_costs; }
  void make(std::size_t /*v*/, const shape& sample, std::span<const float> in, std::span<float> out) const {
    detail::check_sample("selmask::nothing_version", sample, in, out);
    std::fill(out.begin(), out.end(), 0.0f);
  }
  [[nodiscard]] std::size_t encoded_bytes(std::size_t /*v*/, const shape& /*sample*/,
                                          std::span<const float> /*in*/) const {
    return 0;
  }
  [[nodiscard]] std::vector<std::size_t> block_bytes(std::size_t /*v*/, const shape& sample,
                                                     std::span<const float> /*in*/) const {
    return std::vector<std::size_t>(detail::block_areas(sample).size(), 0);
  }
  template <tensor_backend B>
  void forward(const tensor_t<B>& x, tensor_t<B>& out) const {
    detail::host_versions_forward<B>(*this, x, out);
  }
  template <tensor_backend B>
  void backward(const tensor_t<B>& gy, tensor_t<B>& gx) const {
    bk::sum_versions<B>(gy, nullptr, gx);
  }
};

/// Thumbnails: version `v` of a sample is each channel box-downsampled by factor `F_v` (the mean
/// of each F×F box; boxes at the bottom and right edges are smaller when F does not divide H or
/// W, and average only the values they cover), then nearest-upsampled back to H×W (pixel (h, w)
/// takes the value of box (h/F, w/F)). F = 1 is the identity. The default cost of a version is
/// the fraction of values a thumbnail holds, ⌈H/F⌉·⌈W/F⌉ / (H·W) — it depends on the sample
/// shape, so `costs()` needs it: set `sample` (C×H×W) or `version_costs` before building a
/// pipeline; without either, `costs()` returns 1/F² (exact when F divides H and W).
template <std::size_t... F>
struct thumbnail_versions {
  static_assert(sizeof...(F) >= 1, "selmask::thumbnail_versions<F...>: give at least one factor");
  static_assert(((F >= 1) && ...), "selmask::thumbnail_versions<F...>: every factor must be at least 1");
  static constexpr std::size_t versions = sizeof...(F);
  static constexpr std::size_t factors[versions] = {F...};
  /// Explicit costs (V values); empty: computed from the factors (and `sample`, if set).
  std::vector<float> version_costs{};
  /// The sample shape the default costs are computed for (rank 0: unknown, 1/F² is used).
  shape sample{};

  [[nodiscard]] std::vector<float> costs() const {
    if (!version_costs.empty()) {
      return version_costs;
    }
    std::vector<float> c(versions);
    for (std::size_t v = 0; v < versions; ++v) {
      const std::size_t f = factors[v];
      if (sample.rank() == 3 && sample.size() > 0) {
        const std::size_t h = sample[1], w = sample[2];
        c[v] = static_cast<float>(static_cast<double>(((h + f - 1) / f) * ((w + f - 1) / f)) /
                                  static_cast<double>(h * w));
      } else {
        c[v] = static_cast<float>(1.0 / static_cast<double>(f * f));
      }
    }
    return c;
  }
  void make(std::size_t v, const shape& s, std::span<const float> in, std::span<float> out) const {
    detail::check_sample("selmask::thumbnail_versions", s, in, out);
    if (v >= versions) {
      throw value_error("selmask::thumbnail_versions::make: version " + std::to_string(v) + " of " +
                        std::to_string(versions));
    }
    const std::size_t f = factors[v];
    const std::size_t c = s[0], h = s[1], w = s[2];
    const std::size_t gh = (h + f - 1) / f, gw = (w + f - 1) / f;
    std::vector<float> box(gh * gw);
    for (std::size_t ch = 0; ch < c; ++ch) {
      const float* src = in.data() + ch * h * w;
      float* dst = out.data() + ch * h * w;
      for (std::size_t by = 0; by < gh; ++by) {
        for (std::size_t bx = 0; bx < gw; ++bx) {
          double acc = 0.0;
          std::size_t count = 0;
          for (std::size_t y = by * f; y < std::min(h, (by + 1) * f); ++y) {
            for (std::size_t x = bx * f; x < std::min(w, (bx + 1) * f); ++x) {
              acc += src[y * w + x];
              ++count;
            }
          }
          box[by * gw + bx] = static_cast<float>(acc / static_cast<double>(count));
        }
      }
      for (std::size_t y = 0; y < h; ++y) {
        for (std::size_t x = 0; x < w; ++x) {
          dst[y * w + x] = box[(y / f) * gw + x / f];
        }
      }
    }
  }
  /// 8 bits per thumbnail value: C·⌈H/F⌉·⌈W/F⌉.
  [[nodiscard]] std::size_t encoded_bytes(std::size_t v, const shape& s,
                                          std::span<const float> /*in*/) const {
    const std::size_t f = factors[v];
    return s[0] * ((s[1] + f - 1) / f) * ((s[2] + f - 1) / f);
  }
  template <tensor_backend B>
  void forward(const tensor_t<B>& x, tensor_t<B>& out) const {
    detail::host_versions_forward<B>(*this, x, out);
  }
  template <tensor_backend B>
  void backward(const tensor_t<B>& gy, tensor_t<B>& gx) const {
    bk::sum_versions<B>(gy, nullptr, gx);
  }
};

/// The versions of each operator in turn: `versions_of<raw_version, jpeg_versions<50, 10>,
/// nothing_version>` has 4 versions. Costs are those of the parts, unless `version_costs` is set.
template <host_version_operator... Ops>
struct versions_of {
  static_assert(sizeof...(Ops) >= 1, "selmask::versions_of<Op...>: give at least one operator");
  static constexpr std::size_t versions = (Ops::versions + ...);
  std::tuple<Ops...> parts{};
  std::vector<float> version_costs{};

  [[nodiscard]] std::vector<float> costs() const {
    if (!version_costs.empty()) {
      return version_costs;
    }
    std::vector<float> c;
    std::apply([&](const auto&... p) { (append(c, p.costs()), ...); }, parts);
    return c;
  }
  void make(std::size_t v, const shape& s, std::span<const float> in, std::span<float> out) const {
    dispatch(v, [&](const auto& p, std::size_t local) { p.make(local, s, in, out); });
  }
  [[nodiscard]] std::size_t encoded_bytes(std::size_t v, const shape& s, std::span<const float> in) const
    requires(encoded_size_operator<Ops>&&...) {
    std::size_t bytes = 0;
    dispatch(v, [&](const auto& p, std::size_t local) { bytes = p.encoded_bytes(local, s, in); });
    return bytes;
  }
  [[nodiscard]] std::vector<std::size_t> block_bytes(std::size_t v, const shape& s,
                                                     std::span<const float> in) const
    requires(block_size_operator<Ops>&&...) {
    std::vector<std::size_t> bytes;
    dispatch(v, [&](const auto& p, std::size_t local) { bytes = p.block_bytes(local, s, in); });
    return bytes;
  }
  template <tensor_backend B>
  void forward(const tensor_t<B>& x, tensor_t<B>& out) const {
    detail::host_versions_forward<B>(*this, x, out);
  }
  template <tensor_backend B>
  void backward(const tensor_t<B>& gy, tensor_t<B>& gx) const {
    bk::sum_versions<B>(gy, nullptr, gx);
  }

private:
  static void append(std::vector<float>& c, const std::vector<float>& more) {
    c.insert(c.end(), more.begin(), more.end());
  }
  template <class F>
  void dispatch(std::size_t v, F&& f) const {
    if (v >= versions) {
      throw value_error("selmask::versions_of::make: version " + std::to_string(v) + " of " +
                        std::to_string(versions));
    }
    std::size_t first = 0;
    auto one = [&](const auto& p) {
      constexpr std::size_t n = std::decay_t<decltype(p)>::versions;
      if (v >= first && v < first + n) {
        f(p, v - first);
      }
      first += n;
    };
    std::apply([&](const auto&... p) { (one(p), ...); }, parts);
  }
};

/// `Op`'s versions, looked up by sample content in a store shared between copies (see the file
/// comment); fill it with `precompute_versions`.
template <host_version_operator Op>
struct cached_versions {
  static constexpr std::size_t versions = Op::versions;

  struct store {
    struct entry {
      std::vector<float> raw;      ///< the sample's values (compared exactly)
      std::vector<float> versions; ///< V × sample values
    };
    std::unordered_multimap<std::uint64_t, entry> entries;
    std::size_t hits = 0;
    std::size_t misses = 0;
  };

  Op op{};
  bool fill_on_miss = true;
  std::shared_ptr<store> cache = std::make_shared<store>();

  [[nodiscard]] std::vector<float> costs() const { return op.costs(); }

  /// FNV-1a over the bits of the values.
  static std::uint64_t hash(std::span<const float> in) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (float x : in) {
      std::uint32_t bits = 0;
      std::memcpy(&bits, &x, sizeof bits);
      for (int k = 0; k < 4; ++k) {
        h ^= (bits >> (8 * k)) & 0xffu;
        h *= 0x100000001b3ULL;
      }
    }
    return h;
  }
  /// The stored versions of `in` (V × sample values), computed (and stored with `fill_on_miss`)
  /// when missing.
  std::span<const float> lookup(const shape& s, std::span<const float> in,
                                std::vector<float>& scratch) const {
    const std::uint64_t h = hash(in);
    auto [first, last] = cache->entries.equal_range(h);
    for (auto it = first; it != last; ++it) {
      if (it->second.raw.size() == in.size() && std::equal(in.begin(), in.end(), it->second.raw.begin())) {
        ++cache->hits;
        return it->second.versions;
      }
    }
    ++cache->misses;
    scratch.resize(versions * in.size());
    for (std::size_t v = 0; v < versions; ++v) {
      op.make(v, s, in, std::span<float>(scratch).subspan(v * in.size(), in.size()));
    }
    if (!fill_on_miss) {
      return scratch;
    }
    auto it = cache->entries.emplace(
      h, typename store::entry{std::vector<float>(in.begin(), in.end()), std::move(scratch)});
    scratch = {};
    return it->second.versions;
  }
  void make(std::size_t v, const shape& s, std::span<const float> in, std::span<float> out) const {
    std::vector<float> scratch;
    const auto all = lookup(s, in, scratch);
    const auto part = all.subspan(v * in.size(), in.size());
    std::copy(part.begin(), part.end(), out.begin());
  }
  template <tensor_backend B>
  void forward(const tensor_t<B>& x, tensor_t<B>& out) const {
    const shape xs = B::shape_of(x);
    const shape sample = xs.drop_front();
    const std::vector<float> in = B::to_host(x);
    const std::size_t n = xs[0];
    const std::size_t r = sample.size();
    std::vector<float> res(n * versions * r);
    std::vector<float> scratch;
    for (std::size_t i = 0; i < n; ++i) {
      const auto all = lookup(sample, std::span<const float>(in.data() + i * r, r), scratch);
      std::copy(all.begin(), all.end(), res.begin() + static_cast<std::ptrdiff_t>(i * versions * r));
    }
    out = B::from_host(sample.prepend(versions).prepend(n), res);
  }
  template <tensor_backend B>
  void backward(const tensor_t<B>& gy, tensor_t<B>& gx) const {
    bk::sum_versions<B>(gy, nullptr, gx);
  }
};

/// A `cached_versions<Op>` whose store holds the versions of every sample of `data` (computed
/// once, here). Throws `shape_error` if `data` is not C×H×W samples.
template <host_version_operator Op>
cached_versions<Op> precompute_versions(const Op& op, const io::dataset& data) {
  if (data.sample.rank() != 3 || data.images.size() != data.size() * data.sample.size()) {
    throw shape_error("selmask::precompute_versions: the data set must hold C x H x W samples, got sample "
                      "shape " +
                      data.sample.str() + " and " + std::to_string(data.images.size()) + " values for " +
                      std::to_string(data.size()) + " samples");
  }
  cached_versions<Op> c;
  c.op = op;
  std::vector<float> scratch;
  for (std::size_t i = 0; i < data.size(); ++i) {
    (void)c.lookup(data.sample, data.image(i), scratch);
  }
  c.cache->hits = 0;
  c.cache->misses = 0;
  return c;
}

} // namespace selmask
