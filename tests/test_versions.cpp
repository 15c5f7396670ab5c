// Versions: JPEG through libjpeg-turbo, thumbnails, nothing, versions_of, the content cache,
// measured costs, and an extend<jpeg_versions> → xor_mask → merge<sum> pipeline.
#include "support.hpp"

#include <selmask/cost/measured.hpp>
#include <selmask/ops/jpeg.hpp>
#include <selmask/ops/versions.hpp>

#include <cmath>
#include <cstdint>

using namespace selmask;
using namespace selmask_test;

namespace {

/// A smooth image with an edge in [0,1]: the kind of content JPEG codes well at high quality.
std::vector<float> test_image(std::size_t c, std::size_t h, std::size_t w) {
  std::vector<float> v(c * h * w);
  for (std::size_t ch = 0; ch < c; ++ch) {
    for (std::size_t y = 0; y < h; ++y) {
      for (std::size_t x = 0; x < w; ++x) {
        const double s = 0.5 + 0.3 * std::sin(0.3 * static_cast<double>(x + 2 * ch)) *
                                 std::cos(0.2 * static_cast<double>(y));
        v[(ch * h + y) * w + x] = static_cast<float>(x > w / 2 ? s : 0.2 * s);
      }
    }
  }
  return v;
}

/// Noisy images in [0,1] (with some structure), as a data set.
io::dataset test_dataset(std::size_t n, std::size_t c, std::size_t h, std::size_t w) {
  io::dataset d;
  d.sample = shape{c, h, w};
  d.classes = 2;
  for (std::size_t i = 0; i < n; ++i) {
    auto img = test_image(c, h, w);
    const auto noise = random_values(img.size(), -0.15f, 0.15f);
    for (std::size_t k = 0; k < img.size(); ++k) {
      img[k] = std::clamp(img[k] + noise[k], 0.0f, 1.0f);
    }
    d.images.insert(d.images.end(), img.begin(), img.end());
    d.labels.push_back(static_cast<std::int32_t>(i % 2));
  }
  return d;
}

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  }
  return m;
}

double rms_diff(std::span<const float> a, std::span<const float> b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    s += d * d;
  }
  return std::sqrt(s / static_cast<double>(a.size()));
}

} // namespace

TEST_CASE("jpeg: round trip through the codec, error decreasing with quality", "[versions][jpeg]") {
  const shape s{2, 32, 40};
  const auto img = test_image(2, 32, 40);
  jpeg_versions<100, 90, 70, 50, 30, 10> op;
  std::vector<double> rms;
  std::vector<float> out(img.size());
  for (std::size_t v = 0; v < decltype(op)::versions; ++v) {
    op.make(v, s, img, out);
    for (float x : out) {
      REQUIRE(x >= 0.0f);
      REQUIRE(x <= 1.0f);
    }
    rms.push_back(rms_diff(img, out));
  }
  INFO("rms per quality 100..10: " << rms[0] << " " << rms[1] << " " << rms[2] << " " << rms[3] << " "
                                   << rms[4] << " " << rms[5]);
  CHECK(max_abs_diff(img, std::span<const float>(out)) > 0.0); // q10 is lossy
  op.make(0, s, img, out);
  CHECK(max_abs_diff(img, out) <= 3.0 / 255.0); // q100: quantisation + a little
  CHECK(rms[0] <= 1.5 / 255.0);
  for (std::size_t v = 1; v < rms.size(); ++v) {
    CHECK(rms[v] >= rms[v - 1]);
  }
  CHECK(rms.back() > 4.0 * rms[0]);
  CHECK(rms.back() < 0.2); // still an image of the input

  // the channels are coded independently: channel 1 of a 2-channel sample = that channel alone
  std::vector<float> one(img.begin() + 32 * 40, img.end()), one_out(32 * 40);
  op.make(3, s, img, out);
  op.make(3, shape{1, 32, 40}, one, one_out);
  CHECK(max_abs_diff(std::span<const float>(out).subspan(32 * 40), one_out) == 0.0);
}

