#pragma once
/// \file transfer/pack_client.hpp
/// The client of the packing server (transfer/server.hpp): `http_client` asking a server that
/// packs for a plan's payload (static masks) or for the samples a client's bitmaps select
/// (dynamic masks), with the bytes on the wire counted as for range fetches (`wire_stats`:
/// request, response header and body bytes as libcurl sent and received them), and a
/// `packed_model` that predicts them.
///
/// Needs libcurl (the `selmask::http` target), not the server: any server that answers as
/// transfer/pack_service.hpp describes will do.
///
/// The prediction: a packed fetch is one request and one 200 answer whose body is the payload,
/// so its bytes are the request (fixed for one target), the header block minus the digits of
/// its Content-Length (fixed for one server) plus those digits, and the payload. `probe_packed`
/// measures both with one HEAD request of the same target (the server answers it with the GET's
/// headers and no body; the GET's request line is one byte shorter than the HEAD's).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "http.hpp"
#include "pack.hpp"
#include "plan.hpp"
#include "plan_file.hpp"
#include "wire.hpp"

namespace selmask::transfer {

/// Where a packing server finds a plan's data: its base URL ("http://127.0.0.1:8080"), the
/// stored files (one per stream, paths under its root) and the plan file's path under its root
/// (empty: the plan's JSON travels in the request body).
struct packed_source {
  std::string server;
  std::vector<std::string> files;
  std::string plan_file;
};

/// The measured constants of one packed target (see the top of this file).
struct packed_model {
  std::size_t request_bytes = 0; ///< bytes of the GET request
  std::size_t header_fixed = 0;  ///< response header bytes minus the digits of Content-Length

  /// The predicted bytes of a GET answered with a body of `payload` bytes.
  [[nodiscard]] wire_stats predict(std::size_t payload) const noexcept {
    wire_stats w;
    w.requests = 1;
    w.request_bytes = request_bytes;
    w.header_bytes = header_fixed + decimal_digits(payload);
    w.body_bytes = payload;
    w.read_bytes = payload;
    w.range_bytes = payload;
    return w;
  }
};

namespace detail {

/// `s` percent-encoded for a query value (RFC 3986 unreserved characters and '/' as they are).
inline std::string query_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~' || c == '/') {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

inline std::string packed_query(const packed_source& src) {
  std::string q;
  for (const std::string& f : src.files) {
    q += (q.empty() ? "?" : "&") + std::string("file=") + query_encode(f);
  }
  if (!src.plan_file.empty()) {
    q += (q.empty() ? "?" : "&") + std::string("plan=") + query_encode(src.plan_file);
  }
  return q;
}

/// The answer `r` as a payload of `expected` bytes, or an `io_error` naming the URL, the
/// status and the server's message.
inline fetched_payload packed_answer(http_client::exchange_result r, std::size_t expected,
                                     const std::string& what) {
  if (r.status != 200) {
    while (!r.body.empty() && (r.body.back() == '\n' || r.body.back() == '\r')) {
      r.body.pop_back();
    }
    throw io_error(what + "HTTP " + std::to_string(r.status) +
                   (r.body.empty() ? "" : ": " + r.body.substr(0, 300)));
  }
  if (r.body.size() != expected) {
    throw io_error(what + "the server answered " + std::to_string(r.body.size()) + " bytes, the payload is " +
                   std::to_string(expected));
  }
  fetched_payload out;
  out.payload.resize(r.body.size());
  std::memcpy(out.payload.data(), r.body.data(), r.body.size());
  out.wire = r.wire;
  out.wire.read_bytes += r.body.size();
  out.wire.range_bytes += r.body.size();
  return out;
}

} // namespace detail

/// The URL of `pack` of `src` (a GET; needs `src.plan_file`).
inline std::string packed_url(const packed_source& src) {
  return src.server + "/pack" + detail::packed_query(src);
}

/// The payload of `p` packed by the server: a GET naming the plan file when `src.plan_file` is
/// set, else a POST carrying `p`'s JSON. Throws `io_error` for any answer but 200 with exactly
/// `p.payload_bytes()` bytes (the message names the status and the server's reason).
inline fetched_payload fetch_packed(http_client& client, const plan& p, const packed_source& src) {
  const std::string url = packed_url(src);
  const std::string what = "selmask::transfer::fetch_packed: " + url + ": ";
  if (src.plan_file.empty()) {
    return detail::packed_answer(client.exchange("POST", url, plan_to_json(p), p.payload_bytes() + 4096),
                                 p.payload_bytes(), what);
  }
  return detail::packed_answer(client.exchange("GET", url, {}, p.payload_bytes() + 4096), p.payload_bytes(),
                               what);
}

/// One bitmap per sample over the cells of `g` (bit k mod 8 of byte k / 8: cell k kept), from
/// each sample's 0/1 cell values, `keep[n]` of sample n (`g.cells()` values each).
inline std::vector<std::uint8_t> selection_bitmaps(const cell_geometry& g,
                                                   std::span<const std::vector<float>> keep) {
  const std::size_t per = (g.cells() + 7) / 8;
  std::vector<std::uint8_t> out(per * keep.size(), 0);
  for (std::size_t n = 0; n < keep.size(); ++n) {
    if (keep[n].size() != g.cells()) {
      throw shape_error("selmask::transfer::selection_bitmaps: sample " + std::to_string(n) + " has " +
                        std::to_string(keep[n].size()) + " cell values, the geometry " +
                        std::to_string(g.cells()));
    }
    for (std::size_t k = 0; k < g.cells(); ++k) {
      if (keep[n][k] != 0.0f) {
        out[n * per + k / 8] = static_cast<std::uint8_t>(out[n * per + k / 8] | (1u << (k % 8)));
      }
    }
  }
  return out;
}

/// The samples `first` .. `first + count − 1` of `src.files[0]` (`count` = bitmaps / bitmap size),
/// each packed with the mask of its bitmap (`selection_bitmaps`) over the cells of the plan file
/// `src.plan_file`'s mask; `tmpl` is that plan (its storage and geometry give the expected size).
inline fetched_payload fetch_selected(http_client& client, const plan& tmpl,
                                      std::span<const std::uint8_t> bitmaps, const packed_source& src,
                                      std::size_t first = 0) {
  const std::string what = "selmask::transfer::fetch_selected: ";
  if (tmpl.masks().size() != 1 || src.plan_file.empty()) {
    throw value_error(what + "bitmaps need a plan file with exactly one any-mask");
  }
  const cell_geometry& g = tmpl.masks()[0].geometry;
  const std::size_t per = (g.cells() + 7) / 8;
  const std::size_t n = bitmaps.size() / per;
  storage one = tmpl.source();
  one.samples = 1;
  std::size_t expected = 0;
  std::vector<float> keep(g.cells());
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < g.cells(); ++k) {
      keep[k] = (bitmaps[i * per + k / 8] >> (k % 8)) & 1u ? 1.0f : 0.0f;
    }
    expected += plan::from_masks({hard_mask{g, keep}}, one).payload_bytes();
  }
  const std::string url = src.server + "/select" + detail::packed_query(src) +
                          "&first=" + std::to_string(first) + "&count=" + std::to_string(n);
  const std::string_view body(reinterpret_cast<const char*>(bitmaps.data()), bitmaps.size());
  return detail::packed_answer(client.exchange("POST", url, body, expected + 4096), expected,
                               what + url + ": ");
}

