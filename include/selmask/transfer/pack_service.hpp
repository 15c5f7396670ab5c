#pragma once
/// \file transfer/pack_service.hpp
/// `transfer::pack_service`: what the packing server (transfer/server.hpp) answers, without the
/// network — a request (method, target, body) in, a reply (status, headers, body) out. Kept apart
/// from the Beast/Asio code so that the rules below live in one place.
///
/// Why a server that packs: over plain HTTP ranges a scattered selection costs a multipart part
/// (about 100 bytes of framing) per range, more than the whole file for the main job's masks
/// (transfer/wire.hpp). A server that knows the plan sends the payload — exactly the bytes `pack`
/// produces — in one body, for one header block.
///
/// Everything is read under `root` (its canonical path); a path with a `..` component, an
/// absolute path, or one whose canonical path (symbolic links resolved) is outside the root is
/// refused with 403; a missing file with 404. The requests:
///
/// | request                                        | answer                                        |
/// |------------------------------------------------|-----------------------------------------------|
/// | `GET`/`HEAD /<path>` [`Range: bytes=a-b,c-d`]  | the file (200), one range (206, a             |
/// |                                                | `Content-Range`) or several (206,             |
/// |                                                | multipart/byteranges); 416 past the end       |
/// | `GET`/`HEAD /pack?file=F&plan=P`               | `pack(plan P, file F)`: P a plan file         |
/// |                                                | (transfer/plan_file.hpp) under the root       |
/// | `POST /pack?file=F` with the plan JSON as body | the same, for a plan the client sends         |
/// | `POST /select?file=F&plan=P[&first=i][&count=n]` | dynamic masks: the body holds one bitmap per |
/// |                                                | sample i .. i+n−1 (n defaults to the rest)    |
///
/// Several `file=` give the streams of a plan with versions, in version order. A bitmap selects
/// cells of the plan's single any-mask geometry (its kept cells are not used): cell k is bit
/// k mod 8 (least significant first) of byte k / 8, ⌈K/8⌉ bytes per sample, unused bits 0. The
/// answer is, sample after sample, `pack` of that sample with its own mask. The body of a
/// `/select` must be exactly n bitmaps: fewer bytes → 400 (truncated), more → 413 (oversized);
/// over `max_bitmap_bytes` → 413. Any other malformed request (a missing parameter, a bad plan, a
/// file of another size than the plan's storage) → 400 with a one-line message naming what was
/// wrong. Files are mapped read-only (mmap) per request.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../error.hpp"
#include "byteranges.hpp"
#include "pack.hpp"
#include "plan.hpp"
#include "plan_file.hpp"
#include "wire.hpp"

