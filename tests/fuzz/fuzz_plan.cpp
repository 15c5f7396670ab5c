// Fuzz harness: plan files (transfer/plan_file.hpp: plan_from_json, the parser of load_plan).
// A plan that loads must survive a round trip through plan_to_json unchanged, and its file ranges
// must lie inside its streams.

#include <selmask/transfer/plan_file.hpp>

#include "fuzz.hpp"

SELMASK_FUZZ_HARNESS(plan) {
  try {
    const selmask::transfer::plan p =
      selmask::transfer::plan_from_json(selmask_fuzz::as_text(data, size), "fuzz");
    if (!(selmask::transfer::plan_from_json(selmask::transfer::plan_to_json(p)) == p)) {
      std::abort(); // the round trip changed the plan
    }
    if (p.source().samples <= 64) {
      for (std::size_t v = 0; v < p.streams(); ++v) {
        p.for_each_file_range(v, [&](std::size_t offset, std::size_t length) {
          if (length == 0 || offset + length > p.source().stream_bytes()) {
            std::abort(); // a range outside the stream
          }
        });
      }
    }
  } catch (const selmask::error&) {
  }
  return 0;
}
