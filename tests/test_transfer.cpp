// Transfer: storage orders, selection plans, pack/unpack against the pipeline's own forward pass
// (every granularity, dtype and layout, with and without versions), plan files and their
// validation, and the HTTP range vocabulary (Range, Content-Range, multipart/byteranges).
#include "support.hpp"

#include <selmask/transfer/transfer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

using namespace selmask;
using namespace selmask_test;
namespace tr = selmask::transfer;

namespace {

// ---- an independent model of the stored data ---------------------------------------------------

/// Position of value (c, h, w) in one stored sample, by formula (the library walks loops).
std::size_t stored_position(const tr::storage& s, std::size_t c, std::size_t h, std::size_t w) {
  const std::size_t cn = s.sample[0], hn = s.sample[1], wn = s.sample[2];
  switch (s.layout.kind) {
    case tr::layout_kind::band_sequential:
      return (c * hn + h) * wn + w;
    case tr::layout_kind::pixel_interleaved:
      return (h * wn + w) * cn + c;
    case tr::layout_kind::tiled: {
      const std::size_t th = s.layout.tile_height, tw = s.layout.tile_width;
      const std::size_t tr_ = h / th, tc = w / tw;
      const std::size_t h0 = tr_ * th, w0 = tc * tw;
      const std::size_t ah = std::min(th, hn - h0), aw = std::min(tw, wn - w0);
      // full tile rows above, then the tiles to the left in this tile row (all aw = tw), then inside
      return cn * th * wn * tr_ + cn * ah * tw * tc + (c * ah + (h - h0)) * aw + (w - w0);
    }
  }
  return 0;
}

/// location (C×H×W order) of each stored position of a sample.
std::vector<std::size_t> stored_to_location(const tr::storage& s) {
  std::vector<std::size_t> inv(s.sample.size(), static_cast<std::size_t>(-1));
  std::size_t loc = 0;
  for (std::size_t c = 0; c < s.sample[0]; ++c)
    for (std::size_t h = 0; h < s.sample[1]; ++h)
      for (std::size_t w = 0; w < s.sample[2]; ++w, ++loc)
        inv[stored_position(s, c, h, w)] = loc;
  return inv;
}

/// Typed values of N samples (C×H×W order) as doubles, exactly representable in the dtype and
/// (for integers) in float when `small` is set.
std::vector<double> random_typed(tr::dtype t, std::size_t n, bool small) {
  std::vector<double> v(n);
  auto& r = rng();
  for (auto& x : v) {
    switch (t) {
      case tr::dtype::uint8:
        x = static_cast<double>(r() % 256);
        break;
      case tr::dtype::int8:
        x = static_cast<double>(static_cast<int>(r() % 256) - 128);
        break;
      case tr::dtype::uint16:
        x = static_cast<double>(r() % 65536);
        break;
      case tr::dtype::int16:
        x = static_cast<double>(static_cast<int>(r() % 65536) - 32768);
        break;
      case tr::dtype::uint32:
        x = static_cast<double>(small ? r() % (1u << 20) : r() % 4294967296ULL);
        break;
      case tr::dtype::int32:
        x = small ? static_cast<double>(static_cast<std::int64_t>(r() % (1u << 21)) - (1 << 20))
                  : static_cast<double>(static_cast<std::int64_t>(r() % 4294967296ULL) - 2147483648LL);
        break;
      case tr::dtype::float32:
        x = static_cast<double>(std::uniform_real_distribution<float>(-100.0f, 100.0f)(r));
        break;
      case tr::dtype::float64:
        x = std::uniform_real_distribution<double>(-100.0, 100.0)(r);
        break;
    }
  }
  return v;
}

template <class T>
void put(std::byte* p, double v) {
  const T t = static_cast<T>(v);
  std::memcpy(p, &t, sizeof(T)); // the test machine is little-endian, as the storage is
}

void put_value(tr::dtype t, std::byte* p, double v) {
  switch (t) {
    case tr::dtype::uint8:
      return put<std::uint8_t>(p, v);
    case tr::dtype::int8:
      return put<std::int8_t>(p, v);
    case tr::dtype::uint16:
      return put<std::uint16_t>(p, v);
    case tr::dtype::int16:
      return put<std::int16_t>(p, v);
    case tr::dtype::uint32:
      return put<std::uint32_t>(p, v);
    case tr::dtype::int32:
      return put<std::int32_t>(p, v);
    case tr::dtype::float32:
      return put<float>(p, v);
    case tr::dtype::float64:
      return put<double>(p, v);
  }
}

/// What unpack must produce from a stored value: float(stored) * scale (for a 64-bit value the
/// conversion from its exact double).
float as_float(double v, float scale) { return static_cast<float>(v) * scale; }

/// The stored bytes of N samples given in C×H×W order.
std::vector<std::byte> store(const tr::storage& s, const std::vector<double>& values) {
  const std::size_t ds = tr::dtype_size(s.type), per = s.sample.size();
  std::vector<std::byte> out(values.size() * ds);
  const auto inv = stored_to_location(s);
  for (std::size_t n = 0; n < values.size() / per; ++n)
    for (std::size_t pos = 0; pos < per; ++pos)
      put_value(s.type, out.data() + (n * per + pos) * ds, values[n * per + inv[pos]]);
  return out;
}

bool is_integer(tr::dtype t) { return t != tr::dtype::float32 && t != tr::dtype::float64; }

/// Version v of a value: halved v times (floor for integers) — exact in float and in the dtype.
double version_value(tr::dtype t, double x, std::size_t v) {
  const double y = std::ldexp(x, -static_cast<int>(v));
  return is_integer(t) ? std::floor(y) : y;
}

tr::storage_layout random_layout() {
  switch (rng()() % 3) {
    case 0:
      return tr::storage_layout::band_sequential();
    case 1:
      return tr::storage_layout::pixel_interleaved();
    default:
      return tr::storage_layout::tiled(1 + rng()() % 4, 1 + rng()() % 5);
  }
}

constexpr tr::dtype all_dtypes[] = {tr::dtype::uint8,   tr::dtype::int8,   tr::dtype::uint16,
                                    tr::dtype::int16,   tr::dtype::uint32, tr::dtype::int32,
                                    tr::dtype::float32, tr::dtype::float64};

/// Random logits for every mask of a pipeline; `bias` moves any-masks towards keeping.
template <class P>
void randomise_masks(P& p) {
  const float bias = std::uniform_real_distribution<float>(-1.0f, 1.5f)(rng());
  p.for_each_mask([&](auto& m) {
    const shape ls = cpu::shape_of(m.logits());
    auto w = random_values(ls.size(), -2.0f, 2.0f);
    if (m.choices() == 1) {
      for (auto& x : w) {
        x += bias;
      }
    }
    m.set_logits(cpu::from_host(ls, w));
  });
}

/// Naive per-location choice (−1 dropped, else the version) from the masks' applied values.
template <class P>
std::vector<int> naive_choice(P& p, const tr::storage& s) {
  struct m_t {
    cell_geometry g;
    std::vector<float> h;
  };
  std::vector<m_t> ms;
  p.for_each_mask([&](auto& m) { ms.push_back({m.geometry(), cpu::to_host(m.applied())}); });
  std::vector<int> out(s.sample.size(), -1);
  std::size_t loc = 0;
  for (std::size_t c = 0; c < s.sample[0]; ++c)
    for (std::size_t h = 0; h < s.sample[1]; ++h)
      for (std::size_t w = 0; w < s.sample[2]; ++w, ++loc)
        for (std::size_t v = 0; v < s.versions; ++v) {
          float f = 1.0f;
          for (const auto& m : ms) {
            f *= m.h[naive_cell(m.g, m.g.dims[0] == 1 ? 0 : v, c, h, w)];
          }
          if (f == 1.0f) {
            REQUIRE(out[loc] == -1); // one version per location
            out[loc] = static_cast<int>(v);
          }
        }
  return out;
}

/// The whole property: random data in `s` through pipeline `p` (already randomised) equals the
/// plan's pack → unpack, byte for byte and value for value; sizes agree with the plan and with Q.
template <class P>
void check_round_trip(P& p, const tr::storage& s, float scale) {
  const std::size_t per = s.sample.size(), n_values = s.samples * per;
  const std::size_t ds = tr::dtype_size(s.type);
  INFO("sample " << s.sample.str() << " x" << s.samples << ", " << tr::dtype_name(s.type) << ", "
                 << s.layout.str() << ", versions " << s.versions << ", scale " << scale);
  // the stored versions, and the network's input x = float(version 0) * scale
  const auto base = random_typed(s.type, n_values, s.versions > 1);
  std::vector<std::vector<std::byte>> streams;
  for (std::size_t v = 0; v < s.versions; ++v) {
    std::vector<double> vv(base.size());
    for (std::size_t i = 0; i < base.size(); ++i) {
      vv[i] = version_value(s.type, base[i], v);
    }
    streams.push_back(store(s, vv));
  }
  std::vector<float> xv(n_values);
  for (std::size_t i = 0; i < n_values; ++i) {
    xv[i] = as_float(base[i], scale);
  }
  const auto r = p.forward(cpu::from_host(s.batch_shape(), xv));
  const auto y = cpu::to_host(r.output);

  const tr::plan plan = tr::make_plan(p, s);
  std::vector<std::span<const std::byte>> spans(streams.begin(), streams.end());
  const auto payload = tr::pack(plan, spans);

  // sizes: payload == the plan's prediction == Q × full size (uniform costs)
  REQUIRE(payload.size() == plan.payload_bytes());
  const double full = static_cast<double>(n_values * ds);
  CHECK(static_cast<double>(plan.payload_bytes()) == Approx(r.q * full).margin(0.5));
  CHECK(plan.full_bytes() == n_values * ds);

  // the payload's bytes are the selected stored bytes in canonical order
  const auto choice = naive_choice(p, s);
  const auto inv = stored_to_location(s);
  std::vector<std::byte> expected;
  for (std::size_t v = 0; v < s.versions; ++v)
    for (std::size_t n = 0; n < s.samples; ++n)
      for (std::size_t pos = 0; pos < per; ++pos)
        if (choice[inv[pos]] == static_cast<int>(v)) {
          const std::byte* b = streams[v].data() + (n * per + pos) * ds;
          expected.insert(expected.end(), b, b + ds);
        }
  REQUIRE(payload == expected);

  // unpack(pack(x)) == the pipeline's forward output, value for value
  const auto out = tr::unpack(plan, payload, {.scale = scale});
  REQUIRE(out.size() == y.size());
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    mismatches += out[i] == y[i] ? 0 : 1;
  }
  CHECK(mismatches == 0);

