// Inputs that claim too much: a header, plan, table or response that announces absurd sizes fails
// at once with an error naming the field, before anything of that size is allocated.
//
// Each case runs in a forked child under an address-space limit of 1 GiB (not under
// AddressSanitizer, which reserves far more address space up front), so that an allocation of the
// announced size would fail there instead of taking the machine's memory. The parent checks the
// child's outcome and its peak resident memory (wait4's rusage of the child: under 100 MB), and
// prints the child's wall time (not asserted: the machines that run the suite differ too much).

#include <selmask/io/idx.hpp>
#include <selmask/io/png.hpp>
#include <selmask/nn/weights_file.hpp>
#include <selmask/transfer/byteranges.hpp>
#include <selmask/transfer/plan_file.hpp>
#include <selmask/transfer/tiles.hpp>
#ifdef SELMASK_TEST_JPEG
#include <selmask/ops/jpeg.hpp>
#endif

#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "temp_dir.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define SELMASK_OVERSIZED_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SELMASK_OVERSIZED_ASAN 1
#endif
#endif

using namespace selmask;
namespace fs = std::filesystem;

namespace {

/// Runs `f` in a child; it must throw `E` whose message contains every one of `words`.
/// Checks the child's exit and its peak memory; prints the time and memory.
template <class E>
void fails_small(const char* name, const std::function<void()>& f, std::vector<std::string> words) {
  std::fflush(stdout);
  std::fflush(stderr);
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
#ifndef SELMASK_OVERSIZED_ASAN
    const rlim_t limit = rlim_t{1} << 30;
    const rlimit as{limit, limit};
    ::setrlimit(RLIMIT_AS, &as);
#endif
    int code = 3; // did not throw
    try {
      f();
    } catch (const E& e) {
      code = 0;
      for (const std::string& w : words) {
        if (std::strstr(e.what(), w.c_str()) == nullptr) {
          std::fprintf(stderr, "%s: the message lacks '%s': %s\n", name, w.c_str(), e.what());
          code = 1;
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: another exception: %s\n", name, e.what());
      code = 2;
    }
    std::fflush(stderr);
    ::_exit(code);
  }
  int status = 0;
  rusage ru{};
  REQUIRE(::wait4(pid, &status, 0, &ru) == pid);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("oversized %-36s %7.1f ms, peak resident %6.1f MB\n", name, ms,
              static_cast<double>(ru.ru_maxrss) / 1024.0);
  INFO(name << ": exit status " << status << " (0: the expected error, 1: its message lacks a field, "
            << "2: another exception, 3: no exception)");
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(ru.ru_maxrss < 100 * 1024); // KiB
}

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string le(std::uint64_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) {
    s.push_back(static_cast<char>((v >> (8 * i)) & 0xffU));
  }
  return s;
}

/// An IDX header of unsigned bytes with `extents`, then `data` bytes.
std::string idx_bytes(std::initializer_list<std::uint32_t> extents, std::string_view data = "") {
  std::string s{'\0', '\0', '\x08', static_cast<char>(extents.size())};
  for (std::uint32_t e : extents) {
    s += be32(e);
  }
  return s + std::string(data);
}

/// A plan file's JSON with the given "data" object and masks.
std::string plan_text(const std::string& data, const std::string& masks) {
  return R"({"format":"selmask-plan","version":1,"data":)" + data + R"(,"masks":)" + masks +
         R"(,"kept_values":0,"streams":[],"payload_bytes":0})";
}

std::string plan_data(const std::string& sample_shape, const std::string& samples,
                      const char* dtype = "uint8") {
  return R"({"sample_shape":)" + sample_shape + R"(,"samples":)" + samples + R"(,"dtype":")" + dtype +
         R"(","byte_order":"little","layout":{"kind":"band_sequential"},"versions":1})";
}

} // namespace

TEST_CASE("oversized: plan files that announce absurd sizes", "[oversized][plan]") {
  using transfer::plan_from_json;
  // one sample of 1 x 2^20 x 2^20 bytes: a plan of 2^40 bytes per sample
  fails_small<io_error>("plan: 2^40-byte sample",
                        [] { (void)plan_from_json(plan_text(plan_data("[1,1048576,1048576]", "1"), "[]")); },
                        {"data.sample_shape", "1048576"});
  // 2^40 samples of 2^30 float32 values each: their byte count does not even fit 64 bits
  fails_small<io_error>(
    "plan: 2^40 samples of 4 GiB",
    [] { (void)plan_from_json(plan_text(plan_data("[1,32768,32768]", "1099511627776", "float32"), "[]")); },
    {"data.samples", "1099511627776"});
  // a mask over 2^40 cells for data of 16 values
  fails_small<io_error>("plan: mask of 2^40 cells",
                        [] {
                          (void)plan_from_json(plan_text(
                            plan_data("[1,4,4]", "1"),
                            R"([{"kind":"any","dims":[1,1,1048576,1048576],"block":[1,1,1,1],"kept":[]}])"));
                        },
                        {"masks[0].dims", "1048576"});
  // xOr over 2^15 versions of 2^31 values: a mask of 2^46 cells
  fails_small<io_error>(
    "plan: xor mask of 2^46 cells",
    [] {
      const std::string data =
        R"({"sample_shape":[2048,1024,1024],"samples":1,"dtype":"uint8",)"
        R"("byte_order":"little","layout":{"kind":"band_sequential"},"versions":32767})";
      (void)plan_from_json(
        plan_text(data, R"([{"kind":"xor","dims":[32767,2048,1024,1024],"block":[1,1,1,1],"versions":[]}])"));
    },
    {"masks[0].block", "cells"});
}