TEST_CASE("jpeg: codec helpers and the per-image byte count", "[versions][jpeg]") {
  std::vector<std::uint8_t> px(16 * 24);
  for (std::size_t k = 0; k < px.size(); ++k) {
    px[k] = static_cast<std::uint8_t>((k * 7) % 256);
  }
  const auto jpeg = jpeg_encode_gray(px, 16, 24, 75);
  const auto back = jpeg_decode_gray(jpeg, 16, 24);
  REQUIRE(back.size() == px.size());
  const std::size_t per_image = jpeg_image_bytes(jpeg);
  CHECK(per_image < jpeg.size());
  // tables (DQT 67 bytes for one table, DHT 2 tables for grayscale) and JFIF APP0 are excluded
  CHECK(jpeg.size() - per_image >= 67 + 18);
  // two different images at the same quality share everything that is not counted
  std::vector<std::uint8_t> flat(16 * 24, 128);
  const auto jflat = jpeg_encode_gray(flat, 16, 24, 75);
  CHECK(jflat.size() - jpeg_image_bytes(jflat) == jpeg.size() - per_image);
  CHECK(jpeg_image_bytes(jflat) < per_image);

  CHECK_THROWS_AS(jpeg_encode_gray(px, 16, 24, 0), value_error);
  CHECK_THROWS_AS(jpeg_encode_gray(px, 16, 25, 50), shape_error);
  CHECK_THROWS_AS(jpeg_decode_gray(jpeg, 16, 23), jpeg_error);
  const std::vector<std::uint8_t> garbage{1, 2, 3, 4, 5};
  CHECK_THROWS_AS(jpeg_image_bytes(garbage), jpeg_error);
  CHECK_THROWS_AS(jpeg_decode_gray(garbage, 16, 24), jpeg_error);
}

TEST_CASE("jpeg: NaN input is rejected, out-of-range values are clamped", "[versions][jpeg]") {
  const shape s{1, 8, 8};
  std::vector<float> img(64, 0.5f), out(64);
  jpeg_versions<90> op;
  img[10] = NAN;
  CHECK_THROWS_WITH(op.make(0, s, img, out), Catch::Contains("NaN at value 10"));
  img[10] = 7.0f;
  img[11] = -3.0f;
  op.make(0, s, img, out);
  CHECK(out[10] <= 1.0f);
  CHECK(out[11] >= 0.0f);
  CHECK_THROWS_AS(op.make(1, s, img, out), value_error);
}

TEST_CASE("measured costs: monotone in quality, relative to the raw bytes", "[versions][cost]") {
  const auto d = test_dataset(12, 1, 28, 28);
  jpeg_versions<95, 90, 70, 50, 30, 10> op;
  const auto r = measure_version_costs(op, d, 10);
  CHECK(r.samples == 10);
  CHECK(r.raw_bytes == 28.0 * 28.0);
  for (std::size_t v = 1; v < r.relative.size(); ++v) {
    CHECK(r.relative[v] < r.relative[v - 1]);
    CHECK(r.mean_bytes[v] < r.mean_bytes[v - 1]);
  }
  for (std::size_t v = 0; v < r.relative.size(); ++v) {
    CHECK(r.relative[v] == Approx(r.mean_bytes[v] / r.raw_bytes));
  }
  // by hand for sample 0 and version 2
  const double direct = static_cast<double>(op.encoded_bytes(2, d.sample, d.image(0)));
  const auto r1 = measure_version_costs(op, d, 1);
  CHECK(r1.mean_bytes[2] == direct);

  // a ladder: raw costs exactly 1, nothing exactly 0, the JPEG part as measured alone
  const auto ladder = with_measured_costs(jpeg_ladder<90, 10>{}, d, 10);
  const auto lc = ladder.costs();
  REQUIRE(lc.size() == 4);
  CHECK(lc[0] == 1.0f);
  CHECK(lc[1] == Approx(r.relative[1]));
  CHECK(lc[2] == Approx(r.relative[5]));
  CHECK(lc[3] == 0.0f);

  // thumbnails: ⌈H/F⌉·⌈W/F⌉ bytes per channel
  const auto t = measure_version_costs(thumbnail_versions<1, 2, 3>{}, d);
  CHECK(t.relative[0] == 1.0f);
  CHECK(t.relative[1] == Approx(14.0 * 14.0 / 784.0));
  CHECK(t.relative[2] == Approx(10.0 * 10.0 / 784.0));

  io::dataset empty;
  empty.sample = shape{1, 4, 4};
  CHECK_THROWS_AS(measure_version_costs(op, empty), value_error);
}