  // a fill value other than 0 lands exactly on the dropped locations
  const auto filled = tr::unpack(plan, payload, {.scale = scale, .fill = 7.25f});
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const bool dropped = choice[i % per] < 0;
    wrong += (dropped ? filled[i] == 7.25f : filled[i] == out[i]) ? 0 : 1;
  }
  CHECK(wrong == 0);

  // the tensor form is the same
  CHECK(cpu::to_host(tr::unpack_tensor<cpu>(plan, payload, {.scale = scale})) == out);
}

template <class G>
shape random_sample() {
  const auto e = G::extent(1, 16, 16);
  const std::size_t bh = e[1] == 16 ? 1 : e[1], bw = e[2] == 16 ? 1 : e[2];
  return shape{1 + rng()() % 5, bh + rng()() % 7, bw + rng()() % 7};
}

} // namespace

#define SELMASK_GRANULARITIES channel, pixel, subpixel, (block<2, 3>), (block<2, 3, all_channels>), version

// ---- storage ----------------------------------------------------------------------------------

TEST_CASE("storage: the order of one sample's values in each layout", "[transfer][storage]") {
  tr::storage s{shape{2, 2, 3}, 1, tr::dtype::uint8, tr::storage_layout::band_sequential(), 1};
  const auto order = [&] {
    std::vector<std::size_t> o;
    tr::for_each_storage_location(s, [&](std::size_t l) { o.push_back(l); });
    return o;
  };
  CHECK(order() == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  s.layout = tr::storage_layout::pixel_interleaved();
  CHECK(order() == std::vector<std::size_t>{0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11});
  s.layout = tr::storage_layout::tiled(2, 2); // tile (0,0): w 0-1, tile (0,1): w 2 (unpadded)
  CHECK(order() == std::vector<std::size_t>{0, 1, 3, 4, 6, 7, 9, 10, 2, 5, 8, 11});
  s.layout = tr::storage_layout::tiled(5, 7); // one tile larger than the image = band-sequential
  CHECK(order() == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
}

TEST_CASE("storage: every layout is a permutation matching the formula", "[transfer][storage]") {
  for (int trial = 0; trial < 40; ++trial) {
    tr::storage s{shape{1 + rng()() % 4, 1 + rng()() % 9, 1 + rng()() % 9}, 1, tr::dtype::uint8,
                  random_layout(), 1};
    const auto inv = stored_to_location(s);
    std::vector<std::size_t> o;
    tr::for_each_storage_location(s, [&](std::size_t l) { o.push_back(l); });
    INFO(s.sample.str() << " " << s.layout.str());
    REQUIRE(o == inv);
  }
}

TEST_CASE("storage: dtypes, names and bad descriptions", "[transfer][storage][errors]") {
  for (tr::dtype t : all_dtypes) {
    CHECK(tr::parse_dtype(tr::dtype_name(t)) == t);
  }
  CHECK(tr::dtype_size(tr::dtype::uint16) == 2);
  CHECK(tr::dtype_size(tr::dtype::float64) == 8);
  CHECK_THROWS_AS(tr::parse_dtype("complex64"), value_error);
  CHECK_THROWS_WITH(tr::parse_dtype("complex64"), Catch::Contains("complex64"));
  CHECK_THROWS_AS(tr::storage_layout::tiled(0, 4), value_error);
  tr::storage s{shape{3, 4}, 1, tr::dtype::uint8, {}, 1};
  CHECK_THROWS_AS(s.validate("x"), shape_error);
  s.sample = shape{3, 4, 4};
  s.samples = 0;
  CHECK_THROWS_WITH(s.validate("x"), Catch::Contains("0 samples"));
  s.samples = 2;
  CHECK_NOTHROW(s.validate("x"));
  CHECK(s.sample_bytes() == 48);
  CHECK(s.stream_bytes() == 96);
}

// ---- plans by hand ------------------------------------------------------------------------------

TEST_CASE("plan: a channel plan on band-sequential data, by hand", "[transfer][plan]") {
  // 8 bands of 4x4 uint16, 3 samples; keep bands 0,1,2,5,7
  const tr::storage s{shape{8, 4, 4}, 3, tr::dtype::uint16, tr::storage_layout::band_sequential(), 1};
  tr::hard_mask m{make_geometry<channel>(1, 8, 4, 4, true), {1, 1, 1, 0, 0, 1, 0, 1}};
  const auto p = tr::plan::from_masks({m}, s);
  CHECK(p.streams() == 1);
  CHECK(p.kept_values() == 5 * 16);
  const std::vector<tr::byte_range> per_sample{{0, 96}, {160, 32}, {224, 32}};
  CHECK(std::vector<tr::byte_range>(p.sample_ranges(0).begin(), p.sample_ranges(0).end()) == per_sample);
  // across samples the last band of one sample meets the first bands of the next
  const std::vector<tr::byte_range> file{{0, 96},    {160, 32}, {224, 128}, {416, 32},
                                         {480, 128}, {672, 32}, {736, 32}};
  CHECK(p.file_ranges(0) == file);
  CHECK(p.payload_bytes() == 3 * 5 * 32);
  CHECK(p.full_bytes() == 3 * 256);
  const std::vector<tr::copy_run> runs{{0, 0, 48, 1}, {48, 80, 16, 1}, {64, 112, 16, 1}};
  CHECK(std::vector<tr::copy_run>(p.copy_runs(0).begin(), p.copy_runs(0).end()) == runs);
  const std::vector<tr::fill_run> fills{{48, 32}, {96, 16}};
  CHECK(std::vector<tr::fill_run>(p.fill_runs().begin(), p.fill_runs().end()) == fills);
  CHECK(m.kept_cells() == std::vector<std::size_t>{0, 1, 2, 5, 7});

  // the same plan on pixel-interleaved data: each pixel's kept bands 0-2, 5, 7
  const auto pi = tr::plan::from_masks(
    {m}, {shape{8, 4, 4}, 3, tr::dtype::uint16, tr::storage_layout::pixel_interleaved(), 1});
  // (a pixel's band 7 meets the next pixel's bands 0-2)
  CHECK(pi.sample_ranges(0).size() == 1 + 16 * 2);
  CHECK(pi.sample_ranges(0)[0] == tr::byte_range{0, 6});
  CHECK(pi.sample_ranges(0)[1] == tr::byte_range{10, 2});
  CHECK(pi.sample_ranges(0)[2] == tr::byte_range{14, 8});
  CHECK(pi.sample_ranges(0).back() == tr::byte_range{254, 2});
  CHECK(pi.payload_bytes() == p.payload_bytes());
  // with_samples keeps the selection
  CHECK(p.with_samples(10).payload_bytes() == 10 * 5 * 32);
}

TEST_CASE("plan: everything kept is one range; nothing kept is an empty payload", "[transfer][plan]") {
  const tr::storage s{shape{3, 5, 5}, 4, tr::dtype::float32, tr::storage_layout::tiled(2, 2), 1};
  const auto all = tr::plan::from_masks({}, s);
  CHECK(all.file_ranges(0) == std::vector<tr::byte_range>{{0, s.stream_bytes()}});
  CHECK(all.payload_bytes() == s.stream_bytes());
  tr::hard_mask none{make_geometry<pixel>(1, 3, 5, 5, true), std::vector<float>(25, 0.0f)};
  const auto p = tr::plan::from_masks({none}, s);
  CHECK(p.payload_bytes() == 0);
  CHECK(p.file_ranges(0).empty());
  std::vector<std::byte> data(s.stream_bytes());
  const auto payload = tr::pack(p, data);
  CHECK(payload.empty());
  const auto out = tr::unpack(p, payload, {.fill = -1.0f});
  CHECK(std::all_of(out.begin(), out.end(), [](float v) { return v == -1.0f; }));
}

TEST_CASE("plan: bad hard masks are rejected, naming the mask and the problem", "[transfer][plan][errors]") {
  const tr::storage s{shape{4, 6, 6}, 1, tr::dtype::uint8, tr::storage_layout::band_sequential(), 1};
  const auto g = make_geometry<channel>(1, 4, 6, 6, true);
  CHECK_THROWS_AS(tr::plan::from_masks({{g, {1, 0, 1}}}, s), shape_error); // 3 values, 4 cells
  CHECK_THROWS_WITH(tr::plan::from_masks({{g, {1, 0, 1}}}, s), Catch::Contains("3 values for 4 cells"));
  CHECK_THROWS_AS(tr::plan::from_masks({{g, {1, 0.5f, 1, 0}}}, s), value_error); // not hard
  CHECK_THROWS_WITH(tr::plan::from_masks({{g, {1, 0.5f, 1, 0}}}, s), Catch::Contains("mask 0"));
  const auto g5 = make_geometry<channel>(1, 5, 6, 6, true);
  CHECK_THROWS_WITH(tr::plan::from_masks({{g5, {1, 1, 1, 1, 1}}}, s), Catch::Contains("[5,6,6]"));
  // an xOr-mask over 3 versions: each cell must pick exactly one
  tr::storage sv = s;
  sv.versions = 3;
  const auto gx = make_geometry<channel>(3, 4, 6, 6, false);
  std::vector<float> onehot(12, 0.0f);
  for (std::size_t k = 0; k < 4; ++k) {
    onehot[(k % 3) * 4 + k] = 1.0f;
  }
  CHECK_NOTHROW(tr::plan::from_masks({{gx, onehot}}, sv));
  auto two = onehot;
  two[0 * 4 + 1] = 1.0f;
  CHECK_THROWS_WITH(tr::plan::from_masks({{gx, two}}, sv), Catch::Contains("picks 2 versions"));
  // the xOr-mask's version count must be the storage's
  CHECK_THROWS_AS(tr::plan::from_masks({{gx, onehot}}, s), shape_error);
  // versions with no xOr-mask: every location would need all versions summed
  CHECK_THROWS_WITH(tr::plan::from_masks({{g, {1, 1, 1, 1}}}, sv), Catch::Contains("keeps 3 versions"));
  // a geometry whose grid does not follow from dims and block
  auto bad = g;
  bad.grid[1] = 3;
  CHECK_THROWS_AS(tr::plan::from_masks({{bad, {1, 1, 1}}}, s), shape_error);
}

TEST_CASE("plan: make_plan checks the storage against the pipeline", "[transfer][plan][errors]") {
  pipeline<any_mask<channel>>::on<cpu> p(shape{3, 4, 4}, 1);
  CHECK_THROWS_AS(tr::make_plan(p, tr::storage{shape{3, 4, 5}, 1, tr::dtype::uint8, {}, 1}), shape_error);
  CHECK_THROWS_WITH(tr::make_plan(p, tr::storage{shape{3, 4, 4}, 1, tr::dtype::uint8, {}, 2}),
                    Catch::Contains("2 versions"));
  const auto plan = tr::make_plan(p, 5, tr::dtype::uint16);
  CHECK(plan.payload_bytes() == 5 * 3 * 16 * 2); // the initial mask keeps everything
  using vpipe = pipeline<extend<identity_versions<2>>, xor_mask<pixel>, merge<sum>>;
  STATIC_REQUIRE(tr::pipeline_versions<vpipe> == 2);
  vpipe::on<cpu> pv(shape{3, 4, 4}, 1);
  CHECK(tr::make_plan(pv, 1, tr::dtype::uint8).streams() == 2);
}

// ---- the property: unpack(pack(x)) == forward(x) -----------------------------------------------

TEMPLATE_TEST_CASE("pack/unpack: any-masks reproduce the pipeline's forward pass in every dtype and layout",
                   "[transfer][pack][property]", SELMASK_GRANULARITIES) {
  for (int trial = 0; trial < 24; ++trial) {
    const shape sample = random_sample<TestType>();
    typename pipeline<any_mask<TestType>>::template on<cpu> p(sample, rng()());
    randomise_masks(p);
    const tr::dtype t = all_dtypes[static_cast<std::size_t>(trial) % 8];
    const tr::storage s{sample, 1 + rng()() % 3, t, random_layout(), 1};
    const float scale = trial % 2 == 0 ? 1.0f : 1.0f / 255.0f;
    check_round_trip(p, s, scale);
  }
}

namespace {
template <std::size_t V>
extend<functor_versions<V>> halving_versions(tr::dtype t) {
  functor_versions<V> op;
  const bool integer = is_integer(t);
  op.make = [integer](std::size_t v, std::span<const float> x, std::span<float> out) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float y = std::ldexp(x[i], -static_cast<int>(v));
      out[i] = integer ? std::floor(y) : y;
    }
  };
  return extend<functor_versions<V>>{op};
}
} // namespace

