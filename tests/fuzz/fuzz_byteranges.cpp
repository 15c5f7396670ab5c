// Fuzz harness: the multipart/byteranges vocabulary (transfer/byteranges.hpp). The first line is
// a Content-Type (its boundary) and also a Content-Range value; the rest is a multipart body,
// taken apart and copied out range by range.

#include <selmask/transfer/byteranges.hpp>

#include "fuzz.hpp"

SELMASK_FUZZ_HARNESS(byteranges) {
  using namespace selmask::transfer;
  std::string_view rest = selmask_fuzz::as_text(data, size);
  const std::string_view first = selmask_fuzz::take_line(rest);
  try {
    const content_range r = parse_content_range(first);
    if (r.last < r.first || (r.total && r.last >= *r.total)) {
      std::abort();
    }
  } catch (const selmask::error&) {
  }
  try {
    const auto boundary = multipart_boundary(first);
    const std::vector<byterange_part> parts = parse_multipart_byteranges(rest, boundary.value_or("b"));
    std::vector<byte_range> wanted;
    std::size_t bytes = 0;
    for (const byterange_part& p : parts) {
      if (p.data_offset + p.range.length() > rest.size()) {
        std::abort(); // a part's data outside the body
      }
      if (bytes + p.range.length() <= (std::size_t{1} << 20)) { // the data of a part, and one byte of it
        wanted.push_back({p.range.first, p.range.length()});
        wanted.push_back({p.range.first + p.range.length() / 2, 1});
        bytes += p.range.length() + 1;
      }
    }
    std::vector<std::byte> out(bytes);
    copy_wanted_ranges(parts, rest, wanted, out.data());
  } catch (const selmask::error&) {
  }
  return 0;
}
