// Fuzz harness: JPEG streams (ops/jpeg.hpp): the header walker (jpeg_image_bytes), the block
// stream assembler (jpeg_assemble_blocks: the header up to SOS, then segments cut at the RST
// markers of the rest) and the decoder wrapper (jpeg_decode_gray).

#include <selmask/ops/jpeg.hpp>

#include "fuzz.hpp"

namespace fuzz_jpeg {

/// The frame size of a SOF0 segment in `h` (0×0 without one); `h` is a well-formed header.
std::pair<std::size_t, std::size_t> frame_size(std::span<const std::uint8_t> h) {
  for (std::size_t i = 2; i + 9 <= h.size(); ++i) {
    if (h[i] == 0xFF && h[i + 1] == 0xC0) {
      return {(std::size_t{h[i + 5]} << 8) | h[i + 6], (std::size_t{h[i + 7]} << 8) | h[i + 8]};
    }
  }
  return {0, 0};
}

} // namespace fuzz_jpeg

SELMASK_FUZZ_HARNESS(jpeg) {
  const std::span<const std::uint8_t> bytes(data, size);
  std::size_t header_end = 0;
  try {
    const std::size_t n = selmask::jpeg_image_bytes(bytes);
    if (n > size + 2) {
      std::abort();
    }
    selmask::detail::walk_jpeg_header(
      bytes, "fuzz", [&](std::uint8_t, std::size_t pos, std::size_t len) { header_end = pos + 2 + len; });
  } catch (const selmask::error&) {
  }
  try {
    (void)selmask::jpeg_decode_gray(bytes, 8, 8);
  } catch (const selmask::error&) {
  }
  if (header_end == 0) {
    return 0;
  }
  try {
    const auto header = bytes.first(header_end);
    std::vector<std::vector<std::uint8_t>> segments(1);
    for (std::size_t i = header_end; i < size; ++i) {
      if (data[i] == 0xFF && i + 1 < size && data[i + 1] >= 0xD0 && data[i + 1] <= 0xD7) {
        segments.emplace_back();
        ++i;
      } else {
        segments.back().push_back(data[i]);
      }
    }
    const std::vector<std::uint8_t> file = selmask::jpeg_assemble_blocks(header, segments);
    const auto [h, w] = fuzz_jpeg::frame_size(header);
    if (h * w <= 64 * 64) {
      (void)selmask::jpeg_decode_gray(file, h, w);
    }
  } catch (const selmask::error&) {
  }
  return 0;
}
