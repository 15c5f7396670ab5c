// A real transfer: a private nginx on 127.0.0.1 serves a synthetic many-band file; the HTTP client
// fetches only a plan's byte ranges (multi-range and one request per range), and a small model's
// predictions on the unpacked tensor equal those on the masked in-memory data. HTTP errors (404,
// 416, a file shorter than the plan expects, a server ignoring Range) are io_errors.
//
// Needs the Debian package nginx (scripts/install-deps.sh); without it the tests fail with a
// message saying so. Traffic goes only to 127.0.0.1.
#include "support.hpp"

#include "nginx_server.hpp"
#include <selmask/transfer/http.hpp>
#include <selmask/transfer/transfer.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

using namespace selmask;
using namespace selmask_test;
namespace tr = selmask::transfer;

namespace {

constexpr std::size_t bands = 64, side = 32, samples = 3;
const std::vector<std::size_t> kept_bands{3, 4, 5, 10, 17, 18, 40, 63};

/// 64 bands of 32x32 uint16 per sample, band-sequential; correlated bands plus noise.
std::vector<std::uint16_t> synthetic_bands() {
  std::vector<std::uint16_t> v(samples * bands * side * side);
  std::uniform_int_distribution<int> noise(0, 999);
  std::size_t i = 0;
  for (std::size_t n = 0; n < samples; ++n)
    for (std::size_t c = 0; c < bands; ++c)
      for (std::size_t h = 0; h < side; ++h)
        for (std::size_t w = 0; w < side; ++w, ++i)
          v[i] = static_cast<std::uint16_t>(1000 * (n + 1) + 40 * c + 5 * (h + w) +
                                            static_cast<std::size_t>(noise(rng())));
  return v;
}

std::vector<std::byte> bytes_of(const std::vector<std::uint16_t>& v) {
  std::vector<std::byte> b(v.size() * 2);
  std::memcpy(b.data(), v.data(), b.size()); // little-endian host, as the storage format
  return b;
}

void write_bytes(const std::filesystem::path& p, const std::vector<std::byte>& b, std::size_t n) {
  io::write_file_atomically(p, std::string_view(reinterpret_cast<const char*>(b.data()), n));
  std::filesystem::permissions(p, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                    std::filesystem::perms::group_read | std::filesystem::perms::others_read);
}

using channel_pipe = pipeline<any_mask<channel>>;

/// A pipeline whose channel mask keeps exactly `kept_bands`.
void set_kept_bands(channel_pipe::on<cpu>& p) {
  std::vector<float> w(bands, -3.0f);
  for (std::size_t c : kept_bands) {
    w[c] = 3.0f;
  }
  p.stage<0>().set_logits(cpu::from_host(shape{1, bands, 1, 1}, w));
}

using model = nn::sequential<cpu, nn::flatten<cpu>, nn::dense<cpu>>;
model small_model() {
  return model(nn::sequential_options{.seed = 42}, nn::flatten<cpu>{},
               nn::dense<cpu>(bands * side * side, 5));
}

struct served {
  temp_dir dir;
  tr::storage s{shape{bands, side, side}, samples, tr::dtype::uint16, tr::storage_layout::band_sequential(),
                1};
  std::vector<std::uint16_t> values = synthetic_bands();
  std::vector<std::byte> bytes = bytes_of(values);
  std::vector<float> x; // float(value) / 1000
  served() {
    write_bytes(dir / "bands.u16", bytes, bytes.size());
    x.resize(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      x[i] = static_cast<float>(values[i]) * 0.001f;
    }
  }
};

} // namespace

