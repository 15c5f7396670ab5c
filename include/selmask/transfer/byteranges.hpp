#pragma once
/// \file transfer/byteranges.hpp
/// The HTTP range vocabulary a transfer client needs, with no network code (so it is tested
/// without a server): `Range` header values for a list of byte ranges, the `Content-Range` of a
/// 206 response, the boundary of a `multipart/byteranges` content type, and the parts of a
/// `multipart/byteranges` body (RFC 9110 §14, RFC 2046 §5.1).
///
/// Parsing is strict and never guesses: a part's data length is taken from its `Content-Range`
/// and must be followed by the next boundary delimiter, so a body that is truncated, padded or
/// whose parts have the wrong length is rejected with an `io_error` that says what was expected
/// and what was found.

#include <cstddef>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "plan.hpp"

namespace selmask::transfer {

/// A byte range as HTTP writes it: `first`..`last` inclusive, of a resource of `total` bytes
/// (`total` empty when the server wrote `*`).
struct content_range {
  std::size_t first = 0;
  std::size_t last = 0;
  std::optional<std::size_t> total;
  [[nodiscard]] std::size_t length() const noexcept { return last - first + 1; }
};

/// One part of a `multipart/byteranges` body: its range and where its data lie in the body.
struct byterange_part {
  content_range range;
  std::size_t data_offset = 0; ///< offset of the part's first data byte in the body
};

namespace detail {

inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

/// A decimal number filling all of `s`, or nothing.
inline std::optional<std::size_t> parse_decimal(std::string_view s) noexcept {
  if (s.empty() || s.size() > 19) {
    return std::nullopt;
  }
  std::size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    v = v * 10 + static_cast<std::size_t>(c - '0');
  }
  return v;
}

} // namespace detail

/// "bytes=a-b,c-d,..." for `ranges` (each of positive length).
inline std::string range_header_value(std::span<const byte_range> ranges) {
  std::string s = "bytes=";
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    if (i > 0) {
      s += ',';
    }
    s += std::to_string(ranges[i].offset) + "-" + std::to_string(ranges[i].offset + ranges[i].length - 1);
  }
  return s;
}

/// Parses a `Content-Range` value of a 206 part, "bytes first-last/total" (total may be `*`).
/// Throws `io_error` quoting the value when it is not of that form or `last < first`.
inline content_range parse_content_range(std::string_view value) {
  const std::string_view v = detail::trim(value);
  const auto bad = [&](const char* why) {
    return io_error("selmask::transfer::parse_content_range: '" + std::string(v) + "' " + why +
                    " (expected 'bytes first-last/total')");
  };
  if (v.size() < 6 || !detail::iequals(v.substr(0, 6), "bytes ")) {
    throw bad("does not start with 'bytes '");
  }
  const std::string_view rest = detail::trim(v.substr(6));
  const std::size_t dash = rest.find('-');
  const std::size_t slash = rest.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) {
    throw bad("is malformed");
  }
  const auto first = detail::parse_decimal(rest.substr(0, dash));
  const auto last = detail::parse_decimal(rest.substr(dash + 1, slash - dash - 1));
  if (!first || !last) {
    throw bad("has a malformed range");
  }
  if (*last < *first) {
    throw bad("ends before it starts");
  }
  content_range r{*first, *last, std::nullopt};
  const std::string_view total = rest.substr(slash + 1);
  if (total != "*") {
    const auto t = detail::parse_decimal(total);
    if (!t) {
      throw bad("has a malformed total length");
    }
    if (*last >= *t) {
      throw bad("reaches past the total length");
    }
    r.total = *t;
  }
  return r;
}