TEST_CASE("oversized: IDX files that claim more images than they hold", "[oversized][idx]") {
  // 10^12 images do not fit IDX's 32-bit extents; 10^9 of 28x28 are 784 GB, 5·10^6 are 3.9 GB
  // (under max_idx_bytes: only the file's size tells that the header lies)
  fails_small<io_error>("idx: 10^9 images, raw",
                        [] {
                          selmask_test::temp_dir d;
                          (void)io::read_idx(d.put("x", idx_bytes({1000000000, 28, 28}, "abc")));
                        },
                        {"absurd extents", "1000000000 entries of 784 bytes"});
  fails_small<io_error>("idx: 5*10^6 images, raw",
                        [] {
                          selmask_test::temp_dir d;
                          (void)io::read_idx(d.put("x", idx_bytes({5000000, 28, 28}, "abc")));
                        },
                        {"5000000 entries of 784 bytes", "expected 3920000000 bytes of data, got 3"});
  fails_small<io_error>(
    "idx: 10^9 images, gzip",
    [] {
      selmask_test::temp_dir d;
      (void)io::read_idx(d.put("x.gz", io::detail::gzip_compress(idx_bytes({1000000000, 28, 28}))));
    },
    {"absurd extents", "1000000000 entries"});
  fails_small<io_error>(
    "idx: 5*10^6 images, gzip",
    [] {
      selmask_test::temp_dir d;
      (void)io::read_idx(d.put("x.gz", io::detail::gzip_compress(idx_bytes({5000000, 28, 28}, "abc"))));
    },
    {"5000000 entries of 784 bytes", "a gzip file of"});
  // 1 GiB claimed by a gzip file of 1 MB (incompressible): DEFLATE's ratio cannot rule it out, so
  // the reader reads in growing steps and stops at the end of the data
  fails_small<io_error>(
    "idx: 1 GiB claimed, 1 MB in gzip",
    [] {
      selmask_test::temp_dir d;
      std::string noise(std::size_t{1} << 20, '\0');
      std::uint32_t x = 12345;
      for (char& c : noise) {
        x = x * 1664525U + 1013904223U;
        c = static_cast<char>(x >> 24);
      }
      (void)io::read_idx(d.put("n.gz", io::detail::gzip_compress(idx_bytes({1024, 1024, 1024}) + noise, 1)));
    },
    {"truncated", "expected 1073741824 bytes of data, got 1048576"});
}

TEST_CASE("oversized: weights and masks files with a huge tensor", "[oversized][weights]") {
  const auto file = [](const std::string& body) {
    std::string s = "SELMASKW" + le(1, 4) + body;
    return s + le(::crc32(0, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())), 4);
  };
  fails_small<io_error>("weights: tensor of 2^40 x 2^20",
                        [&] {
                          selmask_test::temp_dir d;
                          (void)nn::read_weights_file(
                            d.put("w", file(le(1, 4) + le(2, 4) + le(std::uint64_t{1} << 40, 8) +
                                            le(std::uint64_t{1} << 20, 8) + "tiny")));
                        },
                        {"extent 0 of the shape of tensor 0 of 1", "1099511627776"});
  fails_small<io_error>(
    "masks: mask of 65536x65536 cells",
    [&] {
      selmask_test::temp_dir d;
      (void)nn::read_weights_file(
        d.put("m.masks", file(le(1, 4) + le(4, 4) + le(1, 8) + le(1, 8) + le(65536, 8) + le(65536, 8))));
    },
    {"extent 2 of the shape of tensor 0 of 1", "65536"});
  fails_small<io_error>("weights: 2^32-1 tensors",
                        [&] {
                          (void)nn::read_weights_bytes(std::span<const unsigned char>(
                            reinterpret_cast<const unsigned char*>(file(le(0xffffffffU, 4)).data()), 20));
                        },
                        {"number of tensors is 4294967295"});
}