TEMPLATE_TEST_CASE("pack/unpack: xOr-masks over stored versions reproduce extend -> xor_mask -> merge<sum>",
                   "[transfer][pack][property][versions]", SELMASK_GRANULARITIES) {
  using pipe = pipeline<extend<functor_versions<3>>, xor_mask<TestType>, merge<sum>>;
  for (int trial = 0; trial < 16; ++trial) {
    const shape sample = random_sample<TestType>();
    const tr::dtype t = all_dtypes[static_cast<std::size_t>(trial) % 8];
    typename pipe::template on<cpu> p(sample, rng()(), halving_versions<3>(t), xor_mask<TestType>{},
                                      merge<sum>{});
    randomise_masks(p);
    check_round_trip(p, tr::storage{sample, 1 + rng()() % 3, t, random_layout(), 3}, 1.0f);
  }
}

TEST_CASE("pack/unpack: pipelines of several masks around the versions",
          "[transfer][pack][property][versions]") {
  for (int trial = 0; trial < 16; ++trial) {
    const shape sample{1 + rng()() % 4, 2 + rng()() % 6, 2 + rng()() % 6};
    const tr::dtype t = all_dtypes[static_cast<std::size_t>(trial) % 8];
    const tr::storage_layout layout = random_layout();
    const std::size_t n = 1 + rng()() % 3;
    {
      using pipe =
        pipeline<extend<functor_versions<2>>, xor_mask<channel>, merge<sum>, any_mask<block<2, 2>>>;
      pipe::on<cpu> p(sample, rng()(), halving_versions<2>(t), xor_mask<channel>{}, merge<sum>{},
                      any_mask<block<2, 2>>{});
      randomise_masks(p);
      check_round_trip(p, tr::storage{sample, n, t, layout, 2}, 1.0f);
    }
    {
      using pipe = pipeline<any_mask<pixel>, extend<functor_versions<3>>, any_mask<channel>,
                            xor_mask<block<2, 2, all_channels>>, merge<sum>>;
      pipe::on<cpu> p(sample, rng()(), any_mask<pixel>{}, halving_versions<3>(t), any_mask<channel>{},
                      xor_mask<block<2, 2, all_channels>>{}, merge<sum>{});
      randomise_masks(p);
      check_round_trip(p, tr::storage{sample, n, t, layout, 3}, 1.0f);
    }
    {
      using pipe = pipeline<any_mask<channel>, any_mask<subpixel>>;
      pipe::on<cpu> p(sample, rng()());
      randomise_masks(p);
      check_round_trip(p, tr::storage{sample, n, t, layout, 1}, 0.5f);
    }
  }
}

