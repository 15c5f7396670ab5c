// Rewrites an archive into the chunked layout of transfer/chunked.hpp (chunks of S samples x one
// cell: all samples' values of a cell stored together), so that a static selection is one range
// per kept cell per chunk instead of one per kept cell per sample.
//
//   rechunk --in t10k-images-idx3-ubyte.gz --out t10k.chunked              (IDX: N x H x W bytes)
//   rechunk --in scenes.u16 --out scenes.chunked --raw --channels 48 --height 64 --width 64
//           --samples 100 --dtype uint16 --layout pixel_interleaved --cell-c 48
//
// Options: --chunk-samples S (1024), --cell-c / --cell-h / --cell-w (the cell's extents, 1 each:
// one value). A raw file needs its shape, sample count, dtype and layout (band_sequential or
// pixel_interleaved). Prints the storage that plans over the original data describe.
#include "command_line.hpp"

#include <selmask/transfer/chunked.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

namespace tr = selmask::transfer;

int main(int argc, char** argv) {
  std::filesystem::path in, out;
  bool raw = false;
  std::size_t channels = 0, height = 0, width = 0, samples = 0;
  std::string dtype = "uint8", layout = "band_sequential";
  std::size_t chunk_samples = 1024, cell_c = 1, cell_h = 1, cell_w = 1;
  example::command_line cl("rechunk");
  cl.option("--in", "PATH", in)
    .option("--out", "PATH", out)
    .flag("--raw", raw)
    .option("--channels", "C", channels)
    .option("--height", "H", height)
    .option("--width", "W", width)
    .option("--samples", "N", samples)
    .option("--dtype", "T", dtype)
    .option("--layout", "L", layout)
    .option("--chunk-samples", "S", chunk_samples)
    .option("--cell-c", "C", cell_c)
    .option("--cell-h", "H", cell_h)
    .option("--cell-w", "W", cell_w);
  if (!cl.parse(argc, argv)) {
    return 2;
  }
  if (in.empty() || out.empty()) {
    std::fprintf(stderr, "rechunk: --in and --out are required\n%s\n", cl.usage().c_str());
    return 2;
  }
  try {
    const tr::chunk_shape chunk{chunk_samples, {cell_c, cell_h, cell_w}};
    tr::storage s;
    if (raw) {
      if (layout != "band_sequential" && layout != "pixel_interleaved") {
        throw selmask::value_error("--layout '" + layout +
                                   "' (expected band_sequential or pixel_interleaved)");
      }
      s = tr::storage{selmask::shape{channels, height, width}, samples, tr::parse_dtype(dtype),
                      layout == "band_sequential" ? tr::storage_layout::band_sequential()
                                                  : tr::storage_layout::pixel_interleaved(),
                      1};
      s = tr::rechunk_file(in, out, chunk, &s);
    } else {
      s = tr::rechunk_file(in, out, chunk);
    }
    std::printf("%s: %zu samples of %s %s (%s) -> %s, chunks %s\n", in.string().c_str(), s.samples,
                s.sample.str().c_str(), tr::dtype_name(s.type), s.layout.str().c_str(), out.string().c_str(),
                chunk.str().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rechunk: %s\n", e.what());
    return 1;
  }
  return 0;
}
