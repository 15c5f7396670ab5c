// selmask::io: IDX files, data sets, Fashion-MNIST, atomic writes, PNG and CSV (the examples'
// figures and mask pictures: test_plots.cpp).
#include "support.hpp"

#include <selmask/io/io.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using namespace selmask;
using namespace selmask::io;
using Catch::Contains;

namespace {

using selmask_test::rng;
using selmask_test::temp_dir;

std::vector<std::uint8_t> random_bytes(std::size_t n) {
  std::uniform_int_distribution<int> d(0, 255);
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) {
    b = static_cast<std::uint8_t>(d(rng()));
  }
  return v;
}

std::string slurp(const fs::path& p) {
  std::ifstream is(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(is), std::istreambuf_iterator<char>()};
}

void put(const fs::path& p, const std::string& bytes) {
  std::ofstream os(p, std::ios::binary | std::ios::trunc);
  os.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// n samples of shape [1,2,3]; sample i holds the values i·10 + k, label i % classes.
dataset numbered(std::size_t n, std::size_t classes = 3) {
  dataset d;
  d.sample = shape{1, 2, 3};
  d.classes = classes;
  for (std::size_t i = 0; i < n; ++i) {
    d.labels.push_back(static_cast<std::int32_t>(i % classes));
    for (std::size_t k = 0; k < 6; ++k) {
      d.images.push_back(static_cast<float>(i * 10 + k));
    }
  }
  return d;
}

/// The samples of a data set as a multiset of (label, image values).
std::multiset<std::pair<std::int32_t, std::vector<float>>> samples_of(const dataset& d) {
  std::multiset<std::pair<std::int32_t, std::vector<float>>> s;
  for (std::size_t i = 0; i < d.size(); ++i) {
    const auto img = d.image(i);
    s.emplace(d.labels[i], std::vector<float>(img.begin(), img.end()));
  }
  return s;
}

} // namespace

// ------------------------------------------------------------------------------------------------
// atomic writes

TEST_CASE("atomic write: replaces the content and leaves no temporary", "[io][atomic]") {
  temp_dir dir;
  const auto target = dir / "log.csv";
  write_file_atomically(target, "first");
  CHECK(slurp(target) == "first");
  write_file_atomically(target, [](std::ostream& os) { os << "second " << 2; });
  CHECK(slurp(target) == "second 2");
  CHECK(files_in(dir.path) == std::vector<std::string>{"log.csv"});
  CHECK(read_file(target) == "second 2");
}

TEST_CASE("atomic write: a throwing writer leaves the old file intact", "[io][atomic]") {
  temp_dir dir;
  const auto target = dir / "front.csv";
  write_file_atomically(target, "old content");
  CHECK_THROWS_AS(write_file_atomically(target,
                                        [](std::ostream& os) {
                                          os << "half of the new con";
                                          os.flush();
                                          throw std::runtime_error("disk on fire");
                                        }),
                  std::runtime_error);
  CHECK(slurp(target) == "old content");
  CHECK(files_in(dir.path) == std::vector<std::string>{"front.csv"});
  // and a writer that throws before the target ever existed creates nothing
  CHECK_THROWS_AS(write_file_atomically(dir / "new.csv", [](std::ostream&) { throw std::logic_error("no"); }),
                  std::logic_error);
  CHECK(files_in(dir.path) == std::vector<std::string>{"front.csv"});
}

TEST_CASE("atomic write: a missing directory or a directory target is an io_error", "[io][atomic]") {
  temp_dir dir;
  CHECK_THROWS_AS(write_file_atomically(dir / "no/such/dir/x.txt", "x"), io_error);
  CHECK_THROWS_WITH(write_file_atomically(dir / "nodir/x.txt", "x"), Contains("does not exist"));
  fs::create_directory(dir / "sub");
  CHECK_THROWS_WITH(write_file_atomically(dir / "sub", "x"), Contains("is a directory"));
  CHECK_THROWS_WITH(read_file(dir / "missing.bin"), Contains("missing.bin") && Contains("no such file"));
}

