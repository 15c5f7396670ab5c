// The synthetic generators: remote sensing (shapes, determinism, the informative bands, which
// alone separate the classes, and its checks), then supernova light curves.
#include "support.hpp"

#include <selmask/io/supernovae.hpp>
#include <selmask/io/synthetic.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

using namespace selmask;

namespace {
/// Per band, the spread of the class means of band-averaged values divided by the mean
/// within-class standard deviation.
std::vector<double> separation(const io::dataset& d) {
  const std::size_t bands = d.sample[0], hw = d.sample[1] * d.sample[2];
  std::vector<std::vector<double>> sum(d.classes, std::vector<double>(bands, 0.0)),
    sq(d.classes, std::vector<double>(bands, 0.0));
  std::vector<double> count(d.classes, 0.0);
  for (std::size_t i = 0; i < d.size(); ++i) {
    const auto k = static_cast<std::size_t>(d.labels[i]);
    count[k] += 1.0;
    const auto img = d.image(i);
    for (std::size_t b = 0; b < bands; ++b) {
      double m = 0.0;
      for (std::size_t p = 0; p < hw; ++p) {
        m += img[b * hw + p];
      }
      m /= static_cast<double>(hw);
      sum[k][b] += m;
      sq[k][b] += m * m;
    }
  }
  std::vector<double> out(bands);
  for (std::size_t b = 0; b < bands; ++b) {
    double lo = 1e300, hi = -1e300, within = 0.0;
    for (std::size_t k = 0; k < d.classes; ++k) {
      const double mean = sum[k][b] / count[k];
      lo = std::min(lo, mean);
      hi = std::max(hi, mean);
      within += std::sqrt(std::max(sq[k][b] / count[k] - mean * mean, 0.0));
    }
    out[b] = (hi - lo) / (within / static_cast<double>(d.classes));
  }
  return out;
}
} // namespace

TEST_CASE("make_remote: shapes, labels, determinism", "[io][synthetic]") {
  io::remote_options o;
  const auto a = io::make_remote(50, o, 1);
  CHECK(a.data.sample == shape{128, 4, 4});
  CHECK(a.data.size() == 50);
  CHECK(a.data.classes == 4);
  REQUIRE_NOTHROW(a.data.validate());
  CHECK(a.spectra.size() == 5);
  CHECK(a.signature.size() == 4);
  CHECK(a.informative.size() == 12); // 3 bands per class with the defaults
  for (std::size_t k = 0; k < 4; ++k) {
    CHECK(std::count(a.informative.begin(), a.informative.end(), a.signature[k]) == 1);
  }
  const auto b = io::make_remote(50, o, 1);
  CHECK(a.data.images == b.data.images);
  CHECK(a.data.labels == b.data.labels);
  const auto c = io::make_remote(50, o, 2); // other patches, same scene
  CHECK(c.data.images != a.data.images);
  CHECK(c.signature == a.signature);
  CHECK(c.spectra == a.spectra);
  o.seed = 2; // another scene
  CHECK(io::make_remote(5, o, 1).signature != a.signature);
}

TEST_CASE("make_remote: only the informative bands separate the classes", "[io][synthetic]") {
  const auto r = io::make_remote(2000, io::remote_options{}, 5);
  const auto s = separation(r.data);
  double worst_informative = 1e300, best_other = 0.0;
  for (std::size_t b = 0; b < s.size(); ++b) {
    const bool inf = std::count(r.informative.begin(), r.informative.end(), b) > 0;
    if (inf) {
      worst_informative = std::min(worst_informative, s[b]);
    } else {
      best_other = std::max(best_other, s[b]);
    }
  }
  INFO("worst informative band " << worst_informative << ", best other band " << best_other);
  CHECK(worst_informative > 2.0 * best_other);
  // neighbouring bands are strongly correlated (the material spectra are smooth)
  double sxy = 0, sx = 0, sy = 0, sxx = 0, syy = 0;
  const std::size_t hw = 16;
  for (std::size_t i = 0; i < r.data.size(); ++i) {
    const auto img = r.data.image(i);
    double x = 0.0, y = 0.0; // band means of bands 10 and 11
    for (std::size_t p = 0; p < hw; ++p) {
      x += img[10 * hw + p] / 16.0;
      y += img[11 * hw + p] / 16.0;
    }
    sx += x, sy += y, sxy += x * y, sxx += x * x, syy += y * y;
  }
  const double n = static_cast<double>(r.data.size());
  const double corr =
    (sxy / n - sx / n * sy / n) / std::sqrt((sxx / n - sx / n * sx / n) * (syy / n - sy / n * sy / n));
  CHECK(corr > 0.8);
}

