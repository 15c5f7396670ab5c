#pragma once
/// \file transfer/chunked.hpp
/// A chunked layout, where a static selection is a few long reads: the samples are cut into
/// chunks of `chunk_shape::samples` samples, each sample's C×H×W values into cells of
/// `chunk_shape::cell` (C×H×W extents, e.g. 1×1×1 for one value, C×1×1 for one pixel with all its
/// bands, 1×H×W for one band), and the file stores, chunk after chunk, cell after cell (row-major
/// over the cell grid), the values of that cell for all samples of the chunk (sample after
/// sample; inside one sample the cell's values in C×H×W order). As a column store or an HDF5 /
/// Zarr chunking along the sample axis: all samples' values of a cell lie together.
///
/// Why: in a sample-major file a pixel mask keeps a few bytes of every sample, one range each —
/// and each range pays its framing on the wire (transfer/wire.hpp). Here a mask whose kept cells
/// are chunk cells costs one range per kept cell per chunk (fewer where kept cells are
/// neighbours), whatever the number of samples in a chunk.
///
/// Edge chunks and cells are not padded: the last chunk holds the remaining samples, a cell at
/// the far edge of the grid only its real values, so the file holds exactly N·C·H·W values (the
/// same size as the sample-major file).
///
/// - `to_chunked(storage, data, chunk)`: rewrites a sample-major array (any `storage_layout`, one
///   stream) into the chunked order; `rechunk_file` does it for a raw or IDX file on disk.
/// - `chunked_plan(plan, chunk[, first, count])`: the byte ranges of a plan's selection in the
///   chunked file of the plan's data (all samples, or a batch), and `to_plan_payload`, which turns
///   the bytes read (ranges one after another) into the canonical payload of `logical()`, so
///   `unpack` gives the same tensor as from the original file.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../io/atomic_file.hpp"
#include "../io/idx.hpp"
#include "plan.hpp"
#include "storage.hpp"
#include "wire.hpp"

namespace selmask::transfer {

/// The shape of one chunk: `samples` samples × one cell of `cell` (C×H×W extents).
struct chunk_shape {
  std::size_t samples = 1024;
  std::array<std::size_t, 3> cell{1, 1, 1};

  /// Throws `value_error` for a zero extent or a cell larger than `sample` (naming both).
  void validate(const shape& sample, const char* where) const {
    const std::string w = std::string(where) + ": ";
    if (samples == 0) {
      throw value_error(w + "chunk of 0 samples (expected at least 1)");
    }
    for (std::size_t a = 0; a < 3; ++a) {
      if (cell[a] == 0 || cell[a] > sample[a]) {
        throw value_error(w + "chunk cell " + str() + " does not fit samples of shape " + sample.str() +
                          " (each extent must be 1.." + std::to_string(sample[a]) + " on axis " +
                          std::to_string(a) + ")");
      }
    }
  }
  /// "1024x[1,1,1]".
  [[nodiscard]] std::string str() const {
    return std::to_string(samples) + "x[" + std::to_string(cell[0]) + "," + std::to_string(cell[1]) + "," +
           std::to_string(cell[2]) + "]";
  }
  friend constexpr bool operator==(const chunk_shape&, const chunk_shape&) = default;
};

/// Calls `f(n, location, at)` for every value of samples `first .. last − 1` (of `samples` samples
/// of shape `sample`) in chunked file order: `location` is the value's index in C×H×W order, `at`
/// its index in the chunked file (in values, from the file's start). `chunk` must be valid and
/// `first <= last <= samples`.
template <class F>
void for_each_chunked_value(const shape& sample, std::size_t samples, const chunk_shape& chunk, F&& f,
                            std::size_t first = 0, std::size_t last = static_cast<std::size_t>(-1)) {
  last = std::min(last, samples);
  if (first >= last) {
    return;
  }
  const std::size_t c_n = sample[0], h_n = sample[1], w_n = sample[2];
  const std::size_t bc = chunk.cell[0], bh = chunk.cell[1], bw = chunk.cell[2];
  const std::size_t per = sample.size();
  for (std::size_t n0 = first / chunk.samples * chunk.samples; n0 < last; n0 += chunk.samples) {
    const std::size_t n1 = std::min(n0 + chunk.samples, samples);
    const std::size_t nb = std::max(n0, first), ne = std::min(n1, last);
    std::size_t base = n0 * per; // the first value of the current cell block
    for (std::size_t c0 = 0; c0 < c_n; c0 += bc) {
      for (std::size_t h0 = 0; h0 < h_n; h0 += bh) {
        for (std::size_t w0 = 0; w0 < w_n; w0 += bw) {
          const std::size_t c1 = std::min(c0 + bc, c_n), h1 = std::min(h0 + bh, h_n),
                            w1 = std::min(w0 + bw, w_n);
          const std::size_t cell_values = (c1 - c0) * (h1 - h0) * (w1 - w0);
          std::size_t at = base + (nb - n0) * cell_values;
          for (std::size_t n = nb; n < ne; ++n) {
            for (std::size_t c = c0; c < c1; ++c) {
              for (std::size_t h = h0; h < h1; ++h) {
                for (std::size_t w = w0; w < w1; ++w) {
                  f(n, (c * h_n + h) * w_n + w, at++);
                }
              }
            }
          }
          base += (n1 - n0) * cell_values;
        }
      }
    }
  }
}

namespace detail {

/// Per location of a C×H×W sample: its index in storage order of `s`.
inline std::vector<std::size_t> storage_position(const storage& s) {
  std::vector<std::size_t> pos(s.sample_values());
  std::size_t j = 0;
  for_each_storage_location(s, [&](std::size_t l) { pos[l] = j++; });
  return pos;
}

} // namespace detail

/// `data` (the sample-major array described by `s`, one stream) rewritten in the chunked order of
/// `chunk`. Throws `shape_error` when `s` has several versions or `data` is not
/// `s.stream_bytes()` long, `value_error` for a chunk that does not fit.
inline std::vector<std::byte> to_chunked(const storage& s, std::span<const std::byte> data,
                                         const chunk_shape& chunk) {
  const char* where = "selmask::transfer::to_chunked";
  s.validate(where);
  chunk.validate(s.sample, where);
  if (s.versions != 1) {
    throw shape_error(std::string(where) + ": the storage has " + std::to_string(s.versions) +
                      " versions; rewrite each stream as its own one-version array");
  }
  if (data.size() != s.stream_bytes()) {
    throw shape_error(std::string(where) + ": " + std::to_string(data.size()) +
                      " bytes given, the storage (" + std::to_string(s.samples) + " samples of " +
                      s.sample.str() + " " + dtype_name(s.type) + ") holds " +
                      std::to_string(s.stream_bytes()));
  }
  const std::vector<std::size_t> pos = detail::storage_position(s);
  const std::size_t ds = dtype_size(s.type), sb = s.sample_bytes();
  std::vector<std::byte> out(data.size());
  std::byte* o = out.data();
  for_each_chunked_value(s.sample, s.samples, chunk, [&](std::size_t n, std::size_t l, std::size_t) {
    std::memcpy(o, data.data() + n * sb + pos[l] * ds, ds);
    o += ds;
  });
  return out;
}

/// A plan's selection in the chunked file of its data (see the top of this file), for all its
/// samples or a batch of them (samples `first .. first + count − 1`): in each chunk the batch
/// touches, a kept cell is still one range, whatever the batch's size.
class chunked_plan {
public:
  /// All samples of `p`. Throws `shape_error` for a plan with several streams, `value_error` for a
  /// chunk that does not fit the plan's samples.
  chunked_plan(const plan& p, chunk_shape chunk) : chunked_plan(p, chunk, 0, p.source().samples) {}

