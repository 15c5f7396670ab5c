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
/// length differs from the request, truncated bodies and connections closed early (once the
/// retries below are spent).
///
/// `wire_stats` (transfer/wire.hpp) counts what crossed the wire, as libcurl sent and received
/// it: `body_bytes` (response bodies as received by the write callback, range data plus multipart
/// framing, also the bytes of a refused body), `header_bytes` (status lines and header fields, as
/// received by the header callback), `request_bytes` (CURLINFO_REQUEST_SIZE) and `requests`;
/// `range_bytes` (the plan's bytes found in the bodies, which equals `plan.payload_bytes()` after
/// a successful fetch), `read_bytes` and `discarded_bytes` (hole bytes read over and dropped).
///
/// Coalescing (`http_options::merge`, transfer/wire.hpp): off by default (exactly the plan's
/// ranges). Otherwise the client measures each URL's `transport_model` once (`probe`, three small
/// requests whose cost is kept apart in `probe_wire()`), merges ranges across holes by the
/// policy, and reads the resource whole with one plain GET when that costs no more bytes; the
/// result is the same payload. `predict` gives the bytes a fetch will cost before it is made;
/// `download_whole` is the full download to compare with.
///
/// `exchange` is one plain GET, HEAD or POST, counted the same way: the client of the packing
/// server (transfer/pack_client.hpp) is built on it.
///
/// Bad networks (`http_options::retry`, transfer/retry.hpp, which lists what is retried): a
/// transient failure (refused, reset or early-closed connections, timeouts, 408/429/5xx) is tried
/// again with backoff; a body cut short keeps what arrived and only the missing bytes are asked
/// again. Other failures are a `transfer_error` at once. A fetch fills every byte or throws.
/// https: certificates are checked against the system's CAs or `http_options::ca_file`.

#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <curl/curl.h>

#include "../backend/backend.hpp"
#include "../error.hpp"
#include "byteranges.hpp"
#include "chunked.hpp"
#include "pack.hpp"
#include "plan.hpp"
#include "retry.hpp"
#include "wire.hpp"

namespace selmask::transfer {

struct http_options {
  range_strategy strategy = range_strategy::multi_range;
  std::size_t max_range_header_bytes = 4000; ///< longest `Range` value of a multi-range request
  long connect_timeout_ms = 10000;
  long timeout_ms = 120000; ///< per request (attempt); a stalled transfer fails after it, and is retried
  /// Range coalescing (transfer/wire.hpp); when not off, each URL is probed once for its model.
  coalescing merge = coalescing::off();
  /// Retries of transient failures (transfer/retry.hpp): 5 attempts, backoff from 200 ms doubling
  /// up to 5 s with 50 % jitter, within 30 s of the first attempt; `retry_policy::none()` for none.
  retry_policy retry = {};
  /// PEM file of the CA(s) that sign the https servers' certificates; empty: the system's CAs.
  std::string ca_file = {};
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

class http_multi_client; // transfer/http_multi.hpp: many requests at once, on this client's parts

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
    opt_.retry.validate();
    if (!opt_.ca_file.empty() && !std::filesystem::is_regular_file(opt_.ca_file)) {
      throw io_error("selmask::transfer::http_client: http_options::ca_file '" + opt_.ca_file +
                     "' is not a readable file");
    }
  }

  [[nodiscard]] const http_options& options() const noexcept { return opt_; }
  void set_strategy(range_strategy s) noexcept { opt_.strategy = s; }
  void set_coalescing(coalescing c) noexcept { opt_.merge = c; }

