#pragma once
/// \file ops/jpeg.hpp
/// JPEG versions through libjpeg-turbo's TurboJPEG API (Debian `libturbojpeg0-dev`; CMake target
/// `selmask::jpeg`, defined only where the library is found): `jpeg_versions<Q...>`, an extend
/// operator with one version per compile-time quality, and the codec helpers it is built on.
///
/// ```cpp
/// using jpeg_channels = selmask::pipeline<selmask::extend<selmask::jpeg_versions<90, 70, 50, 30, 10>>,
///                                selmask::xor_mask<selmask::channel>, selmask::merge<selmask::sum>>;
/// // raw data first and "send nothing" last:
/// using ladder = selmask::jpeg_ladder<90, 50, 10>; // versions_of<raw_version, jpeg_versions<...>,
/// nothing_version>
/// ```
///
/// Each channel of a C×H×W sample is coded as its own 8-bit grayscale image (baseline JPEG,
/// TurboJPEG's default standard Huffman tables, `TJSAMP_GRAY`). Values are assumed in [0, 1]:
/// they are clamped to it and quantised to `round(255·x)`; the decoded byte `b` becomes `b/255`.
/// A NaN throws `value_error` naming its position. Default costs are the paper's heuristic,
/// quality/100; cost/measured.hpp measures encoded sizes instead.
///
/// **What travels per image** (`jpeg_image_bytes`): in an abbreviated JPEG stream the quantisation
/// and Huffman tables go once per stream, not per image (with fixed tables per quality they are
/// the same for every image). So an image costs its SOI marker (2 bytes), frame header (SOF
/// segment), restart interval (DRI, if any), scan header (SOS segment), entropy-coded data and
/// EOI marker (2 bytes); the DQT and DHT table segments, APPn (JFIF) and COM segments are not
/// counted. TurboJPEG cannot write abbreviated streams, so the full stream is encoded and its
/// markers are parsed.
///
/// **Per-block selection** (`xor_mask<block<8, 8>>` over JPEG versions, each block of the JPEG grid
/// taking its own version) needs bytes that add up per block. `jpeg_encode_gray_blocks` codes a
/// channel through libjpeg's own API with a restart interval of one MCU (one 8×8 block, the
/// `restart_interval = 1` of libjpeg; JPEG standard ITU-T T.81, B.2.4.4 and F.1.2.3): every block's
/// entropy-coded segment then starts at a byte boundary with its DC predictor reset, so it decodes
/// on its own. What travels per image and quality is the segments of the blocks chosen for that
/// quality, without their RST markers; the stream header (SOI up to SOS, with the tables and the
/// restart interval) is the same for every image of one size and quality and goes once per
/// stream. The client rebuilds a decodable file with `jpeg_assemble_blocks`, putting a flat
/// block's segment (`jpeg_flat_segment`, one byte) where a block was not sent, and takes the
/// chosen blocks' pixels from the decoded image — the same pixels as the whole-image JPEG (the
/// DCT and quantisation are per block, with the same tables). `jpeg_versions::block_bytes` counts
/// those bytes per block, cost/measured.hpp turns them into a per-block cost table.
///
/// The codec handles are per thread (one compressor and one decompressor, created at first use).

#include <turbojpeg.h>

// jpeglib.h needs FILE and size_t declared first
#include <cstdio>
#include <jpeglib.h>

#include <csetjmp>
#include <cstdlib>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../shape.hpp"
#include "versions.hpp"