// ------------------------------------------------------------------------------------------------
// IDX

TEST_CASE("idx: gzip and raw round trips", "[io][idx]") {
  temp_dir dir;
  const shape ext{3, 4, 5};
  const auto values = random_bytes(ext.size());
  const auto gz = dir / "a-idx3-ubyte.gz";
  const auto raw = dir / "a-idx3-ubyte";
  write_idx_gz(gz, ext, values);
  write_idx(raw, ext, values, idx_compression::none);

  const std::string gz_bytes = slurp(gz);
  REQUIRE(gz_bytes.size() > 2);
  CHECK(static_cast<unsigned char>(gz_bytes[0]) == 0x1f); // really gzip
  CHECK(static_cast<unsigned char>(gz_bytes[1]) == 0x8b);
  const std::string raw_bytes = slurp(raw);
  CHECK(raw_bytes.size() == 4 + 3 * 4 + 60);
  CHECK(raw_bytes.substr(0, 8) == std::string("\x00\x00\x08\x03\x00\x00\x00\x03", 8));

  for (const auto& p : {gz, raw}) {
    const idx_array a = read_idx(p);
    CHECK(a.extents == ext);
    CHECK(a.values == values);
    const idx_header h = read_idx_header(p);
    CHECK(h.type == 0x08);
    CHECK(h.extents == ext);
    // only the first items
    const idx_array first = read_idx(p, 2);
    CHECK(first.extents == shape{2, 4, 5});
    CHECK(first.values == std::vector<std::uint8_t>(values.begin(), values.begin() + 40));
  }
  // one-dimensional, like a label file
  const auto labels = random_bytes(7);
  write_idx_gz(dir / "l.gz", shape{7}, labels);
  CHECK(read_idx(dir / "l.gz").values == labels);
  // the writer refuses values that do not fit the extents
  CHECK_THROWS_AS(write_idx_gz(dir / "bad.gz", shape{2, 2}, labels), shape_error);
}

TEST_CASE("idx: truncated files name the file and the byte counts", "[io][idx]") {
  temp_dir dir;
  const shape ext{3, 4, 5};
  const auto values = random_bytes(ext.size());
  const auto raw = dir / "cut-idx3-ubyte";
  write_idx(raw, ext, values, idx_compression::none);
  fs::resize_file(raw, fs::file_size(raw) - 10);
  CHECK_THROWS_AS(read_idx(raw), io_error);
  CHECK_THROWS_WITH(read_idx(raw), Contains("cut-idx3-ubyte") && Contains("truncated") &&
                                     Contains("expected 60 bytes") && Contains("got 50"));

  const auto gz = dir / "cut-idx3-ubyte.gz";
  write_idx_gz(gz, shape{50, 40}, random_bytes(2000)); // random bytes do not compress
  fs::resize_file(gz, fs::file_size(gz) / 2);
  CHECK_THROWS_AS(read_idx(gz), io_error);
  CHECK_THROWS_WITH(read_idx(gz), Contains("cut-idx3-ubyte.gz") && Contains("truncated") &&
                                    Contains("expected 2000 bytes"));

  put(dir / "tiny", std::string("\x00\x00", 2));
  CHECK_THROWS_WITH(read_idx(dir / "tiny"), Contains("tiny") && Contains("truncated") &&
                                              Contains("expected 4 bytes of header, got 2"));
  put(dir / "noext", std::string("\x00\x00\x08\x02\x00\x00\x00\x03", 8));
  CHECK_THROWS_WITH(read_idx(dir / "noext"), Contains("truncated") && Contains("extents"));
}

