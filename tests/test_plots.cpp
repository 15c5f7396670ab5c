// The examples' figures and pictures (support code of the examples, not the library):
// examples/gnuplot.hpp (data, script and gnuplot's PNG and SVG) and examples/pictures.hpp (mask
// pictures through libpng).
#include "../examples/gnuplot.hpp"
#include "../examples/pictures.hpp"
#include "support.hpp"

#include <selmask/io/png.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace selmask;
using namespace selmask::io;
using Catch::Contains;

namespace {

using selmask_test::temp_dir;

std::string slurp(const fs::path& p) {
  std::ifstream is(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(is), std::istreambuf_iterator<char>()};
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// The data blocks of a gnuplot data file (blocks end at two blank lines; comments skipped): per
/// block its rows, each row its numbers.
std::vector<std::vector<std::vector<double>>> read_blocks(const fs::path& p) {
  std::vector<std::vector<std::vector<double>>> blocks(1);
  std::istringstream in(slurp(p));
  std::string line;
  int blanks = 0;
  while (std::getline(in, line)) {
    if (line.empty()) {
      if (++blanks == 2 && !blocks.back().empty()) {
        blocks.emplace_back();
      }
      continue;
    }
    blanks = 0;
    if (line[0] == '#') {
      continue;
    }
    std::istringstream row(line);
    std::vector<double> values;
    std::string word;
    while (row >> word) {
      values.push_back(word == "NaN" ? std::numeric_limits<double>::quiet_NaN() : std::stod(word));
    }
    blocks.back().push_back(values);
  }
  if (blocks.back().empty()) {
    blocks.pop_back();
  }
  return blocks;
}

/// Sets an environment variable for the lifetime of the object, then restores it.
struct scoped_env {
  std::string name;
  std::optional<std::string> old;
  scoped_env(std::string n, const std::string& value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) {
      old = v;
    }
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~scoped_env() {
    if (old) {
      ::setenv(name.c_str(), old->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;
};

/// Sends stderr (file descriptor 2) to a file until `text()` is called.
struct stderr_to_file {
  fs::path file;
  int saved = -1;
  explicit stderr_to_file(fs::path f) : file(std::move(f)) {
    std::fflush(stderr);
    saved = ::dup(2);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 2);
    ::close(fd);
  }
  std::string text() {
    restore();
    return slurp(file);
  }
  void restore() {
    if (saved >= 0) {
      std::fflush(stderr);
      ::dup2(saved, 2);
      ::close(saved);
      saved = -1;
    }
  }
  ~stderr_to_file() { restore(); }
  stderr_to_file(const stderr_to_file&) = delete;
  stderr_to_file& operator=(const stderr_to_file&) = delete;
};

std::vector<plot_series> example_series() {
  std::vector<plot_series> series(3);
  series[0].label = "pixel(any), mean of 3 seeds";
  series[0].x = {0.05, 0.1, 0.2, 0.5, 1.0};
  series[0].y = {0.62, 0.75, 0.83, 0.88, 0.91};
  series[0].lower = {0.6, 0.7, 0.8, 0.87, 0.905};
  series[0].upper = {0.64, 0.77, 0.85, 0.89, 0.915};
  series[0].band_label = "minimum to maximum";
  series[0].band_bars = true;
  series[1].label = "random pixels";
  series[1].x = {0.05, 0.1, 0.2, 0.5, 1.0 / 3.0};
  series[1].y = {0.35, 0.52, 0.68, 0.82, 0.123456789012345678};
  series[1].marker = marker_shape::square;
  series[1].connect = false;
  series[2].label = "no points";
  return series;
}

plot_options example_options() {
  plot_options opt;
  opt.title = "Fashion-MNIST: accuracy vs data kept (%)";
  opt.width = 640;
  opt.height = 480;
  return opt;
}

bool has_gnuplot() { return io::detail::find_on_path("gnuplot").has_value(); }

} // namespace

// ------------------------------------------------------------------------------------------------
// gnuplot figures

TEST_CASE("plot_xy writes the data and a script for both pictures", "[plot][gnuplot]") {
  temp_dir dir;
  const auto series = example_series();
  const auto opt = example_options();
  const figure_files f = plot_xy(dir / "front.png", series, opt);
  CHECK(f.data == dir / "front.dat");
  CHECK(f.script == dir / "front.gp");

  // the numbers of the .dat are those of the series: a block per series with points (the empty
  // one has none), x y and the band's lower and upper values
  const auto blocks = read_blocks(f.data);
  REQUIRE(blocks.size() == 2);
  REQUIRE(blocks[0].size() == 5);
  for (std::size_t i = 0; i < 5; ++i) {
    REQUIRE(blocks[0][i].size() == 4);
    CHECK(blocks[0][i][0] == series[0].x[i]);
    CHECK(blocks[0][i][1] == series[0].y[i]);
    CHECK(blocks[0][i][2] == series[0].lower[i]);
    CHECK(blocks[0][i][3] == series[0].upper[i]);
  }
  REQUIRE(blocks[1].size() == 5);
  for (std::size_t i = 0; i < 5; ++i) {
    REQUIRE(blocks[1][i].size() == 2);
    CHECK(blocks[1][i][0] == series[1].x[i]); // exactly: the shortest text that reads back the same
    CHECK(blocks[1][i][1] == series[1].y[i]);
  }
  const std::string dat = slurp(f.data);
  CHECK_THAT(dat, Contains("# index 0: pixel(any), mean of 3 seeds; columns x, y, band lower, band upper"));
  CHECK_THAT(dat, Contains("# index 1: random pixels; columns x, y"));
  CHECK_THAT(dat, Contains("# no points: no points"));

  // the script reads the .dat and renders a PNG (pngcairo) and an SVG of the given size
  const std::string gp = slurp(f.script);
  CHECK_THAT(gp, Contains("data = 'front.dat'"));
  CHECK_THAT(gp, Contains("out_stem = 'front'"));
  CHECK_THAT(gp, Contains("set terminal pngcairo size 640,480"));
  CHECK_THAT(gp, Contains("set terminal svg size 640,480"));
  CHECK_THAT(gp, Contains("do for [format in 'png svg']"));
  CHECK_THAT(gp, Contains("set output out_stem.'.'.format"));
  CHECK_THAT(gp, Contains("it writes front.png and front.svg"));
  CHECK_THAT(gp, Contains("set title 'Fashion-MNIST: accuracy vs data kept (%)'"));
  CHECK_THAT(gp, Contains("set xlabel 'fraction of pixels kept (Q)'"));
  CHECK_THAT(gp, Contains("set xrange [0:1]"));
  CHECK_THAT(gp, Contains("set yrange [*:*]"));
  CHECK_THAT(gp, Contains("data index 0 using 1:3:4 with filledcurves ls 1 title 'minimum to maximum'"));
  CHECK_THAT(gp,
             Contains("data index 0 using 1:2 with linespoints ls 1 title 'pixel(any), mean of 3 seeds'"));
  CHECK_THAT(gp, Contains("data index 0 using 1:2:3:4 with yerrorbars ls 1"));
  CHECK_THAT(gp, Contains("data index 1 using 1:2 with points ls 2 title 'random pixels'"));
  CHECK_THAT(gp, Contains("set key below")); // the default: the legend never covers the data

  if (!has_gnuplot()) {
    WARN("gnuplot is not on PATH: the pictures are not checked (apt-get install gnuplot-nox)");
    CHECK_FALSE(f.rendered);
    return;
  }
  REQUIRE(f.rendered);
  const std::string png = slurp(dir / "front.png");
  REQUIRE(png.size() > 1000);
  CHECK(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  const picture p = read_png(dir / "front.png");
  CHECK(p.width == 640);
  CHECK(p.height == 480);
  const std::string svg = slurp(dir / "front.svg");
  REQUIRE(svg.size() > 1000);
  CHECK((svg.rfind("<?xml", 0) == 0 || svg.rfind("<svg", 0) == 0));
  CHECK_THAT(svg, Contains("random pixels")); // the legend is text in the SVG
  CHECK_THAT(svg, Contains("</svg>"));
  // nothing else is left in the directory (no temporaries)
  CHECK(files_in(dir.path) == std::vector<std::string>{"front.dat", "front.gp", "front.png", "front.svg"});

  // run again by hand, as a user would after restyling: the same files come out
  fs::remove(dir / "front.png");
  fs::remove(dir / "front.svg");
  const auto exe = io::detail::find_on_path("gnuplot");
  const int status = io::detail::run_in(*exe, dir.path, {"gnuplot", "front.gp"});
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(read_png(dir / "front.png").width == 640);
  CHECK(fs::file_size(dir / "front.svg") > 1000);
}

TEST_CASE("plot_xy takes titles literally and checks its input", "[plot][gnuplot]") {
  temp_dir dir;
  plot_series s;
  s.label = "it's `touch injected` @x \\n \"q\" λ ≤ 0.05";
  s.x = {0.1, std::numeric_limits<double>::quiet_NaN(), 0.3, std::numeric_limits<double>::infinity(), 0.5};
  s.y = {0.5, 0.6, 0.7, 0.8, 0.9};
  plot_options opt;
  opt.title = "two\nlines, 'quoted'";
  opt.x_min = std::numeric_limits<double>::quiet_NaN();
  opt.legend = legend_position::upper_left;
  const auto f = plot_xy(dir / "odd.png", {s}, opt);
  const std::string gp = slurp(f.script);
  CHECK_THAT(gp, Contains("title 'it''s `touch injected` @x \\n \"q\" λ ≤ 0.05'"));
  CHECK_THAT(gp, Contains("set title 'two'.\"\\n\".'lines, ''quoted'''"));
  CHECK_THAT(gp, Contains("set xrange [*:1]"));
  CHECK_THAT(gp, Contains("set key top left"));
  // non-finite points are left out and break the line (one blank line, never two)
  const auto blocks = read_blocks(f.data);
  REQUIRE(blocks.size() == 1);
  CHECK(blocks[0] == std::vector<std::vector<double>>{{0.1, 0.5}, {0.3, 0.7}, {0.5, 0.9}});
  CHECK_THAT(slurp(f.data), Contains("0.1 0.5\n\n0.3 0.7\n\n0.5 0.9\n"));
  if (has_gnuplot()) {
    CHECK(f.rendered);
    CHECK_FALSE(fs::exists(dir / "injected")); // the backquotes were not run
  }

  // no data at all still draws axes
  CHECK_NOTHROW(plot_xy(dir / "empty.png", std::vector<plot_series>{}, plot_options{}));
  CHECK_THAT(slurp(dir / "empty.gp"), Contains("NaN notitle"));

  s.y.pop_back();
  CHECK_THROWS_AS(plot_xy(dir / "bad.png", {s}), shape_error);
  s.y.push_back(0.9);
  s.lower = {0.1};
  s.upper = {0.2};
  CHECK_THROWS_AS(plot_xy(dir / "bad.png", {s}), shape_error);
  s.lower.clear();
  s.upper.clear();
  opt.y_min = 1.0;
  opt.y_max = 0.5;
  CHECK_THROWS_AS(plot_xy(dir / "bad.png", {s}, opt), value_error);
  opt.y_max = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(plot_xy(dir / "bad.png", {s}, opt), value_error);
  CHECK_THROWS_AS(plot_xy(dir / "bad.svg", {s}), value_error); // the name must end in .png
  CHECK_FALSE(fs::exists(dir / "bad.dat"));
}

TEST_CASE("without gnuplot the data and the script are written and one line says how to draw them",
          "[plot][gnuplot]") {
  temp_dir dir;
  const fs::path empty_bin = dir / "empty-bin";
  fs::create_directories(empty_bin);
  const fs::path out = dir / "out";
  fs::create_directories(out);
  const auto series = example_series();
  std::string message;
  figure_files f;
  {
    const scoped_env path("PATH", empty_bin.string()); // a PATH with no gnuplot on it
    stderr_to_file err(dir / "stderr.txt");
    f = plot_xy(out / "front.png", series, example_options());
    message = err.text();
  }
  CHECK_FALSE(f.rendered);
  CHECK(files_in(out) == std::vector<std::string>{"front.dat", "front.gp"});
  CHECK(read_blocks(f.data).size() == 2);
  CHECK(std::count(message.begin(), message.end(), '\n') == 1);
  CHECK_THAT(message, Contains("gnuplot is not on PATH"));
  CHECK_THAT(message, Contains("apt-get install gnuplot-nox"));
  CHECK_THAT(message, Contains("`gnuplot front.gp` in " + out.string()));
  // the script written without gnuplot renders later, as the message says
  if (has_gnuplot()) {
    const auto exe = io::detail::find_on_path("gnuplot");
    const int status = io::detail::run_in(*exe, out, {"gnuplot", "front.gp"});
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(read_png(out / "front.png").width == 640);
  }
}

TEST_CASE("a gnuplot that fails gives an error naming the script", "[plot][gnuplot]") {
  if (!has_gnuplot()) {
    WARN("gnuplot is not on PATH: not checked");
    return;
  }
  temp_dir dir;
  gnuplot_figure fig;
  fig.about = "a broken figure";
  fig.data = "1 2\n";
  fig.plot = "  plot data using 1:2 with no_such_style\n";
  std::string messages;
  {
    stderr_to_file err(dir / "stderr.txt"); // gnuplot's own complaint
    CHECK_THROWS_AS(render_figure(dir / "broken.png", fig), io_error);
    CHECK_THROWS_WITH(render_figure(dir / "broken.png", fig),
                      Contains("broken.gp") && Contains("failed (exit status"));
    messages = err.text();
  }
  CHECK_FALSE(messages.empty());
  // the data and the script stay for a look; no picture, no temporary
  CHECK(files_in(dir.path) == std::vector<std::string>{"broken.dat", "broken.gp", "stderr.txt"});
}

TEST_CASE("render_figure draws any gnuplot figure, e.g. a heatmap", "[plot][gnuplot]") {
  temp_dir dir;
  gnuplot_figure fig;
  fig.about = "a 3x2 heatmap";
  fig.width = 300;
  fig.height = 200;
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 3; ++x) {
      fig.data += std::to_string(x) + " " + std::to_string(y) + " " + std::to_string(x * y) + "\n";
    }
    fig.data += "\n";
  }
  fig.setup = "set xlabel 'column'\nset ylabel 'row'\n";
  fig.plot = "  plot data using 1:2:3 with image notitle\n";
  const auto f = render_figure(dir / "heat.png", fig);
  CHECK_THAT(slurp(f.data), Contains("# heat.dat: a 3x2 heatmap"));
  CHECK_THAT(slurp(f.script), Contains("set xlabel 'column'"));
  if (has_gnuplot()) {
    REQUIRE(f.rendered);
    const picture p = read_png(f.png);
    CHECK(p.width == 300);
    CHECK(p.height == 200);
  }
}

// ------------------------------------------------------------------------------------------------
// mask pictures (PNG through libpng, no text)

TEST_CASE("raster: filled rectangles, cut to the image", "[plot][pictures]") {
  raster img(20, 10);
  CHECK(img.get(3, 3) == colours::white);
  img.fill_rect(2, 3, 5, 4, colours::orange);
  CHECK(img.get(2, 3) == colours::orange);
  CHECK(img.get(4, 3) == colours::orange);
  CHECK(img.get(5, 3) == colours::white);
  CHECK(img.get(2, 4) == colours::white);
  img.fill_rect(15, 5, 100, 100, colours::black); // past the edge: cut
  CHECK(img.get(19, 9) == colours::black);
  CHECK_THROWS_AS(img.get(20, 0), value_error);
  CHECK_THROWS_AS(raster(0, 5), shape_error);
  temp_dir dir;
  img.save_png(dir / "r.png");
  const picture p = read_png(dir / "r.png");
  CHECK(p.width == 20);
  CHECK(p.height == 10);
  CHECK(p.pixels == img.pixels());
}

TEST_CASE("mask_image colours kept pixels over the grey background", "[plot][pictures]") {
  temp_dir dir;
  const std::vector<float> mask{1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  std::vector<float> background(16);
  for (std::size_t i = 0; i < 16; ++i) {
    background[i] = static_cast<float>(i) / 15.0f;
  }
  mask_image(dir / "mask.png", mask, background, 4, 4, 3);
  const picture p = read_png(dir / "mask.png");
  CHECK(p.width == 12);
  CHECK(p.height == 12);
  for (std::size_t y = 0; y < 4; ++y) {
    for (std::size_t x = 0; x < 4; ++x) {
      const std::size_t px = 3 * x + 1;
      const std::size_t py = 3 * y + 1;
      const bool kept = mask[y * 4 + x] == 1.0f;
      const bool grey = p.at(px, py, 0) == p.at(px, py, 1) && p.at(px, py, 1) == p.at(px, py, 2);
      CHECK(grey == !kept);
    }
  }
  // brighter background, brighter grey
  CHECK(p.at(3 * 3 + 1, 3 * 2 + 1) > p.at(3 * 2 + 1, 3 * 0 + 1, 0));
  CHECK(render_mask_image(mask, background, 4, 4, 3).pixels() == p.pixels);
  const std::vector<float> bad_mask(16, 1.5f);
  CHECK_THROWS_AS(mask_image(dir / "bad.png", bad_mask, background, 4, 4), value_error);
  CHECK_THROWS_AS(mask_image(dir / "bad.png", mask, background, 4, 5), shape_error);

  const std::vector<float> imgs(5 * 4 * 3, 0.5f);
  image_grid(dir / "grid.png", imgs, 5, 4, 3, 2, 2, 1);
  const picture g = read_png(dir / "grid.png");
  CHECK(g.width == 2 * (3 * 2 + 1) + 1);
  CHECK(g.height == 3 * (4 * 2 + 1) + 1);
  CHECK(g.at(1, 1, 0) == 128);
  CHECK(g.at(0, 0, 0) == 60); // the padding
}