  /// Fetches the payload of `p` from `urls` (one per stream, in version order) into `payload`
  /// (exactly `p.payload_bytes()` bytes; reuse it across fetches to avoid fresh pages). On an
  /// exception `payload` holds partial data and must not be used. With coalescing on, each URL is
  /// probed once (`model`); the probe's bytes are in `probe_wire()`, not in the result.
  wire_stats fetch_into(const plan& p, std::span<const std::string> urls, std::span<std::byte> payload) {
    const std::string where = "selmask::transfer::http_client::fetch: ";
    check_urls(p, urls, where);
    if (payload.size() != p.payload_bytes()) {
      throw shape_error(where + "payload buffer of " + std::to_string(payload.size()) +
                        " bytes, the plan's payload is " + std::to_string(p.payload_bytes()));
    }
    const std::size_t expected = p.source().stream_bytes();
    wire_stats wire;
    for (std::size_t v = 0; v < p.streams(); ++v) {
      const std::vector<byte_range> ranges = p.file_ranges(v);
      wire += fetch_ranges_into(urls[v], ranges, expected,
                                payload.subspan(p.payload_offset(v), p.stream_payload_bytes(v)));
    }
    if (wire.range_bytes != p.payload_bytes()) {
      throw io_error(where + "received " + std::to_string(wire.range_bytes) +
                     " bytes of range data, the plan's payload is " + std::to_string(p.payload_bytes()));
    }
    return wire;
  }

  /// Fetches `ranges` (ascending, disjoint, non-empty) of the resource at `url`, which must hold
  /// `resource_bytes` bytes, into `out` (their bytes one after another, exactly the sum of their
  /// lengths), with this client's strategy, header limit and coalescing. The building block of
  /// `fetch_into`, for data whose ranges come from elsewhere (e.g. a `chunked_plan`).
  wire_stats fetch_ranges_into(const std::string& url, std::span<const byte_range> ranges,
                               std::size_t resource_bytes, std::span<std::byte> out) {
    std::size_t total = 0;
    for (const byte_range& r : ranges) {
      total += r.length;
    }
    if (out.size() != total) {
      throw shape_error("selmask::transfer::http_client::fetch_ranges_into: output of " +
                        std::to_string(out.size()) + " bytes for ranges of " + std::to_string(total));
    }
    const transport_model* m =
      opt_.merge.kind == coalescing::mode::off ? nullptr : &model(url, resource_bytes);
    const std::vector<planned_request> schedule =
      schedule_requests(ranges, resource_bytes, opt_.strategy, opt_.max_range_header_bytes, opt_.merge, m);
    wire_stats wire;
    std::byte* dst = out.data();
    for (const planned_request& q : schedule) {
      const std::span<const byte_range> wanted(ranges.data() + q.first_wanted, q.wanted_count);
      const byte_range all{0, resource_bytes};
      fetch_request(url,
                    q.whole ? std::span<const byte_range>(&all, 1) : std::span<const byte_range>(q.asked),
                    wanted, resource_bytes, dst, wire, q.whole);
      for (const byte_range& r : wanted) {
        dst += r.length;
      }
    }
    return wire;
  }

  /// The predicted bytes of `fetch_ranges_into(url, ranges, resource_bytes, …)` (probing `url`
  /// when it is not yet measured).
  wire_stats predict_ranges(const std::string& url, std::span<const byte_range> ranges,
                            std::size_t resource_bytes) {
    const transport_model& m = model(url, resource_bytes);
    return transfer::predict(
      schedule_requests(ranges, resource_bytes, opt_.strategy, opt_.max_range_header_bytes, opt_.merge, &m),
      ranges, m);
  }

  /// The canonical payload of `cp.logical()` fetched from the chunked file at `url` (made by
  /// `to_chunked` / `rechunk_file` from the plan's data): the same bytes as `fetch_payload` of the
  /// plan from the original file.
  fetched_payload fetch_payload(const chunked_plan& cp, const std::string& url) {
    std::vector<std::byte> read(cp.payload_bytes());
    fetched_payload out;
    out.wire = fetch_ranges_into(url, cp.file_ranges(), cp.file_bytes(), read);
    out.payload = cp.to_plan_payload(read);
    return out;
  }
  /// Fetches from the chunked file and unpacks: the dense N×C×H×W tensor on backend `B`.
  template <tensor_backend B>
  fetched_tensor<tensor_t<B>> fetch(const chunked_plan& cp, const std::string& url,
                                    const unpack_options& opt = {}) {
    fetched_payload f = fetch_payload(cp, url);
    return {unpack_tensor<B>(cp.logical(), f.payload, opt), f.wire};
  }
  /// The predicted bytes of fetching `cp` from the chunked file at `url`.
  wire_stats predict(const chunked_plan& cp, const std::string& url) {
    return predict_ranges(url, cp.file_ranges(), cp.file_bytes());
  }

