// Bytes on the wire against a real nginx on 127.0.0.1 (transfer/wire.hpp, transfer/http.hpp):
// for every layout and granularity the library plans, with both strategies and the coalescing
// policies off / auto / a hole limit,
//  - the fetched payload equals `pack` of the stored bytes in memory (and the unpacked tensor of
//    a coalesced fetch equals that of a plain one);
//  - the bytes the transport model predicts (its constants measured by the client's probe) are
//    within 1 % of what the client counts from the requests and responses;
//  - with coalescing on, a fetch never costs more bytes than one plain GET of the whole file,
//    measured by downloading it.
// And the chunked layout (transfer/chunked.hpp): every value where the definition puts it, plans
// over it read the plan's payload, and over nginx the same tensor for far fewer bytes.
// Needs the Debian package nginx (scripts/install-deps.sh), as test_transfer_nginx.
#include "support.hpp"

#include "nginx_server.hpp"
#include <selmask/transfer/chunked.hpp>
#include <selmask/transfer/http.hpp>
#include <selmask/transfer/transfer.hpp>
#include <selmask/transfer/wire.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace selmask;
using namespace selmask_test;
namespace tr = selmask::transfer;

namespace {

struct wire_case {
  std::string name;
  tr::storage s;
  cell_geometry geometry;
  unsigned keep_one_in; ///< each cell kept with probability 1/keep_one_in (seeded)
};

std::vector<float> random_keep(std::size_t cells, unsigned one_in, std::uint64_t seed) {
  std::mt19937_64 r(seed);
  std::vector<float> v(cells, 0.0f);
  for (auto& x : v) {
    x = r() % one_in == 0 ? 1.0f : 0.0f;
  }
  v[cells / 2] = 1.0f; // never empty
  return v;
}

/// One-hot version choice per cell for an xOr-mask over `versions` versions.
std::vector<float> random_choice(const cell_geometry& g, std::uint64_t seed) {
  std::mt19937_64 r(seed);
  const std::size_t k_n = g.grid[1] * g.grid[2] * g.grid[3];
  std::vector<float> v(g.cells(), 0.0f);
  for (std::size_t k = 0; k < k_n; ++k) {
    v[(r() % g.grid[0]) * k_n + k] = 1.0f;
  }
  return v;
}

std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 r(seed);
  std::vector<std::byte> b(n);
  for (auto& x : b) {
    x = static_cast<std::byte>(r() & 0xff);
  }
  return b;
}

