// Fuzz harness: tile tables (transfer/tiles.hpp: tiled_raster::validate, make_tile_plan, the
// measured band and tile costs). The bytes give the raster's extents (64-bit, so absurd ones are
// reachable), its format, the file size and then one 20-byte entry per tile.

#include <selmask/transfer/tiles.hpp>

#include "fuzz.hpp"

namespace fuzz_tile_table {

struct reader {
  const std::uint8_t* p;
  std::size_t left;
  template <class U>
  U get() {
    U v = 0;
    for (std::size_t i = 0; i < sizeof(U) && left > 0; ++i, ++p, --left) {
      v = static_cast<U>(v | static_cast<U>(static_cast<U>(*p) << (8 * i)));
    }
    return v;
  }
  /// A small extent most of the time, any 64-bit value when the byte's top bit is set.
  std::size_t extent() {
    const auto b = get<std::uint8_t>();
    return (b & 0x80U) != 0 ? static_cast<std::size_t>(get<std::uint64_t>()) : b;
  }
};

} // namespace fuzz_tile_table

SELMASK_FUZZ_HARNESS(tile_table) {
  using namespace selmask::transfer;
  fuzz_tile_table::reader in{data, size};
  tiled_raster r;
  r.bands = in.extent();
  r.height = in.extent();
  r.width = in.extent();
  r.tile_bands = in.extent();
  r.tile_height = in.extent();
  r.tile_width = in.extent();
  const auto f = in.get<std::uint8_t>();
  static constexpr dtype types[] = {dtype::uint8,  dtype::int8,  dtype::uint16,  dtype::int16,
                                    dtype::uint32, dtype::int32, dtype::float32, dtype::float64};
  r.format.type = types[f & 7U];
  r.format.order = (f & 8U) != 0 ? tile_order::pixel_interleaved : tile_order::band_sequential;
  r.file_bytes = in.get<std::uint32_t>();
  while (in.left >= 4) {
    stored_tile t;
    t.band_group = in.get<std::uint8_t>();
    t.row = in.get<std::uint8_t>();
    t.col = in.get<std::uint8_t>();
    t.offset = in.get<std::uint32_t>();
    t.bytes = in.get<std::uint16_t>();
    r.tiles.push_back(t);
  }
  try {
    r.validate("fuzz");
  } catch (const selmask::error&) {
    return 0;
  }
  if (r.bands > 4096) {
    return 0; // the plan and the band costs hold one flag or value per band
  }
  try {
    const tile_plan p = make_tile_plan(r);
    std::uint64_t sum = 0;
    for (const byte_range& b : p.ranges) {
      if (b.offset + b.length > r.file_bytes) {
        std::abort(); // a range outside the file
      }
      sum += b.length;
    }
    if (sum != p.payload_bytes) {
      std::abort();
    }
  } catch (const selmask::error&) {
  }
  try {
    (void)r.band_costs();
  } catch (const selmask::error&) {
  }
  try {
    (void)r.tile_costs();
  } catch (const selmask::error&) {
  }
  return 0;
}
