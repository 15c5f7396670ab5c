#pragma once
/// \file transfer/plan_file.hpp
/// Plans as JSON (through nlohmann-json): `plan_to_json`, `plan_from_json`, `save_plan` (atomic,
/// through `io::write_file_atomically`) and `load_plan`, with strict validation.
///
/// The format, "selmask-plan" version 1:
///
/// ```json
/// {"format": "selmask-plan", "version": 1,
///  "data": {"sample_shape": [C, H, W], "samples": N, "dtype": "uint16", "byte_order": "little",
///           "layout": {"kind": "tiled", "tile_height": 16, "tile_width": 16}, "versions": V},
///  "masks": [{"kind": "any", "dims": [V, C, H, W], "block": [bv, bc, bh, bw], "kept": [cells...]},
///            {"kind": "xor", "dims": [...], "block": [...], "versions": [version of each cell]}],
///  "kept_values": K,
///  "streams": [{"stream": 0, "sample_bytes": S, "sample_payload_bytes": P,
///               "sample_ranges": [[offset, length], ...]}],
///  "payload_bytes": total}
/// ```
///
/// `masks` are the source of truth (an any-mask lists its kept cells ascending, an xOr-mask the
/// version of every cell); `kept_values`, `streams` and `payload_bytes` are derived, written for
/// servers in other languages (stream v's file ranges are its `sample_ranges` shifted by
/// `n · sample_bytes` for every sample n), and checked on load: a plan whose derived parts
/// disagree with its masks is rejected as corrupt.
///
/// Errors (all name the field and, for a file, the path): text that is not JSON, a wrong format
/// name or version, a missing or ill-typed field, a value out of range → `io_error`. Loading
/// against the data it is meant for (`load_plan(path, expected)`, `check_plan_matches`):
/// a different sample shape, sample count or version count → `shape_error`; a different dtype or
/// layout → `io_error`.

#include <array>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../error.hpp"
#include "../io/atomic_file.hpp"
#include "plan.hpp"
#include "storage.hpp"

