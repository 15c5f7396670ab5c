#pragma once
/// \file transfer/wire.hpp
/// Bytes on the wire, not in the payload: what an HTTP range transfer of a plan costs, and range
/// coalescing that keeps that cost at or below a full download. No network code here (the HTTP
/// client in transfer/http.hpp measures the constants and executes the schedules), so all of it
/// is tested without a server.
///
/// Why: a `multipart/byteranges` response frames every part with a boundary line, a
/// Content-Type and a Content-Range header (nginx: about 100 bytes), and every request carries
/// its request line and headers, and gets a status line and headers back (a few hundred bytes).
/// For a scattered selection (one byte per pixel, a pixel in seven) the framing outweighs the
/// payload many times — more than the whole file. Counting only the range data (`Q`, the
/// payload) then promises the opposite of what a network measurement shows.
///
/// `transport_model` predicts, byte for byte, the HTTP bytes of a request for a set of ranges of
/// one resource (one URL): request bytes, response header bytes and response body bytes. Its
/// constants are measured against the real server (`http_client::probe`): a one-range request,
/// a two-range request and a plain GET, whose byte counts, minus the decimal digits of the
/// numbers that vary (offsets, lengths), give the fixed parts:
///
/// | what                          | bytes                                                        |
/// |-------------------------------|--------------------------------------------------------------|
/// | request with `Range: bytes=…` | `range_request_fixed` + length of the value `bytes=a-b,c-d…`  |
/// | one range a-b: headers        | `single_header_fixed` + digits(a) + digits(b) + digits(b−a+1) |
/// | one range: body               | b−a+1 (206, no multipart)                                     |
/// | k ≥ 2 ranges: headers         | `multi_header_fixed` + digits(body length)                    |
/// | k ≥ 2 ranges: body            | Σ (`part_fixed` + digits(a) + digits(b) + b−a+1) + `closing`  |
/// | plain GET (whole resource)    | `plain_request` + `full_header` + resource size               |
///
/// (The resource size, the boundary, dates and ETag have a fixed length for one resource, so they
/// are part of the fixed constants.) Wire bytes here are HTTP bytes: TCP/IP headers and TLS are
/// not counted.
///
/// `coalescing` is the policy of the client: `off` (ask exactly the plan's ranges), `automatic`
/// (merge two neighbouring ranges when the hole between them costs fewer bytes than the framing
/// the merge saves — a part's framing and its Range entry in a multi-range request, a whole
/// request for one request per range) or `holes_up_to(n)` (merge when the hole is at most n
/// bytes). With any policy but `off`, when the schedule would cost as many bytes as one plain GET
/// of the whole resource or more, the whole resource is read instead; so a coalesced plan never
/// costs more on the wire than a full download. The hole bytes (and, for a whole read, every
/// byte outside the plan) are received and discarded; `wire_stats::read_bytes` and
/// `discarded_bytes` say how many.
///
/// `schedule_requests` turns a stream's ranges into the requests the client sends (shared by the
/// client and by `predict`, so that a prediction is about the very requests that are sent).

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "plan.hpp"

namespace selmask::transfer {

enum class range_strategy {
  multi_range, ///< one request with many ranges (multipart/byteranges response)
  per_range,   ///< one request per range
};

/// HTTP bytes of a transfer: counted by the client from the responses and requests, or
/// predicted by a `transport_model`.
struct wire_stats {
  std::size_t body_bytes = 0;      ///< response body bytes (range data + multipart framing)
  std::size_t header_bytes = 0;    ///< response header bytes (status lines and fields)
  std::size_t range_bytes = 0;     ///< the plan's bytes extracted from the bodies (the payload)
  std::size_t read_bytes = 0;      ///< data bytes received: the plan's bytes plus holes read over
  std::size_t discarded_bytes = 0; ///< read_bytes − range_bytes: hole bytes thrown away
  std::size_t request_bytes = 0;   ///< bytes of the requests sent
  std::size_t requests = 0;        ///< number of HTTP requests
  std::size_t retries = 0;         ///< of them, attempts that repeated a failed one (transfer/retry.hpp)

  /// Everything that crossed the wire, both ways: requests, response headers and bodies.
  [[nodiscard]] std::size_t total() const noexcept { return request_bytes + header_bytes + body_bytes; }