namespace selmask::transfer {

/// Limits of the packing server.
struct server_options {
  std::size_t threads = 4;                  ///< threads running the connections
  std::size_t max_header_bytes = 8192;      ///< request line and headers (431 above)
  std::size_t max_body_bytes = 16u << 20;   ///< request body: a plan's JSON or bitmaps (413 above)
  std::size_t max_bitmap_bytes = 16u << 20; ///< bitmaps of one `/select` (413 above)
  std::size_t idle_timeout_ms = 30000;      ///< a kept-alive connection with no request is closed
};

/// What the service answers: `length` is the body's size (also for HEAD, whose body is empty).
struct service_reply {
  unsigned status = 200;
  std::string content_type = "application/octet-stream";
  std::string content_range; ///< for 206 and 416
  std::string body;
  std::size_t length = 0;
};

/// A request the service refuses: an HTTP status (4xx) and a message for the client.
class request_error : public error {
public:
  request_error(unsigned status, const std::string& message) : error(message), status_(status) {}
  [[nodiscard]] unsigned status() const noexcept { return status_; }

private:
  unsigned status_;
};

namespace detail {

/// A file mapped read-only for the duration of one request.
class mapped_file {
public:
  explicit mapped_file(const std::filesystem::path& p) {
    fd_ = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd_ < 0 || ::fstat(fd_, &st) != 0) {
      close();
      throw request_error(404, "cannot open '" + p.filename().string() + "'");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
      if (m == MAP_FAILED) {
        close();
        throw request_error(404, "cannot map '" + p.filename().string() + "'");
      }
      data_ = static_cast<const std::byte*>(m);
    }
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() { close(); }
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

private:
  void close() noexcept {
    if (data_ != nullptr) {
      ::munmap(const_cast<std::byte*>(data_), size_);
      data_ = nullptr;
    }
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  int fd_ = -1;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/// `%XX` decoded (and `+` as a space in a query); 400 for a bad escape or a NUL.
inline std::string percent_decode(std::string_view s, bool query) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      const int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
        throw request_error(400, "bad percent escape in '" + std::string(s) + "'");
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += query && s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

/// The parameters of a query string, in order, decoded.
inline std::vector<std::pair<std::string, std::string>> parse_query(std::string_view q) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!q.empty()) {
    const std::size_t amp = q.find('&');
    const std::string_view item = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (item.empty()) {
      continue;
    }
    const std::size_t eq = item.find('=');
    out.emplace_back(percent_decode(item.substr(0, eq), true), eq == std::string_view::npos
                                                                 ? std::string()
                                                                 : percent_decode(item.substr(eq + 1), true));
  }
  return out;
}

inline std::size_t parse_count(const std::string& v, const char* name) {
  const auto n = parse_decimal(std::string_view(v));
  if (!n) {
    throw request_error(400, std::string("parameter '") + name + "' is not a number: '" + v + "'");
  }
  return *n;
}

} // namespace detail

class pack_service {
public:
  /// Serves `root` (which must be a directory); `opt` gives the limits.
  explicit pack_service(const std::filesystem::path& root, server_options opt = {}) : opt_(opt) {
    std::error_code ec;
    root_ = std::filesystem::canonical(root, ec);
    if (ec || !std::filesystem::is_directory(root_)) {
      throw io_error("selmask::transfer::pack_service: the root '" + root.string() + "' is not a directory" +
                     (ec ? " (" + ec.message() + ")" : std::string()));
    }
    std::random_device rd;
    const std::uint64_t draw = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    const std::string digits = std::to_string(draw);
    boundary_ = std::string(20 - digits.size(), '0') + digits; // of a fixed length, as the framing
  }

  [[nodiscard]] const std::filesystem::path& root() const noexcept { return root_; }
  [[nodiscard]] const server_options& options() const noexcept { return opt_; }

  /// The reply to one request. Never throws: a refused request is a 4xx reply whose body is
  /// the message (text/plain), anything unexpected a 500.
  service_reply handle(std::string_view method, std::string_view target, std::string_view range,
                       std::string_view body) const {
    try {
      const std::size_t qm = target.find('?');
      const std::string path = detail::percent_decode(target.substr(0, qm), false);
      const auto query = detail::parse_query(qm == std::string_view::npos ? "" : target.substr(qm + 1));
      const bool head = method == "HEAD";
      if (path == "/pack") {
        if (method != "GET" && method != "HEAD" && method != "POST") {
          throw request_error(405, "method " + std::string(method) + " on /pack (GET, HEAD or POST)");
        }
        return pack_static(query, method == "POST" ? body : std::string_view(), head);
      }
      if (path == "/select") {
        if (method != "POST") {
          throw request_error(405, "method " + std::string(method) + " on /select (POST with bitmaps)");
        }
        return pack_bitmaps(query, body);
      }
      if (method != "GET" && method != "HEAD") {
        throw request_error(405, "method " + std::string(method) + " on a file (GET or HEAD)");
      }
      if (path.empty() || path.front() != '/') {
        throw request_error(400, "the target '" + std::string(target) + "' is not an absolute path");
      }
      return serve_file(resolve(path.substr(1), "path"), range, head);
    } catch (const request_error& e) {
      return refusal(e.status(), e.what());
    } catch (const selmask::error& e) {
      return refusal(400, e.what());
    } catch (const std::exception& e) {
      return refusal(500, std::string("internal error: ") + e.what());
    }
  }