  /// The transport model of `url` (transfer/wire.hpp), measured by `probe` on first use and kept
  /// for the client's lifetime (`forget_models` drops them, e.g. after the files changed).
  /// Throws `io_error` when the resource's size differs from `expected_size` (a plan for other
  /// data, or a truncated file).
  const transport_model& model(const std::string& url, std::size_t expected_size) {
    auto it = models_.find(url);
    if (it == models_.end()) {
      it = models_.emplace(url, probe(url)).first;
    }
    if (it->second.resource_bytes != expected_size) {
      throw io_error("selmask::transfer::http_client: GET " + url + ": the server's resource has " +
                     std::to_string(it->second.resource_bytes) + " bytes, the plan expects " +
                     std::to_string(expected_size) + " (truncated file, or a plan for other data)");
    }
    return it->second;
  }
  void forget_models() noexcept { models_.clear(); }
  /// Bytes the probes of this client have cost so far.
  [[nodiscard]] const wire_stats& probe_wire() const noexcept { return probe_wire_; }

  /// Measures the transport model of `url` with three requests: bytes 0-0 (a one-part 206),
  /// bytes 0-0,2-2 (a multipart 206; skipped for resources under 3 bytes, where no plan asks two
  /// ranges) and a plain GET whose body is refused at its first byte (only its request and header
  /// bytes are used). Throws `io_error` when the server does not answer as a range server must,
  /// or frames its parts in a way the model cannot describe (then the predictions would be wrong).
  transport_model probe(const std::string& url) {
    const std::string what = "selmask::transfer::http_client::probe: GET " + url + ": ";
    transport_model m;
    // 1. one range
    response r1;
    perform_retrying(url, "0-0", r1, 1, 206, probe_wire_, what);
    check_transfer(r1, what);
    check_range_status(r1, what, 0, false);
    if (r1.content_range.empty() || !r1.content_type_boundary.empty()) {
      throw io_error(what + "a one-range request was not answered with a one-part 206 and a Content-Range");
    }
    const content_range c1 = parse_content_range(r1.content_range);
    if (!c1.total) {
      throw io_error(what + "the server did not give the resource's size (Content-Range total '*')");
    }
    m.resource_bytes = *c1.total;
    m.range_request_fixed = r1.request_bytes - std::string_view("bytes=0-0").size();
    m.single_header_fixed = r1.header_bytes - 3; // digits of 0, 0 and the length 1
    // 2. two ranges
    if (m.resource_bytes >= 3) {
      response r2;
      const std::size_t limit = 4096;
      perform_retrying(url, "0-0,2-2", r2, limit, 206, probe_wire_, what);
      check_transfer(r2, what);
      check_range_status(r2, what, m.resource_bytes, false);
      const auto boundary = multipart_boundary(r2.content_type);
      if (!boundary) {
        throw io_error(what +
                       "a two-range request was not answered with multipart/byteranges (Content-Type '" +
                       r2.content_type + "'): use range_strategy::per_range with this server");
      }
      const std::vector<byterange_part> parts = parse_multipart_byteranges(body_, *boundary);
      if (parts.size() != 2 || parts[0].range.first != 0 || parts[1].range.first != 2) {
        throw io_error(what + "the two-range request came back as " + std::to_string(parts.size()) +
                       " parts, not bytes 0-0 and 2-2");
      }
      if (r2.request_bytes - std::string_view("bytes=0-0,2-2").size() != m.range_request_fixed) {
        throw io_error(what + "the request sizes do not grow with the Range value alone (" +
                       std::to_string(r1.request_bytes) + " and " + std::to_string(r2.request_bytes) +
                       " bytes)");
      }
      m.part_fixed = parts[0].data_offset - 2;
      if (parts[1].data_offset - (parts[0].data_offset + 1) - 2 != m.part_fixed) {
        throw io_error(what + "the server's part framing differs between parts (not a fixed layout)");
      }
      m.closing = body_.size() - (parts[1].data_offset + 1);
      m.multi_header_fixed = r2.header_bytes - decimal_digits(body_.size());
    }
    // 3. a plain GET: request and header bytes
    response r3;
    r3.headers_only = true;
    perform_retrying(url, "", r3, 0, 200, probe_wire_, what);
    check_transfer(r3, what);
    if (r3.status != 200) {
      throw io_error(what + "a plain GET was answered with HTTP " + std::to_string(r3.status) +
                     " (expected 200)");
    }
    m.plain_request = r3.request_bytes;
    m.full_header = r3.header_bytes;
    return m;
  }