void write_bytes(const std::filesystem::path& p, const std::vector<std::byte>& b) {
  io::write_file_atomically(p, std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
  std::filesystem::permissions(p, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                    std::filesystem::perms::group_read | std::filesystem::perms::others_read);
}

tr::storage store(shape sample, std::size_t n, tr::dtype t, tr::storage_layout l, std::size_t versions = 1) {
  return tr::storage{sample, n, t, l, versions};
}

std::vector<wire_case> all_cases() {
  using L = tr::storage_layout;
  const auto bs = L::band_sequential();
  const auto pi = L::pixel_interleaved();
  std::vector<wire_case> c;
  // the three rows
  c.push_back({"channel, band-sequential 48x64x64 uint16", store({48, 64, 64}, 3, tr::dtype::uint16, bs),
               make_geometry<channel>(1, 48, 64, 64, true), 8});
  c.push_back({"pixel, pixel-interleaved 8x32x32 uint16", store({8, 32, 32}, 5, tr::dtype::uint16, pi),
               make_geometry<pixel>(1, 8, 32, 32, true), 7});
  c.push_back({"pixel, 1x28x28 uint8 (the main job)", store({1, 28, 28}, 100, tr::dtype::uint8, bs),
               make_geometry<pixel>(1, 1, 28, 28, true), 20});
  // the other layouts and granularities
  c.push_back({"pixel, band-sequential 4x16x16 uint16", store({4, 16, 16}, 3, tr::dtype::uint16, bs),
               make_geometry<pixel>(1, 4, 16, 16, true), 3});
  c.push_back({"channel, pixel-interleaved 8x16x16 uint16", store({8, 16, 16}, 3, tr::dtype::uint16, pi),
               make_geometry<channel>(1, 8, 16, 16, true), 3});
  c.push_back({"subpixel, pixel-interleaved 4x16x16 uint16", store({4, 16, 16}, 2, tr::dtype::uint16, pi),
               make_geometry<subpixel>(1, 4, 16, 16, true), 5});
  c.push_back({"block 4x4, tiled(4x4) 3x16x16 float32",
               store({3, 16, 16}, 2, tr::dtype::float32, L::tiled(4, 4)),
               make_geometry<block<4, 4>>(1, 3, 16, 16, true), 3});
  c.push_back({"block 4x4 all channels, band-sequential 3x16x16 uint8",
               store({3, 16, 16}, 4, tr::dtype::uint8, bs),
               make_geometry<block<4, 4, all_channels>>(1, 3, 16, 16, true), 2});
  c.push_back({"pixel, tiled(8x8) 2x20x20 uint16 (edge tiles)",
               store({2, 20, 20}, 3, tr::dtype::uint16, L::tiled(8, 8)),
               make_geometry<pixel>(1, 2, 20, 20, true), 4});
  c.push_back({"block 2x2, tiled(5x3) 3x10x9 int16", store({3, 10, 9}, 2, tr::dtype::int16, L::tiled(5, 3)),
               make_geometry<block<2, 2>>(1, 3, 10, 9, true), 2});
  return c;
}

bool within_one_percent(std::size_t predicted, std::size_t counted) {
  const double diff = std::fabs(static_cast<double>(predicted) - static_cast<double>(counted));
  return diff <= 0.01 * static_cast<double>(counted);
}

std::string describe(const tr::wire_stats& w) {
  return "requests " + std::to_string(w.requests) + ", request " + std::to_string(w.request_bytes) +
         ", headers " + std::to_string(w.header_bytes) + ", body " + std::to_string(w.body_bytes) +
         ", read " + std::to_string(w.read_bytes) + ", discarded " + std::to_string(w.discarded_bytes);
}

/// Predicted against counted, component by component.
void check_prediction(const tr::wire_stats& predicted, const tr::wire_stats& counted) {
  INFO("predicted: " << describe(predicted));
  INFO("counted:   " << describe(counted));
  CHECK(predicted.requests == counted.requests);
  CHECK(within_one_percent(predicted.total(), counted.total()));
  CHECK(within_one_percent(predicted.body_bytes, counted.body_bytes));
  CHECK(within_one_percent(predicted.header_bytes, counted.header_bytes));
  CHECK(within_one_percent(predicted.request_bytes, counted.request_bytes));
  CHECK(predicted.range_bytes == counted.range_bytes);
  CHECK(predicted.read_bytes == counted.read_bytes);
  CHECK(predicted.discarded_bytes == counted.discarded_bytes);
}

/// The response bytes (status line and headers, body) of one GET with `range` (none when empty),
/// counted on a raw socket — no libcurl — reading the headers up to the blank line and then
/// Content-Length body bytes.
std::pair<std::size_t, std::size_t> raw_response_bytes(std::uint16_t port, const std::string& path,
                                                       const std::string& range) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n" +
                          (range.empty() ? std::string() : "Range: " + range + "\r\n") + "\r\n";
  REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
  std::string got;
  std::optional<std::size_t> header_end, content_length;
  char buf[65536];
  while (!header_end || got.size() < *header_end + *content_length) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    REQUIRE(n > 0);
    got.append(buf, static_cast<std::size_t>(n));
    if (!header_end) {
      if (const std::size_t e = got.find("\r\n\r\n"); e != std::string::npos) {
        header_end = e + 4;
        const std::size_t cl = got.find("Content-Length: ");
        REQUIRE(cl < e);
        content_length = std::stoul(got.substr(cl + 16, got.find("\r\n", cl) - cl - 16));
      }
    }
  }
  ::close(fd);
  REQUIRE(got.size() == *header_end + *content_length); // nothing more than the one response
  return {*header_end, *content_length};
}

} // namespace

TEST_CASE("wire: the model's response bytes equal those counted on a raw socket, without libcurl",
          "[wire][nginx]") {
  temp_dir dir;
  const auto stored = random_bytes(1234567, 4); // 7-digit offsets
  write_bytes(dir / "big.bin", stored);
  testing::nginx_server server(dir.path);
  tr::http_client client;
  const tr::transport_model m = client.probe(server.url("/big.bin"));
  const std::vector<std::vector<tr::byte_range>> cases{
    {{0, 1}},
    {{999999, 3}},
    {{5, 10}, {1000, 1}},
    {{0, 1}, {9, 1}, {99, 1}, {99999, 10}, {1234000, 567}},
  };
  for (const auto& ranges : cases) {
    const std::string value = tr::range_header_value(ranges);
    INFO(value);
    const tr::wire_stats predicted = m.range_request(ranges);
    const auto [header, body] = raw_response_bytes(server.port(), "/big.bin", value);
    CHECK(predicted.header_bytes == header);
    CHECK(predicted.body_bytes == body);
  }
  const auto [header, body] = raw_response_bytes(server.port(), "/big.bin", "");
  CHECK(m.full_download().header_bytes == header);
  CHECK(m.full_download().body_bytes == body);
  CHECK(body == stored.size());
}