  /// The canonical path of `rel` (relative to the root); `what` names it in messages.
  [[nodiscard]] std::filesystem::path resolve(const std::string& rel, const std::string& what) const {
    if (rel.empty()) {
      throw request_error(400, what + " is empty");
    }
    if (rel.front() == '/') {
      throw request_error(403, what + " '" + rel + "' is absolute (paths are relative to the root)");
    }
    std::string_view rest = rel;
    while (!rest.empty()) {
      const std::size_t slash = rest.find('/');
      if (rest.substr(0, slash) == "..") {
        throw request_error(403, what + " '" + rel + "' has a '..' component (nothing outside the root)");
      }
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    }
    std::error_code ec;
    const std::filesystem::path c = std::filesystem::canonical(root_ / rel, ec);
    if (ec) {
      throw request_error(404, "no " + what + " '" + rel + "' under the root");
    }
    const auto [r, p] = std::mismatch(root_.begin(), root_.end(), c.begin(), c.end());
    if (r != root_.end()) {
      throw request_error(403, what + " '" + rel + "' leads outside the root (a symbolic link)");
    }
    if (!std::filesystem::is_regular_file(c, ec)) {
      throw request_error(404, what + " '" + rel + "' is not a regular file");
    }
    return c;
  }

private:
  static service_reply refusal(unsigned status, std::string message) {
    service_reply r;
    r.status = status;
    r.content_type = "text/plain";
    r.body = "selmask pack server: " + std::move(message) + "\n";
    r.length = r.body.size();
    return r;
  }

  /// The ranges of a `Range: bytes=a-b,c-,...` value within a resource of `size` bytes, as
  /// first/last pairs in the order asked; empty when the value is not such a list (the header is
  /// then ignored, as RFC 9110 allows). A range starting at or past the end is dropped; `*none`
  /// says that every range was (416).
  static std::vector<std::pair<std::size_t, std::size_t>> parse_ranges(std::string_view range,
                                                                       std::size_t size, bool* none) {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    *none = false;
    if (range.substr(0, std::min<std::size_t>(range.size(), 6)) != "bytes=") {
      return out;
    }
    std::string_view rest = range.substr(6);
    std::size_t asked = 0;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      const std::string_view v = detail::trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      const std::size_t dash = v.find('-');
      const auto a = dash == std::string_view::npos ? std::nullopt : detail::parse_decimal(v.substr(0, dash));
      const auto z = dash == std::string_view::npos || dash + 1 == v.size()
                       ? std::optional<std::size_t>(std::numeric_limits<std::size_t>::max())
                       : detail::parse_decimal(v.substr(dash + 1));
      if (!a || !z || *z < *a) { // suffix ranges (-n) and malformed ones: ignore the header
        return {};
      }
      ++asked;
      if (*a < size) {
        out.emplace_back(*a, std::min(*z, size - 1));
      }
    }
    *none = asked > 0 && out.empty();
    return out;
  }

  /// A file, one range of it (206 with a Content-Range) or several (206 multipart/byteranges,
  /// the parts in the order asked, framed as nginx frames them, with this service's boundary).
  [[nodiscard]] service_reply serve_file(const std::filesystem::path& p, std::string_view range,
                                         bool head) const {
    const detail::mapped_file f(p);
    const std::span<const std::byte> b = f.bytes();
    const auto data = [&](std::size_t first, std::size_t last) {
      return std::string_view(reinterpret_cast<const char*>(b.data() + first), last - first + 1);
    };
    const std::string size = std::to_string(b.size());
    service_reply r;
    bool none = false;
    const auto ranges = parse_ranges(range, b.size(), &none);
    if (none) {
      r.status = 416;
      r.content_range = "bytes */" + size;
      return r;
    }
    if (ranges.empty()) {
      r.length = b.size();
      if (!head && !b.empty()) {
        r.body = data(0, b.size() - 1);
      }
      return r;
    }
    r.status = 206;
    if (ranges.size() == 1) {
      const auto [first, last] = ranges[0];
      r.content_range = "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" + size;
      r.body = data(first, last);
    } else {
      r.content_type = "multipart/byteranges; boundary=" + boundary_;
      for (const auto& [first, last] : ranges) {
        r.body += "\r\n--" + boundary_ +
                  "\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes " +
                  std::to_string(first) + "-" + std::to_string(last) + "/" + size + "\r\n\r\n";
        r.body += data(first, last);
      }
      r.body += "\r\n--" + boundary_ + "--\r\n";
    }
    r.length = r.body.size();
    if (head) {
      r.body.clear();
    }
    return r;
  }

