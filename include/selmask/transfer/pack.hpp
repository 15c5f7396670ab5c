#pragma once
/// \file transfer/pack.hpp
/// `pack` (server side: the stored bytes → a payload of only the selected bytes, in the plan's
/// canonical order) and `unpack` (client side: the payload → the dense float N×C×H×W tensor the
/// network expects).
///
/// `unpack` converts each stored element to float and multiplies it by `unpack_options::scale`
/// (e.g. 1/255 for bytes; the product is computed in float, `float(x) * scale`), and writes
/// `unpack_options::fill` (default 0) at every dropped location, so that
/// `unpack(pack(data)) == pipeline.forward(float(data) * scale)` value for value in hard mode
/// (a masked value there is `x · 0`, which is −0 for negative x; `==` treats both zeros alike).
///
/// Speed: `pack` is one `memcpy` per coalesced byte range of the whole array (for a
/// band-sequential channel plan: one per run of kept bands per sample, fewer when runs meet
/// across samples). `unpack` is one conversion loop per run of consecutive values (a `memcpy`
/// for float32 with scale 1), plus one `fill` per run of dropped locations; every output value is
/// written once.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "../backend/backend.hpp"
#include "../error.hpp"
#include "plan.hpp"
#include "storage.hpp"

namespace selmask::transfer {

/// How `unpack` turns stored values into the network's input.
struct unpack_options {
  float scale = 1.0f; ///< each value becomes `float(stored) * scale`
  float fill = 0.0f;  ///< the value of dropped locations
};

namespace detail {

template <class T>
T load_little_endian(const std::byte* p) noexcept {
  T t;
  std::memcpy(&t, p, sizeof(T));
  if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) {
    unsigned char b[sizeof(T)];
    std::memcpy(b, &t, sizeof(T));
    for (std::size_t i = 0; i < sizeof(T) / 2; ++i) {
      const unsigned char tmp = b[i];
      b[i] = b[sizeof(T) - 1 - i];
      b[sizeof(T) - 1 - i] = tmp;
    }
    std::memcpy(&t, b, sizeof(T));
  }
  return t;
}

/// dst[i·stride] = float(src[i]) · scale for i < n. The contiguous case works in blocks of a
/// fixed size, which compilers vectorise even at -O2.
template <class T>
void convert(const std::byte* src, float* dst, std::size_t n, std::size_t stride, float scale) {
  if (stride == 1) {
    if constexpr (std::is_same_v<T, float> && std::endian::native == std::endian::little) {
      if (scale == 1.0f) {
        std::memcpy(dst, src, n * sizeof(float));
        return;
      }
    }
    constexpr std::size_t block = 64 / sizeof(T) < 8 ? 8 : 64 / sizeof(T);
    std::size_t i = 0;
    if constexpr (std::endian::native == std::endian::little) {
      for (; i + block <= n; i += block) {
        T tmp[block];
        std::memcpy(tmp, src + i * sizeof(T), sizeof(tmp));
        for (std::size_t k = 0; k < block; ++k) {
          dst[i + k] = static_cast<float>(tmp[k]) * scale;
        }
      }
    }
    for (; i < n; ++i) {
      dst[i] = static_cast<float>(load_little_endian<T>(src + i * sizeof(T))) * scale;
    }
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    dst[i * stride] = static_cast<float>(load_little_endian<T>(src + i * sizeof(T))) * scale;
  }
}

/// Calls `f(T{})` with the C++ type of the element type `t`: the one switch over the element
/// types, for unpack and for code that decodes values outside a plan (transfer/dynamic.hpp).
template <class F>
void visit_dtype(dtype t, F&& f) {
  static_assert(sizeof(float) == 4, "selmask::transfer: float must be 32-bit IEEE");
  switch (t) {
    case dtype::uint8:
      return f(std::uint8_t{});
    case dtype::int8:
      return f(std::int8_t{});
    case dtype::uint16:
      return f(std::uint16_t{});
    case dtype::int16:
      return f(std::int16_t{});
    case dtype::uint32:
      return f(std::uint32_t{});
    case dtype::int32:
      return f(std::int32_t{});
    case dtype::float32:
      return f(float{});
    case dtype::float64:
      return f(double{});
  }
}

/// dst[i] = float(src[i]) · scale for the `n` stored values of type `t` at `src`.
inline void convert_values(dtype t, const std::byte* src, float* dst, std::size_t n, float scale) {
  visit_dtype(t, [&](auto tag) { convert<decltype(tag)>(src, dst, n, 1, scale); });
}

template <class T>
void unpack_typed(const plan& p, const std::byte* payload, float* out, const unpack_options& opt) {
  const storage& s = p.source();
  const std::size_t per = s.sample_values();
  for (std::size_t n = 0; n < s.samples; ++n) {
    float* y = out + n * per;
    for (const fill_run& f : p.fill_runs()) {
      std::fill_n(y + f.dst, f.count, opt.fill);
    }
    for (std::size_t v = 0; v < p.streams(); ++v) {
      const std::byte* src = payload + p.payload_offset(v) + n * p.sample_payload_bytes(v);
      for (const copy_run& r : p.copy_runs(v)) {
        convert<T>(src + r.src * sizeof(T), y + r.dst, r.count, r.stride, opt.scale);
      }
    }
  }
}

} // namespace detail

