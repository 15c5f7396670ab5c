// Fuzz harness: the packing server's request handling (transfer/pack_service.hpp:
// pack_service::handle, which parses the target, its query, the Range header, a plan sent as the
// body and the bitmaps of /select). Lines: method, target, Range value; the rest is the body. The
// service serves a scratch root with a data file (d.bin: 4 samples of 1×4×4 bytes) and a plan
// file (p.json: one any-mask of 2×2 blocks). A 500 (an exception that is not a selmask::error)
// is a finding.

#include <selmask/transfer/pack_service.hpp>
#include <selmask/transfer/plan_file.hpp>

#include "fuzz.hpp"

namespace fuzz_pack_service {

const selmask::transfer::pack_service& service() {
  static const selmask::transfer::pack_service s = [] {
    using namespace selmask::transfer;
    const std::filesystem::path root = selmask_fuzz::scratch_dir() / "root";
    std::filesystem::create_directories(root);
    std::string bytes(64, '\0');
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      bytes[i] = static_cast<char>(i);
    }
    selmask_fuzz::scratch_file("root/d.bin", bytes);
    storage st;
    st.sample = selmask::shape{1, 4, 4};
    st.samples = 4;
    st.type = dtype::uint8;
    st.layout = storage_layout::band_sequential();
    hard_mask m;
    m.geometry = selmask::cell_geometry::make({1, 1, 4, 4}, {1, 1, 2, 2});
    m.values = {1.0f, 0.0f, 0.0f, 1.0f};
    save_plan(plan::from_masks({m}, st), root / "p.json");
    return pack_service(root);
  }();
  return s;
}

} // namespace fuzz_pack_service

SELMASK_FUZZ_HARNESS(pack_service) {
  std::string_view rest = selmask_fuzz::as_text(data, size);
  const std::string_view method = selmask_fuzz::take_line(rest);
  const std::string_view target = selmask_fuzz::take_line(rest);
  const std::string_view range = selmask_fuzz::take_line(rest);
  const selmask::transfer::service_reply r = fuzz_pack_service::service().handle(method, target, range, rest);
  if (r.status >= 500) {
    std::fprintf(stderr, "fuzz_pack_service: %u %s\n", r.status, r.body.c_str());
    std::abort();
  }
  if ((r.status == 200 || r.status == 206) && method != "HEAD" && r.body.size() != r.length) {
    std::abort(); // a body that is not as long as the reply says
  }
  return 0;
}
