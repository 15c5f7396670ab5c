// Fuzz harness: training state files (io/state_file.hpp: state_file::parse, the reader of
// state_file::read) and the trainer's own record in them (train/resume.hpp: get_record — the
// progress, front points with their masks, notes and the epoch log).

#include <selmask/io/state_file.hpp>
#include <selmask/train/resume.hpp>

#include "fuzz.hpp"

SELMASK_FUZZ_HARNESS(state) {
  try {
    const auto s =
      selmask::io::state_file::parse(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    if (s.parse(s.serialise()).records() != s.records()) {
      std::abort(); // a state that does not survive its own round trip
    }
    if (s.has("trainer")) {
      const auto r = selmask::detail::get_record(s);
      for (const auto& p : r.front) {
        if (p.masks.size() != p.mask_shapes.size()) {
          std::abort();
        }
      }
    }
    for (const auto& [name, bytes] : s.records()) { // any record read as a shape and an array
      selmask::io::record_reader rd(bytes, name);
      (void)rd.get_shape();
      (void)rd.get_array<float>();
    }
  } catch (const selmask::error&) {
  }
  return 0;
}