TEST_CASE("thumbnails: box-downsample then nearest-upsample, by hand", "[versions][thumbnail]") {
  // 1×3×5, factor 2: boxes 2×2, 2×2, 2×1 / 1×2, 1×2, 1×1 at the edges
  const shape s{1, 3, 5};
  const std::vector<float> in{1,  2,  3,  4,  5,  //
                              6,  7,  8,  9,  10, //
                              11, 12, 13, 14, 15};
  std::vector<float> out(15);
  thumbnail_versions<1, 2, 5> op;
  op.make(1, s, in, out);
  // box (0,0): (1+2+6+7)/4 = 4; (0,1): (3+4+8+9)/4 = 6; (0,2): (5+10)/2 = 7.5
  // box (1,0): (11+12)/2 = 11.5; (1,1): (13+14)/2 = 13.5; (1,2): 15
  const std::vector<float> expected{4,     4,     6,     6,     7.5f, //
                                    4,     4,     6,     6,     7.5f, //
                                    11.5f, 11.5f, 13.5f, 13.5f, 15};
  CHECK(out == expected);
  op.make(0, s, in, out);
  CHECK(out == in);
  op.make(2, s, in, out); // 5×5 box covering 3×5: the mean, 8
  CHECK(out == std::vector<float>(15, 8.0f));
  // costs: 1/F² without a sample shape, exact fractions with one
  CHECK(op.costs() == std::vector<float>{1.0f, 0.25f, 0.04f});
  op.sample = s;
  const auto c = op.costs();
  CHECK(c[1] == Approx(6.0 / 15.0));
  CHECK(c[2] == Approx(1.0 / 15.0));
}

TEMPLATE_LIST_TEST_CASE("versions_of, raw and nothing: versions in order, through extend", "[versions]",
                        backends) {
  using B = TestType;
  using ops = versions_of<raw_version, thumbnail_versions<2>, nothing_version>;
  STATIC_REQUIRE(ops::versions == 3);
  const shape s{2, 4, 6};
  const auto x = random_tensor<B>(shape{3, 2, 4, 6}, 0.0f, 1.0f);
  const auto xh = B::to_host(x);
  ops op;
  CHECK(op.costs() == std::vector<float>{1.0f, 0.25f, 0.0f});
  tensor_t<B> out;
  op.forward<B>(x, out);
  CHECK(B::shape_of(out) == shape{3, 3, 2, 4, 6});
  const auto oh = B::to_host(out);
  const std::size_t r = s.size();
  std::vector<float> thumb(r);
  for (std::size_t i = 0; i < 3; ++i) {
    const std::span<const float> xi(xh.data() + i * r, r);
    thumbnail_versions<2>{}.make(0, s, xi, thumb);
    for (std::size_t k = 0; k < r; ++k) {
      REQUIRE(oh[(i * 3 + 0) * r + k] == xi[k]);
      REQUIRE(oh[(i * 3 + 1) * r + k] == thumb[k]);
      REQUIRE(oh[(i * 3 + 2) * r + k] == 0.0f);
    }
  }
}

TEMPLATE_LIST_TEST_CASE("cached_versions: precomputed once per data set, exact copies, misses computed",
                        "[versions][cache]", backends) {
  using B = TestType;
  const auto d = test_dataset(6, 1, 16, 16);
  jpeg_versions<80, 20> op;
  const auto cached = precompute_versions(op, d);
  CHECK(cached.cache->entries.size() == 6);
  // a batch of samples 4, 1, 4 (repeats allowed)
  std::vector<float> xh;
  std::vector<std::int32_t> yh;
  const std::vector<std::size_t> idx{4, 1, 4};
  const shape bs = io::gather_batch(d, idx, xh, yh);
  const auto x = B::from_host(bs, xh);
  tensor_t<B> a, b;
  cached.forward<B>(x, a);
  op.forward<B>(x, b);
  CHECK(cached.cache->hits == 3);
  CHECK(cached.cache->misses == 0);
  CHECK(B::to_host(a) == B::to_host(b));
  // copies share the store; an unseen sample is computed (and stored)
  const auto copy = cached;
  auto other = test_dataset(1, 1, 16, 16);
  const auto y = B::from_host(other.batch_shape(1), other.images);
  tensor_t<B> c1, c2;
  copy.forward<B>(y, c1);
  op.forward<B>(y, c2);
  CHECK(B::to_host(c1) == B::to_host(c2));
  CHECK(cached.cache->misses == 1);
  CHECK(cached.cache->entries.size() == 7);
  CHECK(cached.costs() == op.costs());
}