TEST_CASE("wire: predicted bytes match the counted ones, coalescing keeps the payload and never costs more "
          "than a full download",
          "[wire][nginx]") {
  temp_dir dir;
  testing::nginx_server server(dir.path);
  std::uint64_t seed = 11;
  for (const wire_case& c : all_cases()) {
    INFO(c.name);
    const tr::plan plan =
      tr::plan::from_masks({{c.geometry, random_keep(c.geometry.cells(), c.keep_one_in, ++seed)}}, c.s);
    const std::vector<std::byte> stored = random_bytes(c.s.stream_bytes(), ++seed);
    const std::string file = "case" + std::to_string(seed) + ".bin";
    write_bytes(dir / file, stored);
    const std::string url = server.url("/" + file);
    const std::vector<std::byte> expected = tr::pack(plan, stored);

    tr::http_client measure;
    const auto full = measure.download_whole(url);
    REQUIRE(full.payload == stored);
    const tr::transport_model model = measure.probe(url);
    CHECK(model.resource_bytes == stored.size());
    check_prediction(model.full_download(), full.wire);
    std::vector<float> plain_tensor;

    for (auto strategy : {tr::range_strategy::multi_range, tr::range_strategy::per_range}) {
      for (const tr::coalescing policy :
           {tr::coalescing::off(), tr::coalescing::automatic(), tr::coalescing::holes_up_to(64)}) {
        INFO((strategy == tr::range_strategy::multi_range ? "multi-range" : "per-range")
             << ", coalescing " << policy.str());
        tr::http_client client({.strategy = strategy, .merge = policy});
        const tr::wire_stats predicted = client.predict(plan, url);
        const auto got = client.fetch<cpu>(plan, url);
        const auto payload = client.fetch_payload(plan, url);
        CHECK(payload.payload == expected);
        const auto x = cpu::to_host(got.x);
        if (plain_tensor.empty()) {
          plain_tensor = x;
        } else {
          CHECK(x == plain_tensor);
        }
        check_prediction(predicted, got.wire);
        // the stand-alone model (from another client's probe) predicts the same
        const tr::transport_model models[1] = {model};
        const tr::wire_stats again =
          tr::predict_fetch(plan, models, strategy, client.options().max_range_header_bytes, policy);
        CHECK(again.total() == predicted.total());
        CHECK(got.wire.range_bytes == plan.payload_bytes());
        CHECK(got.wire.read_bytes == got.wire.range_bytes + got.wire.discarded_bytes);
        if (policy == tr::coalescing::off()) {
          CHECK(got.wire.discarded_bytes == 0);
          CHECK(got.wire.requests ==
                (strategy == tr::range_strategy::per_range ? plan.file_ranges(0).size() : got.wire.requests));
        } else {
          CHECK(got.wire.total() <= full.wire.total());
        }
        CHECK(client.probe_wire().requests == 3); // predict probed the URL once, the fetches did not again
      }
    }
  }
}

TEST_CASE("wire: a two-stream (xOr) plan, each stream its own URL and model", "[wire][nginx]") {
  temp_dir dir;
  testing::nginx_server server(dir.path);
  const tr::storage s = store({3, 16, 16}, 4, tr::dtype::uint16, tr::storage_layout::pixel_interleaved(), 2);
  const cell_geometry g = make_geometry<pixel>(2, 3, 16, 16, false);
  const tr::plan plan = tr::plan::from_masks({{g, random_choice(g, 5)}}, s);
  const std::vector<std::byte> a = random_bytes(s.stream_bytes(), 6), b = random_bytes(s.stream_bytes(), 7);
  write_bytes(dir / "v0.bin", a);
  write_bytes(dir / "v1.bin", b);
  const std::vector<std::string> urls{server.url("/v0.bin"), server.url("/v1.bin")};
  const std::span<const std::byte> streams[2] = {a, b};
  const auto expected = tr::pack(plan, std::span<const std::span<const std::byte>>(streams));
  for (const tr::coalescing policy : {tr::coalescing::off(), tr::coalescing::automatic()}) {
    tr::http_client client({.merge = policy});
    const tr::wire_stats predicted = client.predict(plan, urls);
    const auto got = client.fetch_payload(plan, urls);
    CHECK(got.payload == expected);
    check_prediction(predicted, got.wire);
  }
}

