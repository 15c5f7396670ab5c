#pragma once
/// \file examples/gnuplot.hpp
/// Support code of the examples (and their tests), not part of the installed library: the figures
/// of the examples, drawn by gnuplot (Debian package gnuplot-nox) from data the examples write.
///
/// A figure `DIR/NAME.png` comes with two text files beside it: `NAME.dat`, the numbers (columns
/// gnuplot reads, a header comment saying what each block and column holds), and `NAME.gp`, a
/// gnuplot script that reads `NAME.dat` and renders `NAME.png` (pngcairo terminal, real fonts) and
/// `NAME.svg` (svg terminal). To restyle a figure, edit `NAME.gp` and run `gnuplot NAME.gp` in
/// `DIR`. The two text files are written atomically (io/atomic_file.hpp); gnuplot then runs in
/// `DIR` (fork and exec, no shell) and writes the pictures under temporary names that are renamed
/// into place when it succeeds, so a reader never sees half a picture.
///
/// `plot_xy` draws x–y plots (lines, markers, a filled band for a spread such as the minimum to
/// maximum over seeds); `render_figure` takes any data and plot commands, for the figures that are
/// not x–y plots (heatmaps, panels). The text of titles and labels is quoted so that gnuplot takes
/// it literally (no command substitution, no enhanced-text markup).
///
/// Without gnuplot on PATH the data and the script are still written, and one line on stderr says
/// how to get the pictures; that is not an error (`figure_files::rendered` is false). When gnuplot
/// runs and fails, an `io_error` names the script.

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <selmask/error.hpp>
#include <selmask/io/atomic_file.hpp>

#include "colours.hpp"

namespace selmask::io {

// ------------------------------------------------------------------------------------------------
// gnuplot text

namespace gp {

/// `text` as a gnuplot string that gnuplot takes literally: single quotes (in which gnuplot does
/// no backquote substitution and no escapes; a quote is doubled), line breaks joined in as "\n".
inline std::string quote(std::string_view text) {
  std::string s = "'";
  for (char c : text) {
    if (c == '\'') {
      s += "''";
    } else if (c == '\n') {
      s += "'.\"\\n\".'";
    } else if (c == '\r' || c == '\0') {
      continue;
    } else {
      s += c;
    }
  }
  return s + "'";
}

/// `text` on one line, for a comment: line breaks become blanks.
inline std::string comment(std::string_view text) {
  std::string s(text);
  for (char& c : s) {
    c = c == '\n' || c == '\r' ? ' ' : c;
  }
  return s;
}

/// `v` as the shortest text that reads back as the same double; NaN for a non-finite value (gnuplot
/// takes it as an undefined point).
inline std::string number(double v) {
  if (!std::isfinite(v)) {
    return "NaN";
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return r.ec == std::errc{} ? std::string(buf, r.ptr) : std::string("NaN");
}

/// `c` as a gnuplot colour: rgb '#rrggbb'.
inline std::string colour(rgb c) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "rgb '#%02x%02x%02x'", c.r, c.g, c.b);
  return buf;
}

/// `c` as the number `lc rgb variable` reads from a data column (0xRRGGBB, in decimal).
inline std::string colour_value(rgb c) {
  return std::to_string((static_cast<unsigned>(c.r) << 16) | (static_cast<unsigned>(c.g) << 8) | c.b);
}

/// A range for `set xrange`: `[lo:hi]`, `*` for a NaN bound (gnuplot takes it from the data).
inline std::string range(double lo, double hi) {
  return "[" + (std::isnan(lo) ? std::string("*") : number(lo)) + ":" +
         (std::isnan(hi) ? std::string("*") : number(hi)) + "]";
}

} // namespace gp

// ------------------------------------------------------------------------------------------------
// a figure in general form

/// What a figure is made of. `data` is the content of `NAME.dat` below its header comment;
/// `setup` runs once (titles, axes, styles; the variable `data` names `NAME.dat`); `plot` draws,
/// once for the PNG and once for the SVG (it may be a multiplot).
struct gnuplot_figure {
  std::string about; ///< one line for the header comments, e.g. the title
  std::string data;
  std::string setup;
  std::string plot;
  std::size_t width = 800; ///< pixels, both outputs
  std::size_t height = 560;
  std::string font = "Sans,12"; ///< fontconfig name and size in points
};

