#pragma once
/// \file transfer/dynamic.hpp
/// Dynamic transfer: the client decides each sample's selection itself, from a preview it fetched
/// first (mask/dynamic.hpp). For a group of samples stored in one resource (a file on an HTTP
/// server, `storage` describes it):
///  1. fetch the preview cells of every sample of the group (byte ranges, one exchange);
///  2. decode them (`float(stored)·scale`) and run the dynamic mask's mask model on them: each
///     sample's chosen cells (`dynamic_any_mask::choose`);
///  3. fetch the chosen cells that are not in the preview (byte ranges, one exchange).
/// Nothing else moves: no index, no bitmap (the client made the decision). The bytes of the data
/// are the preview's plus the chosen cells', per sample exactly what the mask's Q counts (with
/// uniform costs, `Q_n · sample_bytes`); the bytes on the wire add the HTTP framing of the two
/// exchanges, which the client's transport model predicts byte for byte (transfer/wire.hpp) and
/// which a larger group spreads over more samples.
///
/// The group's samples need not be consecutive; ranges of neighbouring cells are merged, and the
/// client's coalescing policy applies as for static plans.
///
/// For one-byte cells scattered over the sample (pixels), the framing of the two range exchanges
/// outweighs the data many times. `fetch_dynamic_packed` asks a packing server
/// (transfer/server.hpp, `POST /select`) instead: the client still decides, and sends each
/// exchange's selection as one bitmap per sample (a bit per cell: 98 bytes for 784 cells); the
/// answer is the selected values packed in one body, no framing per cell. The bitmaps are counted
/// in the wire bytes (`request_bytes`).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "../backend/backend.hpp"
#include "../error.hpp"
#include "http.hpp"
#include "pack.hpp"
#include "pack_client.hpp"
#include "storage.hpp"

namespace selmask::transfer {

/// What `fetch_dynamic` moved and decoded for a group of samples.
struct dynamic_fetch {
  std::vector<std::vector<std::size_t>> kept;     ///< per sample: the locations kept (preview + chosen)
  std::vector<float> values;                      ///< the samples, N×C×H×W, the mask's fill outside `kept`
  std::size_t preview_bytes = 0;                  ///< data bytes of the previews
  std::size_t chosen_bytes = 0;                   ///< data bytes of the chosen cells
  wire_stats preview_wire, chosen_wire;           ///< counted by the client
  wire_stats preview_predicted, chosen_predicted; ///< the transport model's prediction
};

/// Storage positions and byte ranges of a sample's locations.
class dynamic_layout {
public:
  /// `s`: the stored array (`versions` must be 1); `header_bytes`: bytes before the first sample.
  dynamic_layout(const storage& s, std::size_t header_bytes = 0) : s_(s), header_(header_bytes) {
    s_.validate("selmask::transfer::dynamic_layout");
    if (s_.versions != 1) {
      throw value_error(
        "selmask::transfer::dynamic_layout: a dynamic transfer reads one stream, the storage has " +
        std::to_string(s_.versions) + " versions");
    }
    position_.resize(s_.sample_values());
    std::size_t i = 0;
    for_each_storage_location(s_, [&](std::size_t loc) { position_[loc] = i++; });
  }

  [[nodiscard]] const storage& stored() const noexcept { return s_; }
  /// Bytes of the whole resource.
  [[nodiscard]] std::size_t resource_bytes() const noexcept { return header_ + s_.stream_bytes(); }