namespace selmask {

/// libjpeg-turbo reported an error (the message is TurboJPEG's).
class jpeg_error : public error {
public:
  using error::error;
};

namespace detail {

class tj_codec {
public:
  tj_codec() : enc_(tjInitCompress()), dec_(tjInitDecompress()) {
    if (enc_ == nullptr || dec_ == nullptr) {
      release();
      throw jpeg_error("selmask::jpeg: TurboJPEG could not create a codec handle");
    }
  }
  ~tj_codec() { release(); }
  tj_codec(const tj_codec&) = delete;
  tj_codec& operator=(const tj_codec&) = delete;
  tjhandle encoder() const { return enc_; }
  tjhandle decoder() const { return dec_; }

private:
  void release() {
    if (enc_ != nullptr) {
      tjDestroy(enc_);
    }
    if (dec_ != nullptr) {
      tjDestroy(dec_);
    }
  }
  tjhandle enc_;
  tjhandle dec_;
};

inline tj_codec& codec() {
  thread_local tj_codec c;
  return c;
}

inline int checked_int(std::size_t n, const char* what) {
  if (n == 0 || n > 65500) {
    throw value_error(std::string("selmask::jpeg: ") + what + " " + std::to_string(n) +
                      " is outside what JPEG can code (1..65500)");
  }
  return static_cast<int>(n);
}

/// Walks the marker segments of a JPEG from after SOI up to and including SOS, calling
/// `f(marker, offset of its 0xFF, length field)` for each (fill bytes skipped); returns the offset
/// just past the SOS segment, where the entropy-coded data start. Throws `jpeg_error` naming `who`
/// if `jpeg` does not start that way.
template <class F>
std::size_t walk_jpeg_header(std::span<const std::uint8_t> jpeg, const char* who, F&& f) {
  const auto bad = [&](const std::string& why) {
    return jpeg_error(std::string(who) + ": not a well-formed JPEG (" + why + ")");
  };
  if (jpeg.size() < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) {
    throw bad("no SOI marker");
  }
  std::size_t pos = 2;
  while (pos + 4 <= jpeg.size()) {
    if (jpeg[pos] != 0xFF) {
      throw bad("expected a marker at byte " + std::to_string(pos));
    }
    const std::uint8_t m = jpeg[pos + 1];
    if (m == 0xFF) { // fill byte
      ++pos;
      continue;
    }
    const std::size_t len = (std::size_t{jpeg[pos + 2]} << 8) | jpeg[pos + 3];
    if (len < 2 || pos + 2 + len > jpeg.size()) {
      throw bad("segment length " + std::to_string(len) + " at byte " + std::to_string(pos));
    }
    f(m, pos, len);
    pos += 2 + len;
    if (m == 0xDA) {
      return pos;
    }
  }
  throw bad("no SOS marker");
}

} // namespace detail

/// A complete baseline JPEG file of an 8-bit grayscale `height`×`width` image (row-major
/// `pixels`) at `quality` (1..100).
inline std::vector<std::uint8_t> jpeg_encode_gray(std::span<const std::uint8_t> pixels, std::size_t height,
                                                  std::size_t width, int quality) {
  if (quality < 1 || quality > 100) {
    throw value_error("selmask::jpeg_encode_gray: quality must be in 1..100, got " + std::to_string(quality));
  }
  const int h = detail::checked_int(height, "height");
  const int w = detail::checked_int(width, "width");
  if (pixels.size() != height * width) {
    throw shape_error("selmask::jpeg_encode_gray: " + std::to_string(pixels.size()) + " pixels for a " +
                      std::to_string(height) + "x" + std::to_string(width) + " image");
  }
  std::vector<std::uint8_t> buf(tjBufSize(w, h, TJSAMP_GRAY));
  unsigned char* out = buf.data();
  unsigned long size = static_cast<unsigned long>(buf.size());
  tjhandle enc = detail::codec().encoder();
  if (tjCompress2(enc, pixels.data(), w, 0, h, TJPF_GRAY, &out, &size, TJSAMP_GRAY, quality,
                  TJFLAG_NOREALLOC) != 0) {
    throw jpeg_error(std::string("selmask::jpeg_encode_gray: ") + tjGetErrorStr2(enc));
  }
  buf.resize(size);
  return buf;
}

/// Decodes a grayscale JPEG of `height`×`width` pixels (throws `jpeg_error` if it is another size
/// or not a JPEG).
inline std::vector<std::uint8_t> jpeg_decode_gray(std::span<const std::uint8_t> jpeg, std::size_t height,
                                                  std::size_t width) {
  tjhandle dec = detail::codec().decoder();
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(dec, jpeg.data(), static_cast<unsigned long>(jpeg.size()), &w, &h, &subsamp,
                          &colorspace) != 0) {
    throw jpeg_error(std::string("selmask::jpeg_decode_gray: ") + tjGetErrorStr2(dec));
  }
  if (static_cast<std::size_t>(w) != width || static_cast<std::size_t>(h) != height) {
    throw jpeg_error("selmask::jpeg_decode_gray: the image is " + std::to_string(h) + "x" +
                     std::to_string(w) + ", expected " + std::to_string(height) + "x" +
                     std::to_string(width));
  }
  std::vector<std::uint8_t> pixels(height * width);
  if (tjDecompress2(dec, jpeg.data(), static_cast<unsigned long>(jpeg.size()), pixels.data(), w, 0, h,
                    TJPF_GRAY, 0) != 0) {
    throw jpeg_error(std::string("selmask::jpeg_decode_gray: ") + tjGetErrorStr2(dec));
  }
  return pixels;
}

