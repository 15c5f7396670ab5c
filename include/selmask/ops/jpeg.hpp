#pragma once
/// \file ops/jpeg.hpp
/// JPEG versions through libjpeg-turbo's TurboJPEG API (Debian `libturbojpeg0-dev`; CMake target
/// `selmask::jpeg`, defined only where the library is found): `jpeg_versions<Q...>`, an extend
/// operator with one version per compile-time quality, and the codec helpers it is built on.
///
/// ```cpp
/// using pipe = selmask::pipeline<selmask::extend<selmask::jpeg_versions<90, 70, 50, 30, 10>>,
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
/// The codec handles are per thread (one compressor and one decompressor, created at first use).

#include <turbojpeg.h>

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
  const auto bad = [](const std::string& why) {
    return jpeg_error("selmask::jpeg_image_bytes: not a well-formed JPEG (" + why + ")");
  };
  if (jpeg.size() < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) {
    throw bad("no SOI marker");
  }
  std::size_t pos = 2;
  std::size_t counted = 2; // SOI
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
    if (m == 0xDA) { // SOS: its header, then entropy-coded data up to and including EOI
      return counted + (jpeg.size() - pos);
    }
    const bool table_or_metadata = m == 0xDB || m == 0xC4 || (m >= 0xE0 && m <= 0xEF) || m == 0xFE;
    if (!table_or_metadata) {
      counted += 2 + len;
    }
    pos += 2 + len;
  }
  throw bad("no SOS marker");
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
  template <tensor_backend B>
  void forward(const tensor_t<B>& x, tensor_t<B>& out) const {
    detail::host_versions_forward<B>(*this, x, out);
  }
  template <tensor_backend B>
  void backward(const tensor_t<B>& gy, tensor_t<B>& gx) const {
    B::sum_versions(gy, nullptr, gx);
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