TEST_CASE("nginx: a channel plan fetched with both strategies carries exactly the plan's bytes",
          "[transfer][nginx]") {
  served f;
  channel_pipe::on<cpu> p(f.s.sample, 1);
  set_kept_bands(p);
  const tr::plan plan = tr::make_plan(p, f.s);
  // the hand-set plan: 8 of 64 bands, 5 runs per sample
  REQUIRE(plan.payload_bytes() == samples * kept_bands.size() * side * side * 2);
  REQUIRE(plan.file_ranges(0).size() == samples * 5);
  const tr::plan by_hand = tr::plan::from_masks({{make_geometry<channel>(1, bands, side, side, true),
                                                  [] {
                                                    std::vector<float> h(bands, 0.0f);
                                                    for (std::size_t c : kept_bands)
                                                      h[c] = 1.0f;
                                                    return h;
                                                  }()}},
                                                f.s);
  REQUIRE(by_hand == plan);

  // the network's input as the pipeline masks it in memory, and the model's predictions on it
  const auto xt = cpu::from_host(f.s.batch_shape(), f.x);
  const auto masked = cpu::to_host(p.forward(xt).output);
  model net = small_model();
  const auto expected = cpu::to_host(net.forward(cpu::from_host(f.s.batch_shape(), masked)));
  const auto unmasked = cpu::to_host(net.forward(xt));
  REQUIRE(expected != unmasked); // the mask matters to the model

  testing::nginx_server server(f.dir.path);
  const std::string url = server.url("/bands.u16");

  SECTION("multi-range: one request, a multipart/byteranges body") {
    tr::http_client client({.strategy = tr::range_strategy::multi_range});
    const auto got = client.fetch<cpu>(plan, url, {.scale = 0.001f});
    CHECK(cpu::to_host(got.x) == masked);
    CHECK(cpu::to_host(net.forward(got.x)) == expected);
    CHECK(got.wire.requests == 1);
    CHECK(got.wire.range_bytes == plan.payload_bytes());
    // the body is the payload plus the multipart framing (a few lines per part), far below the file
    CHECK(got.wire.body_bytes > plan.payload_bytes());
    CHECK(got.wire.body_bytes < plan.payload_bytes() + plan.file_ranges(0).size() * 200);
    CHECK(got.wire.body_bytes < f.s.stream_bytes() / 4);
    CHECK(got.wire.header_bytes > 0);
    CHECK(got.wire.header_bytes < 1000);
  }
  SECTION("per-range: one request per range, the body is exactly the payload") {
    tr::http_client client({.strategy = tr::range_strategy::per_range});
    const auto got = client.fetch<cpu>(plan, url, {.scale = 0.001f});
    CHECK(cpu::to_host(got.x) == masked);
    CHECK(cpu::to_host(net.forward(got.x)) == expected);
    CHECK(got.wire.requests == plan.file_ranges(0).size());
    CHECK(got.wire.body_bytes == plan.payload_bytes());
    CHECK(got.wire.range_bytes == plan.payload_bytes());
    CHECK(got.wire.header_bytes > 100 * got.wire.requests);
  }
  SECTION("multi-range split over several requests by the Range header limit") {
    tr::http_client client({.strategy = tr::range_strategy::multi_range, .max_range_header_bytes = 40});
    const auto got = client.fetch_payload(plan, url);
    CHECK(got.wire.requests > 1);
    CHECK(got.wire.requests < plan.file_ranges(0).size());
    CHECK(got.payload == tr::pack(plan, f.bytes));
    CHECK(got.wire.range_bytes == plan.payload_bytes());
  }
  server.stop();
  CHECK(server.pid() < 0);
}

TEST_CASE("nginx: pixel blocks on tiled data, every tile one range", "[transfer][nginx]") {
  temp_dir dir;
  const tr::storage s{shape{bands, side, side}, 2, tr::dtype::float32, tr::storage_layout::tiled(4, 4), 1};
  std::vector<float> values = random_values(s.samples * s.sample_values(), 0.0f, 10.0f);
  std::vector<std::byte> stored(s.stream_bytes());
  // store tile by tile (each tile band-sequential inside)
  for (std::size_t n = 0; n < s.samples; ++n) {
    std::size_t pos = 0;
    tr::for_each_storage_location(s, [&](std::size_t l) {
      std::memcpy(stored.data() + (n * s.sample_values() + pos++) * 4, &values[n * s.sample_values() + l], 4);
    });
  }
  write_bytes(dir / "tiles.f32", stored, stored.size());
  pipeline<any_mask<block<4, 4, all_channels>>>::on<cpu> p(s.sample, 3);
  auto& m = p.stage<0>();
  const shape ls = cpu::shape_of(m.logits());
  std::vector<float> w(ls.size());
  for (std::size_t k = 0; k < w.size(); ++k) {
    w[k] = k % 3 == 1 ? 2.0f : -2.0f;
  }
  m.set_logits(cpu::from_host(ls, w));
  const tr::plan plan = tr::make_plan(p, s);
  const auto masked = cpu::to_host(p.forward(cpu::from_host(s.batch_shape(), values)).output);
  testing::nginx_server server(dir.path);
  for (auto strategy : {tr::range_strategy::multi_range, tr::range_strategy::per_range}) {
    tr::http_client client({.strategy = strategy});
    const auto got = client.fetch<cpu>(plan, server.url("/tiles.f32"));
    CHECK(cpu::to_host(got.x) == masked);
    CHECK(got.wire.range_bytes == plan.payload_bytes());
  }
  CHECK(plan.sample_ranges(0).size() <= w.size() / 3 + 1);
}