  wire_stats& operator+=(const wire_stats& o) noexcept {
    body_bytes += o.body_bytes;
    header_bytes += o.header_bytes;
    range_bytes += o.range_bytes;
    read_bytes += o.read_bytes;
    discarded_bytes += o.discarded_bytes;
    request_bytes += o.request_bytes;
    requests += o.requests;
    retries += o.retries;
    return *this;
  }
};

/// Decimal digits of `v` (1 for 0).
constexpr std::size_t decimal_digits(std::size_t v) noexcept {
  std::size_t d = 1;
  while (v >= 10) {
    v /= 10;
    ++d;
  }
  return d;
}

/// The measured cost constants of one resource on one server (see the table at the top of this
/// file). Made by `http_client::probe`; tests may fill one by hand.
struct transport_model {
  std::size_t resource_bytes = 0;      ///< size of the resource (the whole stream)
  std::size_t range_request_fixed = 0; ///< request bytes of a Range GET minus its `bytes=…` value
  std::size_t plain_request = 0;       ///< request bytes of a plain GET
  std::size_t full_header = 0;         ///< response header bytes of the 200 answer to a plain GET
  std::size_t single_header_fixed = 0; ///< 206 one-part header bytes minus digits(a, b, length)
  std::size_t multi_header_fixed = 0;  ///< 206 multipart header bytes minus digits(body length)
  std::size_t part_fixed = 0;          ///< framing before a part's data minus digits(a, b)
  std::size_t closing = 0;             ///< the closing delimiter after the last part

  /// Bytes of the `bytes=a-b,c-d,…` value for `ranges`.
  [[nodiscard]] static std::size_t range_value_bytes(std::span<const byte_range> ranges) noexcept {
    std::size_t n = 6; // "bytes="
    for (std::size_t i = 0; i < ranges.size(); ++i) {
      const std::size_t last = ranges[i].offset + ranges[i].length - 1;
      n += (i > 0 ? 1 : 0) + decimal_digits(ranges[i].offset) + 1 + decimal_digits(last);
    }
    return n;
  }

  /// The framing of one multipart part for bytes `first`..`last`.
  [[nodiscard]] std::size_t part_framing(std::size_t first, std::size_t last) const noexcept {
    return part_fixed + decimal_digits(first) + decimal_digits(last);
  }

  /// Predicted bytes of one Range request for `ranges` (ascending, disjoint, non-empty).
  /// `read_bytes` is the range data received; `range_bytes` is left 0 (the caller knows which
  /// part of it the plan wants).
  [[nodiscard]] wire_stats range_request(std::span<const byte_range> ranges) const {
    if (ranges.empty()) {
      throw value_error("selmask::transfer::transport_model::range_request: no ranges");
    }
    wire_stats w;
    w.requests = 1;
    w.request_bytes = range_request_fixed + range_value_bytes(ranges);
    for (const byte_range& r : ranges) {
      w.read_bytes += r.length;
    }
    if (ranges.size() == 1) {
      const byte_range& r = ranges.front();
      w.header_bytes = single_header_fixed + decimal_digits(r.offset) +
                       decimal_digits(r.offset + r.length - 1) + decimal_digits(r.length);
      w.body_bytes = r.length;
    } else {
      std::size_t body = closing;
      for (const byte_range& r : ranges) {
        body += part_framing(r.offset, r.offset + r.length - 1) + r.length;
      }
      w.body_bytes = body;
      w.header_bytes = multi_header_fixed + decimal_digits(body);
    }
    return w;
  }

  /// Predicted bytes of one plain GET of the whole resource.
  [[nodiscard]] wire_stats full_download() const noexcept {
    wire_stats w;
    w.requests = 1;
    w.request_bytes = plain_request;
    w.header_bytes = full_header;
    w.body_bytes = resource_bytes;
    w.read_bytes = resource_bytes;
    w.range_bytes = resource_bytes; // all of it is what a full download wants
    return w;
  }
};

/// How the client merges neighbouring ranges (see the top of this file).
struct coalescing {
  enum class mode { off, automatic, hole_limit };
  mode kind = mode::off;
  std::size_t max_hole = 0; ///< hole_limit only: the largest hole (bytes) that is read over

  static constexpr coalescing off() noexcept { return {mode::off, 0}; }
  static constexpr coalescing automatic() noexcept { return {mode::automatic, 0}; }
  /// Merge across holes of at most `bytes` bytes; throws `value_error` for a negative limit.
  static coalescing holes_up_to(std::int64_t bytes) {
    if (bytes < 0) {
      throw value_error(
        "selmask::transfer::coalescing::holes_up_to: the hole limit must be at least 0 bytes, "
        "got " +
        std::to_string(bytes));
    }
    return {mode::hole_limit, static_cast<std::size_t>(bytes)};
  }