TEMPLATE_LIST_TEST_CASE(
  "extend<jpeg_versions> -> xor_mask<channel> -> merge<sum>: starts on the best version",
  "[versions][pipeline]", backends) {
  using B = TestType;
  using op_t = jpeg_versions<90, 50, 10>;
  using pipe = pipeline<extend<op_t>, xor_mask<channel>, merge<sum>>;
  const shape s{3, 12, 10};
  pipe::on<B> p(s, 7);
  const auto x = random_tensor<B>(s.prepend(4), 0.0f, 1.0f);
  const auto r = p.forward(x);
  CHECK(r.q == Approx(0.9)); // the paper's heuristic cost of quality 90
  // the output equals the quality-90 version of each sample
  const auto xh = B::to_host(x);
  const auto yh = B::to_host(r.output);
  std::vector<float> ref(s.size());
  for (std::size_t i = 0; i < 4; ++i) {
    op_t{}.make(0, s, std::span<const float>(xh.data() + i * s.size(), s.size()), ref);
    for (std::size_t k = 0; k < s.size(); ++k) {
      REQUIRE(yh[i * s.size() + k] == ref[k]);
    }
  }
  // measured costs: Q is the measured relative size of quality 90
  io::dataset d;
  d.sample = s;
  d.classes = 1;
  d.images = xh;
  d.labels.assign(4, 0);
  const op_t measured = with_measured_costs(op_t{}, d);
  pipe::on<B> pm(s, 7, extend<op_t>{measured}, xor_mask<channel>{}, merge<sum>{});
  CHECK(pm.forward(x).q == Approx(measured.version_costs[0]));
  CHECK(measured.version_costs[0] > measured.version_costs[1]);
  CHECK(measured.version_costs[1] > measured.version_costs[2]);
}

TEMPLATE_LIST_TEST_CASE(
  "a cached, measured jpeg_ladder in a pipeline: starts on raw, cheaper versions cost less",
  "[versions][pipeline][cache]", backends) {
  using B = TestType;
  using ladder = jpeg_ladder<90, 50, 10>;
  const auto train = test_dataset(8, 1, 16, 16);
  const auto op = with_measured_costs(ladder{}, train, 8);
  const auto cached = precompute_versions(op, train);
  using stage = extend<cached_versions<ladder>>;
  using pipe = pipeline<stage, xor_mask<channel>, merge<sum>>;
  pipe::on<B> p(train.sample, 1, stage{cached}, {}, {});
  const auto x = B::from_host(train.batch_shape(train.size()), train.images);
  const auto r = p.forward(x);
  CHECK(r.q == Approx(1.0)); // raw, cost 1, selected everywhere
  CHECK(B::to_host(r.output) == train.images);
  CHECK(cached.cache->hits == train.size());
  CHECK(cached.cache->misses == 0);
  // every version from the cache, the last one "nothing"
  xor_mask<channel> last;
  last.initial_version = 4;
  pipe::on<B> pn(train.sample, 1, stage{cached}, last, {});
  const auto rn = pn.forward(x);
  CHECK(rn.q == 0.0);
  for (float v : B::to_host(rn.output)) {
    REQUIRE(v == 0.0f);
  }
  const auto c = op.costs();
  REQUIRE(c.size() == 5);
  for (std::size_t v = 1; v < c.size(); ++v) {
    CHECK(c[v] < c[v - 1]);
  }
}

