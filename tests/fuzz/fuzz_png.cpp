// Fuzz harness: PNG files (io/png.hpp: decode_png, the parser of read_png).

#include <selmask/io/png.hpp>

#include "fuzz.hpp"

SELMASK_FUZZ_HARNESS(png) {
  try {
    const selmask::io::picture p = selmask::io::decode_png(selmask_fuzz::as_text(data, size), "fuzz");
    if (p.pixels.size() != p.width * p.height * p.channels) {
      std::abort();
    }
  } catch (const selmask::error&) {
  }
  return 0;
}