namespace selmask::transfer {

inline constexpr const char* plan_format_name = "selmask-plan";
inline constexpr std::size_t plan_format_version = 1;
/// The largest sample a plan file may describe: 2^31 values (a plan holds a choice per value of
/// a sample, and each mask a value per cell). A file that announces more is rejected before
/// anything is allocated, naming the field.
inline constexpr std::size_t max_plan_sample_values = std::size_t{1} << 31;
/// The largest stored stream a plan file may describe (samples × bytes per sample): 2^62 bytes,
/// so that every offset and payload size fits.
inline constexpr std::size_t max_plan_stream_bytes = std::size_t{1} << 62;

namespace detail {

using json = nlohmann::json;

inline std::string where_of(const std::string& origin) {
  return "selmask::transfer::load_plan: " + (origin.empty() ? std::string() : "'" + origin + "': ");
}

inline const json& field(const json& obj, const char* key, const std::string& path, const std::string& w) {
  if (!obj.is_object()) {
    throw io_error(w + "'" + path + "' must be a JSON object, got " + obj.type_name());
  }
  const auto it = obj.find(key);
  if (it == obj.end()) {
    throw io_error(w + "missing field '" + (path.empty() ? std::string() : path + ".") + key + "'");
  }
  return *it;
}

/// A value for a message: scalars as JSON, arrays and objects by their type only (a nested
/// document is neither printed whole nor walked).
inline std::string brief(const json& j) {
  if (j.is_structured()) {
    return std::string("a JSON ") + j.type_name();
  }
  const std::string d = j.dump();
  return d.size() > 80 ? d.substr(0, 77) + "..." : d;
}

inline std::size_t as_size(const json& j, const std::string& path, const std::string& w) {
  if (!j.is_number_unsigned()) {
    throw io_error(w + "field '" + path + "' must be a non-negative integer, got " + brief(j));
  }
  return j.get<std::size_t>();
}

inline std::string as_string(const json& j, const std::string& path, const std::string& w) {
  if (!j.is_string()) {
    throw io_error(w + "field '" + path + "' must be a string, got " + brief(j));
  }
  return j.get<std::string>();
}

inline const json& as_array(const json& j, const std::string& path, const std::string& w,
                            std::size_t expected_size = static_cast<std::size_t>(-1)) {
  if (!j.is_array()) {
    throw io_error(w + "field '" + path + "' must be an array, got " + std::string(j.type_name()));
  }
  if (expected_size != static_cast<std::size_t>(-1) && j.size() != expected_size) {
    throw io_error(w + "field '" + path + "' must hold " + std::to_string(expected_size) + " values, got " +
                   std::to_string(j.size()));
  }
  return j;
}

inline std::array<std::size_t, 4> as_extents(const json& j, const std::string& path, const std::string& w) {
  as_array(j, path, w, 4);
  std::array<std::size_t, 4> e{};
  for (std::size_t i = 0; i < 4; ++i) {
    e[i] = as_size(j[i], path + "[" + std::to_string(i) + "]", w);
    if (e[i] == 0) {
      throw io_error(w + "field '" + path + "[" + std::to_string(i) + "]' must be positive, got 0");
    }
  }
  return e;
}

inline nlohmann::ordered_json layout_to_json(const storage_layout& l) {
  nlohmann::ordered_json j = {{"kind", layout_kind_name(l.kind)}};
  if (l.kind == layout_kind::tiled) {
    j["tile_height"] = l.tile_height;
    j["tile_width"] = l.tile_width;
  }
  return j;
}

inline storage_layout layout_from_json(const json& j, const std::string& w) {
  const std::string kind = as_string(field(j, "kind", "data.layout", w), "data.layout.kind", w);
  if (kind == "band_sequential") {
    return storage_layout::band_sequential();
  }
  if (kind == "pixel_interleaved") {
    return storage_layout::pixel_interleaved();
  }
  if (kind == "tiled") {
    const std::size_t th = as_size(field(j, "tile_height", "data.layout", w), "data.layout.tile_height", w);
    const std::size_t tw = as_size(field(j, "tile_width", "data.layout", w), "data.layout.tile_width", w);
    if (th == 0 || tw == 0) {
      throw io_error(w + "field 'data.layout' has a zero tile extent " + std::to_string(th) + "x" +
                     std::to_string(tw));
    }
    return storage_layout::tiled(th, tw);
  }
  throw io_error(w + "field 'data.layout.kind' is '" + kind +
                 "' (expected band_sequential, pixel_interleaved or tiled)");
}

} // namespace detail

/// The plan as a JSON document (see the format at the top of this file), keys in that order.
inline nlohmann::ordered_json plan_to_json_value(const plan& p) {
  using json = nlohmann::ordered_json;
  const storage& s = p.source();
  json masks = json::array();
  for (const hard_mask& m : p.masks()) {
    const auto& g = m.geometry;
    json jm = {{"kind", m.is_xor() ? "xor" : "any"},
               {"dims", {g.dims[0], g.dims[1], g.dims[2], g.dims[3]}},
               {"block", {g.block[0], g.block[1], g.block[2], g.block[3]}}};
    if (m.is_xor()) {
      jm["versions"] = m.chosen_versions();
    } else {
      jm["kept"] = m.kept_cells();
    }
    masks.push_back(std::move(jm));
  }
  json streams = json::array();
  for (std::size_t v = 0; v < p.streams(); ++v) {
    json ranges = json::array();
    for (const byte_range& r : p.sample_ranges(v)) {
      ranges.push_back({r.offset, r.length});
    }
    streams.push_back({{"stream", v},
                       {"sample_bytes", s.sample_bytes()},
                       {"sample_payload_bytes", p.sample_payload_bytes(v)},
                       {"sample_ranges", std::move(ranges)}});
  }
  return json{{"format", plan_format_name},
              {"version", plan_format_version},
              {"data",
               {{"sample_shape", {s.sample[0], s.sample[1], s.sample[2]}},
                {"samples", s.samples},
                {"dtype", dtype_name(s.type)},
                {"byte_order", "little"},
                {"layout", detail::layout_to_json(s.layout)},
                {"versions", s.versions}}},
              {"masks", std::move(masks)},
              {"kept_values", p.kept_values()},
              {"streams", std::move(streams)},
              {"payload_bytes", p.payload_bytes()}};
}

/// The plan as JSON text.
inline std::string plan_to_json(const plan& p) { return plan_to_json_value(p).dump(); }

namespace detail {

/// The "data" object of a plan file: the storage description, checked.
inline storage storage_from_json(const json& d, const std::string& w) {
  storage s;
  const json& sh = detail::as_array(detail::field(d, "sample_shape", "data", w), "data.sample_shape", w, 3);
  s.sample = shape{detail::as_size(sh[0], "data.sample_shape[0]", w),
                   detail::as_size(sh[1], "data.sample_shape[1]", w),
                   detail::as_size(sh[2], "data.sample_shape[2]", w)};
  s.samples = detail::as_size(detail::field(d, "samples", "data", w), "data.samples", w);
  const std::string dt = detail::as_string(detail::field(d, "dtype", "data", w), "data.dtype", w);
  try {
    s.type = parse_dtype(dt);
  } catch (const value_error& e) {
    throw io_error(w + "field 'data.dtype': " + e.what());
  }
  const std::string order =
    detail::as_string(detail::field(d, "byte_order", "data", w), "data.byte_order", w);
  if (order != "little") {
    throw io_error(w + "field 'data.byte_order' is '" + order + "', only 'little' is supported");
  }
  s.layout = detail::layout_from_json(detail::field(d, "layout", "data", w), w);
  s.versions = detail::as_size(detail::field(d, "versions", "data", w), "data.versions", w);
  // sizes the file announces, checked before anything is allocated for them
  const std::size_t c = s.sample[0], h = s.sample[1], wd = s.sample[2];
  if (c != 0 && h != 0 && wd != 0 &&
      (h > max_plan_sample_values / c || wd > max_plan_sample_values / (c * h))) {
    throw io_error(w + "field 'data.sample_shape' is [" + std::to_string(c) + "," + std::to_string(h) + "," +
                   std::to_string(wd) + "], more than the " + std::to_string(max_plan_sample_values) +
                   " values per sample a plan may describe (max_plan_sample_values)");
  }
  try {
    s.validate("data");
  } catch (const error& e) {
    throw io_error(w + "field " + e.what());
  }
  if (s.samples > max_plan_stream_bytes / s.sample_bytes()) {
    throw io_error(w + "field 'data.samples' is " + std::to_string(s.samples) + ": " +
                   std::to_string(s.samples) + " samples of " + std::to_string(s.sample_bytes()) +
                   " bytes are more than the " + std::to_string(max_plan_stream_bytes) +
                   " bytes a plan may describe (max_plan_stream_bytes)");
  }
  if (s.versions > 32767) {
    throw io_error(w + "field 'data.versions' is " + std::to_string(s.versions) + " (at most 32767)");
  }

  return s;
}

/// Entry `path` (e.g. "masks[0]") of a plan file's "masks" array: one hard mask.
inline hard_mask mask_from_json(const json& m, const std::string& path, const storage& s,
                                const std::string& w) {
  const std::string kind = detail::as_string(detail::field(m, "kind", path, w), path + ".kind", w);
  const auto dims = detail::as_extents(detail::field(m, "dims", path, w), path + ".dims", w);
  const auto block = detail::as_extents(detail::field(m, "block", path, w), path + ".block", w);
  // the mask's cells are allocated below: its dims must be the data's (bounded by the checks of
  // storage_from_json) first
  const std::array<std::size_t, 4> data_dims{s.versions, s.sample[0], s.sample[1], s.sample[2]};
  if (dims != data_dims) {
    const auto str = [](const std::array<std::size_t, 4>& e) {
      return "[" + std::to_string(e[0]) + "," + std::to_string(e[1]) + "," + std::to_string(e[2]) + "," +
             std::to_string(e[3]) + "]";
    };
    throw io_error(w + "the masks do not fit the data: field '" + path + ".dims' is " + str(dims) +
                   ", the data's versions x sample shape is " + str(data_dims));
  }
  hard_mask h;
  h.geometry = cell_geometry::make(dims, block);
  if (h.geometry.cells() > max_plan_sample_values) {
    throw io_error(w + "field '" + path + ".block' gives " + std::to_string(h.geometry.cells()) +
                   " cells, more than the " + std::to_string(max_plan_sample_values) +
                   " a plan may describe (max_plan_sample_values)");
  }
  h.values.assign(h.geometry.cells(), 0.0f);
  const std::size_t k_n = h.cells_per_version();
  if (kind == "any") {
    if (h.geometry.grid[0] != 1) {
      throw io_error(w + "field '" + path + "': an any-mask's cells must cover all versions");
    }
    const json& kept = detail::as_array(detail::field(m, "kept", path, w), path + ".kept", w);
    std::size_t prev = 0;
    for (std::size_t t = 0; t < kept.size(); ++t) {
      const std::string kp = path + ".kept[" + std::to_string(t) + "]";
      const std::size_t k = detail::as_size(kept[t], kp, w);
      if (k >= h.values.size()) {
        throw io_error(w + "field '" + kp + "' is cell " + std::to_string(k) + ", the mask has " +
                       std::to_string(h.values.size()) + " cells");
      }
      if (t > 0 && k <= prev) {
        throw io_error(w + "field '" + path + ".kept' must be strictly ascending (cell " + std::to_string(k) +
                       " after " + std::to_string(prev) + ")");
      }
      prev = k;
      h.values[k] = 1.0f;
    }
  } else if (kind == "xor") {
    if (h.geometry.grid[0] < 2) {
      throw io_error(w + "field '" + path +
                     "': an xOr-mask needs cells per version (dims[0] >= 2, "
                     "block[0] = 1)");
    }
    const json& vs = detail::as_array(detail::field(m, "versions", path, w), path + ".versions", w, k_n);
    for (std::size_t k = 0; k < k_n; ++k) {
      const std::string vp = path + ".versions[" + std::to_string(k) + "]";
      const std::size_t v = detail::as_size(vs[k], vp, w);
      if (v >= h.geometry.grid[0]) {
        throw io_error(w + "field '" + vp + "' is version " + std::to_string(v) + ", the mask has " +
                       std::to_string(h.geometry.grid[0]));
      }
      h.values[v * k_n + k] = 1.0f;
    }
  } else {
    throw io_error(w + "field '" + path + ".kind' is '" + kind + "' (expected any or xor)");
  }
  return h;
}

/// The "streams" array of a plan file must agree with what the masks give (corrupt plan otherwise).
inline void check_streams_json(const json& j, const plan& p, const storage& s, const std::string& w) {
  const json& js = detail::as_array(detail::field(j, "streams", "", w), "streams", w, p.streams());
  for (std::size_t v = 0; v < p.streams(); ++v) {
    const std::string path = "streams[" + std::to_string(v) + "]";
    const json& st = js[v];
    if (detail::as_size(detail::field(st, "stream", path, w), path + ".stream", w) != v) {
      throw io_error(w + "field '" + path + ".stream' must be " + std::to_string(v));
    }
    if (detail::as_size(detail::field(st, "sample_bytes", path, w), path + ".sample_bytes", w) !=
        s.sample_bytes()) {
      throw io_error(w + "field '" + path + ".sample_bytes' differs from the data's " +
                     std::to_string(s.sample_bytes()) + " bytes per sample (corrupt plan)");
    }
    if (detail::as_size(detail::field(st, "sample_payload_bytes", path, w), path + ".sample_payload_bytes",
                        w) != p.sample_payload_bytes(v)) {
      throw io_error(w + "field '" + path + ".sample_payload_bytes' differs from the masks' " +
                     std::to_string(p.sample_payload_bytes(v)) + " (corrupt plan)");
    }
    const auto expected = p.sample_ranges(v);
    const json& jr =
      detail::as_array(detail::field(st, "sample_ranges", path, w), path + ".sample_ranges", w);
    if (jr.size() != expected.size()) {
      throw io_error(w + "field '" + path + ".sample_ranges' holds " + std::to_string(jr.size()) +
                     " ranges, the masks give " + std::to_string(expected.size()) + " (corrupt plan)");
    }
    for (std::size_t r = 0; r < jr.size(); ++r) {
      const std::string rp = path + ".sample_ranges[" + std::to_string(r) + "]";
      const json& pair = detail::as_array(jr[r], rp, w, 2);
      const byte_range got{detail::as_size(pair[0], rp + "[0]", w), detail::as_size(pair[1], rp + "[1]", w)};
      if (!(got == expected[r])) {
        throw io_error(w + "field '" + rp + "' is [" + std::to_string(got.offset) + "," +
                       std::to_string(got.length) + "], the masks give [" +
                       std::to_string(expected[r].offset) + "," + std::to_string(expected[r].length) +
                       "] (corrupt plan)");
      }
    }
  }
}

} // namespace detail

/// A plan from JSON text, validated completely (see the errors at the top of this file).
/// `origin` (e.g. the file name) is named in error messages.
inline plan plan_from_json(std::string_view text, const std::string& origin = {}) {
  using detail::json;
  const std::string w = detail::where_of(origin);
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) { // parse_error, and out_of_range for a number beyond a double
    throw io_error(w + "not valid JSON (truncated or corrupt?): " + e.what());
  }
  if (!j.is_object()) {
    throw io_error(w + "not a selmask plan: the document is a JSON " + std::string(j.type_name()) +
                   ", expected an object");
  }
  const std::string format = detail::as_string(detail::field(j, "format", "", w), "format", w);
  if (format != plan_format_name) {
    throw io_error(w + "format is '" + format + "', expected '" + plan_format_name + "'");
  }
  const std::size_t version = detail::as_size(detail::field(j, "version", "", w), "version", w);
  if (version != plan_format_version) {
    throw io_error(w + "format version " + std::to_string(version) + ", this build reads version " +
                   std::to_string(plan_format_version));
  }
  try {
    // ---- the data description ----
    const json& d = detail::field(j, "data", "", w);
    const storage s = detail::storage_from_json(d, w);

    // ---- the masks ----
    const json& jm = detail::as_array(detail::field(j, "masks", "", w), "masks", w);
    std::vector<hard_mask> masks;
    for (std::size_t i = 0; i < jm.size(); ++i) {
      masks.push_back(detail::mask_from_json(jm[i], "masks[" + std::to_string(i) + "]", s, w));
    }
    plan p = [&] {
      try {
        return plan::from_masks(std::move(masks), s);
      } catch (const io_error&) {
        throw;
      } catch (const error& e) {
        throw io_error(w + "the masks do not fit the data: " + e.what());
      }
    }();

    // ---- the derived parts must agree with the masks ----
    const std::size_t kept = detail::as_size(detail::field(j, "kept_values", "", w), "kept_values", w);
    if (kept != p.kept_values()) {
      throw io_error(w + "field 'kept_values' is " + std::to_string(kept) + ", the masks keep " +
                     std::to_string(p.kept_values()) + " (corrupt plan)");
    }
    detail::check_streams_json(j, p, s, w);
    const std::size_t payload = detail::as_size(detail::field(j, "payload_bytes", "", w), "payload_bytes", w);
    if (payload != p.payload_bytes()) {
      throw io_error(w + "field 'payload_bytes' is " + std::to_string(payload) + ", the masks give " +
                     std::to_string(p.payload_bytes()) + " (corrupt plan)");
    }
    return p;
  } catch (const json::exception& e) {
    throw io_error(w + "malformed plan: " + e.what());
  }
}

