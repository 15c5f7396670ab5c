// Fuzz harness: tile decoding (transfer/tiles.hpp: decode_tile with its DEFLATE and LZW decoders,
// predictors, byte shuffle and byte order). The first 4 bytes choose the tile's format and size
// (at most 4 bands of 16×16 values); the rest is the stored tile.

#include <selmask/transfer/tiles.hpp>

#include "fuzz.hpp"

SELMASK_FUZZ_HARNESS(tiles) {
  using namespace selmask::transfer;
  if (size < 4) {
    return 0;
  }
  static constexpr dtype types[] = {dtype::uint8,  dtype::int8,  dtype::uint16,  dtype::int16,
                                    dtype::uint32, dtype::int32, dtype::float32, dtype::float64};
  tiled_raster r;
  r.format.type = types[data[0] & 7U];
  r.format.codec = static_cast<tile_codec>((data[0] >> 3) % 3);
  r.format.predictor = (data[0] >> 5) & 3U; // 0 (unknown), 1, 2, 3
  r.format.shuffle = (data[1] & 1U) != 0;
  r.format.little_endian = (data[1] & 2U) != 0;
  r.format.order = (data[1] & 4U) != 0 ? tile_order::pixel_interleaved : tile_order::band_sequential;
  r.tile_bands = 1 + ((data[1] >> 3) & 3U);
  r.tile_height = 1 + (data[2] & 15U);
  r.tile_width = 1 + (data[3] & 15U);
  r.bands = r.tile_bands;
  r.height = r.tile_height;
  r.width = r.tile_width;
  const auto stored = std::as_bytes(std::span<const std::uint8_t>(data + 4, size - 4));
  try {
    const std::vector<std::byte> raw = decode_tile(r, stored);
    if (raw.size() != r.tile_raw_bytes()) {
      std::abort();
    }
  } catch (const selmask::error&) {
  }
  return 0;
}
