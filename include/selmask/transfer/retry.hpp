#pragma once
/// \file transfer/retry.hpp
/// What the HTTP client (transfer/http.hpp) needs to survive a bad network, with no network code
/// (so it is tested without a server): the retry policy and its decisions (exponential backoff
/// with jitter, bounded by attempts and by time), `Retry-After` values (seconds and HTTP-date),
/// the error of a transfer that failed for good (`transfer_error`), the parts of a response that
/// ended early (`salvage_parts`), and the bookkeeping of the bytes still missing from a range
/// request (`pending_ranges`), so that a retry asks for those bytes only.
///
/// The policy (`retry_policy`, defaults below): after a failed attempt the client waits
/// d = min(max_delay, base_delay·2^(k−1)) before attempt k+1, less a random fraction of at most
/// `jitter`·d (d·(1 − jitter·u), u uniform in [0, 1)), so that many clients that failed together do
/// not come back together. A `Retry-After` the server sent replaces d when longer (it is not cut
/// to `max_delay`: the server said when). The client gives up when `max_attempts` attempts have
/// been made, or when the next attempt would start later than `max_retry_time` after the first
/// one began (a `Retry-After` beyond that ends the retries at once). Both bounds hold per request:
/// one range request of a plan, with the requests that fetch its missing bytes again.
///
/// Transient, so retried (transfer/http.hpp): connections refused, reset or closed early, a body
/// cut short, timeouts, HTTP/2 stream errors, HTTP 408, 429 and 5xx except 501 and 505. Final at
/// once: other statuses, a 200 to a range request (the server ignores Range: the body is refused
/// at its first byte rather than sliced, which would cost the whole file), a `Content-Range` that
/// holds none of the ranges asked for or names another size, a malformed body, an untrusted
/// certificate or unusable CA file.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../error.hpp"
#include "byteranges.hpp"
#include "plan.hpp"
#include "wire.hpp"

namespace selmask::transfer {

/// When and how often a failed request is tried again (see the file comment). The defaults
/// allow 4 retries waiting about 0.2, 0.4, 0.8 and 1.6 s (less the jitter), within 30 s.
struct retry_policy {
  int max_attempts = 5; ///< attempts per request, the first included; 1: never retry
  std::chrono::milliseconds base_delay{200};
  std::chrono::milliseconds max_delay{5000};       ///< cap of the backoff (not of a Retry-After)
  std::chrono::milliseconds max_retry_time{30000}; ///< no attempt starts later than this after the first
  double jitter = 0.5; ///< fraction of each delay that is random, in [0, 1]; 0: exact delays

  /// No retries: every failure is final.
  static retry_policy none() { return retry_policy{.max_attempts = 1}; }