/// The boundary of a `multipart/byteranges; boundary=...` content type, or nothing when the
/// content type is not multipart/byteranges. Throws `io_error` for a multipart type without a
/// boundary.
inline std::optional<std::string> multipart_boundary(std::string_view content_type) {
  const std::string_view ct = detail::trim(content_type);
  const std::size_t semi = ct.find(';');
  const std::string_view media = detail::trim(ct.substr(0, semi));
  if (!detail::iequals(media, "multipart/byteranges")) {
    return std::nullopt;
  }
  std::string_view params = semi == std::string_view::npos ? std::string_view() : ct.substr(semi + 1);
  while (!params.empty()) {
    const std::size_t next = params.find(';');
    const std::string_view param = detail::trim(params.substr(0, next));
    params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
    const std::size_t eq = param.find('=');
    if (eq != std::string_view::npos && detail::iequals(detail::trim(param.substr(0, eq)), "boundary")) {
      std::string_view b = detail::trim(param.substr(eq + 1));
      if (b.size() >= 2 && b.front() == '"' && b.back() == '"') {
        b = b.substr(1, b.size() - 2);
      }
      if (b.empty()) {
        break;
      }
      return std::string(b);
    }
  }
  throw io_error("selmask::transfer::multipart_boundary: content type '" + std::string(ct) +
                 "' has no boundary parameter");
}

/// The parts of a `multipart/byteranges` body with boundary `boundary`. Throws `io_error` when
/// the body is truncated (a part's data or the closing delimiter missing), a part has no
/// `Content-Range`, or a part's data is not followed by the next delimiter.
inline std::vector<byterange_part> parse_multipart_byteranges(std::string_view body,
                                                              std::string_view boundary) {
  const std::string where = "selmask::transfer::parse_multipart_byteranges: ";
  const std::string delim = "--" + std::string(boundary);
  std::vector<byterange_part> parts;
  std::size_t pos = body.find(delim);
  if (pos == std::string_view::npos) {
    throw io_error(where + "no boundary delimiter '" + delim + "' in a body of " +
                   std::to_string(body.size()) + " bytes");
  }
  for (;;) {
    // at a delimiter
    pos += delim.size();
    if (body.substr(pos, 2) == "--") {
      break; // closing delimiter; anything after is epilogue
    }
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) {
      ++pos; // transport padding
    }
    if (body.substr(pos, 2) != "\r\n") {
      throw io_error(where + "truncated or malformed body: expected CRLF after the delimiter at byte " +
                     std::to_string(pos) + " of " + std::to_string(body.size()));
    }
    pos += 2;
    const std::size_t head_end = body.find("\r\n\r\n", pos - 2);
    if (head_end == std::string_view::npos) {
      throw io_error(where + "truncated body: part " + std::to_string(parts.size()) +
                     " has no end of its headers");
    }
    std::optional<content_range> range;
    std::string_view headers = body.substr(pos, head_end - pos + 2);
    while (!headers.empty()) {
      const std::size_t eol = headers.find("\r\n");
      const std::string_view line = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 2);
      const std::size_t colon = line.find(':');
      if (colon != std::string_view::npos &&
          detail::iequals(detail::trim(line.substr(0, colon)), "content-range")) {
        range = parse_content_range(line.substr(colon + 1));
      }
    }
    if (!range) {
      throw io_error(where + "part " + std::to_string(parts.size()) + " has no Content-Range header");
    }
    const std::size_t data = head_end + 4;
    if (data > body.size() || body.size() - data < range->length()) {
      throw io_error(where + "truncated body: part " + std::to_string(parts.size()) + " (bytes " +
                     std::to_string(range->first) + "-" + std::to_string(range->last) + ") needs " +
                     std::to_string(range->length()) + " bytes, " +
                     std::to_string(data > body.size() ? 0 : body.size() - data) + " remain");
    }
    parts.push_back({*range, data});
    pos = data + range->length();
    if (body.substr(pos, 2 + delim.size()) != "\r\n" + delim) {
      if (body.size() - pos < 2 + delim.size()) {
        throw io_error(where + "truncated body: no delimiter after part " + std::to_string(parts.size() - 1) +
                       " (the closing '" + delim + "--' is missing)");
      }
      throw io_error(where + "part " + std::to_string(parts.size() - 1) +
                     " is not followed by a delimiter: its data are longer than its Content-Range says");
    }
    pos += 2;
  }
  return parts;
}