/// The files of one figure; `rendered` is false when gnuplot was not found (no pictures).
struct figure_files {
  std::filesystem::path data;
  std::filesystem::path script;
  std::filesystem::path png;
  std::filesystem::path svg;
  bool rendered = false;
};

namespace detail {

/// The executable `name` would run as: the first regular, executable `DIR/name` along PATH
/// (unset: /bin:/usr/bin; empty: nowhere), as an absolute path.
inline std::optional<std::filesystem::path> find_on_path(const std::string& name) {
  const char* env = std::getenv("PATH");
  const std::string_view dirs = env != nullptr ? env : "/bin:/usr/bin";
  if (dirs.empty()) {
    return std::nullopt;
  }
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = dirs.find(':', start);
    const std::string_view dir = dirs.substr(start, end == std::string_view::npos ? end : end - start);
    const std::filesystem::path candidate = std::filesystem::path(dir.empty() ? "." : dir) / name;
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) {
      return std::filesystem::absolute(candidate, ec);
    }
    if (end == std::string_view::npos) {
      return std::nullopt;
    }
    start = end + 1;
  }
}

/// Runs `exe` with `args` (args[0] the program's name) in the directory `dir` and waits for it;
/// returns the wait status. No shell is involved.
inline int run_in(const std::filesystem::path& exe, const std::filesystem::path& dir,
                  const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  const std::string exe_s = exe.string();
  const std::string dir_s = dir.string();
  std::fflush(nullptr); // our own output first
  const pid_t pid = ::fork();
  if (pid < 0) {
    throw io_error("selmask: cannot start " + exe_s + ": " + std::strerror(errno));
  }
  if (pid == 0) { // the child: only async-signal-safe calls until exec
    if (::chdir(dir_s.c_str()) != 0) {
      ::_exit(126);
    }
    ::execv(exe_s.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      throw io_error("selmask: waiting for " + exe_s + " failed: " + std::strerror(errno));
    }
  }
  return status;
}

/// The text of `NAME.gp`.
inline std::string figure_script(const std::string& name, const gnuplot_figure& fig) {
  const std::string size = std::to_string(fig.width) + "," + std::to_string(fig.height);
  const std::string stem = gp::comment(name);
  std::string s = "# " + stem + ".gp: " + gp::comment(fig.about) + "\n";
  s += "# Written by a selmask example (examples/gnuplot.hpp); the numbers are in " + stem + ".dat.\n";
  s += "# Restyle it and run `gnuplot " + stem + ".gp` in this directory: it writes " + stem + ".png and " +
       stem + ".svg.\n";
  s += "# (The examples pass -e \"out_stem='...'\" to write under a temporary name first.)\n";
  s += "set encoding utf8\n";
  s += "data = " + gp::quote(name + ".dat") + "\n";
  s += "if (!exists('out_stem')) out_stem = " + gp::quote(name) + "\n";
  s += "font_spec = " + gp::quote(fig.font) + "\n\n";
  s += fig.setup;
  s += "\n# the pictures: the same plot on both terminals\n";
  s += "do for [format in 'png svg'] {\n";
  s += "  if (format eq 'png') {\n";
  s += "    set terminal pngcairo size " + size + " font font_spec noenhanced\n";
  s += "  } else {\n";
  s += "    set terminal svg size " + size + " dynamic font font_spec noenhanced background rgb 'white'\n";
  s += "  }\n";
  s += "  set output out_stem.'.'.format\n";
  s += fig.plot;
  s += "  unset output\n";
  s += "}\n";
  return s;
}

} // namespace detail