  /// Throws `value_error` naming the field that is out of its domain.
  void validate() const {
    const std::string where = "selmask::transfer::retry_policy: ";
    if (max_attempts < 1) {
      throw value_error(where + "max_attempts must be at least 1, got " + std::to_string(max_attempts));
    }
    if (base_delay.count() < 0 || max_delay.count() < 0 || max_retry_time.count() < 0) {
      throw value_error(where + "base_delay, max_delay and max_retry_time must not be negative, got " +
                        std::to_string(base_delay.count()) + ", " + std::to_string(max_delay.count()) +
                        " and " + std::to_string(max_retry_time.count()) + " ms");
    }
    if (!(jitter >= 0.0 && jitter <= 1.0)) {
      throw value_error(where + "jitter must be in [0, 1], got " + std::to_string(jitter));
    }
  }
};

/// A transfer that failed for good: a failure that is not transient, or transient failures until
/// the retry policy gave up. The message says all; the fields are for programs.
class transfer_error : public io_error {
public:
  transfer_error(const std::string& what, std::string url, std::string range, long status, int attempts)
    : io_error(what), url_(std::move(url)), range_(std::move(range)), status_(status), attempts_(attempts) {}
  [[nodiscard]] const std::string& url() const noexcept { return url_; }
  /// The bytes still missing ("bytes=a-b,…", shortened), or empty for a request of a whole resource.
  [[nodiscard]] const std::string& range() const noexcept { return range_; }
  /// The last HTTP status received, 0 when none (the connection failed first).
  [[nodiscard]] long status() const noexcept { return status_; }
  /// Attempts made, the first included.
  [[nodiscard]] int attempts() const noexcept { return attempts_; }

private:
  std::string url_, range_;
  long status_ = 0;
  int attempts_ = 0;
};

/// HTTP statuses worth another attempt: 408 Request Timeout, 429 Too Many Requests and the 5xx
/// server errors except 501 Not Implemented and 505 HTTP Version Not Supported (which will not
/// change on their own).
constexpr bool retryable_status(long status) noexcept {
  return status == 408 || status == 429 || (status >= 500 && status <= 599 && status != 501 && status != 505);
}

namespace detail {

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

} // namespace detail

/// The time of an HTTP-date (RFC 9110 §5.6.7) in any of its three forms: IMF-fixdate
/// ("Sun, 06 Nov 1994 08:49:37 GMT"), RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT"; a two-digit
/// year below 70 is 20xx) and asctime ("Sun Nov  6 08:49:37 1994"); nothing when `s` is none.
inline std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view s) {
  static constexpr std::string_view months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                "jul", "aug", "sep", "oct", "nov", "dec"};
  std::optional<std::size_t> day, year, month, hh, mm, ss;
  std::size_t tokens = 0;
  while (!s.empty()) {
    const std::size_t start = s.find_first_not_of(" ,-\t");
    if (start == std::string_view::npos) {
      break;
    }
    s.remove_prefix(start);
    const std::size_t end = std::min(s.find_first_of(" ,-\t"), s.size());
    const std::string_view t = s.substr(0, end);
    s.remove_prefix(end);
    ++tokens;
    if (t.size() == 8 && t[2] == ':' && t[5] == ':') {
      hh = detail::parse_decimal(t.substr(0, 2));
      mm = detail::parse_decimal(t.substr(3, 2));
      ss = detail::parse_decimal(t.substr(6, 2));
      if (!hh || !mm || !ss) {
        return std::nullopt;
      }
    } else if (const auto n = detail::parse_decimal(t)) {
      if (!day) {
        day = *n; // the day comes before the year in all three forms
      } else if (!year) {
        year = t.size() == 2 ? (*n < 70 ? 2000 + *n : 1900 + *n) : *n;
      } else {
        return std::nullopt;
      }
    } else if (t.size() == 3 && !month) {
      for (std::size_t m = 0; m < 12; ++m) {
        if (detail::iequals(t, months[m])) {
          month = m + 1;
        }
      }
    }
  }
  if (!day || !year || !month || !hh || tokens < 5 || *day < 1 || *day > 31 || *hh > 23 || *mm > 59 ||
      *ss > 60 || *year < 1970 || *year > 9999) {
    return std::nullopt;
  }
  const std::int64_t days = detail::days_from_civil(
    static_cast<std::int64_t>(*year), static_cast<unsigned>(*month), static_cast<unsigned>(*day));
  const std::int64_t secs = days * 86400 + static_cast<std::int64_t>(*hh * 3600 + *mm * 60 + *ss);
  return std::chrono::system_clock::time_point(std::chrono::seconds(secs));
}

/// The wait a `Retry-After` value asks for: delay-seconds ("120") or an HTTP-date (then the time
/// from `now` until it, 0 for a date past). Nothing for a value that is neither (it is ignored:
/// the backoff applies).
inline std::optional<std::chrono::milliseconds> parse_retry_after(
  std::string_view value, std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
  const std::string_view v = detail::trim(value);
  if (const auto secs = detail::parse_decimal(v)) {
    constexpr std::size_t cap = 10u * 365 * 86400; // a longer wait is as good as forever
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(*secs, cap)) * 1000);
  }
  if (const auto when = parse_http_date(v)) {
    if (*when <= now) {
      return std::chrono::milliseconds(0);
    }
    return std::chrono::ceil<std::chrono::milliseconds>(*when - now);
  }
  return std::nullopt;
}