/// Writes the selected bytes of `streams` (one span per version, each the whole stored array of
/// `plan.source().stream_bytes()` bytes) into `payload` (exactly `plan.payload_bytes()` bytes), in
/// canonical order. Throws `shape_error` naming the stream count or the stream/payload size that
/// is wrong.
inline void pack(const plan& p, std::span<const std::span<const std::byte>> streams,
                 std::span<std::byte> payload) {
  const std::string where = "selmask::transfer::pack: ";
  if (streams.size() != p.streams()) {
    throw shape_error(where + std::to_string(streams.size()) + " streams given, the plan reads " +
                      std::to_string(p.streams()) + " (one per version)");
  }
  for (std::size_t v = 0; v < streams.size(); ++v) {
    if (streams[v].size() != p.source().stream_bytes()) {
      throw shape_error(where + "stream " + std::to_string(v) + " holds " +
                        std::to_string(streams[v].size()) + " bytes, the plan's storage has " +
                        std::to_string(p.source().stream_bytes()) + " (" +
                        std::to_string(p.source().samples) + " samples of " + p.source().sample.str() + " " +
                        dtype_name(p.source().type) + ")");
    }
  }
  if (payload.size() != p.payload_bytes()) {
    throw shape_error(where + "payload buffer of " + std::to_string(payload.size()) +
                      " bytes, the plan's payload is " + std::to_string(p.payload_bytes()));
  }
  std::byte* out = payload.data();
  for (std::size_t v = 0; v < streams.size(); ++v) {
    const std::byte* base = streams[v].data();
    p.for_each_file_range(v, [&](std::size_t off, std::size_t len) {
      std::memcpy(out, base + off, len);
      out += len;
    });
  }
}

/// The payload of `streams` (one whole stored array per version) as a new buffer.
inline std::vector<std::byte> pack(const plan& p, std::span<const std::span<const std::byte>> streams) {
  std::vector<std::byte> out(p.payload_bytes());
  pack(p, streams, out);
  return out;
}

/// The payload of a single stored array (a plan without versions).
inline std::vector<std::byte> pack(const plan& p, std::span<const std::byte> data) {
  const std::span<const std::byte> one[1] = {data};
  return pack(p, std::span<const std::span<const std::byte>>(one));
}

/// Fills `out` (N·C·H·W floats, NCHW) from `payload` (exactly `plan.payload_bytes()` bytes).
/// Throws `shape_error` naming the payload or output size that is wrong.
inline void unpack(const plan& p, std::span<const std::byte> payload, std::span<float> out,
                   const unpack_options& opt = {}) {
  const std::string where = "selmask::transfer::unpack: ";
  if (payload.size() != p.payload_bytes()) {
    throw shape_error(where + "payload of " + std::to_string(payload.size()) + " bytes, the plan expects " +
                      std::to_string(p.payload_bytes()));
  }
  const std::size_t values = p.source().samples * p.source().sample_values();
  if (out.size() != values) {
    throw shape_error(where + "output of " + std::to_string(out.size()) + " values, expected " +
                      std::to_string(values) + " (" + p.source().batch_shape().str() + ")");
  }
  detail::visit_dtype(p.source().type, [&](auto tag) {
    detail::unpack_typed<decltype(tag)>(p, payload.data(), out.data(), opt);
  });
}

/// The dense N×C×H×W floats of `payload`, as a host vector.
inline std::vector<float> unpack(const plan& p, std::span<const std::byte> payload,
                                 const unpack_options& opt = {}) {
  std::vector<float> out(p.source().samples * p.source().sample_values());
  unpack(p, payload, out, opt);
  return out;
}

/// The dense N×C×H×W tensor of `payload` on backend `B` (what the network takes).
template <tensor_backend B>
tensor_t<B> unpack_tensor(const plan& p, std::span<const std::byte> payload, const unpack_options& opt = {}) {
  return B::from_host(p.source().batch_shape(), unpack(p, payload, opt));
}

} // namespace selmask::transfer