  /// "off", "auto" or "holes<=N".
  [[nodiscard]] std::string str() const {
    switch (kind) {
      case mode::off:
        return "off";
      case mode::automatic:
        return "auto";
      case mode::hole_limit:
        return "holes<=" + std::to_string(max_hole);
    }
    return "?";
  }
  friend constexpr bool operator==(const coalescing&, const coalescing&) = default;
};

/// A policy from its command-line spelling: "off", "auto", or a hole limit in bytes ("4096").
/// Throws `value_error` quoting the text otherwise (a negative or malformed number included).
inline coalescing parse_coalescing(std::string_view text) {
  if (text == "off") {
    return coalescing::off();
  }
  if (text == "auto") {
    return coalescing::automatic();
  }
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    throw value_error("selmask::transfer::parse_coalescing: '" + std::string(text) +
                      "' is not a coalescing policy (expected off, auto or a hole limit in bytes)");
  }
  return coalescing::holes_up_to(v); // rejects a negative limit
}

/// One request of a schedule: the ranges asked for (`whole`: a plain GET of the resource
/// instead) and the plan's ranges it delivers, `wanted[first_wanted .. first_wanted + wanted_count)`.
struct planned_request {
  bool whole = false;
  std::vector<byte_range> asked;
  std::size_t first_wanted = 0;
  std::size_t wanted_count = 0;
};

namespace detail {

/// Bytes a merge across the hole between a range ending at `last` and the next one starting at
/// `next` saves, for the strategy: the part's framing plus its `,a-b` entry in the Range value
/// (multi-range), or one whole one-range request (per-range; counted without its digits).
inline std::size_t merge_saving(const transport_model& m, range_strategy s, std::size_t last,
                                std::size_t next) noexcept {
  if (s == range_strategy::multi_range) {
    return m.part_framing(next, last) + decimal_digits(last) + decimal_digits(next) + 2;
  }
  return m.range_request_fixed + 6 + m.single_header_fixed;
}

inline void check_ranges(std::span<const byte_range> wanted, std::size_t resource_bytes, const char* where) {
  std::size_t end = 0;
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    const byte_range& r = wanted[i];
    if (r.length == 0 || (i > 0 && r.offset < end) || r.offset + r.length > resource_bytes) {
      throw value_error(std::string(where) + ": range " + std::to_string(i) + " (" +
                        std::to_string(r.offset) + "+" + std::to_string(r.length) +
                        ") is empty, out of order or past the resource's " + std::to_string(resource_bytes) +
                        " bytes");
    }
    end = r.offset + r.length;
  }
}

} // namespace detail

