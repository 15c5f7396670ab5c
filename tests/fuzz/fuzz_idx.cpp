// Fuzz harness: IDX files, raw or gzip (io/idx.hpp: read_idx, read_idx_header) and the streaming
// reader of raw IDX images (io/idx_stream.hpp). The bytes are the file; when the first byte is
// 'z' the rest is gzip-compressed first, so that the parser behind the decompression is reached.

#include <selmask/io/idx.hpp>
#include <selmask/io/idx_stream.hpp>

#include "fuzz.hpp"

SELMASK_FUZZ_HARNESS(idx) {
  std::string_view bytes = selmask_fuzz::as_text(data, size);
  std::string packed;
  if (!bytes.empty() && bytes.front() == 'z') {
    packed = selmask::io::detail::gzip_compress(bytes.substr(1));
    bytes = packed;
  }
  const auto path = selmask_fuzz::scratch_file("input.idx", bytes);
  try {
    (void)selmask::io::read_idx(path);
  } catch (const selmask::error&) {
  }
  try {
    (void)selmask::io::read_idx(path, 2);
  } catch (const selmask::error&) {
  }
  try {
    (void)selmask::io::read_idx_header(path);
  } catch (const selmask::error&) {
  }
  try {
    // two labels: the images must be two samples
    static const std::uint8_t two[2] = {0, 1};
    const auto labels = selmask_fuzz::scratch_dir() / "labels.idx";
    if (!std::filesystem::exists(labels)) {
      selmask::io::write_idx(labels, selmask::shape{2}, two, selmask::io::idx_compression::none);
    }
    selmask::io::idx_stream_source src(path, labels, {.batch_size = 1, .shuffle = false});
    src.validate();
    selmask::host_batch b;
    for (std::size_t i = 0; i < src.batches(); ++i) {
      src.read(i, b);
    }
  } catch (const selmask::error&) {
  }
  return 0;
}
