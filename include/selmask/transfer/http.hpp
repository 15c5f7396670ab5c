#pragma once
/// \file transfer/http.hpp
/// `transfer::http_client`: the client end of a real transfer — fetches only a plan's byte
/// ranges from an HTTP server with Range requests (libcurl), unpacks them and returns the dense
/// tensor, with the bytes that actually crossed the wire.
///
/// Needs libcurl: link the `selmask::http` CMake target (defined when CURL is found). Not part of
/// the transfer/transfer.hpp umbrella for that reason.
///
/// Each stream (version) of the plan is one URL holding the whole stored array of that version
/// (`plan.source().stream_bytes()` bytes). Two strategies (`http_options::strategy`):
///  - `multi_range`: one request per stream with every range in one `Range` header (split into
///    several requests when the header would exceed `max_range_header_bytes`; servers limit header
///    sizes — nginx to 8 KiB by default), answered with a `multipart/byteranges` body (or a single
///    206 part when one range is asked for or the server merges them);
///  - `per_range`: one request per coalesced range, on one kept-alive connection.
///
/// Every response is checked; anything but the exact bytes asked for is an `io_error` naming the
/// URL, the range and what came back — never a silently partial tensor: HTTP errors (404, 416
/// with the server's size), a server that ignores Range and answers 200 with the whole file (the
/// download is aborted at the first body byte), a resource whose size differs from what the plan
/// expects (the plan was made for other data, or the file is truncated), a part whose range or
/// length differs from the request, truncated bodies and connections closed early.
///
/// `wire_stats` counts what the responses carried: `body_bytes` (response bodies as received:
/// range data plus multipart framing), `header_bytes` (status lines and header fields),
/// separately; `range_bytes` (the range data found in the bodies, which equals
/// `plan.payload_bytes()` after a successful fetch), `request_bytes` and `requests`.

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <curl/curl.h>

#include "../backend/backend.hpp"
#include "../error.hpp"
#include "byteranges.hpp"
#include "pack.hpp"
#include "plan.hpp"

namespace selmask::transfer {

enum class range_strategy {
  multi_range, ///< one request with many ranges (multipart/byteranges response)
  per_range,   ///< one request per range
};

struct http_options {
  range_strategy strategy = range_strategy::multi_range;
  std::size_t max_range_header_bytes = 4000; ///< longest `Range` value of a multi-range request
  long connect_timeout_ms = 10000;
  long timeout_ms = 120000; ///< per request
};

/// Bytes that crossed the wire during a fetch, counted from the HTTP responses.
struct wire_stats {
  std::size_t body_bytes = 0;    ///< response body bytes received (range data + multipart framing)
  std::size_t header_bytes = 0;  ///< response header bytes (status lines and fields)
  std::size_t range_bytes = 0;   ///< range data extracted from the bodies
  std::size_t request_bytes = 0; ///< bytes of the requests sent
  std::size_t requests = 0;      ///< number of HTTP requests

  wire_stats& operator+=(const wire_stats& o) noexcept {
    body_bytes += o.body_bytes;
    header_bytes += o.header_bytes;
    range_bytes += o.range_bytes;
    request_bytes += o.request_bytes;
    requests += o.requests;
    return *this;
  }
};

struct fetched_payload {
  std::vector<std::byte> payload; ///< `plan.payload_bytes()` bytes in canonical order
  wire_stats wire;
};

template <class Tensor>
struct fetched_tensor {
  Tensor x; ///< N×C×H×W, as `unpack_tensor`
  wire_stats wire;
};

class http_client {
public:
  explicit http_client(http_options options = {}) : opt_(options) {
    static const CURLcode global = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (global != CURLE_OK) {
      throw io_error(std::string("selmask::transfer::http_client: curl_global_init failed: ") +
                     curl_easy_strerror(global));
    }
    curl_.reset(curl_easy_init());
    if (!curl_) {
      throw io_error("selmask::transfer::http_client: curl_easy_init failed");
    }
    if (opt_.max_range_header_bytes < 32) {
      throw value_error("selmask::transfer::http_client: max_range_header_bytes must be at least 32, got " +
                        std::to_string(opt_.max_range_header_bytes));
    }
  }

  [[nodiscard]] const http_options& options() const noexcept { return opt_; }
  void set_strategy(range_strategy s) noexcept { opt_.strategy = s; }