/// Writes `NAME.dat` and `NAME.gp` for the figure `png_path` (`DIR/NAME.png`), then runs gnuplot
/// on the script to draw `NAME.png` and `NAME.svg`. Throws `value_error` when `png_path` does not
/// end in `.png`, `io_error` when a file cannot be written or gnuplot fails (naming the script).
inline figure_files render_figure(const std::filesystem::path& png_path, const gnuplot_figure& fig) {
  namespace fs = std::filesystem;
  if (png_path.extension() != ".png" || png_path.stem().empty()) {
    throw value_error("selmask::io::render_figure: '" + png_path.string() + "' does not name a .png file");
  }
  const fs::path dir = png_path.parent_path().empty() ? fs::path(".") : png_path.parent_path();
  const std::string stem = png_path.stem().string();
  figure_files files{dir / (stem + ".dat"), dir / (stem + ".gp"), dir / (stem + ".png"),
                     dir / (stem + ".svg"), false};
  const std::string c = gp::comment(stem);
  write_file_atomically(files.data, "# " + c + ".dat: " + gp::comment(fig.about) + "\n# The data of " + c +
                                      ".png and " + c + ".svg, drawn by " + c + ".gp (gnuplot).\n" +
                                      fig.data);
  write_file_atomically(files.script, detail::figure_script(stem, fig));

  const auto exe = detail::find_on_path("gnuplot");
  if (!exe) {
    std::fprintf(stderr,
                 "selmask: gnuplot is not on PATH, so %s is not drawn (its data and script are written: "
                 "%s.dat, %s.gp); to get the pictures, install gnuplot (apt-get install gnuplot-nox, or "
                 "scripts/install-deps.sh) and run `gnuplot %s.gp` in %s\n",
                 files.png.string().c_str(), stem.c_str(), stem.c_str(), stem.c_str(), dir.string().c_str());
    return files;
  }
  const std::string tmp = detail::temporary_sibling(dir / stem).filename().string();
  const fs::path tmp_png = dir / (tmp + ".png");
  const fs::path tmp_svg = dir / (tmp + ".svg");
  const auto clean = [&] {
    std::error_code ec;
    fs::remove(tmp_png, ec);
    fs::remove(tmp_svg, ec);
  };
  const std::string where =
    "selmask: gnuplot (" + exe->string() + ") on the script '" + files.script.string() + "'";
  int status = 0;
  try {
    status =
      detail::run_in(*exe, dir, {"gnuplot", "-e", "out_stem = " + gp::quote(tmp), "./" + stem + ".gp"});
  } catch (...) {
    clean();
    throw;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    clean();
    throw io_error(where + " failed (" +
                   (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                      : "signal " + std::to_string(WTERMSIG(status))) +
                   "; its messages are above); the data and the script are kept");
  }
  std::error_code ec;
  for (const auto& [from, to] : {std::pair{tmp_png, files.png}, std::pair{tmp_svg, files.svg}}) {
    if (!fs::is_regular_file(from, ec) || fs::file_size(from, ec) == 0) {
      clean();
      throw io_error(where + " ended without writing " + to.filename().string());
    }
    fs::rename(from, to, ec);
    if (ec) {
      clean();
      throw io_error(where + ": renaming its output onto '" + to.string() + "' failed: " + ec.message());
    }
  }
  files.rendered = true;
  return files;
}

// ------------------------------------------------------------------------------------------------
// x–y plots

/// Marker shapes of plot series (filled, except the cross).
enum class marker_shape { none, circle, square, diamond, triangle, cross };

/// One series of a plot: points (x[i], y[i]) drawn with markers and, if `connect`, joined in the
/// given order; points with a non-finite x or y are left out (and break the line). `colour`
/// defaults to the palette entry of the series' position. `lower`/`upper` (empty, or one value per
/// point) add a filled band between them in the series' colour, e.g. the minimum and maximum over
/// several seeds, with the legend entry `band_label` (none when empty); `band_bars` draws it as
/// error bars at every point as well (they show where a point stands alone, where a filled band
/// has no width). A series with neither marker nor line draws its band only.
struct plot_series {
  std::string label{};
  std::vector<double> x{};
  std::vector<double> y{};
  std::optional<rgb> colour{};
  marker_shape marker = marker_shape::circle;
  bool connect = true;
  std::vector<double> lower{};
  std::vector<double> upper{};
  std::string band_label{};
  bool band_bars = false;
};

/// Where the legend goes: below the plot (under the x label, never over the data) or inside the
/// plotting area, in a corner.
enum class legend_position { below, lower_right, lower_left, upper_right, upper_left, none };