/// Whether to try again after a failed attempt, and after how long.
struct retry_decision {
  bool retry = false;
  std::chrono::milliseconds delay{0};
  std::string why_not; ///< when not: which bound ended the retries
};

/// The decision after `attempts` attempts (≥ 1) of which the last failed, `elapsed` after the
/// first began; `retry_after` is the server's wish, `u` a uniform draw in [0, 1) for the jitter.
inline retry_decision next_retry(const retry_policy& p, int attempts, std::chrono::milliseconds elapsed,
                                 std::optional<std::chrono::milliseconds> retry_after, double u) {
  using ms = std::chrono::milliseconds;
  retry_decision d;
  if (attempts >= p.max_attempts) {
    d.why_not = "the retry policy allows " + std::to_string(p.max_attempts) + " attempts";
    return d;
  }
  const int k = std::min(attempts - 1, 30);
  const double backoff = std::min(static_cast<double>(p.max_delay.count()),
                                  static_cast<double>(p.base_delay.count()) * (1ll << k));
  ms delay(static_cast<std::int64_t>(backoff * (1.0 - p.jitter * std::clamp(u, 0.0, 1.0))));
  if (retry_after && *retry_after > delay) {
    delay = *retry_after;
  }
  if (elapsed + delay > p.max_retry_time) {
    d.why_not = (retry_after && *retry_after == delay ? "the server asked to wait " : "the next wait is ") +
                std::to_string(delay.count()) + " ms, past the retry time of " +
                std::to_string(p.max_retry_time.count()) + " ms (" + std::to_string(elapsed.count()) +
                " ms spent)";
    return d;
  }
  d.retry = true;
  d.delay = delay;
  return d;
}

/// The outcome of one attempt of a request.
struct attempt_result {
  enum class kind { done, transient, permanent };
  kind k = kind::done;
  std::string message; ///< what failed
  long status = 0;     ///< the HTTP status, 0 when none came
  std::optional<std::chrono::milliseconds> retry_after;
};

/// Runs `attempt()` (returning an `attempt_result`) until it is done, waiting between attempts as
/// `policy` says (jitter drawn from `rng`; each retry adds 1 to `retries`). Throws
/// `transfer_error` — message: `what()`, the failure, the attempts and the time spent — when an
/// attempt fails for good or the policy gives up; `range()` names what is still missing.
template <class What, class Range, class Attempt>
void retry_until_done(const retry_policy& policy, std::mt19937_64& rng, std::size_t& retries,
                      const std::string& url, What&& what, Range&& range, Attempt&& attempt) {
  const auto start = std::chrono::steady_clock::now();
  for (int attempts = 1;; ++attempts) {
    const attempt_result a = attempt();
    if (a.k == attempt_result::kind::done) {
      return;
    }
    const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    const std::string tries = std::to_string(attempts) + (attempts == 1 ? " attempt" : " attempts") + " in " +
                              std::to_string(elapsed.count()) + " ms";
    if (a.k == attempt_result::kind::permanent) {
      throw transfer_error(what() + a.message + " (" + tries + ")", url, range(), a.status, attempts);
    }
    const retry_decision d =
      next_retry(policy, attempts, elapsed, a.retry_after, std::uniform_real_distribution<double>()(rng));
    if (!d.retry) {
      throw transfer_error(what() + a.message + "; gave up after " + tries + ": " + d.why_not, url, range(),
                           a.status, attempts);
    }
    std::this_thread::sleep_for(d.delay);
    retries += 1;
  }
}

/// How many of `ask`'s first ranges fit a `Range` value ("bytes=" not counted) of at most
/// `limit` characters; at least 1.
inline std::size_t ranges_fitting(std::span<const byte_range> ask, std::size_t limit) noexcept {
  std::size_t chars = 0, n = 0;
  for (const byte_range& r : ask) {
    chars += (n > 0 ? 1 : 0) + decimal_digits(r.offset) + 1 + decimal_digits(r.offset + r.length - 1);
    if (chars > limit) {
      break;
    }
    ++n;
  }
  return n > 0 ? n : 1;
}