TEST_CASE("oversized: multipart bodies and Content-Ranges that announce absurd lengths",
          "[oversized][byteranges]") {
  using namespace transfer;
  fails_small<io_error>(
    "multipart: part of 10^12 bytes",
    [] {
      (void)parse_multipart_byteranges(
        "--B\r\nContent-Range: bytes 0-999999999999/1000000000000\r\n\r\nabc\r\n--B--\r\n", "B");
    },
    {"needs 1000000000000 bytes"});
  fails_small<io_error>("response: Content-Range of 2^60 bytes",
                        [] {
                          response_head h;
                          read_response_line(h, "HTTP/1.1 206 Partial Content\r\n");
                          read_response_line(
                            h, "Content-Range: bytes 0-1152921504606846975/1152921504606846976\r\n");
                          (void)response_parts(h, "abc", 1152921504606846976U);
                        },
                        {"short body", "1152921504606846976 bytes"});
  fails_small<io_error>(
    "Content-Range beyond 64 bits",
    [] { (void)parse_content_range("bytes 0-99999999999999999999/99999999999999999999"); },
    {"malformed range"});
}

#ifdef SELMASK_TEST_JPEG
TEST_CASE("oversized: a JPEG header claiming 65535x65535 pixels", "[oversized][jpeg]") {
  const std::vector<std::uint8_t> grey(64, 100);
  const jpeg_block_stream s = jpeg_encode_gray_blocks(grey, 8, 8, 50);
  std::vector<std::uint8_t> header = s.header;
  for (std::size_t i = 2; i + 9 <= header.size(); ++i) {
    if (header[i] == 0xFF && header[i + 1] == 0xC0) {
      header[i + 5] = header[i + 6] = header[i + 7] = header[i + 8] = 0xFF; // height, width 65535
      break;
    }
  }
  fails_small<value_error>("jpeg: assemble 65535x65535",
                           [&] { (void)jpeg_assemble_blocks(header, s.segments); },
                           {"67108864 blocks", "65535x65535"});
  // 65500x65500 (the most libjpeg codes) announced by a file expected to be 8x8
  std::vector<std::uint8_t> file = jpeg_assemble_blocks(s.header, s.segments);
  for (std::size_t i = 2; i + 9 <= file.size(); ++i) {
    if (file[i] == 0xFF && file[i + 1] == 0xC0) {
      file[i + 5] = file[i + 7] = 0xFF;
      file[i + 6] = file[i + 8] = 0xDC;
      break;
    }
  }
  fails_small<jpeg_error>("jpeg: decode 65500x65500", [&] { (void)jpeg_decode_gray(file, 8, 8); },
                          {"65500x65500", "expected 8x8"});
}
#endif

TEST_CASE("oversized: tile tables with absurd tiles and byte counts", "[oversized][tiles]") {
  using namespace transfer;
  const auto raster = [] {
    tiled_raster r;
    r.bands = 1;
    r.height = r.width = std::size_t{1} << 20;
    r.tile_height = r.tile_width = std::size_t{1} << 20; // one tile of 2^40 uint16 values
    r.format.type = dtype::uint16;
    r.format.codec = tile_codec::deflate;
    r.file_bytes = 1000;
    r.tiles = {stored_tile{0, 0, 0, 10, 100}};
    return r;
  };
  fails_small<shape_error>("tiles: one tile of 2^41 bytes", [&] { raster().validate("test"); },
                           {"max_tile_raw_bytes", "1048576x1048576"});
  fails_small<value_error>("tiles: decode a tile of 2^41 bytes",
                           [&] {
                             const std::vector<std::byte> stored(100);
                             (void)decode_tile(raster(), stored);
                           },
                           {"max_tile_raw_bytes"});
  fails_small<io_error>("tiles: 16 stored bytes for 2^31",
                        [&] {
                          tiled_raster r = raster();
                          r.height = r.width = r.tile_height = r.tile_width = 32768; // 2 GiB decoded
                          const std::vector<std::byte> stored(16);
                          (void)decode_tile(r, stored);
                        },
                        {"16 stored bytes cannot hold the 2147483648 bytes"});
  fails_small<io_error>("tiles: a tile of 2^40 stored bytes",
                        [&] {
                          tiled_raster r = raster();
                          r.height = r.width = r.tile_height = r.tile_width = 256;
                          r.tiles[0].bytes = std::uint64_t{1} << 40;
                          r.validate("test");
                        },
                        {"1099511627776 bytes at 10", "outside the file of 1000 bytes"});
  fails_small<shape_error>("tiles: a grid of 2^62 tiles",
                           [&] {
                             tiled_raster r = raster();
                             r.height = r.width = std::size_t{1} << 31;
                             r.tile_height = r.tile_width = 1;
                             r.validate("test");
                           },
                           {"1 tiles in the table, the grid has more"});
}

TEST_CASE("oversized: a PNG header claiming 10^6 x 10^6 pixels", "[oversized][png]") {
  std::string png = io::encode_png(2, 2, 1, std::vector<std::uint8_t>{1, 2, 3, 4});
  // IHDR: 8-byte signature, length, "IHDR", width, height, ..., CRC over type and data
  png.replace(16, 4, be32(1000000));
  png.replace(20, 4, be32(1000000));
  const auto crc = ::crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17);
  png.replace(29, 4, be32(static_cast<std::uint32_t>(crc)));
  fails_small<io_error>("png: 10^6 x 10^6", [&] { (void)io::decode_png(png); }, {"IHDR", "1000000x1000000"});
}