  /// Samples `first .. first + count − 1` of the data `p` describes (`p.source().samples` in the
  /// file); `logical()` is then `p.with_samples(count)`. Also throws `value_error` for an empty
  /// batch or one that reaches past the file's samples.
  chunked_plan(const plan& p, chunk_shape chunk, std::size_t first, std::size_t count)
    : plan_(p), chunk_(chunk), first_(first) {
    const char* where = "selmask::transfer::chunked_plan";
    const storage& s = p.source();
    chunk_.validate(s.sample, where);
    if (p.streams() != 1) {
      throw shape_error(std::string(where) + ": the plan reads " + std::to_string(p.streams()) +
                        " streams; a chunked plan reads one (chunk each version's array separately)");
    }
    if (count == 0 || first > s.samples || count > s.samples - first) {
      throw value_error(std::string(where) + ": a batch of samples " + std::to_string(first) + " + " +
                        std::to_string(count) + " (expected 1 or more samples within the file's " +
                        std::to_string(s.samples) + ")");
    }
    file_bytes_ = s.stream_bytes();
    if (count != s.samples) {
      plan_ = p.with_samples(count);
    }
    const std::size_t ds = dtype_size(s.type);
    const auto choice = p.choices();
    for_each_chunked_value(
      s.sample, s.samples, chunk_,
      [&](std::size_t, std::size_t l, std::size_t at) {
        if (choice[l] >= 0) {
          const std::size_t off = at * ds;
          if (!ranges_.empty() && ranges_.back().offset + ranges_.back().length == off) {
            ranges_.back().length += ds;
          } else {
            ranges_.push_back({off, ds});
          }
        }
      },
      first, first + count);
  }

  /// The plan of the samples read (its storage describes the original, sample-major data of the
  /// batch); `unpack(logical(), payload)` gives their tensor.
  [[nodiscard]] const plan& logical() const noexcept { return plan_; }
  [[nodiscard]] const chunk_shape& chunk() const noexcept { return chunk_; }
  /// The first sample read.
  [[nodiscard]] std::size_t first_sample() const noexcept { return first_; }
  /// Byte ranges of the chunked file, ascending and coalesced.
  [[nodiscard]] std::span<const byte_range> file_ranges() const noexcept { return ranges_; }
  /// Size of the chunked file (that of the original array of all samples).
  [[nodiscard]] std::size_t file_bytes() const noexcept { return file_bytes_; }
  /// Bytes the ranges hold: the payload of `logical()`.
  [[nodiscard]] std::size_t payload_bytes() const noexcept { return plan_.payload_bytes(); }