TEST_CASE("pack/unpack: wrong sizes are rejected, naming what is wrong", "[transfer][pack][errors]") {
  const tr::storage s{shape{2, 3, 3}, 2, tr::dtype::uint16, {}, 1};
  const auto p = tr::plan::from_masks({{make_geometry<channel>(1, 2, 3, 3, true), {1, 0}}}, s);
  std::vector<std::byte> data(s.stream_bytes());
  CHECK_THROWS_AS(tr::pack(p, std::span<const std::byte>(data).first(10)), shape_error);
  CHECK_THROWS_WITH(tr::pack(p, std::span<const std::byte>(data).first(10)),
                    Catch::Contains("10 bytes") && Catch::Contains(std::to_string(s.stream_bytes())));
  const std::vector<std::span<const std::byte>> two{data, data};
  CHECK_THROWS_WITH(tr::pack(p, two), Catch::Contains("2 streams"));
  const auto payload = tr::pack(p, data);
  CHECK(payload.size() == 2 * 9 * 2);
  CHECK_THROWS_WITH(tr::unpack(p, std::span<const std::byte>(payload).first(5)),
                    Catch::Contains("payload of 5 bytes") && Catch::Contains("36"));
  std::vector<float> small(10);
  CHECK_THROWS_AS(tr::unpack(p, payload, small), shape_error);
}