TEST_CASE("wire: the main job's shape at Q = 0.05 — plain ranges cost more than the file, coalesced not",
          "[wire][nginx]") {
  temp_dir dir;
  testing::nginx_server server(dir.path);
  const tr::storage s = store({1, 28, 28}, 100, tr::dtype::uint8, tr::storage_layout::band_sequential());
  std::vector<float> keep(784, 0.0f);
  std::mt19937_64 r(3);
  for (std::size_t k = 0; k < 39;) { // 39 distinct pixels
    const std::size_t i = r() % 784;
    if (keep[i] == 0.0f) {
      keep[i] = 1.0f;
      ++k;
    }
  }
  const tr::plan plan = tr::plan::from_masks({{make_geometry<pixel>(1, 1, 28, 28, true), keep}}, s);
  REQUIRE(plan.payload_bytes() == 3900);
  const auto stored = random_bytes(s.stream_bytes(), 9);
  write_bytes(dir / "images.u8", stored);
  const std::string url = server.url("/images.u8");
  tr::http_client plain;
  tr::http_client merged({.merge = tr::coalescing::automatic()});
  const auto p = plain.fetch_payload(plan, url);
  const auto m = merged.fetch_payload(plan, url);
  const auto full = plain.download_whole(url);
  CHECK(p.payload == m.payload);
  CHECK(p.wire.total() > 2 * full.wire.total()); // the finding, still true without coalescing
  CHECK(m.wire.total() <= full.wire.total());
  CHECK(m.wire.discarded_bytes == m.wire.read_bytes - plan.payload_bytes());
}

TEST_CASE("wire: bad policies, mismatched models and servers that cannot be modelled are named errors",
          "[wire][nginx][errors]") {
  CHECK_THROWS_AS(tr::coalescing::holes_up_to(-1), value_error);
  CHECK_THROWS_WITH(tr::coalescing::holes_up_to(-1), Catch::Contains("at least 0") && Catch::Contains("-1"));
  CHECK(tr::parse_coalescing("auto") == tr::coalescing::automatic());
  CHECK(tr::parse_coalescing("off") == tr::coalescing::off());
  CHECK(tr::parse_coalescing("4096") == tr::coalescing::holes_up_to(4096));
  CHECK_THROWS_WITH(tr::parse_coalescing("-5"), Catch::Contains("-5"));
  CHECK_THROWS_WITH(tr::parse_coalescing("4k"),
                    Catch::Contains("'4k'") && Catch::Contains("not a coalescing"));
  CHECK_THROWS_AS(tr::parse_coalescing(""), value_error);

  const tr::storage s = store({2, 8, 8}, 2, tr::dtype::uint8, tr::storage_layout::band_sequential());
  const tr::plan plan =
    tr::plan::from_masks({{make_geometry<pixel>(1, 2, 8, 8, true), random_keep(64, 3, 1)}}, s);
  const auto ranges = plan.file_ranges(0);
  // coalescing without a model, a model of another resource, ranges that do not fit the resource
  CHECK_THROWS_WITH(tr::schedule_requests(ranges, s.stream_bytes(), tr::range_strategy::multi_range, 4000,
                                          tr::coalescing::automatic(), nullptr),
                    Catch::Contains("needs the resource's transport model"));
  tr::transport_model other;
  other.resource_bytes = 7;
  CHECK_THROWS_WITH(tr::schedule_requests(ranges, s.stream_bytes(), tr::range_strategy::multi_range, 4000,
                                          tr::coalescing::automatic(), &other),
                    Catch::Contains("7 bytes") && Catch::Contains(std::to_string(s.stream_bytes())));
  CHECK_THROWS_WITH(
    tr::schedule_requests(ranges, 10, tr::range_strategy::multi_range, 4000, tr::coalescing::off(), nullptr),
    Catch::Contains("past the resource's 10 bytes"));
  const std::vector<tr::byte_range> unordered{{10, 2}, {5, 2}};
  CHECK_THROWS_WITH(tr::schedule_requests(unordered, 100, tr::range_strategy::multi_range, 4000,
                                          tr::coalescing::off(), nullptr),
                    Catch::Contains("range 1") && Catch::Contains("out of order"));
  const tr::transport_model two[2] = {other, other};
  CHECK_THROWS_WITH(
    tr::predict_fetch(plan, two, tr::range_strategy::multi_range, 4000, tr::coalescing::off()),
    Catch::Contains("2 transport models") && Catch::Contains("1 streams"));

  temp_dir dir;
  write_bytes(dir / "data.bin", random_bytes(s.stream_bytes(), 2));
  write_bytes(dir / "short.bin", random_bytes(s.stream_bytes() - 5, 2));
  testing::nginx_server server(dir.path, "    location /norange/ { max_ranges 0; alias " + dir.path.string() +
                                           "/; }\n" + "    location /onerange/ { max_ranges 1; alias " +
                                           dir.path.string() + "/; }");
  tr::http_client client({.merge = tr::coalescing::automatic()});
  // a plan for other data: the probe finds the resource's size
  CHECK_THROWS_WITH(client.fetch_payload(plan, server.url("/short.bin")),
                    Catch::Contains("has " + std::to_string(s.stream_bytes() - 5) + " bytes") &&
                      Catch::Contains("plan expects " + std::to_string(s.stream_bytes())));
  CHECK_THROWS_WITH(client.fetch_payload(plan, server.url("/missing.bin")),
                    Catch::Contains("HTTP 404") && Catch::Contains("/missing.bin"));
  // no ranges at all, or only one range per request: the model cannot be measured
  CHECK_THROWS_WITH(client.probe(server.url("/norange/data.bin")),
                    Catch::Contains("ignored the Range request"));
  CHECK_THROWS_WITH(client.probe(server.url("/onerange/data.bin")),
                    Catch::Contains("multipart/byteranges") || Catch::Contains("ignored the Range request"));
  // the good file still works after the errors
  CHECK(client.fetch_payload(plan, server.url("/data.bin")).payload ==
        tr::pack(plan, random_bytes(s.stream_bytes(), 2)));
}