/// The bytes of one image in an abbreviated stream (see the file comment): the whole file minus
/// its DQT, DHT, APPn and COM segments. Throws `jpeg_error` if `jpeg` is not a well-formed JPEG.
inline std::size_t jpeg_image_bytes(std::span<const std::uint8_t> jpeg) {
  std::size_t counted = 2; // SOI
  const std::size_t end = detail::walk_jpeg_header(
    jpeg, "selmask::jpeg_image_bytes", [&](std::uint8_t m, std::size_t, std::size_t len) {
      const bool table_or_metadata = m == 0xDB || m == 0xC4 || (m >= 0xE0 && m <= 0xEF) || m == 0xFE;
      if (!table_or_metadata) {
        counted += 2 + len; // SOS included
      }
    });
  return counted + (jpeg.size() - end); // then entropy-coded data up to and including EOI
}

/// A grayscale JPEG cut into one entropy-coded segment per 8×8 block (see the file comment).
struct jpeg_block_stream {
  /// SOI up to and including the SOS segment (tables, frame header, restart interval): the same
  /// for every image of one size and quality, sent once per stream.
  std::vector<std::uint8_t> header;
  /// Per block of the ⌈H/8⌉ × ⌈W/8⌉ grid, row by row: the block's entropy-coded bytes (with their
  /// 0xFF00 stuffing), without the RST marker that follows them in the file.
  std::vector<std::vector<std::uint8_t>> segments;
};

namespace detail {

struct jpeg_jump_error {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
};

inline void jpeg_error_jump(j_common_ptr c) {
  std::longjmp(reinterpret_cast<jpeg_jump_error*>(c->err)->jump, 1);
}

/// libjpeg compression of a grayscale image with one MCU per restart interval, into a malloc'ed
/// `*out` (the caller frees it, also after a failure). Returns false with libjpeg's message on an
/// error. No C++ object with a destructor lives in this frame (longjmp skips destructors).
inline bool jpeg_compress_restart(const std::uint8_t* px, int h, int w, int quality, unsigned char** out,
                                  unsigned long* size, char* message) {
  jpeg_compress_struct cinfo;
  jpeg_jump_error err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_jump;
  if (setjmp(err.jump) != 0) {
    (*cinfo.err->format_message)(reinterpret_cast<j_common_ptr>(&cinfo), message);
    jpeg_destroy_compress(&cinfo);
    return false;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, out, size);
  cinfo.image_width = static_cast<JDIMENSION>(w);
  cinfo.image_height = static_cast<JDIMENSION>(h);
  cinfo.input_components = 1;
  cinfo.in_color_space = JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo); // baseline, standard Huffman tables
  jpeg_set_quality(&cinfo, quality, TRUE);
  cinfo.dct_method = JDCT_FASTEST; // what tjCompress2 uses without TJFLAG_ACCURATEDCT
  cinfo.restart_interval = 1;
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row =
      const_cast<JSAMPROW>(px + static_cast<std::size_t>(cinfo.next_scanline) * static_cast<std::size_t>(w));
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}

} // namespace detail