  /// The predicted bytes of `fetch_into(p, urls, …)` with this client's options (probing URLs
  /// not yet measured).
  wire_stats predict(const plan& p, std::span<const std::string> urls) {
    check_urls(p, urls, "selmask::transfer::http_client::predict: ");
    std::vector<transport_model> ms;
    for (const std::string& u : urls) {
      ms.push_back(model(u, p.source().stream_bytes()));
    }
    return predict_fetch(p, ms, opt_.strategy, opt_.max_range_header_bytes, opt_.merge);
  }
  wire_stats predict(const plan& p, const std::string& url) {
    return predict(p, std::span<const std::string>(&url, 1));
  }

  /// The whole resource at `url` with one plain GET (the full download a plan is compared with);
  /// `payload` is the resource, `wire` what it cost (`range_bytes` = `read_bytes` = its size).
  fetched_payload download_whole(const std::string& url) {
    const std::string what = "selmask::transfer::http_client::download_whole: GET " + url + ": ";
    fetched_payload out;
    response r;
    perform_retrying(url, "", r, std::numeric_limits<std::size_t>::max(), 200, out.wire, what);
    check_transfer(r, what);
    if (r.status != 200) {
      throw io_error(what + "HTTP " + std::to_string(r.status) + " (expected 200)");
    }
    out.payload.resize(body_.size());
    std::memcpy(out.payload.data(), body_.data(), body_.size());
    out.wire.read_bytes += body_.size();
    out.wire.range_bytes += body_.size();
    return out;
  }

  /// The answer to a request that is not a range fetch (`exchange`).
  struct exchange_result {
    long status = 0;
    std::string body; ///< also of an error answer (a server's message)
    wire_stats wire;  ///< requests: the request line, headers and any body sent
  };

