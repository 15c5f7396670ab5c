// The synthetic remote-sensing generator: shapes, determinism, the informative bands (only they
// separate the classes), and its checks.
#include "support.hpp"

#include <selmask/io/synthetic.hpp>

#include <cmath>

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