// ---- plan files ---------------------------------------------------------------------------------

namespace {
tr::plan sample_plan() {
  const tr::storage s{shape{4, 5, 6}, 3, tr::dtype::uint16, tr::storage_layout::tiled(2, 4), 2};
  std::vector<float> any(4 * 3 * 3);
  for (std::size_t k = 0; k < any.size(); ++k) {
    any[k] = k % 3 == 0 ? 0.0f : 1.0f;
  }
  std::vector<float> x(2 * 4, 0.0f);
  for (std::size_t k = 0; k < 4; ++k) {
    x[(k % 2) * 4 + k] = 1.0f;
  }
  return tr::plan::from_masks(
    {{make_geometry<block<2, 2>>(2, 4, 5, 6, true), any}, {make_geometry<channel>(2, 4, 5, 6, false), x}}, s);
}
} // namespace

TEST_CASE("plan files: JSON round trip and atomic save/load", "[transfer][plan][io]") {
  const auto p = sample_plan();
  const auto j = tr::plan_to_json_value(p);
  CHECK(j["format"] == "selmask-plan");
  CHECK(j["version"] == 1);
  CHECK(j["data"]["dtype"] == "uint16");
  CHECK(j["data"]["layout"]["kind"] == "tiled");
  CHECK(j["data"]["layout"]["tile_height"] == 2);
  CHECK(j["payload_bytes"] == p.payload_bytes());
  CHECK(j["masks"][1]["kind"] == "xor");
  CHECK(j["masks"][1]["versions"] == std::vector<std::size_t>{0, 1, 0, 1});
  const auto back = tr::plan_from_json(tr::plan_to_json(p));
  CHECK(back == p);
  CHECK(back.file_ranges(0) == p.file_ranges(0));
  CHECK(back.file_ranges(1) == p.file_ranges(1));

  temp_dir dir;
  tr::save_plan(p, dir / "plan.json");
  CHECK(tr::load_plan(dir / "plan.json") == p);
  CHECK(tr::load_plan(dir / "plan.json", p.source()) == p);
  // no temporary left behind
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path)) {
    ++files;
  }
  CHECK(files == 1);
  CHECK_THROWS_AS(tr::load_plan(dir / "missing.json"), io_error);
}