  /// One `method` request ("GET", "HEAD", or "POST" with `body` as application/octet-stream) of
  /// `url`, counted as the range fetches are; the building block of the packing server's client
  /// (transfer/pack_client.hpp). Throws `io_error` naming the URL when the transfer fails or the
  /// body exceeds `body_limit`; any HTTP status is returned.
  exchange_result exchange(const std::string& method, const std::string& url, std::string_view body,
                           std::size_t body_limit) {
    const std::string what = "selmask::transfer::http_client: " + method + " " + url + ": ";
    exchange_result out;
    response r;
    r.method = method;
    r.upload = body;
    r.any_status = true;
    perform(url, "", r, body_limit, 200, out.wire);
    check_transfer(r, what);
    out.status = r.status;
    out.body = std::move(body_);
    body_.clear();
    return out;
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
  friend class http_multi_client;
  struct curl_deleter {
    void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
  };
  struct slist_deleter {
    void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
  };

  struct response : response_head { ///< status, Content-Type, boundary, Content-Range
    std::string* body = nullptr;    ///< the client's reusable buffer
    long accept = 206;              ///< the status whose body is wanted
    bool headers_only = false;      ///< refuse the body at its first byte (a probe)
    bool any_status = false;        ///< keep the body whatever the status (`exchange`)
    std::string_view method;        ///< empty: GET; "HEAD"; "POST" (with `upload`)
    std::string_view upload;
    std::size_t header_out_bytes = 0; ///< request line and headers sent (uploads only)
    std::size_t body_limit = 0;
    std::size_t body_bytes = 0;
    std::size_t header_bytes = 0;
    std::size_t request_bytes = 0;
    bool refused = false;  ///< aborted: the status is not the accepted one (or headers only)
    bool overflow = false; ///< aborted: the body exceeded its limit
    CURLcode rc = CURLE_OK;
    std::string error;       ///< curl's message when rc is not CURLE_OK
    std::string retry_after; ///< the Retry-After value, trimmed
  };

  static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
    auto* r = static_cast<response*>(user);
    const std::size_t len = size * n;
    r->header_bytes += len;
    const std::string_view line(data, len);
    read_response_line(*r, line);
    if (line.size() >= 5 && line.substr(0, 5) == "HTTP/") {
      r->retry_after.clear();
    } else if (const std::size_t colon = line.find(':');
               colon != std::string_view::npos &&
               detail::iequals(detail::trim(line.substr(0, colon)), "retry-after")) {
      r->retry_after = detail::trim(line.substr(colon + 1));
    }
    return len;
  }

  static int on_debug(CURL*, curl_infotype type, char*, std::size_t size, void* user) {
    if (type == CURLINFO_HEADER_OUT) {
      static_cast<response*>(user)->header_out_bytes += size;
    }
    return 0;
  }