/// Codes an 8-bit grayscale `height`×`width` image at `quality` with a restart marker after every
/// 8×8 block and cuts the file into its header and per-block segments (see the file comment).
inline jpeg_block_stream jpeg_encode_gray_blocks(std::span<const std::uint8_t> pixels, std::size_t height,
                                                 std::size_t width, int quality) {
  const std::string who = "selmask::jpeg_encode_gray_blocks: ";
  if (quality < 1 || quality > 100) {
    throw value_error(who + "quality must be in 1..100, got " + std::to_string(quality));
  }
  const int h = detail::checked_int(height, "height");
  const int w = detail::checked_int(width, "width");
  if (pixels.size() != height * width) {
    throw shape_error(who + std::to_string(pixels.size()) + " pixels for a " + std::to_string(height) + "x" +
                      std::to_string(width) + " image");
  }
  unsigned char* out = nullptr;
  unsigned long size = 0;
  char message[JMSG_LENGTH_MAX] = {};
  const bool ok = detail::jpeg_compress_restart(pixels.data(), h, w, quality, &out, &size, message);
  std::vector<std::uint8_t> file;
  if (ok && out != nullptr) {
    file.assign(out, out + size);
  }
  std::free(out);
  if (!ok) {
    throw jpeg_error(who + "libjpeg: " + message);
  }
  const auto bad = [&](const std::string& why) {
    return jpeg_error(who + "unexpected libjpeg output (" + why + ")");
  };
  // the header: markers up to and including the SOS segment
  const std::size_t pos = detail::walk_jpeg_header(file, "selmask::jpeg_encode_gray_blocks (libjpeg output)",
                                                   [](std::uint8_t, std::size_t, std::size_t) {});
  jpeg_block_stream r;
  r.header.assign(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(pos));
  // the segments: up to each RSTn marker, the last one up to EOI
  const std::size_t blocks = ((height + 7) / 8) * ((width + 7) / 8);
  std::size_t start = pos;
  for (std::size_t i = pos; i + 1 < file.size(); ++i) {
    if (file[i] != 0xFF || file[i + 1] == 0x00) {
      continue;
    }
    const std::uint8_t m = file[i + 1];
    if ((m >= 0xD0 && m <= 0xD7) || m == 0xD9) {
      r.segments.emplace_back(file.begin() + static_cast<std::ptrdiff_t>(start),
                              file.begin() + static_cast<std::ptrdiff_t>(i));
      start = i + 2;
      ++i;
      if (m == 0xD9) {
        break;
      }
    }
  }
  if (r.segments.size() != blocks) {
    throw bad(std::to_string(r.segments.size()) + " segments for " + std::to_string(blocks) + " blocks");
  }
  return r;
}

/// The segment of a flat mid-grey block (DC 0, no AC): what the client puts where a block was not
/// sent. The same for every quality (the standard Huffman tables code it in 6 bits).
inline const std::vector<std::uint8_t>& jpeg_flat_segment() {
  static const std::vector<std::uint8_t> flat = [] {
    const std::vector<std::uint8_t> grey(64, 128);
    return jpeg_encode_gray_blocks(grey, 8, 8, 50).segments.at(0);
  }();
  return flat;
}

/// A decodable JPEG file from a `jpeg_encode_gray_blocks` header and one segment per block (row by
/// row; an empty one stands for a block that was not sent and becomes `jpeg_flat_segment()`):
/// the segments with RST0..RST7 markers between them (in turn) and EOI at the end. Throws
/// `value_error` if the count of segments is not the header's count of blocks.
inline std::vector<std::uint8_t> jpeg_assemble_blocks(std::span<const std::uint8_t> header,
                                                      std::span<const std::vector<std::uint8_t>> segments) {
  // the frame header (SOF0) holds the size: FF C0, length, precision, height, width
  std::size_t blocks = 0, height = 0, width = 0;
  detail::walk_jpeg_header(header, "selmask::jpeg_assemble_blocks",
                           [&](std::uint8_t m, std::size_t pos, std::size_t len) {
                             if (m == 0xC0 && len >= 7) {
                               height = (std::size_t{header[pos + 5]} << 8) | header[pos + 6];
                               width = (std::size_t{header[pos + 7]} << 8) | header[pos + 8];
                               blocks = ((height + 7) / 8) * ((width + 7) / 8);
                             }
                           });
  if (blocks == 0) {
    throw value_error("selmask::jpeg_assemble_blocks: the header has no baseline frame header (SOF0)");
  }
  if (segments.size() != blocks) { // before anything is allocated for the blocks
    throw value_error("selmask::jpeg_assemble_blocks: " + std::to_string(segments.size()) +
                      " segments for an image of " + std::to_string(blocks) +
                      " blocks (the header's frame, SOF0, is " + std::to_string(height) + "x" +
                      std::to_string(width) + " pixels)");
  }
  std::vector<std::uint8_t> file(header.begin(), header.end());
  for (std::size_t b = 0; b < blocks; ++b) {
    const auto& seg = segments[b].empty() ? jpeg_flat_segment() : segments[b];
    file.insert(file.end(), seg.begin(), seg.end());
    file.push_back(0xFF);
    file.push_back(b + 1 < blocks ? static_cast<std::uint8_t>(0xD0 + b % 8) : std::uint8_t{0xD9});
  }
  return file;
}

/// One version per JPEG quality `Q...` (each in 1..100), e.g. `jpeg_versions<90, 70, 50, 30, 10>`;
/// see the file comment. Default costs: Q/100 (the paper); set `version_costs` to measured ones
/// (cost/measured.hpp).
template <int... Q>
struct jpeg_versions {
  static_assert(sizeof...(Q) >= 1, "selmask::jpeg_versions<Q...>: give at least one quality");
  static_assert(((Q >= 1 && Q <= 100) && ...),
                "selmask::jpeg_versions<Q...>: every quality must be in 1..100");
  static constexpr std::size_t versions = sizeof...(Q);
  static constexpr int qualities[versions] = {Q...};
  std::vector<float> version_costs{(static_cast<float>(Q) / 100.0f)...};

