#pragma once
/// \file io/idx_stream.hpp
/// `io::idx_stream_source`: a batch source (train/batch_source.hpp) that reads every batch from
/// an uncompressed unsigned-byte IDX image file on disk, sample by sample at its offset, so that
/// data sets larger than memory train. Only the labels (one byte per sample) are held in memory.
///
/// Values become floats as `(byte · scale − mean) / std` (defaults: `scale` 1/255, mean 0, std 1,
/// i.e. [0, 1]). Seeks need a raw file: a gzip-compressed one is rejected with a message saying
/// how to write a raw one (`io::write_idx(path, extents, values, idx_compression::none)`). The
/// shuffle is `io::batch_sampler`'s, so for the same seed the batches equal those of a
/// `dataset_source` over the same samples read into memory.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../shape.hpp"
#include "../train/batch_source.hpp"
#include "dataset.hpp"
#include "idx.hpp"

namespace selmask::io {

class idx_stream_source {
public:
  struct options {
    std::size_t batch_size = 128;
    bool shuffle = true;
    std::uint64_t seed = 0;
    float scale = 1.0f / 255.0f;
    float mean = 0.0f;
    float std = 1.0f;
    std::size_t classes = 0; ///< 0: one more than the largest label
  };

  /// Opens `images` (raw IDX, N×H×W or N×C×H×W) and reads `labels` (IDX, N, raw or gzip).
  /// Throws `io_error` naming the file for a missing, compressed, truncated or mismatched file and
  /// `value_error` for bad options.
  idx_stream_source(const std::filesystem::path& images, const std::filesystem::path& labels,
                    const options& o)
    : path_(images), opt_(o), sampler_(1, o.batch_size == 0 ? 1 : o.batch_size) {
    const std::string where = "selmask::io::idx_stream_source: ";
    if (o.batch_size == 0) {
      throw value_error(where + "batch_size must be positive, got 0");
    }
    if (!std::isfinite(o.scale) || !std::isfinite(o.mean) || !std::isfinite(o.std) || !(o.std > 0.0f)) {
      throw value_error(where + "scale, mean and std must be finite and std > 0");
    }
    open_images(where);
    const idx_array lab = read_idx(labels);
    if (lab.extents.rank() != 1 || lab.extents[0] != count_) {
      throw io_error(where + "'" + labels.string() + "' holds labels of extents " + lab.extents.str() +
                     " for " + std::to_string(count_) + " images in '" + images.string() + "'");
    }
    labels_.assign(lab.values.begin(), lab.values.end());
    std::size_t largest = 0;
    for (std::int32_t l : labels_) {
      largest = std::max(largest, static_cast<std::size_t>(l));
    }
    classes_ = o.classes != 0 ? o.classes : largest + 1;
    sampler_ = batch_sampler(count_, o.batch_size, o.shuffle, o.seed);
    bytes_.resize(per_);
  }

  [[nodiscard]] std::size_t size() const { return count_; }
  [[nodiscard]] std::size_t batches() const { return sampler_.batches(); }
  [[nodiscard]] shape sample_shape() const { return sample_; }
  [[nodiscard]] std::size_t classes() const { return classes_; }
  void set_epoch(std::size_t e) { sampler_.set_epoch(e); }

  /// Throws when the source cannot train: no samples, or a label outside `[0, classes)`.
  void validate() const {
    const std::string where = "selmask::io::idx_stream_source: '" + path_.string() + "': ";
    if (count_ == 0) {
      throw value_error(where + "empty data set (0 images)");
    }
    for (std::size_t i = 0; i < labels_.size(); ++i) {
      if (labels_[i] < 0 || static_cast<std::size_t>(labels_[i]) >= classes_) {
        throw value_error(where + "label " + std::to_string(labels_[i]) + " at index " + std::to_string(i) +
                          " is outside [0, " + std::to_string(classes_) + ")");
      }
    }
  }

  /// Reads batch `b` of the current epoch from disk.
  void read(std::size_t b, host_batch& out) {
    const auto idx = sampler_.batch(b);
    out.x_shape = sample_.prepend(idx.size());
    out.x.resize(idx.size() * per_);
    out.labels.resize(idx.size());
    out.targets.clear();
    out.target_size = 0;
    out.classes = classes_;
    for (std::size_t j = 0; j < idx.size(); ++j) {
      file_.seekg(static_cast<std::streamoff>(header_ + idx[j] * per_));
      file_.read(reinterpret_cast<char*>(bytes_.data()), static_cast<std::streamsize>(per_));
      if (!file_) {
        throw io_error("selmask::io::idx_stream_source: '" + path_.string() + "': reading sample " +
                       std::to_string(idx[j]) + " failed (file truncated or changed since it was opened)");
      }
      float* dst = out.x.data() + j * per_;
      for (std::size_t k = 0; k < per_; ++k) {
        dst[k] = (static_cast<float>(bytes_[k]) * opt_.scale - opt_.mean) / opt_.std;
      }
      out.labels[j] = labels_[idx[j]];
    }
  }

private:
  void open_images(const std::string& where) {
    file_.open(path_, std::ios::binary);
    if (!file_) {
      throw io_error(where + "cannot open '" + path_.string() + "'");
    }
    unsigned char magic[4] = {};
    file_.read(reinterpret_cast<char*>(magic), 4);
    if (file_.gcount() >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
      throw io_error(where + "'" + path_.string() +
                     "' is gzip-compressed; streaming seeks need a raw IDX file (write one with "
                     "io::write_idx(path, extents, values, idx_compression::none), or gunzip it)");
    }
    const idx_header h = read_idx_header(path_);
    if (h.extents.rank() != 3 && h.extents.rank() != 4) {
      throw io_error(where + "'" + path_.string() + "' has extents " + h.extents.str() +
                     "; expected N×H×W or N×C×H×W images");
    }
    count_ = h.extents[0];
    sample_ = h.extents.rank() == 3 ? shape{1, h.extents[1], h.extents[2]}
                                    : shape{h.extents[1], h.extents[2], h.extents[3]};
    per_ = sample_.size();
    header_ = 4 + 4 * h.extents.rank();
    const auto size = std::filesystem::file_size(path_);
    if (size != header_ + count_ * per_) {
      throw io_error(where + "'" + path_.string() + "' is " + std::to_string(size) + " bytes; extents " +
                     h.extents.str() + " need " + std::to_string(header_ + count_ * per_) +
                     (size < header_ + count_ * per_ ? " (truncated)" : " (trailing data)"));
    }
    file_.clear();
  }

  std::filesystem::path path_;
  options opt_;
  std::ifstream file_;
  shape sample_;
  std::size_t count_ = 0, per_ = 0, header_ = 0, classes_ = 0;
  std::vector<std::int32_t> labels_;
  std::vector<std::uint8_t> bytes_;
  batch_sampler sampler_;
};

static_assert(batch_source<idx_stream_source>);

} // namespace selmask::io