  [[nodiscard]] std::vector<std::string> files_of(
    const std::vector<std::pair<std::string, std::string>>& q) const {
    std::vector<std::string> files;
    for (const auto& [k, v] : q) {
      if (k == "file") {
        files.push_back(v);
      } else if (k != "plan" && k != "first" && k != "count") {
        throw request_error(400, "unknown parameter '" + k + "' (file, plan, first, count)");
      }
    }
    if (files.empty()) {
      throw request_error(400, "no file= parameter (the stored data to pack from)");
    }
    return files;
  }

  [[nodiscard]] plan named_plan(const std::vector<std::pair<std::string, std::string>>& q,
                                std::string_view body) const {
    std::string name;
    for (const auto& [k, v] : q) {
      if (k == "plan") {
        name = v;
      }
    }
    if (!name.empty()) {
      const std::filesystem::path p = resolve(name, "plan");
      try {
        return load_plan(p);
      } catch (const selmask::error& e) {
        throw request_error(400, "plan '" + name + "' is not a valid plan file: " + e.what());
      }
    }
    if (body.empty()) {
      throw request_error(400, "no plan: name a plan file (plan=) or send the plan's JSON as the body");
    }
    return plan_from_json(body, "the request body");
  }

  /// The mapped files of `names`, checked against the plan's streams and storage size.
  [[nodiscard]] std::vector<std::unique_ptr<detail::mapped_file>> open_streams(
    const std::vector<std::string>& names, const plan& p) const {
    if (names.size() != p.streams()) {
      throw request_error(400, std::to_string(names.size()) + " file= given, the plan reads " +
                                 std::to_string(p.streams()) + " streams (one file per version)");
    }
    std::vector<std::unique_ptr<detail::mapped_file>> out;
    for (const std::string& n : names) {
      out.push_back(std::make_unique<detail::mapped_file>(resolve(n, "file")));
      if (out.back()->bytes().size() != p.source().stream_bytes()) {
        throw request_error(400, "file '" + n + "' has " + std::to_string(out.back()->bytes().size()) +
                                   " bytes, the plan's storage holds " +
                                   std::to_string(p.source().stream_bytes()) + " (" +
                                   std::to_string(p.source().samples) + " samples of " +
                                   p.source().sample.str() + " " + dtype_name(p.source().type) + ")");
      }
    }
    return out;
  }

  [[nodiscard]] service_reply pack_static(const std::vector<std::pair<std::string, std::string>>& q,
                                          std::string_view body, bool head) const {
    const std::vector<std::string> names = files_of(q);
    const plan p = named_plan(q, body);
    const auto files = open_streams(names, p);
    service_reply r;
    r.length = p.payload_bytes();
    if (!head) {
      std::vector<std::span<const std::byte>> streams;
      for (const auto& f : files) {
        streams.push_back(f->bytes());
      }
      r.body.resize(p.payload_bytes());
      pack(p, streams, std::as_writable_bytes(std::span<char>(r.body)));
    }
    return r;
  }