TEST_CASE("plan files: truncated and corrupt plans are rejected with io_error",
          "[transfer][plan][io][errors]") {
  const auto p = sample_plan();
  const std::string text = tr::plan_to_json(p);
  // every truncation is rejected
  for (std::size_t cut = 0; cut < text.size(); cut += 1 + text.size() / 97) {
    INFO("cut at " << cut);
    CHECK_THROWS_AS(tr::plan_from_json(text.substr(0, cut)), io_error);
  }
  CHECK_THROWS_WITH(tr::plan_from_json("[1,2,3]"), Catch::Contains("expected an object"));
  CHECK_THROWS_WITH(tr::plan_from_json("{nope"), Catch::Contains("not valid JSON"));

  using json = nlohmann::ordered_json;
  const json good = tr::plan_to_json_value(p);
  const auto rejects = [&](const std::function<void(json&)>& edit, const std::string& what) {
    json j = good;
    edit(j);
    INFO(what);
    CHECK_THROWS_AS(tr::plan_from_json(j.dump(), "plan.json"), io_error);
    CHECK_THROWS_WITH(tr::plan_from_json(j.dump(), "plan.json"), Catch::Contains(what));
  };
  rejects([](json& j) { j["format"] = "something-else"; }, "format is 'something-else'");
  rejects([](json& j) { j["version"] = 2; }, "format version 2");
  rejects([](json& j) { j.erase("data"); }, "missing field 'data'");
  rejects([](json& j) { j["data"].erase("dtype"); }, "missing field 'data.dtype'");
  rejects([](json& j) { j["data"]["dtype"] = "complex64"; }, "data.dtype");
  rejects([](json& j) { j["data"]["samples"] = -3; }, "data.samples");
  rejects([](json& j) { j["data"]["sample_shape"] = {4, 5}; }, "data.sample_shape");
  rejects([](json& j) { j["data"]["layout"]["kind"] = "spiral"; }, "spiral");
  rejects([](json& j) { j["data"]["byte_order"] = "big"; }, "byte_order");
  rejects([](json& j) { j["masks"][0]["kept"].push_back(100000); }, "masks[0].kept");
  rejects([](json& j) { j["masks"][0]["kept"][1] = j["masks"][0]["kept"][0]; }, "strictly ascending");
  rejects([](json& j) { j["masks"][1]["versions"][0] = 7; }, "masks[1].versions[0]");
  rejects([](json& j) { j["masks"][1]["versions"].erase(0); }, "masks[1].versions");
  rejects([](json& j) { j["masks"][0]["kind"] = "maybe"; }, "masks[0].kind");
  rejects([](json& j) { j["masks"][0]["dims"][1] = 5; }, "do not fit the data");
  rejects([](json& j) { j["streams"][0]["sample_ranges"][0][1] = 2; }, "streams[0].sample_ranges[0]");
  rejects([](json& j) { j["streams"].erase(1); }, "streams");
  rejects([](json& j) { j["payload_bytes"] = 12; }, "payload_bytes");
  rejects([](json& j) { j["kept_values"] = 1; }, "kept_values");
  rejects([](json& j) { j["masks"] = "all"; }, "must be an array");
}