TEST_CASE("jpeg block stream: the segments rebuild the whole-image JPEG, a mix keeps the chosen blocks",
          "[versions][jpeg][blocks]") {
  const std::size_t h = 20, w = 28; // 3 x 4 blocks, the last row and column partly outside
  const auto img = test_image(1, h, w);
  const auto px = jpeg_versions<60>::quantise(shape{1, h, w}, img, 0);
  const auto st = jpeg_encode_gray_blocks(px, h, w, 60);
  REQUIRE(st.segments.size() == 12);
  for (const auto& seg : st.segments) {
    CHECK(!seg.empty());
  }
  // all segments: the same pixels as TurboJPEG's whole-image file at that quality
  const auto whole = jpeg_decode_gray(jpeg_encode_gray(px, h, w, 60), h, w);
  const auto rebuilt = jpeg_decode_gray(jpeg_assemble_blocks(st.header, st.segments), h, w);
  CHECK(rebuilt == whole);
  // blocks 0, 5 and 11 not sent: the others decode unchanged, those become flat grey
  auto mix = st.segments;
  for (std::size_t b : {0u, 5u, 11u}) {
    mix[b].clear();
  }
  const auto partial = jpeg_decode_gray(jpeg_assemble_blocks(st.header, mix), h, w);
  for (std::size_t y = 0; y < h; ++y) {
    for (std::size_t x = 0; x < w; ++x) {
      const std::size_t b = (y / 8) * 4 + x / 8;
      if (b == 0 || b == 5 || b == 11) {
        REQUIRE(partial[y * w + x] == 128);
      } else {
        REQUIRE(partial[y * w + x] == whole[y * w + x]);
      }
    }
  }
  CHECK(jpeg_flat_segment().size() == 1); // 6 bits: DC difference 0 and end of block
  // block_bytes counts the segments
  jpeg_versions<60> op;
  const auto counts = op.block_bytes(0, shape{1, h, w}, img);
  REQUIRE(counts.size() == 12);
  for (std::size_t b = 0; b < 12; ++b) {
    CHECK(counts[b] == st.segments[b].size());
  }
  // bad input
  CHECK_THROWS_AS(jpeg_encode_gray_blocks(px, h, w, 0), value_error);
  CHECK_THROWS_AS(jpeg_encode_gray_blocks(px, h, w + 1, 50), shape_error);
  CHECK_THROWS_AS(jpeg_assemble_blocks(st.header, std::span(mix).first(11)), value_error);
  const std::vector<std::uint8_t> no_frame = {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02};
  CHECK_THROWS_AS(jpeg_assemble_blocks(no_frame, st.segments), value_error);
}

TEST_CASE("measure_block_costs: bytes per 8x8 block and version; Q of a block<8,8> xor mask predicts them",
          "[versions][cost][blocks]") {
  const std::size_t h = 20, w = 28;
  const auto d = test_dataset(5, 1, h, w);
  using ladder = jpeg_ladder<80, 20>; // raw, JPEG 80, JPEG 20, nothing
  const auto r = measure_block_costs(ladder{}, d);
  REQUIRE(r.cells() == 12);
  REQUIRE(r.samples == 5);
  const std::vector<std::size_t> areas = {64, 64, 64, 32, 64, 64, 64, 32, 32, 32, 32, 16};
  CHECK(r.block_area == areas);
  for (std::size_t k = 0; k < 12; ++k) {
    CHECK(r.mean_bytes[k] == static_cast<double>(areas[k])); // raw: a byte per value
    CHECK(r.relative[k] == 1.0f);
    CHECK(r.mean_bytes[3 * 12 + k] == 0.0); // nothing
  }
  // the JPEG rows against the segments coded here
  double total80 = 0.0, total20 = 0.0;
  for (std::size_t k = 0; k < 12; ++k) {
    double sum = 0.0;
    for (std::size_t i = 0; i < d.size(); ++i) {
      const auto px = jpeg_versions<80>::quantise(d.sample, d.image(i), 0);
      sum += static_cast<double>(jpeg_encode_gray_blocks(px, h, w, 80).segments[k].size());
    }
    CHECK(r.mean_bytes[12 + k] == Approx(sum / 5.0));
    CHECK(r.relative[12 + k] == Approx(sum / 5.0 / static_cast<double>(areas[k])));
    total80 += r.mean_bytes[12 + k];
    total20 += r.mean_bytes[24 + k];
  }
  CHECK(total20 < total80);
  // one version everywhere: Q x raw bytes = the summed mean bytes of that version
  using stage = extend<ladder>;
  using mask = xor_mask<block<8, 8>, st_softmax, table_cost>;
  using pipe = pipeline<stage, mask, merge<sum>>;
  const auto x =
    cpu::from_host(d.batch_shape(2), std::vector<float>(d.images.begin(), d.images.begin() + 2 * 560));
  for (std::size_t v = 0; v < 4; ++v) {
    mask m;
    m.initial_version = v;
    m.cost.values = r.relative;
    pipe::on<cpu> p(d.sample, 1, stage{}, m, {});
    const std::vector<std::size_t> choice(12, v);
    CHECK(p.forward(x).q * 560.0 == Approx(r.predicted_bytes(choice)).epsilon(1e-5));
  }
  CHECK_THROWS_AS(r.predicted_bytes(std::vector<std::size_t>(11, 0)), value_error);
  CHECK_THROWS_AS(measure_block_costs(ladder{}, io::dataset{}), value_error);
}