/// Throws `io_error` (message: `what` and the reason) unless `h` is the head of a 206 answer to a
/// range request: a 200 (the server ignored Range; its body is refused), a 416 (with the server's
/// size, and the plan's when `know_size`), any other status.
inline void check_range_status(const response_head& h, const std::string& what, std::size_t expected_size,
                               bool know_size) {
  if (h.status == 206) {
    return;
  }
  if (h.status == 200) {
    throw io_error(what + "the server ignored the Range request and answered 200 with the whole "
                          "resource; the download was aborted (the server must support byte ranges)");
  }
  if (h.status == 416) {
    std::string size = "unknown";
    const std::string_view cr = detail::trim(h.content_range);
    if (const std::size_t slash = cr.find('/'); slash != std::string_view::npos) {
      size = std::string(cr.substr(slash + 1));
    }
    throw io_error(what + "HTTP 416 Range Not Satisfiable: the server's resource has " + size + " bytes" +
                   (know_size ? ", the plan expects " + std::to_string(expected_size) +
                                  " (truncated file, or a plan for other data)"
                              : std::string()));
  }
  throw io_error(what + "HTTP " + std::to_string(h.status) + " (expected 206 Partial Content)");
}

/// A part of a response body as received: its `Content-Range` (`declared`) and how many of its
/// data bytes arrived (`available`: all of them unless the body ended early).
struct received_part {
  content_range declared;
  std::size_t data_offset = 0;
  std::size_t available = 0;
};

/// The parts of a 206 body that ended early (a connection closed or a timeout mid-body), with
/// what arrived of each: the complete parts and the beginning of the part cut off. `h` is the
/// response's head, `resource_bytes` the size the caller knows. Throws `io_error` when what did
/// arrive is malformed (not a truncation) or names another resource size: then nothing in it can
/// be trusted.
inline std::vector<received_part> salvage_parts(const response_head& h, std::string_view body,
                                                std::size_t resource_bytes) {
  std::vector<received_part> parts;
  const auto keep = [&](const content_range& cr, std::size_t at) {
    if (!cr.total || *cr.total != resource_bytes) {
      throw io_error("a part names a resource of " + (cr.total ? std::to_string(*cr.total) : "'*'") +
                     " bytes, the plan expects " + std::to_string(resource_bytes));
    }
    parts.push_back({cr, at, std::min(cr.length(), body.size() - std::min(at, body.size()))});
    return parts.back().available == cr.length();
  };
  const auto boundary = multipart_boundary(h.content_type);
  if (!boundary) {
    if (h.content_range.empty()) {
      throw io_error("a 206 response without Content-Range or multipart body");
    }
    const content_range cr = parse_content_range(h.content_range);
    if (body.size() > cr.length()) {
      throw io_error("a body of " + std::to_string(body.size()) + " bytes for Content-Range " +
                     h.content_range);
    }
    keep(cr, 0);
    return parts;
  }
  const std::string delim = "--" + *boundary;
  std::size_t pos = body.find(delim);
  while (pos != std::string_view::npos && pos + delim.size() + 2 <= body.size()) {
    pos += delim.size();
    if (body.substr(pos, 2) == "--") {
      break;
    }
    pos = std::min(body.find_first_not_of(" \t", pos), body.size());
    if (body.size() - pos < 2) {
      break; // cut off in the padding
    }
    if (body.substr(pos, 2) != "\r\n") {
      throw io_error("malformed multipart body: no CRLF after the delimiter at byte " + std::to_string(pos));
    }
    const std::size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) {
      break; // cut off in a part's headers
    }
    std::optional<content_range> range;
    for (std::string_view hs = body.substr(pos + 2, head_end - pos); !hs.empty();) {
      const std::size_t eol = std::min(hs.find("\r\n"), hs.size());
      const std::string_view line = hs.substr(0, eol);
      hs.remove_prefix(std::min(eol + 2, hs.size()));
      const std::size_t colon = line.find(':');
      if (colon != std::string_view::npos &&
          detail::iequals(detail::trim(line.substr(0, colon)), "content-range")) {
        range = parse_content_range(line.substr(colon + 1));
      }
    }
    if (!range) {
      throw io_error("part " + std::to_string(parts.size()) + " has no Content-Range header");
    }
    if (!keep(*range, head_end + 4)) {
      break; // cut off in this part's data
    }
    pos = head_end + 4 + range->length();
    if (body.size() - pos < 2 + delim.size()) {
      break; // cut off before the next delimiter: this part is whole
    }
    if (body.substr(pos, 2 + delim.size()) != "\r\n" + delim) {
      throw io_error("part " + std::to_string(parts.size() - 1) +
                     " is not followed by a delimiter: its data are longer than its Content-Range says");
    }
    pos += 2;
  }
  return parts;
}

