// What versions cost on real data: measured bytes per image of JPEG at several qualities and of
// thumbnails, relative to the raw 8-bit image, on Fashion-MNIST training images, beside the
// paper's quality/100 heuristic, with the RMS error of each version.
//
//   versions_costs [--samples N] [--dir DIR]     (default: 2000 samples, Debian's data directory)
#include <selmask/cost/measured.hpp>
#include <selmask/io/fashion_mnist.hpp>
#include <selmask/ops/jpeg.hpp>
#include <selmask/ops/versions.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

template <class Op>
std::vector<double> rms_errors(const Op& op, const selmask::io::dataset& d) {
  std::vector<double> err(Op::versions, 0.0);
  std::vector<float> out(d.sample.size());
  for (std::size_t i = 0; i < d.size(); ++i) {
    const auto img = d.image(i);
    for (std::size_t v = 0; v < Op::versions; ++v) {
      op.make(v, d.sample, img, out);
      for (std::size_t k = 0; k < out.size(); ++k) {
        const double e = static_cast<double>(out[k]) - static_cast<double>(img[k]);
        err[v] += e * e;
      }
    }
  }
  for (double& e : err) {
    e = std::sqrt(e / static_cast<double>(d.size() * d.sample.size()));
  }
  return err;
}

} // namespace

int main(int argc, char** argv) {
  std::size_t samples = 2000;
  std::string dir(selmask::io::fashion_mnist_default_dir);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--samples" && i + 1 < argc) {
      samples = std::stoul(argv[++i]);
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: versions_costs [--samples N] [--dir DIR]\n");
      return 2;
    }
  }
  try {
    const auto data = selmask::io::load_fashion_mnist(dir, samples, 1).train;
    using jpeg = selmask::jpeg_versions<100, 95, 90, 70, 50, 30, 10>;
    using thumbs = selmask::thumbnail_versions<2, 4, 7>;
    const jpeg jop;
    const thumbs top;
    const auto jm = selmask::measure_version_costs(jop, data);
    const auto tm = selmask::measure_version_costs(top, data);
    const auto je = rms_errors(jop, data);
    const auto te = rms_errors(top, data);
    std::printf("Fashion-MNIST, %zu training images of 28x28 (raw: %.0f bytes per image)\n", jm.samples,
                jm.raw_bytes);
    std::printf("per image: SOI+SOF+SOS+entropy data+EOI (tables and JFIF sent once per stream)\n\n");
    std::printf("%-14s %12s %14s %14s %12s\n", "version", "mean bytes", "measured cost", "paper cost",
                "rms error");
    for (std::size_t v = 0; v < jpeg::versions; ++v) {
      std::printf("jpeg q%-8d %12.1f %14.4f %14.2f %12.4f\n", jpeg::qualities[v], jm.mean_bytes[v],
                  static_cast<double>(jm.relative[v]), jpeg::qualities[v] / 100.0, je[v]);
    }
    for (std::size_t v = 0; v < thumbs::versions; ++v) {
      std::printf("thumbnail /%-3zu %12.1f %14.4f %14s %12.4f\n", thumbs::factors[v], tm.mean_bytes[v],
                  static_cast<double>(tm.relative[v]), "-", te[v]);
    }
    // the header a full JPEG file adds (not counted above), for reference
    std::vector<std::uint8_t> px(28 * 28, 0);
    const auto full = selmask::jpeg_encode_gray(px, 28, 28, 90);
    std::printf("\nheader/tables of a full JPEG file at q90: %zu bytes (sent once per stream)\n",
                full.size() - selmask::jpeg_image_bytes(full));
  } catch (const selmask::error& e) {
    std::fprintf(stderr, "versions_costs: %s\n", e.what());
    return 1;
  }
  return 0;
}