TEST_CASE("idx: bad magic, unsupported types, absurd extents, trailing data", "[io][idx]") {
  temp_dir dir;
  put(dir / "png-not-idx", std::string("\x89PNG\r\n\x1a\n", 8));
  CHECK_THROWS_AS(read_idx(dir / "png-not-idx"), io_error);
  CHECK_THROWS_WITH(read_idx(dir / "png-not-idx"), Contains("png-not-idx") && Contains("bad magic number"));

  put(dir / "floats", std::string("\x00\x00\x0d\x01\x00\x00\x00\x01\x00\x00\x00\x00", 12));
  CHECK_THROWS_WITH(read_idx(dir / "floats"), Contains("floats") && Contains("0x0d") && Contains("float32") &&
                                                Contains("not supported"));

  put(dir / "rank0", std::string("\x00\x00\x08\x00", 4));
  CHECK_THROWS_WITH(read_idx(dir / "rank0"), Contains("rank0") && Contains("absurd"));
  put(dir / "rank9", std::string("\x00\x00\x08\x09", 4));
  CHECK_THROWS_WITH(read_idx(dir / "rank9"), Contains("absurd number of dimensions 9"));
  put(dir / "huge", std::string("\x00\x00\x08\x02\xff\xff\xff\xff\xff\xff\xff\xff", 12));
  CHECK_THROWS_WITH(read_idx(dir / "huge"), Contains("huge") && Contains("absurd extents"));
  CHECK_THROWS_AS(read_idx_header(dir / "huge"), io_error);

  put(dir / "long", std::string("\x00\x00\x08\x01\x00\x00\x00\x02\x07\x08\x09", 11));
  CHECK_THROWS_WITH(read_idx(dir / "long"), Contains("long") && Contains("trailing data"));
  // reading only the first item does not look further
  CHECK(read_idx(dir / "long", 1).values == std::vector<std::uint8_t>{7});
}

TEST_CASE("idx: a missing file names the file", "[io][idx]") {
  temp_dir dir;
  const auto p = dir / "train-images-idx3-ubyte.gz";
  CHECK_THROWS_AS(read_idx(p), io_error);
  CHECK_THROWS_WITH(read_idx(p), Contains(p.string()) && Contains("no such file"));
  CHECK_THROWS_WITH(read_idx_header(p), Contains(p.string()));
  CHECK_THROWS_WITH(read_idx(dir.path), Contains("directory"));
}

// ------------------------------------------------------------------------------------------------
// data sets

TEST_CASE("dataset: validation", "[io][dataset]") {
  dataset d = numbered(5);
  CHECK(d.size() == 5);
  CHECK_NOTHROW(d.validate());

  dataset empty;
  empty.sample = shape{1, 2, 3};
  empty.classes = 3;
  CHECK_THROWS_AS(empty.validate(), value_error);
  CHECK_THROWS_WITH(empty.validate(), Contains("empty data set"));

  dataset bad = d;
  bad.labels[2] = 3;
  CHECK_THROWS_AS(bad.validate(), value_error);
  CHECK_THROWS_WITH(bad.validate(), Contains("label 3 at index 2") && Contains("[0, 3)"));
  bad.labels[2] = -1;
  CHECK_THROWS_WITH(bad.validate(), Contains("label -1 at index 2"));

  bad = d;
  bad.images[6 * 4 + 1] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(bad.validate(), value_error);
  CHECK_THROWS_WITH(bad.validate(), Contains("image 4 contains NaN at value 1"));
  bad.images[6 * 4 + 1] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(bad.validate(), Contains("infinity"));

  bad = d;
  bad.images.pop_back();
  CHECK_THROWS_AS(bad.validate(), shape_error);
  CHECK_THROWS_WITH(bad.validate(), Contains("29 image values for 5 samples"));

  bad = d;
  bad.classes = 0;
  CHECK_THROWS_AS(bad.validate(), value_error);
}