  /// Writes the canonical payload of `logical()` (`payload_bytes()` bytes) from `read`, the bytes
  /// of `file_ranges()` one after another. Throws `shape_error` naming a wrong buffer size.
  void to_plan_payload(std::span<const std::byte> read, std::span<std::byte> payload) const {
    const std::string where = "selmask::transfer::chunked_plan::to_plan_payload: ";
    if (read.size() != payload_bytes() || payload.size() != payload_bytes()) {
      throw shape_error(where + "buffers of " + std::to_string(read.size()) + " and " +
                        std::to_string(payload.size()) + " bytes, the plan's payload is " +
                        std::to_string(payload_bytes()));
    }
    const storage& s = plan_.source();
    const std::size_t ds = dtype_size(s.type);
    // rank of each kept location in the plan's storage order
    const auto choice = plan_.choices();
    std::vector<std::size_t> rank(s.sample_values(), 0);
    std::size_t k = 0;
    for_each_storage_location(s, [&](std::size_t l) {
      if (choice[l] >= 0) {
        rank[l] = k++;
      }
    });
    const std::size_t per = plan_.sample_payload_bytes(0);
    const std::byte* in = read.data();
    for_each_chunked_value(
      s.sample, file_bytes_ / s.sample_bytes(), chunk_,
      [&](std::size_t n, std::size_t l, std::size_t) {
        if (choice[l] >= 0) {
          std::memcpy(payload.data() + (n - first_) * per + rank[l] * ds, in, ds);
          in += ds;
        }
      },
      first_, first_ + s.samples);
  }
  [[nodiscard]] std::vector<std::byte> to_plan_payload(std::span<const std::byte> read) const {
    std::vector<std::byte> out(payload_bytes());
    to_plan_payload(read, out);
    return out;
  }

private:
  plan plan_; ///< of the samples read
  chunk_shape chunk_;
  std::size_t first_ = 0;
  std::size_t file_bytes_ = 0;
  std::vector<byte_range> ranges_;
};

/// The predicted bytes of fetching `cp` from its chunked file, whose measured model is `model`
/// (`http_client::probe` of the chunked file's URL), with the given strategy, Range header limit
/// and coalescing — what `http_client::fetch(cp, url)` with those options will count. Throws
/// `value_error` when the model is of a resource of another size.
inline wire_stats predict_fetch(const chunked_plan& cp, const transport_model& model, range_strategy strategy,
                                std::size_t max_range_header_bytes, const coalescing& policy) {
  if (model.resource_bytes != cp.file_bytes()) {
    throw value_error("selmask::transfer::predict_fetch: the transport model is of a resource of " +
                      std::to_string(model.resource_bytes) + " bytes, the chunked file has " +
                      std::to_string(cp.file_bytes()));
  }
  return predict(
    schedule_requests(cp.file_ranges(), cp.file_bytes(), strategy, max_range_header_bytes, policy, &model),
    cp.file_ranges(), model);
}

/// Rewrites the array in `in` into the chunked order of `chunk`, written atomically to `out`:
/// an IDX file of unsigned bytes (`s` empty: N×H×W images become samples of 1×H×W uint8,
/// band-sequential; gzip or not) or, with `s`, a raw file of exactly `s.stream_bytes()` bytes.
/// Returns the storage of the original data (what plans over it describe). Throws `io_error`
/// naming the file for one that is missing or of the wrong size, `value_error` for a chunk that
/// does not fit.
inline storage rechunk_file(const std::filesystem::path& in, const std::filesystem::path& out,
                            const chunk_shape& chunk, const storage* s = nullptr) {
  storage st;
  std::vector<std::byte> data;
  if (s == nullptr) {
    io::idx_array a = io::read_idx(in);
    if (a.extents.rank() != 3) {
      throw io_error("selmask::transfer::rechunk_file: '" + in.string() + "' has IDX extents " +
                     a.extents.str() + ", expected N x H x W images");
    }
    st = storage{shape{1, a.extents[1], a.extents[2]}, a.extents[0], dtype::uint8,
                 storage_layout::band_sequential(), 1};
    data.resize(a.values.size());
    std::memcpy(data.data(), a.values.data(), a.values.size());
  } else {
    st = *s;
    st.validate("selmask::transfer::rechunk_file");
    const std::string text = io::read_file(in);
    if (text.size() != st.stream_bytes()) {
      throw io_error("selmask::transfer::rechunk_file: '" + in.string() + "' holds " +
                     std::to_string(text.size()) + " bytes, the storage (" + std::to_string(st.samples) +
                     " samples of " + st.sample.str() + " " + dtype_name(st.type) + ") holds " +
                     std::to_string(st.stream_bytes()));
    }
    data.resize(text.size());
    std::memcpy(data.data(), text.data(), text.size());
  }
  const std::vector<std::byte> c = to_chunked(st, data, chunk);
  io::write_file_atomically(out, std::string_view(reinterpret_cast<const char*>(c.data()), c.size()));
  return st;
}

} // namespace selmask::transfer