/// The bytes of one range request still to be delivered: the wanted ranges (or what is left of
/// them), each with its place in the output, and the asked ranges that hold them. A retry asks,
/// per asked range, from its first missing byte to its last (`next_ask`); what a response
/// delivers is copied in and crossed off (`fill`).
class pending_ranges {
public:
  /// `asked` ascending and disjoint; each of `wanted` (ascending) inside one of them; `dst` takes
  /// the wanted bytes one range after another.
  pending_ranges(std::span<const byte_range> asked, std::span<const byte_range> wanted, std::byte* dst)
    : asked_(asked.begin(), asked.end()) {
    std::size_t g = 0;
    for (const byte_range& w : wanted) {
      while (g < asked_.size() && asked_[g].offset + asked_[g].length < w.offset + w.length) {
        ++g;
      }
      if (g == asked_.size() || w.offset < asked_[g].offset) {
        throw value_error("selmask::transfer::pending_ranges: wanted bytes " + std::to_string(w.offset) +
                          "-" + std::to_string(w.offset + w.length - 1) + " are in no asked range");
      }
      pieces_.push_back({w, dst, g});
      dst += w.length;
    }
  }

  [[nodiscard]] bool empty() const noexcept { return pieces_.empty(); }
  [[nodiscard]] std::size_t missing_bytes() const noexcept {
    std::size_t n = 0;
    for (const piece& p : pieces_) {
      n += p.file.length;
    }
    return n;
  }

  /// The ranges to ask for next: per asked range with bytes missing, from the first missing byte
  /// to the last (holes between wanted ranges are read over as the first request did).
  [[nodiscard]] std::vector<byte_range> next_ask() const {
    std::vector<byte_range> out;
    std::size_t group = asked_.size();
    for (const piece& p : pieces_) {
      if (p.group != group || out.empty()) {
        out.push_back(p.file);
        group = p.group;
      } else {
        out.back().length = p.file.offset + p.file.length - out.back().offset;
      }
    }
    return out;
  }

  /// Throws `io_error` unless each part's declared range holds one of `ask` (ascending; a server
  /// may merge ranges, never move them) and, for a `complete` response, each of `ask` lies inside
  /// a part.
  static void check_parts(std::span<const received_part> parts, std::span<const byte_range> ask,
                          bool complete) {
    const auto inside = [](const byte_range& r, const content_range& c) {
      return c.first <= r.offset && r.offset + r.length - 1 <= c.last;
    };
    for (const received_part& p : parts) {
      // the first asked range at or after the part's start is inside it if any is
      const auto it = std::lower_bound(ask.begin(), ask.end(), p.declared.first,
                                       [](const byte_range& r, std::size_t v) { return r.offset < v; });
      if (it == ask.end() || !inside(*it, p.declared)) {
        throw io_error("the server answered with Content-Range bytes " + std::to_string(p.declared.first) +
                       "-" + std::to_string(p.declared.last) +
                       ", which holds none of the ranges asked for (a wrong Content-Range)");
      }
    }
    if (!complete) {
      return;
    }
    std::vector<content_range> declared;
    for (const received_part& p : parts) {
      declared.push_back(p.declared);
    }
    std::sort(declared.begin(), declared.end(),
              [](const content_range& x, const content_range& y) { return x.first < y.first; });
    for (const byte_range& r : ask) {
      const auto it = std::upper_bound(declared.begin(), declared.end(), r.offset,
                                       [](std::size_t v, const content_range& c) { return v < c.first; });
      if ((it == declared.begin() || !inside(r, *(it - 1))) &&
          std::none_of(declared.begin(), declared.end(),
                       [&](const content_range& c) { return inside(r, c); })) {
        throw io_error("the response does not contain bytes " + std::to_string(r.offset) + "-" +
                       std::to_string(r.offset + r.length - 1) + " (short or incomplete response)");
      }
    }
  }