// ---- the chunked layout ------------------------------------------------------------------------

namespace {

/// The chunked file offset (in values) of value (n, c, h, w), computed from the definition
/// cell by cell, independently of for_each_chunked_value.
std::size_t chunked_offset(const shape& sample, std::size_t samples, const tr::chunk_shape& ch, std::size_t n,
                           std::size_t c, std::size_t h, std::size_t w) {
  const std::size_t per = sample.size();
  const std::size_t j = n / ch.samples;
  const std::size_t in_chunk = std::min(ch.samples, samples - j * ch.samples);
  std::size_t off = j * ch.samples * per;
  const auto extent = [&](std::size_t a, std::size_t start) {
    return std::min(ch.cell[a], sample[a] - start);
  };
  for (std::size_t c0 = 0; c0 < sample[0]; c0 += ch.cell[0]) {
    for (std::size_t h0 = 0; h0 < sample[1]; h0 += ch.cell[1]) {
      for (std::size_t w0 = 0; w0 < sample[2]; w0 += ch.cell[2]) {
        const std::size_t ec = extent(0, c0), eh = extent(1, h0), ew = extent(2, w0);
        const std::size_t cell_values = ec * eh * ew;
        if (c >= c0 && c < c0 + ec && h >= h0 && h < h0 + eh && w >= w0 && w < w0 + ew) {
          return off + (n - j * ch.samples) * cell_values + ((c - c0) * eh + (h - h0)) * ew + (w - w0);
        }
        off += in_chunk * cell_values;
      }
    }
  }
  FAIL("value outside the sample");
  return 0;
}

} // namespace

TEST_CASE("chunked: to_chunked puts every value where the definition says, plans read exactly the plan's "
          "payload",
          "[wire][chunked]") {
  const tr::storage s = store({3, 5, 7}, 10, tr::dtype::uint16, tr::storage_layout::pixel_interleaved());
  const tr::chunk_shape ch{4, {2, 2, 3}}; // edge chunks (4, 4, 2 samples) and edge cells
  const auto data = random_bytes(s.stream_bytes(), 21);
  const auto out = tr::to_chunked(s, data, ch);
  REQUIRE(out.size() == data.size());
  for (std::size_t n = 0; n < s.samples; ++n) {
    for (std::size_t c = 0; c < 3; ++c) {
      for (std::size_t h = 0; h < 5; ++h) {
        for (std::size_t w = 0; w < 7; ++w) {
          const std::size_t stored = n * s.sample_values() + (h * 7 + w) * 3 + c; // pixel-interleaved
          const std::size_t at = chunked_offset(s.sample, s.samples, ch, n, c, h, w);
          REQUIRE(std::memcmp(out.data() + at * 2, data.data() + stored * 2, 2) == 0);
        }
      }
    }
  }
  // plans of several granularities: the ranges read from the chunked bytes give pack's payload
  const std::vector<cell_geometry> geometries{
    make_geometry<pixel>(1, 3, 5, 7, true), make_geometry<subpixel>(1, 3, 5, 7, true),
    make_geometry<channel>(1, 3, 5, 7, true), make_geometry<block<2, 3>>(1, 3, 5, 7, true)};
  std::uint64_t seed = 30;
  for (const cell_geometry& g : geometries) {
    const tr::plan p = tr::plan::from_masks({{g, random_keep(g.cells(), 2, ++seed)}}, s);
    const tr::chunked_plan cp(p, ch);
    std::vector<std::byte> read;
    for (const tr::byte_range& r : cp.file_ranges()) {
      read.insert(read.end(), out.begin() + static_cast<std::ptrdiff_t>(r.offset),
                  out.begin() + static_cast<std::ptrdiff_t>(r.offset + r.length));
    }
    CHECK(read.size() == p.payload_bytes());
    CHECK(cp.to_plan_payload(read) == tr::pack(p, data));
    // a batch across a chunk boundary: samples 3..7 of chunks 0 (0..3) and 1 (4..7)
    const tr::chunked_plan batch(p, ch, 3, 5);
    read.clear();
    for (const tr::byte_range& r : batch.file_ranges()) {
      read.insert(read.end(), out.begin() + static_cast<std::ptrdiff_t>(r.offset),
                  out.begin() + static_cast<std::ptrdiff_t>(r.offset + r.length));
    }
    CHECK(batch.logical() == p.with_samples(5));
    CHECK(batch.to_plan_payload(read) ==
          tr::pack(batch.logical(), std::span(data).subspan(3 * s.sample_bytes(), 5 * s.sample_bytes())));
  }
}

