// Fuzz harness: the HTTP response handling of the range client (transfer/byteranges.hpp:
// read_response_line, response_parts; transfer/http.hpp feeds them libcurl's header lines and
// the body). Header lines up to an empty line, then the body; the resource is taken to have 4096
// bytes, and a few ranges of it are copied out of the parts.

#include <selmask/transfer/byteranges.hpp>

#include "fuzz.hpp"

SELMASK_FUZZ_HARNESS(http_response) {
  using namespace selmask::transfer;
  std::string_view rest = selmask_fuzz::as_text(data, size);
  response_head head;
  while (!rest.empty()) {
    const std::string_view line = selmask_fuzz::take_line(rest);
    if (line.empty() || line == "\r") {
      break;
    }
    read_response_line(head, line);
  }
  try {
    const std::vector<byterange_part> parts = response_parts(head, rest, 4096);
    static constexpr byte_range wanted[] = {{0, 1}, {1, 2}, {100, 50}, {4095, 1}};
    for (const byte_range& w : wanted) {
      std::byte out[64];
      try {
        copy_wanted_ranges(parts, rest, std::span<const byte_range>(&w, 1), out);
      } catch (const selmask::error&) {
      }
    }
  } catch (const selmask::error&) {
  }
  return 0;
}
