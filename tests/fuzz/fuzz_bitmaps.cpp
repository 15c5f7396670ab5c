// Fuzz harness: the client's side of dynamic selections (transfer/pack_client.hpp:
// unpack_selected, which takes apart the payload a packing server answered to bitmaps). The first
// byte gives the number of samples n (0 to 7), the next n bytes their bitmaps over the 4 cells of
// a 1×4×4 plan of 2×2 blocks; the rest is the payload.

#include <selmask/transfer/pack_client.hpp>

#include "fuzz.hpp"

namespace fuzz_bitmaps {

const selmask::transfer::plan& templ() {
  static const selmask::transfer::plan p = [] {
    using namespace selmask::transfer;
    storage st;
    st.sample = selmask::shape{1, 4, 4};
    st.samples = 8;
    st.type = dtype::uint16;
    hard_mask m;
    m.geometry = selmask::cell_geometry::make({1, 1, 4, 4}, {1, 1, 2, 2});
    m.values = {1.0f, 1.0f, 1.0f, 1.0f};
    return plan::from_masks({m}, st);
  }();
  return p;
}

} // namespace fuzz_bitmaps

SELMASK_FUZZ_HARNESS(bitmaps) {
  if (size == 0) {
    return 0;
  }
  const std::size_t n = std::min<std::size_t>(data[0] & 7U, size - 1);
  const std::span<const std::uint8_t> bitmaps(data + 1, n);
  const auto payload = std::as_bytes(std::span<const std::uint8_t>(data + 1 + n, size - 1 - n));
  try {
    const std::vector<float> v = selmask::transfer::unpack_selected(fuzz_bitmaps::templ(), bitmaps, payload);
    if (v.size() != n * 16) {
      std::abort();
    }
  } catch (const selmask::error&) {
  }
  return 0;
}