  /// Appends the byte ranges (ascending, neighbours merged) of `locations` (C×H×W indices) of
  /// `sample` to `out`, and the locations in the order of their bytes to `order`. On an error
  /// (`value_error`: a sample or location out of range, a location twice) nothing is appended.
  void ranges_of(std::size_t sample, std::span<const std::size_t> locations, std::vector<byte_range>& out,
                 std::vector<std::size_t>& order) const {
    if (sample >= s_.samples) {
      throw value_error("selmask::transfer::dynamic_layout: sample " + std::to_string(sample) +
                        " is out of range for " + std::to_string(s_.samples) + " stored samples");
    }
    std::vector<std::pair<std::size_t, std::size_t>> pos; // (storage position, location)
    pos.reserve(locations.size());
    for (std::size_t loc : locations) {
      if (loc >= position_.size()) {
        throw value_error("selmask::transfer::dynamic_layout: location " + std::to_string(loc) +
                          " is out of range for samples of " + std::to_string(position_.size()) + " values");
      }
      pos.emplace_back(position_[loc], loc);
    }
    std::sort(pos.begin(), pos.end());
    for (std::size_t i = 1; i < pos.size(); ++i) {
      if (pos[i].first == pos[i - 1].first) {
        throw value_error("selmask::transfer::dynamic_layout: location " + std::to_string(pos[i].second) +
                          " given twice");
      }
    }
    const std::size_t vb = dtype_size(s_.type);
    const std::size_t base = header_ + sample * s_.sample_bytes();
    for (std::size_t i = 0; i < pos.size(); ++i) {
      const std::size_t off = base + pos[i].first * vb;
      if (!out.empty() && out.back().offset + out.back().length == off) {
        out.back().length += vb;
      } else {
        out.push_back(byte_range{off, vb});
      }
      order.push_back(pos[i].second);
    }
  }

private:
  storage s_;
  std::size_t header_;
  std::vector<std::size_t> position_; // location → position in storage order
};

/// Steps 1–3 of the file comment for `samples` of the resource at `url`, with `mask` (a
/// `dynamic_any_mask` on backend `B`, frozen for inference) deciding. `scale` turns stored values
/// into the network's input (e.g. 1/255 for bytes), as the mask was trained on.
template <tensor_backend B, class Mask>
dynamic_fetch fetch_dynamic(http_client& client, const std::string& url, const dynamic_layout& layout,
                            std::span<const std::size_t> samples, Mask& mask, float scale = 1.0f) {
  const std::string who = "selmask::transfer::fetch_dynamic: ";
  if (samples.empty()) {
    throw value_error(who + "no samples asked");
  }
  const std::size_t k = layout.stored().sample_values();
  if (mask.cells() != k) {
    throw shape_error(who + "the mask has " + std::to_string(mask.cells()) + " cells, the stored samples " +
                      std::to_string(k) + " values (" + layout.stored().sample.str() + ")");
  }
  const std::size_t n = samples.size();
  const std::size_t vb = dtype_size(layout.stored().type);
  const std::vector<std::size_t>& pv = mask.preview().cells;
  dynamic_fetch out;
  out.values.assign(n * k, mask.fill());

  // the samples in storage order, so that their ranges ascend (neighbours merge in ranges_of)
  std::vector<std::size_t> by_offset(n);
  for (std::size_t i = 0; i < n; ++i)
    by_offset[i] = i;
  std::sort(by_offset.begin(), by_offset.end(),
            [&](std::size_t a, std::size_t b) { return samples[a] < samples[b]; });
  for (std::size_t j = 1; j < n; ++j) {
    if (samples[by_offset[j]] == samples[by_offset[j - 1]]) {
      throw value_error(who + "sample " + std::to_string(samples[by_offset[j]]) + " asked twice");
    }
  }
  const auto fetch = [&](const std::vector<std::vector<std::size_t>>& locs, wire_stats& wire,
                         wire_stats& predicted) {
    std::vector<byte_range> ranges;
    std::vector<std::size_t> order; // locations in the order of the fetched bytes
    std::vector<std::size_t> owner; // the sample (0..n-1) of each of them
    for (std::size_t i : by_offset) {
      layout.ranges_of(samples[i], locs[i], ranges, order);
      owner.resize(order.size(), i);
    }
    if (ranges.empty()) {
      return std::size_t{0};
    }
    std::vector<std::byte> bytes(order.size() * vb);
    predicted = client.predict_ranges(url, ranges, layout.resource_bytes());
    wire = client.fetch_ranges_into(url, ranges, layout.resource_bytes(), bytes);
    std::vector<float> decoded(order.size());
    detail::convert_values(layout.stored().type, bytes.data(), decoded.data(), decoded.size(), scale);
    for (std::size_t v = 0; v < order.size(); ++v) {
      out.values[owner[v] * k + order[v]] = decoded[v];
    }
    return bytes.size();
  };

  // 1. the previews
  const std::vector<std::vector<std::size_t>> previews(n, pv);
  out.preview_bytes = fetch(previews, out.preview_wire, out.preview_predicted);
  // 2. the decision, from the preview values only
  std::vector<float> p(n * pv.size());
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < pv.size(); ++j)
      p[i * pv.size() + j] = out.values[i * k + pv[j]];
  out.kept = mask.choose(B::from_host(shape{n, pv.size()}, p));
  // 3. the chosen cells outside the preview
  std::vector<std::vector<std::size_t>> chosen(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::set_difference(out.kept[i].begin(), out.kept[i].end(), pv.begin(), pv.end(),
                        std::back_inserter(chosen[i]));
  }
  out.chosen_bytes = fetch(chosen, out.chosen_wire, out.chosen_predicted);
  return out;
}