TEST_CASE(
  "chunked: a static pixel mask over 1024-sample chunks of pixels is one range per kept cell per chunk",
  "[wire][chunked]") {
  const tr::storage s = store({1, 28, 28}, 2500, tr::dtype::uint8, tr::storage_layout::band_sequential());
  std::vector<float> keep(784, 0.0f);
  for (std::size_t k = 0; k < 784; k += 20) { // 40 pixels, no two neighbours
    keep[k] = 1.0f;
  }
  const tr::plan p = tr::plan::from_masks({{make_geometry<pixel>(1, 1, 28, 28, true), keep}}, s);
  const tr::chunked_plan cp(p, {1024, {1, 1, 1}});
  CHECK(cp.file_ranges().size() == 40 * 3); // 3 chunks (1024, 1024, 452 samples)
  CHECK(cp.file_ranges()[0].length == 1024);
  CHECK(cp.file_ranges().back().length == 452);
  CHECK(p.file_ranges(0).size() == 40 * 2500); // the sample-major file: one range per pixel per sample
  // batches: one range per kept pixel per chunk touched, whatever the batch's size
  CHECK(tr::chunked_plan(p, {1024, {1, 1, 1}}, 1024, 64).file_ranges().size() == 40);
  CHECK(tr::chunked_plan(p, {1024, {1, 1, 1}}, 1024, 64).file_ranges()[0].length == 64);
  CHECK(tr::chunked_plan(p, {1024, {1, 1, 1}}, 1000, 100).file_ranges().size() == 80);
  CHECK(tr::chunked_plan(p, {1024, {1, 1, 1}}, 2499, 1).file_ranges().size() == 40);
}

TEST_CASE("chunked: bad chunks, plans and files are named errors", "[wire][chunked][errors]") {
  const tr::storage s = store({2, 4, 4}, 3, tr::dtype::uint8, tr::storage_layout::band_sequential());
  const auto data = random_bytes(s.stream_bytes(), 1);
  CHECK_THROWS_WITH(tr::to_chunked(s, data, {0, {1, 1, 1}}), Catch::Contains("chunk of 0 samples"));
  CHECK_THROWS_WITH(tr::to_chunked(s, data, {8, {3, 1, 1}}),
                    Catch::Contains("chunk cell 8x[3,1,1]") && Catch::Contains("[2,4,4]"));
  CHECK_THROWS_WITH(tr::to_chunked(s, std::span(data).first(10), {8, {1, 1, 1}}),
                    Catch::Contains("10 bytes given") && Catch::Contains("holds 96"));
  const tr::storage two = store({2, 4, 4}, 3, tr::dtype::uint8, tr::storage_layout::band_sequential(), 2);
  const cell_geometry g = make_geometry<pixel>(2, 2, 4, 4, false);
  CHECK_THROWS_WITH(tr::chunked_plan(tr::plan::from_masks({{g, random_choice(g, 2)}}, two), {8, {1, 1, 1}}),
                    Catch::Contains("reads 2 streams"));
  const tr::plan p =
    tr::plan::from_masks({{make_geometry<pixel>(1, 2, 4, 4, true), random_keep(16, 2, 3)}}, s);
  const tr::chunked_plan cp(p, {2, {1, 1, 1}});
  CHECK_THROWS_WITH(tr::chunked_plan(p, {2, {1, 1, 1}}, 1, 0), Catch::Contains("samples 1 + 0"));
  CHECK_THROWS_WITH(tr::chunked_plan(p, {2, {1, 1, 1}}, 2, 2),
                    Catch::Contains("samples 2 + 2") && Catch::Contains("file's 3"));
  std::vector<std::byte> wrong(cp.payload_bytes() + 1);
  CHECK_THROWS_AS(cp.to_plan_payload(wrong), shape_error);
  temp_dir dir;
  write_bytes(dir / "raw.bin", std::vector<std::byte>(data.begin(), data.end() - 1));
  CHECK_THROWS_WITH(tr::rechunk_file(dir / "raw.bin", dir / "out.bin", {2, {1, 1, 1}}, &s),
                    Catch::Contains("raw.bin") && Catch::Contains("holds 95 bytes"));
  CHECK_THROWS_AS(tr::rechunk_file(dir / "missing.idx", dir / "out.bin", {2, {1, 1, 1}}), io_error);
}

