#pragma once
/// \file io/csv.hpp
/// CSV output: `csv_cell` (one formatted field), `csv_table` (a whole table, written atomically)
/// and `csv_log` (a file that grows by one flushed row at a time, e.g. one row per epoch).
///
/// Format (RFC 4180): fields separated by ',', rows ended by '\n'; a text field that contains
/// ',', '"', a line break or leading/trailing blanks is quoted, '"' doubled. Numbers: integers
/// in decimal; floating-point values in the shortest form that reads back to the same value
/// (`std::to_chars`), e.g. 0.1f → "0.1", 1e-07 → "1e-07"; NaN → "nan", infinities → "inf",
/// "-inf" (what Python's `float()` and pandas read). `csv_cell::fixed(x, d)` gives d decimals.

#include <array>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <ios>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "atomic_file.hpp"

namespace selmask::io {

/// `s` as a CSV field: quoted (with '"' doubled) only where needed.
inline std::string csv_quote(std::string_view s) {
  const bool needs =
    s.find_first_of(",\"\r\n") != std::string_view::npos ||
    (!s.empty() && (s.front() == ' ' || s.back() == ' ' || s.front() == '\t' || s.back() == '\t'));
  if (!needs) {
    return std::string(s);
  }
  std::string out = "\"";
  for (char c : s) {
    out += c;
    if (c == '"') {
      out += '"';
    }
  }
  return out + "\"";
}

/// One CSV field, formatted when constructed (see the file comment).
class csv_cell {
public:
  csv_cell(std::string_view s) : text_(csv_quote(s)) {}
  csv_cell(const char* s) : text_(csv_quote(s)) {}
  csv_cell(const std::string& s) : text_(csv_quote(s)) {}
  template <std::integral I>
  csv_cell(I v) : text_(std::to_string(v)) {}
  template <std::floating_point F>
  csv_cell(F v) : text_(format(v)) {}

  /// `v` with exactly `decimals` digits after the point (fixed notation).
  template <std::floating_point F>
  static csv_cell fixed(F v, int decimals) {
    csv_cell c(0);
    if (!std::isfinite(v)) {
      c.text_ = format(v);
      return c;
    }
    std::array<char, 512> buf{};
    const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed, decimals);
    c.text_ = r.ec == std::errc{} ? std::string(buf.data(), r.ptr) : format(v);
    return c;
  }

  /// The field as it appears in the file.
  [[nodiscard]] const std::string& text() const noexcept { return text_; }

private:
  template <std::floating_point F>
  static std::string format(F v) {
    if (std::isnan(v)) {
      return "nan";
    }
    if (std::isinf(v)) {
      return v > 0 ? "inf" : "-inf";
    }
    std::array<char, 64> buf{};
    const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
    return std::string(buf.data(), r.ptr);
  }

  std::string text_;
};

namespace detail {

inline std::string csv_line(std::span<const csv_cell> cells) {
  std::string line;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (i != 0) {
      line += ',';
    }
    line += cells[i].text();
  }
  return line + '\n';
}

inline std::string csv_header_line(std::span<const std::string> header) {
  std::string line;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (i != 0) {
      line += ',';
    }
    line += csv_quote(header[i]);
  }
  return line + '\n';
}

inline void check_row(std::string_view who, std::size_t got, std::size_t columns) {
  if (got != columns) {
    throw value_error("selmask::io::" + std::string(who) + ": a row of " + std::to_string(got) +
                      " fields for a header of " + std::to_string(columns) + " columns");
  }
}

} // namespace detail

/// A CSV table built in memory and written in one go (atomically).
class csv_table {
public:
  /// Throws `value_error` for a header without columns.
  explicit csv_table(std::vector<std::string> header) : header_(std::move(header)) {
    if (header_.empty()) {
      throw value_error("selmask::io::csv_table: the header has no columns");
    }
    text_ = detail::csv_header_line(header_);
  }

  /// Appends a row; throws `value_error` unless it has one field per column.
  void add_row(std::span<const csv_cell> cells) {
    detail::check_row("csv_table::add_row", cells.size(), header_.size());
    text_ += detail::csv_line(cells);
    ++rows_;
  }
  void add_row(std::initializer_list<csv_cell> cells) {
    add_row(std::span<const csv_cell>(cells.begin(), cells.size()));
  }

  [[nodiscard]] std::size_t columns() const noexcept { return header_.size(); }
  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  /// The whole file's text.
  [[nodiscard]] const std::string& str() const noexcept { return text_; }
  /// Writes the table to `path`, atomically.
  void save(const std::filesystem::path& path) const { write_file_atomically(path, text_); }

private:
  std::vector<std::string> header_;
  std::string text_;
  std::size_t rows_ = 0;
};

/// How `csv_log` treats an existing file.
enum class csv_log_mode {
  replace, ///< start a new file (header only), replacing any old one atomically
  append   ///< continue an existing file whose header matches (else start one)
};

/// A CSV file that grows by one row per `append`, each row flushed at once (a per-epoch log
/// that survives a crash up to the last finished epoch). The file is opened once.
class csv_log {
public:
  /// Opens (or starts) the log. With `append`, an existing non-empty file must start with the
  /// same header line (`io_error` otherwise), and new rows go after its last row.
  csv_log(const std::filesystem::path& path, std::vector<std::string> header,
          csv_log_mode mode = csv_log_mode::replace)
    : path_(path), columns_(header.size()) {
    const std::string where = "selmask::io::csv_log: '" + path.string() + "': ";
    if (header.empty()) {
      throw value_error(where + "the header has no columns");
    }
    const std::string header_line = detail::csv_header_line(header);
    std::error_code ec;
    const bool has_content =
      std::filesystem::is_regular_file(path, ec) && std::filesystem::file_size(path, ec) > 0 && !ec;
    if (mode == csv_log_mode::append && has_content) {
      std::ifstream is(path, std::ios::binary);
      std::string first;
      std::getline(is, first);
      if (first + '\n' != header_line) {
        throw io_error(where + "cannot append: its header '" + first + "' differs from the log's '" +
                       header_line.substr(0, header_line.size() - 1) + "'");
      }
    } else {
      write_file_atomically(path, header_line);
    }
    os_.open(path, std::ios::binary | std::ios::app);
    if (!os_) {
      throw io_error(where + "cannot be opened for appending");
    }
  }

  /// Appends one row and flushes it; throws `value_error` for a wrong number of fields and
  /// `io_error` when the write fails.
  void append(std::span<const csv_cell> cells) {
    detail::check_row("csv_log::append", cells.size(), columns_);
    const std::string line = detail::csv_line(cells);
    os_.write(line.data(), static_cast<std::streamsize>(line.size()));
    os_.flush();
    if (!os_) {
      throw io_error("selmask::io::csv_log::append: '" + path_.string() + "': write failed");
    }
  }
  void append(std::initializer_list<csv_cell> cells) {
    append(std::span<const csv_cell>(cells.begin(), cells.size()));
  }

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::size_t columns() const noexcept { return columns_; }

private:
  std::filesystem::path path_;
  std::size_t columns_;
  std::ofstream os_;
};

} // namespace selmask::io