TEST_CASE("plan files: a plan for other data is rejected, naming what differs",
          "[transfer][plan][io][errors]") {
  const auto p = sample_plan();
  temp_dir dir;
  tr::save_plan(p, dir / "plan.json");
  tr::storage d = p.source();
  d.sample = shape{4, 5, 7};
  CHECK_THROWS_AS(tr::load_plan(dir / "plan.json", d), shape_error);
  CHECK_THROWS_WITH(tr::load_plan(dir / "plan.json", d),
                    Catch::Contains("sample shape") && Catch::Contains("[4,5,7]"));
  d = p.source();
  d.samples = 4;
  CHECK_THROWS_AS(tr::load_plan(dir / "plan.json", d), shape_error);
  CHECK_THROWS_WITH(tr::load_plan(dir / "plan.json", d), Catch::Contains("samples"));
  d = p.source();
  d.versions = 3;
  CHECK_THROWS_AS(tr::load_plan(dir / "plan.json", d), shape_error);
  CHECK_THROWS_WITH(tr::load_plan(dir / "plan.json", d), Catch::Contains("versions"));
  d = p.source();
  d.type = tr::dtype::uint8;
  CHECK_THROWS_AS(tr::load_plan(dir / "plan.json", d), io_error);
  CHECK_THROWS_WITH(tr::load_plan(dir / "plan.json", d),
                    Catch::Contains("dtype is uint16") && Catch::Contains("uint8"));
  d = p.source();
  d.layout = tr::storage_layout::tiled(4, 2);
  CHECK_THROWS_AS(tr::load_plan(dir / "plan.json", d), io_error);
  CHECK_THROWS_WITH(tr::load_plan(dir / "plan.json", d), Catch::Contains("layout is tiled(2x4)"));
  d.layout = tr::storage_layout::band_sequential();
  CHECK_THROWS_WITH(tr::load_plan(dir / "plan.json", d), Catch::Contains("band_sequential"));
  // a plan file of a newer format version is rejected even before the data are compared
  auto j = tr::plan_to_json_value(p);
  j["version"] = 99;
  io::write_file_atomically(dir / "new.json", j.dump());
  CHECK_THROWS_WITH(tr::load_plan(dir / "new.json", p.source()),
                    Catch::Contains("format version 99") && Catch::Contains("new.json"));
}