TEST_CASE(
  "chunked over nginx: the same tensor as from the sample-major file, predicted bytes within 1 %, far "
  "fewer bytes on the wire",
  "[wire][chunked][nginx]") {
  temp_dir dir;
  // an IDX file of 2100 images of 28x28, rewritten by rechunk_file
  const std::size_t n = 2100;
  const auto pixels = random_bytes(n * 784, 40);
  std::vector<std::uint8_t> values(pixels.size());
  std::memcpy(values.data(), pixels.data(), pixels.size());
  io::write_idx(dir / "images.idx", shape{n, 28, 28}, values);
  const tr::storage s = tr::rechunk_file(dir / "images.idx", dir / "images.chunked", {1024, {1, 1, 1}});
  REQUIRE(s == store({1, 28, 28}, n, tr::dtype::uint8, tr::storage_layout::band_sequential()));
  write_bytes(dir / "images.raw", pixels);
  const std::string read_back = io::read_file(dir / "images.chunked");
  REQUIRE(read_back.size() == pixels.size());
  CHECK(std::memcmp(read_back.data(), tr::to_chunked(s, pixels, {1024, {1, 1, 1}}).data(), pixels.size()) ==
        0);

  std::vector<float> keep(784, 0.0f);
  std::mt19937_64 r(8);
  for (std::size_t k = 0; k < 39;) {
    const std::size_t i = r() % 784;
    if (keep[i] == 0.0f) {
      keep[i] = 1.0f;
      ++k;
    }
  }
  const tr::plan p = tr::plan::from_masks({{make_geometry<pixel>(1, 1, 28, 28, true), keep}}, s);
  const tr::chunked_plan cp(p, {1024, {1, 1, 1}});
  CHECK(cp.file_ranges().size() <= 39 * 3);
  testing::nginx_server server(dir.path);
  tr::http_client reference;
  const auto sample_major = reference.fetch<cpu>(p, server.url("/images.raw"), {.scale = 1.0f / 255});
  for (auto strategy : {tr::range_strategy::multi_range, tr::range_strategy::per_range}) {
    for (const tr::coalescing policy : {tr::coalescing::off(), tr::coalescing::automatic()}) {
      const bool multi = strategy == tr::range_strategy::multi_range;
      INFO((multi ? "multi-range" : "per-range") << ", coalescing " << policy.str());
      tr::http_client client({.strategy = strategy, .merge = policy});
      const tr::wire_stats predicted = client.predict(cp, server.url("/images.chunked"));
      const tr::transport_model cm = client.probe(server.url("/images.chunked"));
      CHECK(tr::predict_fetch(cp, cm, strategy, 4000, policy).total() == predicted.total());
      CHECK_THROWS_WITH(tr::predict_fetch(cp, tr::transport_model{}, strategy, 4000, policy),
                        Catch::Contains("resource of 0 bytes"));
      const auto chunked = client.fetch<cpu>(cp, server.url("/images.chunked"), {.scale = 1.0f / 255});
      CHECK(cpu::to_host(chunked.x) == cpu::to_host(sample_major.x));
      check_prediction(predicted, chunked.wire);
      CHECK(chunked.wire.range_bytes == p.payload_bytes());
      CHECK(chunked.wire.total() * 5 < sample_major.wire.total());
      // ranges of 1024 or 52 bytes: framing and headers within 25 % of the payload in multipart
      // responses; a request per range adds about 320 bytes of request and headers per range, so
      // within 75 % there
      CHECK(chunked.wire.total() < p.payload_bytes() * (multi ? 5 : 7) / 4);
      // a batch of 100 images inside the second chunk: the same values as the whole fetch's
      const tr::chunked_plan batch(p, {1024, {1, 1, 1}}, 1500, 100);
      const auto part = client.fetch<cpu>(batch, server.url("/images.chunked"), {.scale = 1.0f / 255});
      const auto all = cpu::to_host(chunked.x);
      CHECK(cpu::to_host(part.x) == std::vector<float>(all.begin() + 1500 * 784, all.begin() + 1600 * 784));
      CHECK(part.wire.range_bytes == 39 * 100);
    }
  }
}