  /// Fetches the payload of `p` from `urls` (one per stream, in version order) into `payload`
  /// (exactly `p.payload_bytes()` bytes; reuse it across fetches to avoid fresh pages). On an
  /// exception `payload` holds partial data and must not be used.
  wire_stats fetch_into(const plan& p, std::span<const std::string> urls, std::span<std::byte> payload) {
    const std::string where = "selmask::transfer::http_client::fetch: ";
    if (urls.size() != p.streams()) {
      throw shape_error(where + std::to_string(urls.size()) + " URLs given, the plan reads " +
                        std::to_string(p.streams()) + " streams (one URL per version)");
    }
    if (payload.size() != p.payload_bytes()) {
      throw shape_error(where + "payload buffer of " + std::to_string(payload.size()) +
                        " bytes, the plan's payload is " + std::to_string(p.payload_bytes()));
    }
    wire_stats wire;
    for (std::size_t v = 0; v < p.streams(); ++v) {
      const std::vector<byte_range> ranges = p.file_ranges(v);
      std::byte* dst = payload.data() + p.payload_offset(v);
      if (opt_.strategy == range_strategy::per_range) {
        for (const byte_range& r : ranges) {
          fetch_ranges(urls[v], std::span<const byte_range>(&r, 1), p.source().stream_bytes(), dst, wire);
          dst += r.length;
        }
      } else {
        std::size_t i = 0;
        while (i < ranges.size()) {
          std::size_t j = i + 1;
          std::size_t header = range_header_value(std::span<const byte_range>(&ranges[i], 1)).size();
          while (j < ranges.size()) {
            const std::size_t more =
              range_header_value(std::span<const byte_range>(&ranges[j], 1)).size() - 6 + 1;
            if (header + more > opt_.max_range_header_bytes) {
              break;
            }
            header += more;
            ++j;
          }
          const std::span<const byte_range> batch(ranges.data() + i, j - i);
          fetch_ranges(urls[v], batch, p.source().stream_bytes(), dst, wire);
          for (const byte_range& r : batch) {
            dst += r.length;
          }
          i = j;
        }
      }
    }
    if (wire.range_bytes != p.payload_bytes()) {
      throw io_error(where + "received " + std::to_string(wire.range_bytes) +
                     " bytes of range data, the plan's payload is " + std::to_string(p.payload_bytes()));
    }
    return wire;
  }

  /// The payload of `p` fetched from `urls` (one per stream, in version order).
  fetched_payload fetch_payload(const plan& p, std::span<const std::string> urls) {
    fetched_payload out;
    out.payload.resize(p.payload_bytes());
    out.wire = fetch_into(p, urls, out.payload);
    return out;
  }

  /// The payload of a plan without versions, fetched from `url`.
  fetched_payload fetch_payload(const plan& p, const std::string& url) {
    return fetch_payload(p, std::span<const std::string>(&url, 1));
  }

  /// Fetches and unpacks: the dense N×C×H×W tensor on backend `B`.
  template <tensor_backend B>
  fetched_tensor<tensor_t<B>> fetch(const plan& p, std::span<const std::string> urls,
                                    const unpack_options& opt = {}) {
    fetched_payload f = fetch_payload(p, urls);
    return {unpack_tensor<B>(p, f.payload, opt), f.wire};
  }
  template <tensor_backend B>
  fetched_tensor<tensor_t<B>> fetch(const plan& p, const std::string& url, const unpack_options& opt = {}) {
    return fetch<B>(p, std::span<const std::string>(&url, 1), opt);
  }

private:
  struct curl_deleter {
    void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
  };

  struct response {
    long status = 0;
    std::string content_type;
    std::string content_range;
    std::string* body = nullptr; ///< the client's reusable buffer
    std::size_t body_limit = 0;
    std::size_t body_bytes = 0;
    std::size_t header_bytes = 0;
    bool refused = false;  ///< aborted: the status is not 206
    bool overflow = false; ///< aborted: the body exceeded its limit
  };