  [[nodiscard]] std::vector<float> costs() const { return version_costs; }

  /// Channel `c` of `in` quantised to bytes (throws on NaN).
  static std::vector<std::uint8_t> quantise(const shape& s, std::span<const float> in, std::size_t c) {
    const std::size_t hw = s[1] * s[2];
    std::vector<std::uint8_t> px(hw);
    for (std::size_t k = 0; k < hw; ++k) {
      const float x = in[c * hw + k];
      if (std::isnan(x)) {
        throw value_error("selmask::jpeg_versions: the sample contains NaN at value " +
                          std::to_string(c * hw + k) + " (values must be in [0, 1])");
      }
      px[k] = static_cast<std::uint8_t>(std::lround(std::clamp(x, 0.0f, 1.0f) * 255.0f));
    }
    return px;
  }
  void make(std::size_t v, const shape& s, std::span<const float> in, std::span<float> out) const {
    detail::check_sample("selmask::jpeg_versions", s, in, out);
    check_version(v);
    const std::size_t hw = s[1] * s[2];
    for (std::size_t c = 0; c < s[0]; ++c) {
      const auto jpeg = jpeg_encode_gray(quantise(s, in, c), s[1], s[2], qualities[v]);
      const auto px = jpeg_decode_gray(jpeg, s[1], s[2]);
      for (std::size_t k = 0; k < hw; ++k) {
        out[c * hw + k] = static_cast<float>(px[k]) / 255.0f;
      }
    }
  }
  /// Σ over channels of `jpeg_image_bytes` of the channel's JPEG.
  [[nodiscard]] std::size_t encoded_bytes(std::size_t v, const shape& s, std::span<const float> in) const {
    check_version(v);
    if (s.rank() != 3 || in.size() != s.size()) {
      throw shape_error("selmask::jpeg_versions::encoded_bytes: " + std::to_string(in.size()) +
                        " values for a sample of shape " + s.str() + " (expected C x H x W)");
    }
    std::size_t bytes = 0;
    for (std::size_t c = 0; c < s[0]; ++c) {
      bytes += jpeg_image_bytes(jpeg_encode_gray(quantise(s, in, c), s[1], s[2], qualities[v]));
    }
    return bytes;
  }
  /// Per 8×8 block of each channel (C × ⌈H/8⌉ × ⌈W/8⌉, channel by channel, rows of blocks): the
  /// bytes of the block's segment in `jpeg_encode_gray_blocks` — what travels when the block is
  /// sent at this quality (see the file comment).
  [[nodiscard]] std::vector<std::size_t> block_bytes(std::size_t v, const shape& s,
                                                     std::span<const float> in) const {
    check_version(v);
    if (s.rank() != 3 || in.size() != s.size()) {
      throw shape_error("selmask::jpeg_versions::block_bytes: " + std::to_string(in.size()) +
                        " values for a sample of shape " + s.str() + " (expected C x H x W)");
    }
    std::vector<std::size_t> bytes;
    bytes.reserve(s[0] * ((s[1] + 7) / 8) * ((s[2] + 7) / 8));
    for (std::size_t c = 0; c < s[0]; ++c) {
      const auto st = jpeg_encode_gray_blocks(quantise(s, in, c), s[1], s[2], qualities[v]);
      for (const auto& seg : st.segments) {
        bytes.push_back(seg.size());
      }
    }
    return bytes;
  }
  template <tensor_backend B>
  void forward(const tensor_t<B>& x, tensor_t<B>& out) const {
    detail::host_versions_forward<B>(*this, x, out);
  }
  template <tensor_backend B>
  void backward(const tensor_t<B>& gy, tensor_t<B>& gx) const {
    bk::sum_versions<B>(gy, nullptr, gx);
  }

private:
  static void check_version(std::size_t v) {
    if (v >= versions) {
      throw value_error("selmask::jpeg_versions: version " + std::to_string(v) + " of " +
                        std::to_string(versions));
    }
  }
};

/// The raw data, JPEG at each quality `Q...`, then "send nothing": V = 2 + sizeof...(Q).
template <int... Q>
using jpeg_ladder = versions_of<raw_version, jpeg_versions<Q...>, nothing_version>;

} // namespace selmask