  [[nodiscard]] service_reply pack_bitmaps(const std::vector<std::pair<std::string, std::string>>& q,
                                           std::string_view body) const {
    const std::vector<std::string> names = files_of(q);
    bool named = false;
    std::size_t first = 0;
    std::optional<std::size_t> count;
    for (const auto& [k, v] : q) {
      named = named || k == "plan";
      if (k == "first") {
        first = detail::parse_count(v, "first");
      } else if (k == "count") {
        count = detail::parse_count(v, "count");
      }
    }
    if (!named) {
      throw request_error(400, "/select needs plan= (a plan file giving the storage and the cells)");
    }
    const plan tmpl = named_plan(q, {});
    if (tmpl.streams() != 1 || tmpl.masks().size() != 1 || tmpl.masks()[0].is_xor()) {
      throw request_error(400, "bitmaps need a plan of one stream with exactly one any-mask");
    }
    const auto files = open_streams(names, tmpl);
    const storage& s = tmpl.source();
    if (first > s.samples) {
      throw request_error(400, "first=" + std::to_string(first) + " past the " + std::to_string(s.samples) +
                                 " samples");
    }
    const std::size_t n = count.value_or(s.samples - first);
    if (n > s.samples - first) {
      throw request_error(400, "samples " + std::to_string(first) + " .. " + std::to_string(first + n - 1) +
                                 " past the " + std::to_string(s.samples) + " samples");
    }
    const cell_geometry& g = tmpl.masks()[0].geometry;
    const std::size_t cells = g.cells();
    const std::size_t per = (cells + 7) / 8;
    if (body.size() > opt_.max_bitmap_bytes) {
      throw request_error(413, "bitmaps of " + std::to_string(body.size()) + " bytes, the limit is " +
                                 std::to_string(opt_.max_bitmap_bytes));
    }
    const std::string sizes = std::to_string(n) + " samples x " + std::to_string(per) + " bytes (" +
                              std::to_string(cells) + " cells)";
    if (body.size() < n * per) {
      throw request_error(400, "truncated bitmaps: " + std::to_string(body.size()) + " bytes, expected " +
                                 std::to_string(n * per) + " = " + sizes);
    }
    if (body.size() > n * per) {
      throw request_error(413, "oversized bitmaps: " + std::to_string(body.size()) + " bytes, expected " +
                                 std::to_string(n * per) + " = " + sizes);
    }
    return select_samples(tmpl, files[0]->bytes(), first, n, body);
  }

  /// `pack` of samples first .. first+n−1, each with the mask of its bitmap.
  static service_reply select_samples(const plan& tmpl, std::span<const std::byte> data, std::size_t first,
                                      std::size_t n, std::string_view bits) {
    storage one = tmpl.source();
    one.samples = 1;
    const cell_geometry& g = tmpl.masks()[0].geometry;
    const std::size_t cells = g.cells();
    const std::size_t per = (cells + 7) / 8;
    const std::size_t sample_bytes = one.stream_bytes();
    service_reply r;
    std::vector<float> keep(cells);
    for (std::size_t i = 0; i < n; ++i) {
      const auto* b = reinterpret_cast<const unsigned char*>(bits.data() + i * per);
      for (std::size_t k = 0; k < cells; ++k) {
        keep[k] = (b[k / 8] >> (k % 8)) & 1u ? 1.0f : 0.0f;
      }
      if (cells % 8 != 0 && (b[per - 1] >> (cells % 8)) != 0) {
        throw request_error(400, "bitmap of sample " + std::to_string(first + i) +
                                   ": bits past the last cell are set (the plan has " +
                                   std::to_string(cells) + " cells)");
      }
      const plan p = plan::from_masks({hard_mask{g, keep}}, one);
      const std::size_t at = r.body.size();
      r.body.resize(at + p.payload_bytes());
      const std::span<const std::byte> sample[1] = {data.subspan((first + i) * sample_bytes, sample_bytes)};
      pack(p, std::span<const std::span<const std::byte>>(sample),
           std::as_writable_bytes(std::span<char>(r.body)).subspan(at));
    }
    r.length = r.body.size();
    return r;
  }

  std::filesystem::path root_;
  server_options opt_;
  std::string boundary_; ///< of multipart answers: 20 digits drawn when the service starts
};

} // namespace selmask::transfer