/// The dense N×C×H×W floats of a `fetch_selected` payload: sample i unpacked with the plan of
/// its own bitmap (dropped values `opt.fill`), as `unpack` does for a static plan. Throws
/// `shape_error` when the payload's size differs from what the bitmaps select.
inline std::vector<float> unpack_selected(const plan& tmpl, std::span<const std::uint8_t> bitmaps,
                                          std::span<const std::byte> payload,
                                          const unpack_options& opt = {}) {
  const cell_geometry& g = tmpl.masks().at(0).geometry;
  const std::size_t per = (g.cells() + 7) / 8;
  const std::size_t n = bitmaps.size() / per;
  storage one = tmpl.source();
  one.samples = 1;
  const std::size_t values = one.sample_values();
  std::vector<float> out(n * values);
  std::vector<float> keep(g.cells());
  std::size_t at = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < g.cells(); ++k) {
      keep[k] = (bitmaps[i * per + k / 8] >> (k % 8)) & 1u ? 1.0f : 0.0f;
    }
    const plan p = plan::from_masks({hard_mask{g, keep}}, one);
    if (at + p.payload_bytes() > payload.size()) {
      throw shape_error("selmask::transfer::unpack_selected: the payload of " +
                        std::to_string(payload.size()) + " bytes ends inside sample " + std::to_string(i));
    }
    unpack(p, payload.subspan(at, p.payload_bytes()), std::span<float>(out).subspan(i * values, values), opt);
    at += p.payload_bytes();
  }
  if (at != payload.size()) {
    throw shape_error("selmask::transfer::unpack_selected: a payload of " + std::to_string(payload.size()) +
                      " bytes, the bitmaps select " + std::to_string(at));
  }
  return out;
}

/// Measures the `packed_model` of `src`'s GET with one HEAD request, for a payload of
/// `payload_bytes` (the Content-Length the HEAD announces); its bytes are added to `*cost`.
/// Throws `io_error` unless the server answers 200.
inline packed_model probe_packed(http_client& client, const packed_source& src, std::size_t payload_bytes,
                                 wire_stats* cost = nullptr) {
  const std::string url = packed_url(src);
  const http_client::exchange_result r = client.exchange("HEAD", url, {}, 0);
  if (r.status != 200) {
    throw io_error("selmask::transfer::probe_packed: HEAD " + url + ": HTTP " + std::to_string(r.status));
  }
  if (cost != nullptr) {
    *cost += r.wire;
  }
  // the GET's request line says "GET", one byte shorter than "HEAD"
  return {r.wire.request_bytes - 1, r.wire.header_bytes - decimal_digits(payload_bytes)};
}

/// The predicted bytes of `fetch_packed(client, p, src)` with a named plan file (one HEAD probe).
inline wire_stats predict_packed(http_client& client, const plan& p, const packed_source& src) {
  return probe_packed(client, src, p.payload_bytes()).predict(p.payload_bytes());
}

} // namespace selmask::transfer