/// Throws unless `p` was made for `data`: `shape_error` naming the sample shape, sample count or
/// version count that differs; `io_error` naming the dtype or layout that differs.
inline void check_plan_matches(const plan& p, const storage& data, const std::string& origin = {}) {
  const std::string w =
    "selmask::transfer::check_plan_matches: " + (origin.empty() ? std::string() : "'" + origin + "': ");
  const storage& s = p.source();
  if (!(s.sample == data.sample)) {
    throw shape_error(w + "the plan's sample shape is " + s.sample.str() + ", the data's is " +
                      data.sample.str());
  }
  if (s.samples != data.samples) {
    throw shape_error(w + "the plan reads " + std::to_string(s.samples) + " samples, the data holds " +
                      std::to_string(data.samples));
  }
  if (s.versions != data.versions) {
    throw shape_error(w + "the plan reads " + std::to_string(s.versions) +
                      " versions (streams), the data has " + std::to_string(data.versions));
  }
  if (s.type != data.type) {
    throw io_error(w + "the plan's dtype is " + dtype_name(s.type) + ", the data's is " +
                   dtype_name(data.type));
  }
  if (!(s.layout == data.layout)) {
    throw io_error(w + "the plan's layout is " + s.layout.str() + ", the data's is " + data.layout.str());
  }
}

/// Writes `p` to `path` as JSON, atomically.
inline void save_plan(const plan& p, const std::filesystem::path& path) {
  io::write_file_atomically(path, plan_to_json(p) + "\n");
}

/// Reads and validates a plan file (`io_error` naming the file for anything wrong with it).
inline plan load_plan(const std::filesystem::path& path) {
  return plan_from_json(io::read_file(path), path.string());
}

/// Reads a plan file and checks it against the data it is meant to read (`check_plan_matches`).
inline plan load_plan(const std::filesystem::path& path, const storage& expected) {
  plan p = load_plan(path);
  check_plan_matches(p, expected, path.string());
  return p;
}

} // namespace selmask::transfer