TEST_CASE("dataset: split sizes, and the two parts together are the original", "[io][dataset]") {
  const dataset d = numbered(23);
  const auto [train, val] = split(d, 7, 42);
  CHECK(train.size() == 16);
  CHECK(val.size() == 7);
  CHECK(train.images.size() == 16 * 6);
  CHECK(val.images.size() == 7 * 6);
  CHECK(train.sample == d.sample);
  CHECK(val.classes == d.classes);
  CHECK_NOTHROW(train.validate());
  CHECK_NOTHROW(val.validate());

  auto together = samples_of(train);
  const auto v = samples_of(val);
  together.insert(v.begin(), v.end());
  CHECK(together == samples_of(d));

  // seeded: the same seed gives the same split, another seed another one
  const auto again = split(d, 7, 42);
  CHECK(again.second.labels == val.labels);
  CHECK(again.second.images == val.images);
  const auto other = split(d, 7, 43);
  CHECK(other.second.images != val.images);
  // the validation part is not simply the first or last samples
  CHECK(val.images != subset(d, 7).images);

  CHECK(split(d, 0, 1).first.size() == 23);
  CHECK(split(d, 23, 1).second.size() == 23);
  CHECK_THROWS_AS(split(d, 24, 1), value_error);
}

TEST_CASE("dataset: subset, normalise and the mean image", "[io][dataset]") {
  dataset d = numbered(4);
  const dataset first = subset(d, 2);
  CHECK(first.size() == 2);
  CHECK(first.images == std::vector<float>{0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15});
  const std::vector<std::size_t> pick{3, 0};
  const dataset picked = subset(d, pick);
  CHECK(picked.labels == std::vector<std::int32_t>{0, 0});
  CHECK(picked.images[0] == 30.0f);
  CHECK_THROWS_AS(subset(d, 5), value_error);
  const std::vector<std::size_t> out_of_range{1, 4};
  CHECK_THROWS_WITH(subset(d, out_of_range), Contains("index 4"));

  const auto mean = mean_image(d); // samples 0, 10, 20, 30 (+k)
  CHECK(mean[0] == Approx(15.0));
  CHECK(mean[5] == Approx(20.0));

  normalise(d, 10.0f, 2.0f);
  CHECK(d.images[0] == Approx(-5.0));
  CHECK(d.images[6] == Approx(0.0));
  CHECK(d.images[11] == Approx(2.5)); // sample 1, value 5: (15 − 10) / 2
  CHECK_THROWS_AS(normalise(d, 0.0f, 0.0f), value_error);
  CHECK_THROWS_AS(normalise(d, 0.0f, std::numeric_limits<float>::quiet_NaN()), value_error);
}

TEST_CASE("dataset: standardise_channels uses the reference's statistics per channel", "[io][dataset]") {
  dataset train;
  train.sample = shape{2, 1, 2}; // two channels of two values
  train.classes = 2;
  train.images = {1, 3, 10, 10, 5, 7, 10, 10};
  train.labels = {0, 1};
  dataset other = train;
  other.images = {4, 4 + std::sqrt(5.0f), 10, 12, 0, 0, 0, 0};
  // channel 0: {1, 3, 5, 7}, mean 4, variance 5; channel 1: constant 10, only centred
  standardise_channels(train, {&train, &other});
  CHECK(train.images[0] == Approx(-3.0 / std::sqrt(5.0)));
  CHECK(train.images[6] == Approx(0.0));
  CHECK(other.images[0] == Approx(0.0));
  CHECK(other.images[1] == Approx(1.0));
  CHECK(other.images[2] == Approx(0.0));
  CHECK(other.images[3] == Approx(2.0));
  CHECK(other.images[4] == Approx(-4.0 / std::sqrt(5.0)));
  CHECK(other.images[6] == Approx(-10.0));
  dataset wrong = other;
  wrong.sample = shape{1, 2, 2};
  CHECK_THROWS_AS(standardise_channels(other, {&wrong}), shape_error);
  CHECK_THROWS_AS(standardise_channels(dataset{}, {&other}), value_error);
}