/// Everything about a plot except its data. Axis labels name the quantity and its unit. Ranges:
/// `x_min`/`x_max` default to [0, 1] (a fraction of the data kept); a NaN bound is gnuplot's
/// autoscale (from the data, extended to a tic).
struct plot_options {
  std::string title;
  std::string x_label = "fraction of pixels kept (Q)";
  std::string y_label = "test accuracy";
  std::size_t width = 800;
  std::size_t height = 560;
  double x_min = 0.0;
  double x_max = 1.0;
  double y_min = std::numeric_limits<double>::quiet_NaN();
  double y_max = std::numeric_limits<double>::quiet_NaN();
  legend_position legend = legend_position::below;
  bool grid = true;
};

namespace detail {

inline void check_plot(std::span<const plot_series> series, const plot_options& opt) {
  for (const auto& s : series) {
    if (s.x.size() != s.y.size()) {
      throw shape_error("selmask::io::plot_xy: series '" + s.label + "' has " + std::to_string(s.x.size()) +
                        " x values but " + std::to_string(s.y.size()) + " y values");
    }
    if (s.lower.size() != s.upper.size() || (!s.lower.empty() && s.lower.size() != s.x.size())) {
      throw shape_error("selmask::io::plot_xy: the band of series '" + s.label + "' has " +
                        std::to_string(s.lower.size()) + " lower and " + std::to_string(s.upper.size()) +
                        " upper values for " + std::to_string(s.x.size()) + " points");
    }
  }
  for (const auto& [v, name] : {std::pair{opt.x_min, "x_min"}, std::pair{opt.x_max, "x_max"},
                                std::pair{opt.y_min, "y_min"}, std::pair{opt.y_max, "y_max"}}) {
    if (std::isinf(v)) {
      throw value_error(std::string("selmask::io::plot_xy: ") + name + " is infinite");
    }
  }
  if (!(opt.x_min < opt.x_max) && !std::isnan(opt.x_min) && !std::isnan(opt.x_max)) {
    throw value_error("selmask::io::plot_xy: empty x range");
  }
  if (!(opt.y_min < opt.y_max) && !std::isnan(opt.y_min) && !std::isnan(opt.y_max)) {
    throw value_error("selmask::io::plot_xy: empty y range");
  }
}

/// The rows of one series (x y [lower upper]); a single blank line where non-finite points break
/// it, never two in a row (two end a block). Empty when no point is finite.
inline std::string series_rows(const plot_series& s) {
  std::string rows;
  bool gap = false;
  for (std::size_t i = 0; i < s.x.size(); ++i) {
    if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
      gap = !rows.empty();
      continue;
    }
    rows += gap ? "\n" : "";
    gap = false;
    rows += gp::number(s.x[i]) + " " + gp::number(s.y[i]);
    if (!s.lower.empty()) {
      rows += " " + gp::number(s.lower[i]) + " " + gp::number(s.upper[i]);
    }
    rows += "\n";
  }
  return rows;
}

inline int point_type(marker_shape m) {
  switch (m) {
    case marker_shape::square:
      return 5;
    case marker_shape::diamond:
      return 13;
    case marker_shape::triangle:
      return 9;
    case marker_shape::cross:
      return 2;
    case marker_shape::circle:
    case marker_shape::none:
      break;
  }
  return 7;
}

inline std::string legend_setting(legend_position p) {
  switch (p) {
    case legend_position::lower_left:
      return "set key bottom left Left reverse box opaque\n";
    case legend_position::upper_right:
      return "set key top right Left reverse box opaque\n";
    case legend_position::upper_left:
      return "set key top left Left reverse box opaque\n";
    case legend_position::none:
      return "unset key\n";
    case legend_position::lower_right:
      return "set key bottom right Left reverse box opaque\n";
    case legend_position::below:
      break;
  }
  return "set key below Left reverse height 1\n";
}

} // namespace detail