/// Steps 1–3 for the consecutive samples `first` .. `first + count − 1` through a packing server:
/// `tmpl` is the plan file `src.plan_file` (any mask over cells of one value each, as many as the
/// mask has: e.g. pixels of a one-channel sample); the preview is one `fetch_selected` with the
/// preview's bitmap for every sample, the chosen cells another with each sample's own bitmap.
/// The `*_wire` fields are the counted bytes; no transport model predicts a POST's (the
/// `*_predicted` fields stay empty).
template <tensor_backend B, class Mask>
dynamic_fetch fetch_dynamic_packed(http_client& client, const plan& tmpl, const packed_source& src,
                                   std::size_t first, std::size_t count, Mask& mask, float scale = 1.0f) {
  const std::string who = "selmask::transfer::fetch_dynamic_packed: ";
  if (count == 0) {
    throw value_error(who + "no samples asked");
  }
  if (tmpl.masks().size() != 1 || tmpl.masks()[0].geometry.cells() != mask.cells() ||
      tmpl.source().sample_values() != mask.cells()) {
    throw shape_error(who + "the plan's mask must have one cell per value of the sample (" +
                      std::to_string(mask.cells()) + " cells, as the dynamic mask)");
  }
  const cell_geometry& g = tmpl.masks()[0].geometry;
  const std::size_t k = mask.cells();
  const std::vector<std::size_t>& pv = mask.preview().cells;
  const unpack_options opt{.scale = scale, .fill = mask.fill()};
  dynamic_fetch out;

  std::vector<std::vector<float>> keep(count, std::vector<float>(k, 0.0f));
  for (auto& row : keep)
    for (std::size_t c : pv)
      row[c] = 1.0f;
  std::vector<std::uint8_t> bits = selection_bitmaps(g, keep);
  const fetched_payload preview = fetch_selected(client, tmpl, bits, src, first);
  out.values = unpack_selected(tmpl, bits, preview.payload, opt);
  out.preview_bytes = preview.payload.size();
  out.preview_wire = preview.wire;

  std::vector<float> p(count * pv.size());
  for (std::size_t i = 0; i < count; ++i)
    for (std::size_t j = 0; j < pv.size(); ++j)
      p[i * pv.size() + j] = out.values[i * k + pv[j]];
  out.kept = mask.choose(B::from_host(shape{count, pv.size()}, p));
  for (std::size_t i = 0; i < count; ++i) {
    std::fill(keep[i].begin(), keep[i].end(), 0.0f);
    for (std::size_t c : out.kept[i])
      keep[i][c] = 1.0f;
    for (std::size_t c : pv)
      keep[i][c] = 0.0f; // already here
  }
  bits = selection_bitmaps(g, keep);
  const fetched_payload chosen = fetch_selected(client, tmpl, bits, src, first);
  const std::vector<float> v = unpack_selected(tmpl, bits, chosen.payload, opt);
  for (std::size_t i = 0; i < count; ++i)
    for (std::size_t c = 0; c < k; ++c)
      if (keep[i][c] != 0.0f)
        out.values[i * k + c] = v[i * k + c];
  out.chosen_bytes = chosen.payload.size();
  out.chosen_wire = chosen.wire;
  return out;
}

} // namespace selmask::transfer