TEST_CASE("make_remote: bad settings are rejected", "[io][synthetic][errors]") {
  io::remote_options o;
  o.classes = 1;
  CHECK_THROWS_AS(io::make_remote(5, o, 1), value_error);
  o = {};
  o.bands = 10;
  CHECK_THROWS_WITH(io::make_remote(5, o, 1), Catch::Contains("do not fit in 10 bands"));
  o = {};
  o.feature_width = 0.0f;
  CHECK_THROWS_AS(io::make_remote(5, o, 1), value_error);
  o = {};
  o.height = 0;
  CHECK_THROWS_AS(io::make_remote(5, o, 1), value_error);
}

// ---- supernova light curves ---------------------------------------------------------------------

TEST_CASE("make_supernovae: shapes, labels, determinism", "[synthetic]") {
  io::supernova_options o;
  const auto a = io::make_supernovae(90, o, 7);
  CHECK(a.data.sample == shape{4, 1, 120});
  CHECK(a.data.size() == 90);
  CHECK(a.data.classes == 3);
  CHECK(a.peak_day.size() == 90);
  CHECK_NOTHROW(a.data.validate());
  std::vector<std::size_t> per_class(3, 0);
  for (const auto l : a.data.labels) {
    REQUIRE(l >= 0);
    REQUIRE(l < 3);
    ++per_class[static_cast<std::size_t>(l)];
  }
  for (const auto c : per_class) {
    CHECK(c > 10); // uniform labels: about 30 each
  }
  for (const float t0 : a.peak_day) {
    CHECK(t0 >= 0.15f * 120.0f);
    CHECK(t0 <= 0.45f * 120.0f);
  }
  const auto b = io::make_supernovae(90, o, 7);
  CHECK(a.data.images == b.data.images);
  CHECK(a.data.labels == b.data.labels);
  const auto c = io::make_supernovae(90, o, 8);
  CHECK(a.data.images != c.data.images);
}

TEST_CASE("make_supernovae: colours and curve shapes as documented (no noise)", "[synthetic]") {
  io::supernova_options o;
  o.noise = 0.0f;
  const auto s = io::make_supernovae(300, o, 3);
  const std::size_t T = o.times;
  // the documented colours of filters 0 and 2, relative to each other (the reddest filter, 3,
  // carries class 0's second bump)
  const double colour_ratio[3] = {1.0 / 0.75, 0.6 / 1.0, 0.5 / 1.0};
  std::size_t checked[3] = {0, 0, 0};
  for (std::size_t i = 0; i < s.data.size(); ++i) {
    const auto k = static_cast<std::size_t>(s.data.labels[i]);
    const auto img = s.data.image(i);
    for (std::size_t t = 0; t < T; ++t) {
      if (img[2 * T + t] > 1e-3f) {
        REQUIRE(img[0 * T + t] / img[2 * T + t] == Approx(colour_ratio[k]).epsilon(1e-4));
      }
    }
    // 40 days after the peak, filter 1 against its maximum: the plateau class keeps about 0.8,
    // the fast class has faded (exp(−39.5/(12·1.15)) ≈ 0.057 of the peak), the Ia-like class is in between
    // (exp(−40/(25·s)), s in [0.85, 1.15]: 0.15 … 0.25)
    const auto late = static_cast<std::size_t>(std::lround(s.peak_day[i] + 40.0f));
    float peak = 0.0f;
    for (std::size_t t = 0; t < T; ++t) {
      peak = std::max(peak, img[T + t]);
    }
    const double ratio = img[T + late] / peak;
    CAPTURE(i, k, ratio);
    if (k == 1) {
      // 0.8 + 0.2·exp(−40/(5·1.15)) ≈ 0.8002 of the peak; the sampled maximum, one day at most
      // from the peak, is at least 0.97 of it
      CHECK(ratio > 0.795);
      CHECK(ratio < 0.83);
    } else if (k == 2) {
      CHECK(ratio < 0.07);
    } else {
      CHECK(ratio > 0.13);
      CHECK(ratio < 0.27);
    }
    ++checked[k];
  }
  CHECK(checked[0] > 50);
  CHECK(checked[1] > 50);
  CHECK(checked[2] > 50);
}

TEST_CASE("make_supernovae: bad settings are rejected with the setting named", "[synthetic]") {
  io::supernova_options o;
  o.filters = 0;
  CHECK_THROWS_WITH(io::make_supernovae(10, o, 1), Catch::Contains("filter"));
  o = {};
  o.times = 30;
  CHECK_THROWS_WITH(io::make_supernovae(10, o, 1), Catch::Contains("40 observation epochs"));
  o = {};
  o.classes = 4;
  CHECK_THROWS_WITH(io::make_supernovae(10, o, 1), Catch::Contains("classes must be 2 or 3"));
  o = {};
  o.noise = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(io::make_supernovae(10, o, 1), value_error);
}
