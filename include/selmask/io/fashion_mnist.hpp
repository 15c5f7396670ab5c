#pragma once
/// \file io/fashion_mnist.hpp
/// Fashion-MNIST (and any data set in the MNIST file layout): `load_fashion_mnist` reads the
/// training and test parts into two `selmask::io::dataset`s.
///
/// Files (Debian package `dataset-fashion-mnist`): `{train,t10k}-images-idx3-ubyte.gz` (N×28×28
/// unsigned bytes) and `{train,t10k}-labels-idx1-ubyte.gz` (N unsigned bytes, 0..9), in
/// `/usr/share/datasets/fashion-mnist` by default. Samples have shape `[1,28,28]`.
///
/// Pixels are scaled from 0..255 to [0,1] (`x = byte / 255`). With `standardise = true` they are
/// then standardised with the usual Fashion-MNIST training-set statistics, mean 0.2860 and
/// std 0.3530 (`fashion_mnist_mean`, `fashion_mnist_std`).
///
/// Errors are `io_error`s naming the file: missing or corrupt files, images that are not 28×28,
/// label files that are not one-dimensional, image and label counts that disagree, and labels
/// outside 0..9.

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "../error.hpp"
#include "../shape.hpp"
#include "dataset.hpp"
#include "idx.hpp"

namespace selmask::io {

/// Where Debian's `dataset-fashion-mnist` installs the files.
inline constexpr std::string_view fashion_mnist_default_dir = "/usr/share/datasets/fashion-mnist";
/// Mean and standard deviation of the training pixels scaled to [0,1].
inline constexpr float fashion_mnist_mean = 0.2860f;
inline constexpr float fashion_mnist_std = 0.3530f;
/// The ten Fashion-MNIST classes, by label.
inline constexpr std::array<std::string_view, 10> fashion_mnist_classes = {
  "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

/// A training part and a test part.
struct train_test {
  dataset train;
  dataset test;
};

/// Reads one MNIST-layout pair of IDX files (images N×H×W, labels N) into a data set of samples
/// `[1,H,W]`, pixels scaled to [0,1]. `limit`: read only the first `limit` samples (0: all).
/// `height`/`width`: the image size the files must have (0: any). Labels must lie in
/// `[0, classes)`.
inline dataset load_idx_dataset(const std::filesystem::path& images_path,
                                const std::filesystem::path& labels_path, std::size_t classes,
                                std::size_t limit = 0, std::size_t height = 0, std::size_t width = 0) {
  const std::string fn = "selmask::io::load_idx_dataset: ";
  const idx_header ih = read_idx_header(images_path);
  const idx_header lh = read_idx_header(labels_path);
  if (ih.extents.rank() != 3) {
    throw io_error(fn + "'" + images_path.string() + "': images have extents " + ih.extents.str() +
                   " (expected [N,H,W])");
  }
  if ((height != 0 && ih.extents[1] != height) || (width != 0 && ih.extents[2] != width)) {
    throw io_error(fn + "'" + images_path.string() + "': images are " + std::to_string(ih.extents[1]) + "×" +
                   std::to_string(ih.extents[2]) + " (expected " + std::to_string(height) + "×" +
                   std::to_string(width) + ")");
  }
  if (lh.extents.rank() != 1) {
    throw io_error(fn + "'" + labels_path.string() + "': labels have extents " + lh.extents.str() +
                   " (expected [N])");
  }
  if (ih.extents[0] != lh.extents[0]) {
    throw io_error(fn + "'" + images_path.string() + "' holds " + std::to_string(ih.extents[0]) +
                   " images but '" + labels_path.string() + "' holds " + std::to_string(lh.extents[0]) +
                   " labels");
  }
  const idx_array images = read_idx(images_path, limit);
  const idx_array labels = read_idx(labels_path, limit);

  dataset d;
  d.sample = shape{1, ih.extents[1], ih.extents[2]};
  d.classes = classes;
  d.images.resize(images.values.size());
  for (std::size_t k = 0; k < images.values.size(); ++k) {
    d.images[k] = static_cast<float>(images.values[k]) / 255.0f;
  }
  d.labels.resize(labels.values.size());
  for (std::size_t i = 0; i < labels.values.size(); ++i) {
    if (labels.values[i] >= classes) {
      throw io_error(fn + "'" + labels_path.string() + "': label " + std::to_string(labels.values[i]) +
                     " at index " + std::to_string(i) + " is outside [0, " + std::to_string(classes) + ")");
    }
    d.labels[i] = labels.values[i];
  }
  return d;
}

/// Loads Fashion-MNIST from `dir`: 60000 training and 10000 test samples of shape [1,28,28],
/// pixels in [0,1] (standardised with mean 0.2860, std 0.3530 when `standardise`).
/// `limit_train`, `limit_test`: read only the first that many samples of each part (0: all).
inline train_test load_fashion_mnist(const std::filesystem::path& dir = fashion_mnist_default_dir,
                                     std::size_t limit_train = 0, std::size_t limit_test = 0,
                                     bool standardise = false) {
  auto load = [&](std::string_view part, std::size_t limit) {
    dataset d = load_idx_dataset(dir / (std::string(part) + "-images-idx3-ubyte.gz"),
                                 dir / (std::string(part) + "-labels-idx1-ubyte.gz"),
                                 fashion_mnist_classes.size(), limit, 28, 28);
    if (standardise) {
      io::normalise(d, fashion_mnist_mean, fashion_mnist_std);
    }
    return d;
  };
  train_test out;
  out.train = load("train", limit_train);
  out.test = load("t10k", limit_test);
  return out;
}

} // namespace selmask::io
