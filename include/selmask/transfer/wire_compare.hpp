#pragma once
/// \file transfer/wire_compare.hpp
/// `compare_wire`: a plan's bytes on the wire over one server — plain ranges, coalesced ranges
/// and the full download — counted by the HTTP client (transfer/http.hpp, which includes this
/// header) and predicted by the measured transport model side by side.
///
/// Needs libcurl, as http.hpp: link the `selmask::http` CMake target.

#include <span>
#include <string>

#include "../error.hpp"
#include "http.hpp"

namespace selmask::transfer {

/// A plan's bytes on the wire over one server, measured and predicted side by side: plain ranges
/// (coalescing off), coalesced ranges (`merged`, default auto) and the full download (one plain
/// GET per stream), each counted by the client and predicted by the measured transport model.
/// What a report (a front, a README table) puts beside the payload.
struct wire_comparison {
  std::size_t samples = 0;       ///< samples the plan reads
  std::size_t payload_bytes = 0; ///< the plan's payload (all samples)
  wire_stats plain, plain_predicted;
  wire_stats coalesced, coalesced_predicted;
  wire_stats full, full_predicted;
  coalescing merged;

  /// Bytes per sample of a total (e.g. `per_sample(coalesced.total())`).
  [[nodiscard]] double per_sample(std::size_t bytes) const noexcept {
    return samples == 0 ? 0.0 : static_cast<double>(bytes) / static_cast<double>(samples);
  }
};

/// Fetches `p` from `urls` plain and coalesced (`merged`, with `base`'s strategy and limits) and
/// downloads every stream whole, checks that both fetches gave the same payload (`io_error`
/// otherwise), and returns the counted and predicted bytes of the three.
inline wire_comparison compare_wire(const plan& p, std::span<const std::string> urls, http_options base = {},
                                    coalescing merged = coalescing::automatic()) {
  wire_comparison out;
  out.samples = p.source().samples;
  out.payload_bytes = p.payload_bytes();
  out.merged = merged;
  base.merge = coalescing::off();
  http_client plain(base);
  base.merge = merged;
  http_client coalesced(base);
  out.plain_predicted = plain.predict(p, urls);
  out.coalesced_predicted = coalesced.predict(p, urls);
  const fetched_payload a = plain.fetch_payload(p, urls);
  const fetched_payload b = coalesced.fetch_payload(p, urls);
  if (a.payload != b.payload) {
    throw io_error(
      "selmask::transfer::compare_wire: the coalesced fetch gave another payload than the plain one");
  }
  out.plain = a.wire;
  out.coalesced = b.wire;
  for (const std::string& u : urls) {
    out.full += plain.download_whole(u).wire;
    out.full_predicted += plain.model(u, p.source().stream_bytes()).full_download();
  }
  return out;
}
inline wire_comparison compare_wire(const plan& p, const std::string& url, http_options base = {},
                                    coalescing merged = coalescing::automatic()) {
  return compare_wire(p, std::span<const std::string>(&url, 1), base, merged);
}

} // namespace selmask::transfer