  static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
    auto* r = static_cast<response*>(user);
    const std::size_t len = size * n;
    r->header_bytes += len;
    const std::string_view line(data, len);
    if (line.size() >= 5 && line.substr(0, 5) == "HTTP/") {
      // a new response (also after 100 Continue or a redirect): reset what we know
      r->content_type.clear();
      r->content_range.clear();
      const std::size_t sp = line.find(' ');
      const auto code =
        sp == std::string_view::npos ? std::nullopt : detail::parse_decimal(line.substr(sp + 1, 3));
      r->status = code ? static_cast<long>(*code) : 0;
      return len;
    }
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      const std::string_view name = detail::trim(line.substr(0, colon));
      const std::string_view value = detail::trim(line.substr(colon + 1));
      if (detail::iequals(name, "content-type")) {
        r->content_type = value;
      } else if (detail::iequals(name, "content-range")) {
        r->content_range = value;
      }
    }
    return len;
  }

  static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
    auto* r = static_cast<response*>(user);
    const std::size_t len = size * n;
    r->body_bytes += len;
    if (r->status != 206) {
      r->refused = true;
      return 0; // abort: never download a whole file, nor an error page we do not need
    }
    if (r->body->size() + len > r->body_limit) {
      r->overflow = true;
      return 0;
    }
    r->body->append(data, len);
    return len;
  }

  /// GET `url` with `ranges`, checks the response and copies the ranges' bytes to `dst`.
  void fetch_ranges(const std::string& url, std::span<const byte_range> ranges, std::size_t expected_size,
                    std::byte* dst, wire_stats& wire) {
    const std::string range = range_header_value(ranges);
    const std::string what = "selmask::transfer::http_client: GET " + url +
                             " (Range: " + (range.size() > 80 ? range.substr(0, 77) + "..." : range) + "): ";
    body_.clear();
    response r;
    r.body = &body_;
    const std::size_t span_bytes = ranges.back().offset + ranges.back().length - ranges.front().offset;
    r.body_limit = ranges.size() == 1 ? span_bytes : span_bytes + 1024 + ranges.size() * 256;
    std::size_t wanted = 0;
    for (const byte_range& br : ranges) {
      wanted += br.length;
    }
    r.body->reserve(ranges.size() == 1 ? wanted : wanted + 256 + ranges.size() * 160);
    char errbuf[CURL_ERROR_SIZE] = {};
    CURL* c = curl_.get();
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_RANGE, range.substr(6).c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, opt_.connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, opt_.timeout_ms);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &http_client::on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &http_client::on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    const CURLcode rc = curl_easy_perform(c);
    long request_size = 0;
    curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &request_size);
    wire.requests += 1;
    wire.request_bytes += static_cast<std::size_t>(request_size > 0 ? request_size : 0);
    wire.body_bytes += r.body_bytes;
    wire.header_bytes += r.header_bytes;

    if (r.overflow) {
      throw io_error(what + "the response body is longer than the " + std::to_string(r.body_limit) +
                     " bytes the ranges can take");
    }
    if (rc != CURLE_OK && !r.refused) {
      const std::string msg = errbuf[0] != '\0' ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
      if (rc == CURLE_PARTIAL_FILE) {
        throw io_error(what + "the response body ended early (short body: " + std::to_string(r.body_bytes) +
                       " bytes received): " + msg);
      }
      throw io_error(what + "transfer failed: " + msg);
    }
    check_status(r, what, expected_size);
    copy_response(r, what, ranges, expected_size, dst);
    wire.range_bytes += wanted;
  }

  static void check_status(const response& r, const std::string& what, std::size_t expected_size) {
    if (r.status == 206) {
      return;
    }
    if (r.status == 200) {
      throw io_error(what + "the server ignored the Range request and answered 200 with the whole "
                            "resource; the download was aborted (the server must support byte ranges)");
    }
    if (r.status == 416) {
      std::string size = "unknown";
      const std::string_view cr = detail::trim(r.content_range);
      if (const std::size_t slash = cr.find('/'); slash != std::string_view::npos) {
        size = std::string(cr.substr(slash + 1));
      }
      throw io_error(what + "HTTP 416 Range Not Satisfiable: the server's resource has " + size +
                     " bytes, the plan expects " + std::to_string(expected_size) +
                     " (truncated file, or a plan for other data)");
    }
    throw io_error(what + "HTTP " + std::to_string(r.status) + " (expected 206 Partial Content)");
  }

  static void copy_response(const response& r, const std::string& what, std::span<const byte_range> ranges,
                            std::size_t expected_size, std::byte* dst) {
    const auto check_total = [&](const content_range& cr) {
      if (!cr.total) {
        throw io_error(what + "the server did not give the resource's size (Content-Range total '*')");
      }
      if (*cr.total != expected_size) {
        throw io_error(what + "the server's resource has " + std::to_string(*cr.total) +
                       " bytes, the plan expects " + std::to_string(expected_size) +
                       " (truncated file, or a plan for other data)");
      }
    };
    std::vector<byterange_part> parts;
    try {
      if (const auto boundary = multipart_boundary(r.content_type)) {
        parts = parse_multipart_byteranges(*r.body, *boundary);
      } else {
        if (r.content_range.empty()) {
          throw io_error("a 206 response without Content-Range or multipart body");
        }
        const content_range cr = parse_content_range(r.content_range);
        if (r.body->size() != cr.length()) {
          throw io_error("short body: " + std::to_string(r.body->size()) + " bytes for Content-Range " +
                         r.content_range + " (" + std::to_string(cr.length()) + " bytes)");
        }
        parts.push_back({cr, 0});
      }
      for (const byterange_part& p : parts) {
        check_total(p.range);
      }
      copy_wanted_ranges(parts, *r.body, ranges, dst);
    } catch (const io_error& e) {
      const std::string_view m = e.what();
      if (m.rfind(what, 0) == 0) {
        throw;
      }
      throw io_error(what + std::string(m));
    }
  }

  http_options opt_;
  std::unique_ptr<CURL, curl_deleter> curl_;
  std::string body_; ///< response body buffer, reused across requests
};

} // namespace selmask::transfer