// ---- the HTTP range vocabulary --------------------------------------------------------------------

TEST_CASE("byteranges: Range and Content-Range", "[transfer][http]") {
  const std::vector<tr::byte_range> r{{0, 10}, {20, 1}, {100, 50}};
  CHECK(tr::range_header_value(r) == "bytes=0-9,20-20,100-149");
  const auto cr = tr::parse_content_range("bytes 20-29/1000");
  CHECK(cr.first == 20);
  CHECK(cr.last == 29);
  CHECK(cr.length() == 10);
  CHECK(cr.total == 1000u);
  CHECK_FALSE(tr::parse_content_range(" bytes 0-0/*").total.has_value());
  for (const char* bad :
       {"bytes 5-4/10", "bytes 0-10/10", "items 0-1/2", "bytes 0-/10", "bytes a-b/c", "bytes 1-2"}) {
    INFO(bad);
    CHECK_THROWS_AS(tr::parse_content_range(bad), io_error);
  }
  CHECK(tr::multipart_boundary("multipart/byteranges; boundary=00000000001") == std::string("00000000001"));
  CHECK(tr::multipart_boundary("Multipart/ByteRanges; charset=x; boundary=\"a b\"") == std::string("a b"));
  CHECK_FALSE(tr::multipart_boundary("application/octet-stream").has_value());
  CHECK_THROWS_AS(tr::multipart_boundary("multipart/byteranges"), io_error);
}

namespace {
std::string part(const std::string& boundary, std::size_t first, const std::string& data, std::size_t total) {
  return "\r\n--" + boundary + "\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes " +
         std::to_string(first) + "-" + std::to_string(first + data.size() - 1) + "/" + std::to_string(total) +
         "\r\n\r\n" + data;
}
} // namespace

TEST_CASE("byteranges: multipart bodies are parsed strictly", "[transfer][http]") {
  const std::string b = "XyZ0042";
  // data that look like delimiters and line ends must not confuse the parser
  const std::string d1 = std::string("ab\r\n--XyZ0042\r\ncd", 17);
  const std::string d2 = std::string("\0\r\n\r\n", 5);
  const std::string body = part(b, 10, d1, 1000) + part(b, 500, d2, 1000) + "\r\n--" + b + "--\r\n";
  const auto parts = tr::parse_multipart_byteranges(body, b);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].range.first == 10);
  CHECK(body.substr(parts[0].data_offset, d1.size()) == d1);
  CHECK(parts[1].range.first == 500);
  CHECK(body.substr(parts[1].data_offset, d2.size()) == d2);

  const std::vector<tr::byte_range> wanted{{12, 5}, {501, 3}};
  std::vector<std::byte> out(8);
  tr::copy_wanted_ranges(parts, body, wanted, out.data());
  CHECK(std::string(reinterpret_cast<const char*>(out.data()), 5) == d1.substr(2, 5));
  CHECK(std::string(reinterpret_cast<const char*>(out.data()) + 5, 3) == d2.substr(1, 3));
  const std::vector<tr::byte_range> missing{{12, 5}, {600, 1}};
  CHECK_THROWS_WITH(tr::copy_wanted_ranges(parts, body, missing, out.data()), Catch::Contains("600-600"));

  // every truncation of the body is an error, never fewer parts
  for (std::size_t cut = 0; cut + 2 < body.size(); ++cut) {
    INFO("cut at " << cut);
    CHECK_THROWS_AS(tr::parse_multipart_byteranges(body.substr(0, cut), b), io_error);
  }
  // a part whose data are longer than its Content-Range says
  const std::string longer = part(b, 10, "abcd", 1000);
  std::string bad = longer.substr(0, longer.size() - 1) + "XYd" + "\r\n--" + b + "--\r\n";
  CHECK_THROWS_WITH(tr::parse_multipart_byteranges(bad, b), Catch::Contains("not followed by a delimiter"));
  // a part with no Content-Range
  CHECK_THROWS_WITH(
    tr::parse_multipart_byteranges("\r\n--" + b + "\r\nContent-Type: x\r\n\r\nab\r\n--" + b + "--", b),
    Catch::Contains("no Content-Range"));
}