/// The requests that fetch `wanted` (a stream's ranges: ascending, disjoint, non-empty, within
/// `resource_bytes`) with strategy `strategy`, Range values of at most `max_range_header_bytes`
/// (multi-range; a single range longer than that is still one request), and the coalescing
/// policy `policy`. `model` is needed (and used) only when `policy` is not `off`; it must be the
/// model of this resource. Throws `value_error` for bad ranges, a missing model or a model of a
/// resource of another size.
inline std::vector<planned_request> schedule_requests(std::span<const byte_range> wanted,
                                                      std::size_t resource_bytes, range_strategy strategy,
                                                      std::size_t max_range_header_bytes,
                                                      const coalescing& policy,
                                                      const transport_model* model) {
  const char* where = "selmask::transfer::schedule_requests";
  detail::check_ranges(wanted, resource_bytes, where);
  std::vector<planned_request> out;
  if (wanted.empty()) {
    return out;
  }
  if (policy.kind != coalescing::mode::off) {
    if (model == nullptr) {
      throw value_error(std::string(where) + ": coalescing '" + policy.str() +
                        "' needs the resource's transport model (http_client::probe)");
    }
    if (model->resource_bytes != resource_bytes) {
      throw value_error(std::string(where) + ": the transport model is of a resource of " +
                        std::to_string(model->resource_bytes) + " bytes, the ranges are of one of " +
                        std::to_string(resource_bytes));
    }
  }
  // 1. the ranges asked for, each covering wanted[first .. first + count)
  struct merged {
    byte_range r;
    std::size_t first, count;
  };
  std::vector<merged> ranges;
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    const byte_range& w = wanted[i];
    if (!ranges.empty()) {
      merged& cur = ranges.back();
      const std::size_t end = cur.r.offset + cur.r.length;
      const std::size_t hole = w.offset - end;
      bool merge = false;
      if (policy.kind == coalescing::mode::hole_limit) {
        merge = hole <= policy.max_hole;
      } else if (policy.kind == coalescing::mode::automatic) {
        merge = hole < detail::merge_saving(*model, strategy, end - 1, w.offset);
      }
      if (merge) {
        cur.r.length = w.offset + w.length - cur.r.offset;
        ++cur.count;
        continue;
      }
    }
    ranges.push_back({w, i, 1});
  }
  // 2. grouped into requests
  const auto add = [&](std::size_t a, std::size_t b) { // ranges[a, b) in one request
    planned_request q;
    q.first_wanted = ranges[a].first;
    for (std::size_t k = a; k < b; ++k) {
      q.asked.push_back(ranges[k].r);
      q.wanted_count += ranges[k].count;
    }
    out.push_back(std::move(q));
  };
  if (strategy == range_strategy::per_range) {
    for (std::size_t k = 0; k < ranges.size(); ++k) {
      add(k, k + 1);
    }
  } else {
    std::size_t i = 0;
    while (i < ranges.size()) {
      std::size_t j = i + 1;
      std::size_t header = transport_model::range_value_bytes(std::span<const byte_range>(&ranges[i].r, 1));
      while (j < ranges.size()) {
        const std::size_t more =
          transport_model::range_value_bytes(std::span<const byte_range>(&ranges[j].r, 1)) - 6 + 1;
        if (header + more > max_range_header_bytes) {
          break;
        }
        header += more;
        ++j;
      }
      add(i, j);
      i = j;
    }
  }
  // 3. never above a full download
  if (policy.kind != coalescing::mode::off) {
    std::size_t cost = 0;
    for (const planned_request& q : out) {
      cost += model->range_request(q.asked).total();
    }
    if (cost >= model->full_download().total()) {
      planned_request q;
      q.whole = true;
      q.wanted_count = wanted.size();
      out.assign(1, std::move(q));
    }
  }
  return out;
}

/// The predicted bytes of executing `schedule` for `wanted` (as `schedule_requests` made it)
/// against the resource of `model`.
inline wire_stats predict(std::span<const planned_request> schedule, std::span<const byte_range> wanted,
                          const transport_model& model) {
  wire_stats w;
  for (const planned_request& q : schedule) {
    if (q.first_wanted + q.wanted_count > wanted.size()) {
      throw value_error("selmask::transfer::predict: a request delivers ranges " +
                        std::to_string(q.first_wanted) + ".." +
                        std::to_string(q.first_wanted + q.wanted_count) + ", the stream has " +
                        std::to_string(wanted.size()));
    }
    wire_stats r = q.whole ? model.full_download() : model.range_request(q.asked);
    r.range_bytes = 0;
    for (std::size_t k = q.first_wanted; k < q.first_wanted + q.wanted_count; ++k) {
      r.range_bytes += wanted[k].length;
    }
    r.discarded_bytes = r.read_bytes - r.range_bytes;
    w += r;
  }
  return w;
}

/// The predicted bytes of fetching plan `p` with one model per stream (`models[v]` of stream v's
/// URL), strategy, header limit and policy as the client would. Throws `value_error` when the
/// number of models differs from the plan's streams or a model is of a resource of another size.
inline wire_stats predict_fetch(const plan& p, std::span<const transport_model> models,
                                range_strategy strategy, std::size_t max_range_header_bytes,
                                const coalescing& policy) {
  if (models.size() != p.streams()) {
    throw value_error("selmask::transfer::predict_fetch: " + std::to_string(models.size()) +
                      " transport models given, the plan reads " + std::to_string(p.streams()) + " streams");
  }
  wire_stats w;
  for (std::size_t v = 0; v < p.streams(); ++v) {
    if (models[v].resource_bytes != p.source().stream_bytes()) {
      throw value_error("selmask::transfer::predict_fetch: the transport model of stream " +
                        std::to_string(v) + " is of a resource of " +
                        std::to_string(models[v].resource_bytes) + " bytes, the plan's stream has " +
                        std::to_string(p.source().stream_bytes()));
    }
    const std::vector<byte_range> ranges = p.file_ranges(v);
    const auto schedule = schedule_requests(ranges, p.source().stream_bytes(), strategy,
                                            max_range_header_bytes, policy, &models[v]);
    w += predict(schedule, ranges, models[v]);
  }
  return w;
}

} // namespace selmask::transfer