TEST_CASE("wire: schedules and predictions by hand, with a model of made-up constants", "[wire]") {
  tr::transport_model m;
  m.resource_bytes = 10000;
  m.range_request_fixed = 50;
  m.single_header_fixed = 200;
  m.multi_header_fixed = 180;
  m.part_fixed = 80;
  m.closing = 24;
  m.plain_request = 60;
  m.full_header = 220;
  const std::vector<tr::byte_range> wanted{{0, 10}, {20, 10}, {1000, 10}};
  const auto multi = tr::range_strategy::multi_range;
  // auto, multi-range: the 10-byte hole is cheaper than a part (80 + digits + its Range entry), 970 is not
  auto q = tr::schedule_requests(wanted, 10000, multi, 4000, tr::coalescing::automatic(), &m);
  REQUIRE(q.size() == 1);
  CHECK_FALSE(q[0].whole);
  CHECK(q[0].asked == std::vector<tr::byte_range>{{0, 30}, {1000, 10}});
  CHECK(q[0].wanted_count == 3);
  tr::wire_stats w = tr::predict(q, wanted, m);
  CHECK(w.request_bytes == 50 + std::string("bytes=0-29,1000-1009").size());
  CHECK(w.body_bytes == 24 + (80 + 1 + 2 + 30) + (80 + 4 + 4 + 10));
  CHECK(w.header_bytes == 180 + 3);
  CHECK(w.read_bytes == 40);
  CHECK(w.range_bytes == 30);
  CHECK(w.discarded_bytes == 10);
  // a hole limit of 5: nothing merged; of 10: the first hole
  CHECK(
    tr::schedule_requests(wanted, 10000, multi, 4000, tr::coalescing::holes_up_to(5), &m)[0].asked.size() ==
    3);
  CHECK(
    tr::schedule_requests(wanted, 10000, multi, 4000, tr::coalescing::holes_up_to(10), &m)[0].asked.size() ==
    2);
  // per-range: a merge saves a whole request (50 + 6 + 200 bytes), so the 10-byte hole is read over
  q = tr::schedule_requests(wanted, 10000, tr::range_strategy::per_range, 4000, tr::coalescing::automatic(),
                            &m);
  REQUIRE(q.size() == 2);
  w = tr::predict(q, wanted, m);
  CHECK(w.header_bytes == (200 + 1 + 2 + 2) + (200 + 4 + 4 + 2));
  CHECK(w.body_bytes == 40);
  // one range: a one-part 206
  const std::vector<tr::byte_range> one{{5000, 123}};
  w = m.range_request(one);
  CHECK(w.header_bytes == 200 + 4 + 4 + 3);
  CHECK(w.body_bytes == 123);
  // the Range header limit splits a multi-range request: "bytes=0-9" + ",20-29" fits 20, ",1000-1009" not
  q = tr::schedule_requests(wanted, 10000, multi, 20, tr::coalescing::off(), nullptr);
  REQUIRE(q.size() == 2);
  CHECK(q[0].asked.size() == 2);
  CHECK(q[1].first_wanted == 2);
  // dearer than the whole resource: read it whole (3 ranges cost 539 bytes, a plain GET of 250 bytes 530)
  m.resource_bytes = 250;
  const std::vector<tr::byte_range> sparse{{0, 1}, {100, 1}, {200, 1}};
  CHECK(
    tr::predict(tr::schedule_requests(sparse, 250, multi, 4000, tr::coalescing::off(), nullptr), sparse, m)
      .total() == 539);
  q = tr::schedule_requests(sparse, 250, multi, 4000, tr::coalescing::holes_up_to(0), &m);
  REQUIRE(q.size() == 1);
  CHECK(q[0].whole);
  w = tr::predict(q, sparse, m);
  CHECK(w.total() == 530);
  CHECK(w.read_bytes == 250);
  CHECK(w.discarded_bytes == 247);
  // one byte more for the file and the ranges win again
  m.resource_bytes = 260;
  CHECK_FALSE(tr::schedule_requests(sparse, 260, multi, 4000, tr::coalescing::holes_up_to(0), &m)[0].whole);
}