  /// Copies every missing byte that `parts` (data in `body`) hold to its place and crosses it off.
  /// Returns the bytes copied. Linear in parts and pieces (after sorting the parts).
  std::size_t fill(std::span<const received_part> parts, std::string_view body) {
    const std::vector<segment> seg = segments(parts);
    std::vector<piece> next;
    next.reserve(pieces_.size() + 1);
    std::size_t copied = 0, j = 0;
    for (const piece& p : pieces_) {
      std::size_t cur = p.file.offset;
      const std::size_t end = p.file.offset + p.file.length;
      while (j < seg.size() && seg[j].end <= cur) {
        ++j;
      }
      for (std::size_t k = j; k < seg.size() && seg[k].first < end && cur < end; ++k) {
        const std::size_t s = std::max(cur, seg[k].first), e = std::min(end, seg[k].end);
        if (s > cur) {
          next.push_back({{cur, s - cur}, p.dst + (cur - p.file.offset), p.group}); // a gap: still missing
        }
        std::memcpy(p.dst + (s - p.file.offset), body.data() + seg[k].data + (s - seg[k].first), e - s);
        copied += e - s;
        cur = e;
      }
      if (cur < end) {
        next.push_back({{cur, end - cur}, p.dst + (cur - p.file.offset), p.group});
      }
    }
    pieces_ = std::move(next);
    return copied;
  }

  /// Data bytes of `parts` inside `ask` (ascending, disjoint): what a response delivered that was
  /// asked for.
  static std::size_t asked_bytes(std::span<const received_part> parts, std::span<const byte_range> ask) {
    const std::vector<segment> seg = segments(parts);
    std::size_t n = 0, j = 0;
    for (const byte_range& r : ask) {
      while (j < seg.size() && seg[j].end <= r.offset) {
        ++j;
      }
      for (std::size_t k = j; k < seg.size() && seg[k].first < r.offset + r.length; ++k) {
        n += std::min(r.offset + r.length, seg[k].end) - std::max(r.offset, seg[k].first);
      }
    }
    return n;
  }

private:
  struct piece {
    byte_range file;
    std::byte* dst = nullptr;
    std::size_t group = 0; ///< index of the asked range holding it
  };
  /// Bytes [first, end) of the resource that a response holds, at `data` in its body.
  struct segment {
    std::size_t first = 0, end = 0, data = 0;
  };
  /// The bytes that `parts` hold as ascending, disjoint segments (where parts overlap, the
  /// earlier part's bytes are taken).
  static std::vector<segment> segments(std::span<const received_part> parts) {
    std::vector<const received_part*> order;
    for (const received_part& p : parts) {
      if (p.available > 0) {
        order.push_back(&p);
      }
    }
    std::stable_sort(order.begin(), order.end(), [](const received_part* x, const received_part* y) {
      return x->declared.first < y->declared.first;
    });
    std::vector<segment> out;
    std::size_t covered = 0;
    for (const received_part* p : order) {
      const std::size_t a = p->declared.first, b = a + p->available;
      const std::size_t s = out.empty() ? a : std::max(a, covered);
      if (b > s) {
        out.push_back({s, b, p->data_offset + (s - a)});
        covered = b;
      }
    }
    return out;
  }

  std::vector<byte_range> asked_;
  std::vector<piece> pieces_;
};

} // namespace selmask::transfer