/// What a client keeps of a response's status line and header fields (the rest is not needed to
/// take a range response apart).
struct response_head {
  long status = 0;                   ///< 0 until a status line is seen, or for a malformed one
  std::string content_type;          ///< the Content-Type value, trimmed
  std::string content_type_boundary; ///< the boundary of a multipart/byteranges type, else empty
  std::string content_range;         ///< the Content-Range value, trimmed
};

/// Folds one header line (a status line or a `Name: value` field, CRLF included or not) into
/// `h`. A status line (`HTTP/...`) starts a new response (after 100 Continue or a redirect): what
/// was known is reset. Malformed lines are kept as they are, to be reported when the body is taken
/// apart (`response_parts`); this function does not throw.
inline void read_response_line(response_head& h, std::string_view line) {
  if (line.size() >= 5 && line.substr(0, 5) == "HTTP/") {
    h.content_type.clear();
    h.content_type_boundary.clear();
    h.content_range.clear();
    const std::size_t sp = line.find(' ');
    const auto code =
      sp == std::string_view::npos ? std::nullopt : detail::parse_decimal(line.substr(sp + 1, 3));
    h.status = code ? static_cast<long>(*code) : 0;
    return;
  }
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return;
  }
  const std::string_view name = detail::trim(line.substr(0, colon));
  const std::string_view value = detail::trim(line.substr(colon + 1));
  if (detail::iequals(name, "content-type")) {
    h.content_type = value;
    try {
      h.content_type_boundary = multipart_boundary(value).value_or(std::string());
    } catch (const io_error&) {
      h.content_type_boundary.clear(); // reported by response_parts
    }
  } else if (detail::iequals(name, "content-range")) {
    h.content_range = value;
  }
}

/// The parts of the body of a 206 response with head `h`: the parts of a multipart/byteranges
/// body, or the one range its `Content-Range` names (the body must be exactly that long). Every
/// part's total length must be `resource_bytes`, the size the caller knows. Throws `io_error`
/// saying what is missing or does not fit (the caller adds which request it was).
inline std::vector<byterange_part> response_parts(const response_head& h, std::string_view body,
                                                  std::size_t resource_bytes) {
  std::vector<byterange_part> parts;
  if (const auto boundary = multipart_boundary(h.content_type)) {
    parts = parse_multipart_byteranges(body, *boundary);
  } else {
    if (h.content_range.empty()) {
      throw io_error("a 206 response without Content-Range or multipart body");
    }
    const content_range cr = parse_content_range(h.content_range);
    if (body.size() != cr.length()) {
      throw io_error("short body: " + std::to_string(body.size()) + " bytes for Content-Range " +
                     h.content_range + " (" + std::to_string(cr.length()) + " bytes)");
    }
    parts.push_back({cr, 0});
  }
  for (const byterange_part& p : parts) {
    if (!p.range.total) {
      throw io_error("the server did not give the resource's size (Content-Range total '*')");
    }
    if (*p.range.total != resource_bytes) {
      throw io_error("the server's resource has " + std::to_string(*p.range.total) +
                     " bytes, the plan expects " + std::to_string(resource_bytes) +
                     " (truncated file, or a plan for other data)");
    }
  }
  return parts;
}

/// Copies the bytes of each of `wanted` (ascending file ranges) from the parts of a response into
/// `out`, one range after another. A part may cover several wanted ranges (a server may merge
/// ranges). Throws `io_error` naming the first wanted range that no part covers completely.
inline void copy_wanted_ranges(std::span<const byterange_part> parts, std::string_view body,
                               std::span<const byte_range> wanted, std::byte* out) {
  for (const byte_range& r : wanted) {
    const byterange_part* found = nullptr;
    for (const byterange_part& p : parts) {
      if (p.range.first <= r.offset && r.offset + r.length - 1 <= p.range.last) {
        found = &p;
        break;
      }
    }
    if (found == nullptr) {
      throw io_error("selmask::transfer: the response does not contain bytes " + std::to_string(r.offset) +
                     "-" + std::to_string(r.offset + r.length - 1) + " (short or incomplete response)");
    }
    const std::size_t at = found->data_offset + (r.offset - found->range.first);
    std::memcpy(out, body.data() + at, r.length);
    out += r.length;
  }
}

} // namespace selmask::transfer