/// The figure of an x–y plot (see `plot_xy`).
inline gnuplot_figure xy_figure(std::span<const plot_series> series, const plot_options& opt = {}) {
  detail::check_plot(series, opt);
  gnuplot_figure fig;
  fig.about = opt.title.empty() ? std::string("an x-y plot") : opt.title;
  fig.width = opt.width;
  fig.height = opt.height;
  fig.data = "# x: " + gp::comment(opt.x_label) + "; y: " + gp::comment(opt.y_label) + "\n";
  std::string blocks; // one block per series with points, two blank lines between blocks
  std::string setup = "set title " + gp::quote(opt.title) + "\nset xlabel " + gp::quote(opt.x_label) +
                      "\nset ylabel " + gp::quote(opt.y_label) + "\n";
  setup += detail::legend_setting(opt.legend);
  setup += opt.grid ? "set grid back lt 1 lc rgb '#dadada' lw 1\n" : "";
  setup += "set style fill transparent solid 0.2 noborder # the bands\n";
  setup += "# one line style per series: colour (lc), line width (lw), marker (pt) and its size (ps)\n";
  std::vector<std::string> bands, lines;
  std::size_t block = 0;
  for (std::size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const std::string rows = detail::series_rows(s);
    const std::string name = gp::comment(!s.label.empty()        ? s.label
                                         : !s.band_label.empty() ? s.band_label
                                                                 : "series " + std::to_string(k + 1));
    if (rows.empty()) {
      fig.data += "# " + name + ": no points\n";
      continue;
    }
    blocks += (block == 0 ? "\n" : "\n\n") + std::string("# index ") + std::to_string(block) + ": " + name +
              (s.lower.empty() ? "; columns x, y\n" : "; columns x, y, band lower, band upper\n") + rows;
    const std::string ls = std::to_string(k + 1);
    const rgb c = s.colour.value_or(colours::palette[k % colours::palette.size()]);
    setup += "set style line " + ls + " lc " + gp::colour(c) + " lw 2 pt " +
             std::to_string(detail::point_type(s.marker)) + " ps 1.3 # " + name + "\n";
    const std::string src = "data index " + std::to_string(block);
    if (!s.lower.empty()) {
      bands.push_back(src + " using 1:3:4 with filledcurves ls " + ls + " " +
                      (s.band_label.empty() ? "notitle" : "title " + gp::quote(s.band_label)));
      if (s.band_bars) {
        bands.push_back(src + " using 1:2:3:4 with yerrorbars ls " + ls + " lw 1 pt 0 notitle");
      }
    }
    const bool points = s.marker != marker_shape::none;
    if (points || s.connect) {
      lines.push_back(src + " using 1:2 with " +
                      (!s.connect ? "points"
                       : points   ? "linespoints"
                                  : "lines") +
                      " ls " + ls + " " + (s.label.empty() ? "notitle" : "title " + gp::quote(s.label)));
    }
    ++block;
  }
  // no data at all: empty axes (gnuplot cannot autoscale nothing)
  const bool empty = bands.empty() && lines.empty();
  const double y_lo = empty && std::isnan(opt.y_min) ? 0.0 : opt.y_min;
  const double y_hi = empty && std::isnan(opt.y_max) ? y_lo + 1.0 : opt.y_max;
  const double x_lo = empty && std::isnan(opt.x_min) ? 0.0 : opt.x_min;
  const double x_hi = empty && std::isnan(opt.x_max) ? x_lo + 1.0 : opt.x_max;
  setup += "set xrange " + gp::range(x_lo, x_hi) + "\nset yrange " + gp::range(y_lo, y_hi) + "\n";
  fig.data += blocks;
  fig.setup = std::move(setup);
  std::string plot = "  plot ";
  if (empty) {
    fig.setup += "unset key\n";
    plot += "NaN notitle";
  }
  bool first = true;
  for (const auto* group : {&bands, &lines}) { // the bands first, under the lines
    for (const auto& p : *group) {
      plot += (first ? "" : ", \\\n       ") + p;
      first = false;
    }
  }
  fig.plot = plot + "\n";
  return fig;
}

/// Draws a plot of `series` (see `plot_options`): writes `NAME.dat` and `NAME.gp` next to
/// `png_path` (`DIR/NAME.png`) and renders `NAME.png` and `NAME.svg` with gnuplot (see
/// `render_figure`). Throws `shape_error` for a series whose x and y (or band) differ in length,
/// `value_error` for an infinite or empty explicit axis range.
inline figure_files plot_xy(const std::filesystem::path& png_path, std::span<const plot_series> series,
                            const plot_options& opt = {}) {
  return render_figure(png_path, xy_figure(series, opt));
}

/// Same, for a braced list of series.
inline figure_files plot_xy(const std::filesystem::path& png_path, std::initializer_list<plot_series> series,
                            const plot_options& opt = {}) {
  return plot_xy(png_path, std::span<const plot_series>(series.begin(), series.size()), opt);
}

} // namespace selmask::io