  static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
    auto* r = static_cast<response*>(user);
    const std::size_t len = size * n;
    r->body_bytes += len;
    if ((r->status != r->accept && !r->any_status) || r->headers_only) {
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

  static void check_urls(const plan& p, std::span<const std::string> urls, const std::string& where) {
    if (urls.size() != p.streams()) {
      throw shape_error(where + std::to_string(urls.size()) + " URLs given, the plan reads " +
                        std::to_string(p.streams()) + " streams (one URL per version)");
    }
  }

  /// One GET of `url` (with `Range: bytes=<range>` unless `range` is empty) into `body_`, a body
  /// of at most `body_limit` bytes wanted when the status is `accept`. Counts the request,
  /// header and body bytes as sent and received into `r` and `wire`; no check of the outcome.
  void perform(const std::string& url, const std::string& range, response& r, std::size_t body_limit,
               long accept, wire_stats& wire) {
    body_.clear();
    r.body = &body_;
    r.body_limit = body_limit;
    r.accept = accept;
    char errbuf[CURL_ERROR_SIZE] = {};
    CURL* c = curl_.get();
    const auto headers = prepare(c, url, range, r, errbuf);
    account(c, curl_easy_perform(c), errbuf, r, wire);
  }

  /// Sets `c` up (after a reset) for one request of `url` into `*r.body` as `perform` makes it;
  /// the list returned holds the request's extra headers and must outlive the transfer.
  std::unique_ptr<curl_slist, slist_deleter> prepare(CURL* c, const std::string& url,
                                                     const std::string& range, response& r,
                                                     char* errbuf) const {
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    if (!range.empty()) {
      curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
    }
    std::unique_ptr<curl_slist, slist_deleter> headers;
    if (r.method == "HEAD") {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (r.method == "POST") {
      headers.reset(curl_slist_append(nullptr, "Content-Type: application/octet-stream"));
      headers.reset(curl_slist_append(headers.release(), "Expect:")); // no 100-continue round trip
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, r.upload.empty() ? "" : r.upload.data()); // never NULL (stdin)
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.upload.size()));
      curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
      curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, &http_client::on_debug);
      curl_easy_setopt(c, CURLOPT_DEBUGDATA, &r);
      curl_easy_setopt(c, CURLOPT_VERBOSE, 1L); // on_debug counts the request line and headers sent
    }
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, opt_.connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, opt_.timeout_ms);
    if (!opt_.ca_file.empty()) {
      curl_easy_setopt(c, CURLOPT_CAINFO, opt_.ca_file.c_str());
    }
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &http_client::on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &http_client::on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    return headers;
  }

  /// Records how the transfer of `c` for `r` ended (`rc`, the message in `errbuf`) and counts it.
  static void account(CURL* c, CURLcode rc, const char* errbuf, response& r, wire_stats& wire) {
    r.rc = rc;
    if (r.rc != CURLE_OK) {
      r.error = errbuf[0] != '\0' ? std::string(errbuf) : std::string(curl_easy_strerror(r.rc));
    }
    long request_size = 0;
    curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &request_size);
    r.request_bytes = static_cast<std::size_t>(request_size > 0 ? request_size : 0);
    if (!r.upload.empty()) { // CURLINFO_REQUEST_SIZE holds the body only when it fits the first send
      curl_off_t sent = 0;
      curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &sent);
      r.request_bytes = r.header_out_bytes + static_cast<std::size_t>(sent > 0 ? sent : 0);
    }
    wire.requests += 1;
    wire.request_bytes += r.request_bytes;
    wire.body_bytes += r.body_bytes;
    wire.header_bytes += r.header_bytes;
  }

  static void check_transfer(const response& r, const std::string& what) {
    if (r.overflow) {
      throw io_error(what + "the response body is longer than the " + std::to_string(r.body_limit) +
                     " bytes the request can take");
    }
    if (r.rc != CURLE_OK && !r.refused) {
      if (r.rc == CURLE_PARTIAL_FILE) {
        throw io_error(what + "the response body ended early (short body: " + std::to_string(r.body_bytes) +
                       " bytes received): " + r.error);
      }
      throw io_error(what + "transfer failed: " + r.error);
    }
  }

  /// A failed attempt's outcome, with the status and Retry-After of `r`.
  static attempt_result failed(attempt_result::kind k, std::string message, const response& r) {
    return {k, std::move(message), r.status,
            r.retry_after.empty() ? std::nullopt : parse_retry_after(r.retry_after)};
  }

  /// How the transfer of `r` failed, when it did (not: a body refused on purpose). Transient:
  /// connections refused, reset or closed early, timeouts, HTTP/2 stream errors.
  attempt_result transport_failure(const response& r) const {
    using kind = attempt_result::kind;
    if (r.overflow) {
      return failed(kind::permanent,
                    "the response body is longer than the " + std::to_string(r.body_limit) +
                      " bytes the request can take",
                    r);
    }
    switch (r.rc) {
      case CURLE_OK:
        return {};
      case CURLE_PARTIAL_FILE:
        return failed(kind::transient,
                      "the response body ended early (short body: " + std::to_string(r.body_bytes) +
                        " bytes received): " + r.error,
                      r);
      case CURLE_COULDNT_CONNECT:
      case CURLE_OPERATION_TIMEDOUT:
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM:
        return failed(kind::transient, "transfer failed: " + r.error, r);
      case CURLE_PEER_FAILED_VERIFICATION:
        return failed(kind::permanent,
                      "the server's certificate is not trusted (" + r.error +
                        "): give the CA that signed it " +
                        (opt_.ca_file.empty() ? std::string("with http_options::ca_file")
                                              : "in http_options::ca_file (now '" + opt_.ca_file + "')"),
                      r);
      case CURLE_SSL_CACERT_BADFILE:
        return failed(kind::permanent,
                      "http_options::ca_file '" + opt_.ca_file + "' cannot be used: " + r.error, r);
      default:
        return r.refused ? attempt_result{} : failed(kind::permanent, "transfer failed: " + r.error, r);
    }
  }

  /// The outcome of a complete answer with status `r.status`, which is not the one wanted.
  static attempt_result status_failure(const response& r, std::size_t expected_size, bool ranged) {
    using kind = attempt_result::kind;
    if (retryable_status(r.status)) {
      return failed(kind::transient,
                    "HTTP " + std::to_string(r.status) +
                      (r.retry_after.empty() ? std::string() : " (Retry-After: " + r.retry_after + ")"),
                    r);
    }
    if (!ranged) {
      return failed(kind::permanent, "HTTP " + std::to_string(r.status) + " (expected 200)", r);
    }
    try {
      check_range_status(r, std::string(), expected_size, true);
    } catch (const io_error& e) {
      return failed(kind::permanent, e.what(), r);
    }
    return failed(kind::permanent, "HTTP " + std::to_string(r.status) + " (expected 206 Partial Content)", r);
  }

  /// `perform` with retries of transient failures (transport or status); the caller checks the
  /// final answer. `r`'s `headers_only` is kept across attempts.
  void perform_retrying(const std::string& url, const std::string& range, response& r, std::size_t body_limit,
                        long accept, wire_stats& wire, const std::string& what) {
    const bool headers_only = r.headers_only;
    retry_until_done(
      opt_.retry, rng_, wire.retries, url, [&] { return what; },
      [&] { return range.empty() ? std::string() : "bytes=" + range; },
      [&] {
        r = response{};
        r.headers_only = headers_only;
        perform(url, range, r, body_limit, accept, wire);
        attempt_result a = transport_failure(r);
        if (a.k == attempt_result::kind::done && retryable_status(r.status)) {
          a = status_failure(r, 0, false);
        }
        return a;
      });
  }

  /// Fetches the `wanted` bytes (each inside one of `asked`) of `url` into `dst`: `asked` in range
  /// requests (as many as the header limit needs), or with one plain GET of the whole resource
  /// when `whole` (then `asked` is that one range). A failed attempt keeps what arrived; the
  /// next asks for the missing bytes only.
  void fetch_request(const std::string& url, std::span<const byte_range> asked,
                     std::span<const byte_range> wanted, std::size_t expected_size, std::byte* dst,
                     wire_stats& wire, bool whole) {
    pending_ranges pending(asked, wanted, dst);
    std::vector<byte_range> ask;
    bool plain = whole;
    const auto range = [&] {
      const std::string v = plain ? std::string() : range_header_value(pending.next_ask());
      return v.size() > 80 ? v.substr(0, 77) + "..." : v;
    };
    const auto what = [&] {
      return "selmask::transfer::http_client: GET " + url +
             (plain ? std::string(" (whole resource): ") : " (Range: " + range() + "): ");
    };
    while (!pending.empty()) {
      retry_until_done(opt_.retry, rng_, wire.retries, url, what, range, [&] {
        if (plain) {
          const attempt_result a = attempt_whole(url, expected_size, pending, wire);
          plain = plain && a.k == attempt_result::kind::permanent; // retries ask for the missing bytes
          return a;
        }
        ask = pending.next_ask();
        ask.resize(ranges_fitting(ask, opt_.max_range_header_bytes)); // the rest in the next request
        return attempt_ranges(url, ask, pending, expected_size, wire);
      });
    }
  }

  /// One range request of `ask`; what arrives of `pending`'s bytes is copied in and crossed off.
  attempt_result attempt_ranges(const std::string& url, std::span<const byte_range> ask,
                                pending_ranges& pending, std::size_t expected_size, wire_stats& wire) {
    const std::size_t span_bytes = ask.back().offset + ask.back().length - ask.front().offset;
    std::size_t read = 0;
    for (const byte_range& br : ask) {
      read += br.length;
    }
    body_.reserve(ask.size() == 1 ? read : read + 256 + ask.size() * 160);
    response r;
    perform(url, range_header_value(ask).substr(6), r,
            ask.size() == 1 ? span_bytes : span_bytes + 1024 + ask.size() * 256, 206, wire);
    return take_ranges(r, body_, ask, pending, expected_size, wire);
  }

  /// The outcome of the answer `r` (body `body`) to a range request of `ask`; what it holds of
  /// `pending`'s bytes is copied in and crossed off, also of a body cut short.
  attempt_result take_ranges(const response& r, std::string_view body, std::span<const byte_range> ask,
                             pending_ranges& pending, std::size_t expected_size, wire_stats& wire) const {
    using kind = attempt_result::kind;
    attempt_result a = transport_failure(r);
    if (a.k == kind::transient && r.status == 206) { // keep what arrived
      try {
        const std::vector<received_part> parts = salvage_parts(r, body, expected_size);
        pending_ranges::check_parts(parts, ask, false);
        const std::size_t kept = take(parts, ask, pending, wire, body);
        a.message += "; " + std::to_string(kept) + " bytes of it kept, " +
                     std::to_string(pending.missing_bytes()) + " still missing";
      } catch (const io_error& e) {
        return failed(kind::permanent, a.message + "; what arrived is unusable: " + e.what(), r);
      }
    }
    if (a.k != kind::done) {
      return a;
    }
    if (r.status != 206) {
      return status_failure(r, expected_size, true);
    }
    try {
      std::vector<received_part> parts;
      for (const byterange_part& p : response_parts(r, body, expected_size)) {
        parts.push_back({p.range, p.data_offset, p.range.length()});
      }
      pending_ranges::check_parts(parts, ask, true);
      take(parts, ask, pending, wire, body);
    } catch (const io_error& e) {
      return failed(kind::permanent, e.what(), r);
    }
    return {};
  }

  /// One plain GET of the whole resource (`expected_size` bytes), of which `pending`'s bytes are
  /// copied in (also of a body cut short).
  attempt_result attempt_whole(const std::string& url, std::size_t expected_size, pending_ranges& pending,
                               wire_stats& wire) {
    using kind = attempt_result::kind;
    body_.reserve(expected_size);
    response r;
    perform(url, "", r, expected_size, 200, wire);
    const byte_range all{0, expected_size};
    attempt_result a = transport_failure(r);
    if (a.k == kind::transient && r.status == 200) {
      const received_part got{{0, expected_size - 1, expected_size}, 0, body_.size()};
      take(std::span<const received_part>(&got, 1), std::span<const byte_range>(&all, 1), pending, wire,
           body_);
    }
    if (a.k != kind::done) {
      return a;
    }
    if (r.status != 200) {
      return status_failure(r, expected_size, false);
    }
    if (body_.size() != expected_size) {
      return failed(kind::permanent,
                    "the server's resource has " + std::to_string(body_.size()) +
                      " bytes, the plan expects " + std::to_string(expected_size) +
                      " (truncated file, or a plan for other data)",
                    r);
    }
    const received_part got{{0, expected_size - 1, expected_size}, 0, expected_size};
    take(std::span<const received_part>(&got, 1), std::span<const byte_range>(&all, 1), pending, wire, body_);
    return {};
  }

  /// Copies what `parts` hold of `pending`'s bytes and counts it; returns the bytes copied.
  static std::size_t take(std::span<const received_part> parts, std::span<const byte_range> ask,
                          pending_ranges& pending, wire_stats& wire, std::string_view body) {
    const std::size_t read = pending_ranges::asked_bytes(parts, ask);
    const std::size_t got = pending.fill(parts, body);
    wire.read_bytes += read;
    wire.range_bytes += got;
    wire.discarded_bytes += read > got ? read - got : 0;
    return got;
  }

  http_options opt_;
  std::unique_ptr<CURL, curl_deleter> curl_;
  std::map<std::string, transport_model> models_; ///< per URL, measured by probe
  wire_stats probe_wire_;
  std::string body_;                            ///< response body buffer, reused across requests
  std::mt19937_64 rng_{std::random_device{}()}; ///< the retries' jitter
};

} // namespace selmask::transfer

#include "wire_compare.hpp" // compare_wire, here for the users of http.hpp before it moved