TEST_CASE("nginx: failed and truncated responses are io_errors, never a partial tensor",
          "[transfer][nginx][errors]") {
  served f;
  const auto kept = [&](std::vector<std::size_t> which, const tr::storage& s) {
    std::vector<float> h(bands, 0.0f);
    for (std::size_t c : which)
      h[c] = 1.0f;
    return tr::plan::from_masks({{make_geometry<channel>(1, bands, side, side, true), h}}, s);
  };
  const tr::plan plan = kept(kept_bands, f.s);
  // a truncated copy: the last band of the last sample is cut short
  write_bytes(f.dir / "short.u16", f.bytes, f.bytes.size() - 1000);
  // a tiny file: every range of a band-63 plan starts past its end
  write_bytes(f.dir / "tiny.u16", f.bytes, 100);
  testing::nginx_server server(f.dir.path, "    location /norange/ { max_ranges 0; alias " +
                                             f.dir.path.string() + "/; }");

  for (auto strategy : {tr::range_strategy::multi_range, tr::range_strategy::per_range}) {
    INFO((strategy == tr::range_strategy::multi_range ? "multi-range" : "per-range"));
    tr::http_client client({.strategy = strategy});
    // sanity: the good file works on this server
    CHECK(client.fetch_payload(plan, server.url("/bands.u16")).payload == tr::pack(plan, f.bytes));

    CHECK_THROWS_AS(client.fetch_payload(plan, server.url("/missing.u16")), io_error);
    CHECK_THROWS_WITH(client.fetch_payload(plan, server.url("/missing.u16")),
                      Catch::Contains("HTTP 404") && Catch::Contains("/missing.u16"));

    CHECK_THROWS_AS(client.fetch_payload(kept({63}, f.s), server.url("/tiny.u16")), io_error);
    CHECK_THROWS_WITH(client.fetch_payload(kept({63}, f.s), server.url("/tiny.u16")),
                      Catch::Contains("416") && Catch::Contains("has 100 bytes"));

    // a file shorter than the plan expects: rejected even where the ranges asked for exist
    CHECK_THROWS_WITH(client.fetch_payload(plan, server.url("/short.u16")),
                      Catch::Contains("has " + std::to_string(f.bytes.size() - 1000) + " bytes") &&
                        Catch::Contains("plan expects " + std::to_string(f.bytes.size())));
    CHECK_THROWS_WITH(client.fetch_payload(kept({3}, f.s), server.url("/short.u16")),
                      Catch::Contains("plan expects"));

    // a plan made for other data (uint8: half the size) is caught by the resource size too
    tr::storage other = f.s;
    other.type = tr::dtype::uint8;
    CHECK_THROWS_WITH(client.fetch_payload(kept({3}, other), server.url("/bands.u16")),
                      Catch::Contains("plan expects " + std::to_string(f.bytes.size() / 2)));

    // a server that ignores Range: aborted at the first body byte, never a full download
    try {
      client.fetch_payload(plan, server.url("/norange/bands.u16"));
      FAIL("a 200 response was accepted");
    } catch (const io_error& e) {
      CHECK_THAT(e.what(), Catch::Contains("ignored the Range request"));
    }

    // one URL per stream
    const std::vector<std::string> two{server.url("/bands.u16"), server.url("/bands.u16")};
    CHECK_THROWS_AS(client.fetch_payload(plan, two), shape_error);
  }
  // nothing listening: a transfer error naming the URL
  const std::string dead = server.url("/bands.u16");
  server.stop();
  tr::http_client client;
  CHECK_THROWS_WITH(client.fetch_payload(plan, dead),
                    Catch::Contains(dead) && Catch::Contains("transfer failed"));
}