TEST_CASE("dataset: batch_indices cover every index once per epoch", "[io][dataset][batch]") {
  const std::size_t n = 103;
  const std::size_t bs = 10;
  std::vector<std::vector<std::size_t>> orders;
  for (std::size_t epoch = 0; epoch < 3; ++epoch) {
    const auto batches = batch_indices(n, bs, true, 7, epoch);
    REQUIRE(batches.size() == 11);
    for (std::size_t b = 0; b + 1 < batches.size(); ++b) {
      CHECK(batches[b].size() == bs);
    }
    CHECK(batches.back().size() == 3);
    std::vector<std::size_t> all;
    for (const auto& b : batches) {
      all.insert(all.end(), b.begin(), b.end());
    }
    orders.push_back(all);
    std::vector<std::size_t> sorted = all;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::size_t> expected(n);
    for (std::size_t i = 0; i < n; ++i) {
      expected[i] = i;
    }
    CHECK(sorted == expected);
    CHECK(all != expected); // shuffled
  }
  CHECK(orders[0] != orders[1]);
  CHECK(orders[1] != orders[2]);
  // reproducible: same seed and epoch, same batches; another seed, other batches
  CHECK(batch_indices(n, bs, true, 7, 1) == batch_indices(n, bs, true, 7, 1));
  CHECK(batch_indices(n, bs, true, 8, 1) != batch_indices(n, bs, true, 7, 1));
  // without shuffling: 0, 1, 2, … in every epoch
  const auto plain = batch_indices(n, bs, false, 7, 5);
  CHECK(plain[0] == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(plain.back() == std::vector<std::size_t>{100, 101, 102});
  CHECK_THROWS_AS(batch_indices(n, 0, true, 7, 0), value_error);
}

TEST_CASE("dataset: gather_batch copies samples into reused buffers", "[io][dataset][batch]") {
  const dataset d = numbered(50, 4);
  batch_sampler sampler(d.size(), 8, true, 3);
  std::vector<float> x;
  std::vector<std::int32_t> y;
  const shape s0 = gather_batch(d, sampler.batch(0), x, y);
  CHECK(s0 == shape{8, 1, 2, 3});
  const float* x_data = x.data();
  const std::int32_t* y_data = y.data();
  for (std::size_t epoch = 0; epoch < 3; ++epoch) {
    sampler.set_epoch(epoch);
    for (std::size_t b = 0; b < sampler.batches(); ++b) {
      const auto idx = sampler.batch(b);
      const shape s = gather_batch(d, idx, x, y);
      CHECK(s[0] == idx.size());
      // steady state: the buffers were not reallocated
      CHECK(x.data() == x_data);
      CHECK(y.data() == y_data);
      for (std::size_t j = 0; j < idx.size(); ++j) {
        CHECK(y[j] == d.labels[idx[j]]);
        CHECK(x[j * 6 + 5] == d.images[idx[j] * 6 + 5]);
      }
    }
  }
  CHECK(sampler.batches() == 7);
  CHECK(sampler.batch(6).size() == 2);
  const std::vector<std::size_t> bad{0, 50};
  CHECK_THROWS_WITH(gather_batch(d, bad, x, y), Contains("index 50"));
}

// ------------------------------------------------------------------------------------------------
// Fashion-MNIST

namespace {
/// Writes a small data set in the Fashion-MNIST file layout.
void write_fake_fashion(const fs::path& dir, std::size_t n_train, std::size_t n_test, std::size_t side = 28,
                        std::uint8_t max_label = 9, std::size_t extra_labels = 0) {
  auto write_part = [&](const std::string& part, std::size_t n) {
    std::vector<std::uint8_t> img(n * side * side);
    for (std::size_t k = 0; k < img.size(); ++k) {
      img[k] = static_cast<std::uint8_t>(k % 256);
    }
    std::vector<std::uint8_t> lab(n + extra_labels);
    for (std::size_t i = 0; i < lab.size(); ++i) {
      lab[i] = static_cast<std::uint8_t>(i % (max_label + 1U));
    }
    write_idx_gz(dir / (part + "-images-idx3-ubyte.gz"), shape{n, side, side}, img);
    write_idx_gz(dir / (part + "-labels-idx1-ubyte.gz"), shape{n + extra_labels}, lab);
  };
  write_part("train", n_train);
  write_part("t10k", n_test);
}
} // namespace

TEST_CASE("fashion-mnist layout: loading, limits, scaling and errors", "[io][fashion_layout]") {
  temp_dir dir;
  write_fake_fashion(dir.path, 12, 5);
  const auto data = load_fashion_mnist(dir.path);
  CHECK(data.train.size() == 12);
  CHECK(data.test.size() == 5);
  CHECK(data.train.sample == shape{1, 28, 28});
  CHECK(data.train.classes == 10);
  CHECK(data.train.images[255] == 1.0f);
  CHECK(data.train.images[51] == Approx(51.0 / 255.0));
  CHECK(data.test.labels[3] == 3);
  CHECK_NOTHROW(data.train.validate());

  const auto few = load_fashion_mnist(dir.path, 4, 2, true);
  CHECK(few.train.size() == 4);
  CHECK(few.test.size() == 2);
  CHECK(few.train.images[0] == Approx((0.0f - fashion_mnist_mean) / fashion_mnist_std));
  CHECK(fashion_mnist_classes[9] == "Ankle boot");

  temp_dir wrong_size;
  write_fake_fashion(wrong_size.path, 3, 3, 27);
  CHECK_THROWS_AS(load_fashion_mnist(wrong_size.path), io_error);
  CHECK_THROWS_WITH(load_fashion_mnist(wrong_size.path),
                    Contains("train-images-idx3-ubyte.gz") && Contains("27×27"));

  temp_dir counts;
  write_fake_fashion(counts.path, 3, 3, 28, 9, 1);
  CHECK_THROWS_WITH(load_fashion_mnist(counts.path), Contains("3 images") && Contains("4 labels"));

  temp_dir labels;
  write_fake_fashion(labels.path, 12, 3, 28, 11);
  CHECK_THROWS_WITH(load_fashion_mnist(labels.path),
                    Contains("train-labels-idx1-ubyte.gz") && Contains("label 10 at index 10"));

  temp_dir missing;
  CHECK_THROWS_WITH(load_fashion_mnist(missing.path), Contains("train-images-idx3-ubyte.gz"));
}

TEST_CASE("fashion-mnist: the real files, when installed", "[io][fashion]") {
  const fs::path dir(fashion_mnist_default_dir);
  if (!fs::exists(dir / "train-images-idx3-ubyte.gz")) {
    WARN("Fashion-MNIST is not installed in " << dir
                                              << " (Debian package dataset-fashion-mnist);"
                                                 " nothing checked");
    return;
  }
  const auto data = load_fashion_mnist(dir, 100, 10);
  REQUIRE(data.train.size() == 100);
  CHECK(data.test.size() == 10);
  CHECK(data.train.sample == shape{1, 28, 28});
  CHECK(data.train.images.size() == 100 * 784);
  CHECK_NOTHROW(data.train.validate());
  CHECK_NOTHROW(data.test.validate());
  std::set<std::int32_t> seen(data.train.labels.begin(), data.train.labels.end());
  CHECK(*seen.begin() >= 0);
  CHECK(*seen.rbegin() <= 9);
  CHECK(seen.size() == 10); // 100 samples show every class
  const auto [lo, hi] = std::minmax_element(data.train.images.begin(), data.train.images.end());
  CHECK(*lo == 0.0f);
  CHECK(*hi == 1.0f);
  CHECK(read_idx_header(dir / "train-images-idx3-ubyte.gz").extents == shape{60000, 28, 28});
  CHECK(read_idx_header(dir / "t10k-labels-idx1-ubyte.gz").extents == shape{10000});
}

// ------------------------------------------------------------------------------------------------
// PNG

TEST_CASE("png: grey and RGB round trips", "[io][png]") {
  temp_dir dir;
  const auto grey = random_bytes(7 * 5);
  write_png_gray(dir / "g.png", 7, 5, grey);
  const picture g = read_png(dir / "g.png");
  CHECK(g.width == 7);
  CHECK(g.height == 5);
  CHECK(g.channels == 1);
  CHECK(g.pixels == grey);
  CHECK(slurp(dir / "g.png").substr(1, 3) == "PNG");

  const auto colour = random_bytes(4 * 6 * 3);
  write_png_rgb(dir / "c.png", 4, 6, colour);
  const picture c = read_png(dir / "c.png");
  CHECK(c.width == 4);
  CHECK(c.height == 6);
  CHECK(c.channels == 3);
  CHECK(c.pixels == colour);
  CHECK(c.at(1, 2, 2) == colour[(2 * 4 + 1) * 3 + 2]);
  CHECK(files_in(dir.path) == std::vector<std::string>{"c.png", "g.png"});
}

TEST_CASE("png: errors", "[io][png]") {
  temp_dir dir;
  CHECK_THROWS_AS(write_png_rgb(dir / "x.png", 4, 4, random_bytes(47)), shape_error);
  CHECK_THROWS_AS(write_png(dir / "x.png", 4, 4, 2, random_bytes(32)), shape_error);
  CHECK_THROWS_AS(read_png(dir / "none.png"), io_error);
  CHECK_THROWS_WITH(read_png(dir / "none.png"), Contains("none.png"));
  put(dir / "text.png", "this is not a picture");
  CHECK_THROWS_AS(read_png(dir / "text.png"), io_error);
  CHECK_THROWS_WITH(read_png(dir / "text.png"), Contains("text.png"));
  write_png_gray(dir / "cut.png", 64, 64, random_bytes(64 * 64));
  fs::resize_file(dir / "cut.png", fs::file_size(dir / "cut.png") / 2);
  CHECK_THROWS_AS(read_png(dir / "cut.png"), io_error);
  CHECK_THROWS_WITH(read_png(dir / "cut.png"), Contains("cut.png"));
}

// ------------------------------------------------------------------------------------------------
// CSV

TEST_CASE("csv: table formatting and atomic save", "[io][csv]") {
  temp_dir dir;
  csv_table t({"epoch", "name", "accuracy", "q"});
  t.add_row({1, "pixel(any)", 0.1f, 0.25});
  t.add_row(
    {2, "a, \"quoted\" name", std::numeric_limits<double>::quiet_NaN(), csv_cell::fixed(0.123456, 3)});
  t.add_row({-3, " padded", 1e-7, -std::numeric_limits<float>::infinity()});
  CHECK(t.rows() == 3);
  CHECK(t.str() == "epoch,name,accuracy,q\n"
                   "1,pixel(any),0.1,0.25\n"
                   "2,\"a, \"\"quoted\"\" name\",nan,0.123\n"
                   "-3,\" padded\",1e-07,-inf\n");
  CHECK_THROWS_AS(t.add_row({1, 2}), value_error);
  t.save(dir / "t.csv");
  CHECK(slurp(dir / "t.csv") == t.str());
  CHECK(files_in(dir.path) == std::vector<std::string>{"t.csv"});
}

TEST_CASE("csv: the per-epoch log appends flushed rows", "[io][csv]") {
  temp_dir dir;
  const auto p = dir / "epochs.csv";
  {
    csv_log log(p, {"epoch", "loss"});
    log.append({0, 1.5});
    CHECK(slurp(p) == "epoch,loss\n0,1.5\n"); // flushed at once
    log.append({1, 0.75});
    CHECK_THROWS_AS(log.append({2}), value_error);
  }
  CHECK(slurp(p) == "epoch,loss\n0,1.5\n1,0.75\n");
  {
    csv_log log(p, {"epoch", "loss"}, csv_log_mode::append);
    log.append({2, 0.5});
  }
  CHECK(slurp(p) == "epoch,loss\n0,1.5\n1,0.75\n2,0.5\n");
  CHECK_THROWS_AS(csv_log(p, {"epoch", "accuracy"}, csv_log_mode::append), io_error);
  CHECK_THROWS_WITH(csv_log(p, {"epoch", "accuracy"}, csv_log_mode::append),
                    Contains("epochs.csv") && Contains("header"));
  {
    csv_log log(p, {"epoch", "accuracy"}); // replace
  }
  CHECK(slurp(p) == "epoch,accuracy\n");
  CHECK(files_in(dir.path) == std::vector<std::string>{"epochs.csv"});
}

TEST_CASE("npy: hand-checked header, round trips, bad files named", "[io][npy]") {
  temp_dir dir;
  const auto path = dir.path / "m.npy";
  const std::vector<float> v{0.5f, -1.0f, 2.0f, 3.25f, 0.0f, 1e-3f};
  io::write_npy(path, shape{2, 3}, v);
  const std::string bytes = io::read_file(path);
  // magic, version 1.0, header length 118 (little-endian), the dict, spaces, newline: data at 128
  CHECK(bytes.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  CHECK(static_cast<unsigned char>(bytes[8]) == 118);
  CHECK(bytes[9] == 0);
  CHECK(bytes.substr(10, 59) == "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
  CHECK(bytes[127] == '\n');
  CHECK(bytes.size() == 128 + 6 * 4);
  float first = 0.0f;
  std::memcpy(&first, bytes.data() + 128, 4);
  CHECK(first == 0.5f);
  const auto a = io::read_npy(path);
  CHECK(a.extents == shape{2, 3});
  CHECK(a.values == v);
  for (const shape& s : {shape{6}, shape{1, 2, 3}, shape{}}) {
    const std::vector<float> w(s.size(), 7.0f);
    io::write_npy(path, s, w);
    const auto b = io::read_npy(path);
    CHECK(b.extents == s);
    CHECK(b.values == w);
  }
  CHECK(io::read_file(path).find("'shape': ()") != std::string::npos);
  io::write_npy(path, shape{6}, v);
  CHECK(io::read_file(path).find("'shape': (6,)") != std::string::npos);
  CHECK_THROWS_AS(io::write_npy(path, shape{2, 2}, v), shape_error);

  const std::string good = io::read_file(path);
  const auto refused = [&](std::string b, const char* what) {
    io::write_file_atomically(dir.path / "bad.npy", b);
    CHECK_THROWS_WITH(io::read_npy(dir.path / "bad.npy"), Contains("bad.npy") && Contains(what));
  };
  refused(good.substr(0, good.size() - 1), "bytes of data");
  refused(good + "x", "bytes of data");
  refused(good.substr(0, 20), "truncated header");
  refused("PK\x03\x04 not numpy", "no \\x93NUMPY magic");
  std::string f8 = good;
  f8.replace(f8.find("<f4"), 3, "<f8");
  refused(f8, "float32");
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  refused(fortran, "Fortran");
  std::string huge = good;
  huge.replace(huge.find("(6,)"), 4, "(99999999999999, 99999999999999,)");
  refused(huge, "shape");
}

TEST_CASE("npy: NumPy reads what write_npy writes", "[io][npy]") {
  // an independent reader: Debian's python3-numpy (installed with python3-torch by install-deps.sh)
  if (std::system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) {
    WARN("no /usr/bin/python3 with numpy: NumPy's side not checked");
    return;
  }
  temp_dir dir;
  io::write_npy(dir.path / "m.npy", shape{2, 3}, std::vector<float>{0.5f, -1.0f, 2.0f, 3.25f, 0.0f, 1e-3f});
  const std::string cmd = "/usr/bin/python3 -c \"import numpy as np; a = np.load('" +
                          (dir.path / "m.npy").string() +
                          "'); assert a.dtype == np.float32 and a.shape == (2, 3), a; "
                          "assert (a == np.array([[0.5, -1, 2], [3.25, 0, 1e-3]], np.float32)).all(), a\"";
  CHECK(std::system(cmd.c_str()) == 0);
}
