// Google Benchmark of the transfer path (transfer/pack.hpp, transfer/http.hpp):
//  - pack and unpack throughput beside a plain memcpy of the same payload on the same buffers
//    (counter `payload`: payload bytes per second, decimal: 1G/s = 1 GB/s), for a band-sequential
//    channel plan (the case that should run at memcpy speed) and, for contrast, a pixel plan on
//    pixel-interleaved data and a subpixel plan;
//  - a real HTTP fetch from a private nginx on 127.0.0.1 with one multi-range request versus one
//    request per range, and multi-range with range coalescing (counters: bytes on the wire, hole
//    bytes discarded), skipped, with a message, when nginx is not installed.
//
// Data: 128 bands of 128x128, 8 samples (32 MiB of uint16 per stream); the channel plan keeps a
// seeded random quarter of the bands (runs of various lengths).
#include "../tests/nginx_server.hpp"
#include <selmask/transfer/http.hpp>
#include <selmask/transfer/transfer.hpp>

#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {
namespace tr = selmask::transfer;

constexpr std::size_t bands = 128, side = 128, samples = 8;

std::vector<float> channel_mask(std::size_t c, std::uint64_t seed) {
  std::mt19937_64 r(seed);
  std::vector<float> h(c, 0.0f);
  for (std::size_t k = 0; k < c; ++k) {
    h[k] = r() % 4 == 0 ? 1.0f : 0.0f;
  }
  return h;
}

std::vector<float> random_mask(std::size_t n, std::uint64_t seed, unsigned one_in) {
  std::mt19937_64 r(seed);
  std::vector<float> h(n);
  for (auto& v : h) {
    v = r() % one_in == 0 ? 1.0f : 0.0f;
  }
  return h;
}

struct workload {
  tr::plan plan;
  std::vector<std::byte> data;
  std::vector<std::byte> payload;
  std::vector<float> out;
};

/// A plan of the given kind over `dt` data, with stored bytes, a packed payload and an output buffer.
workload make_workload(const std::string& kind, tr::dtype dt) {
  tr::storage s{selmask::shape{bands, side, side}, samples, dt, tr::storage_layout::band_sequential(), 1};
  tr::hard_mask m;
  if (kind == "channel") {
    m = {selmask::make_geometry<selmask::channel>(1, bands, side, side, true), channel_mask(bands, 7)};
  } else if (kind == "pixel") {
    s.layout = tr::storage_layout::pixel_interleaved();
    m = {selmask::make_geometry<selmask::pixel>(1, bands, side, side, true), random_mask(side * side, 7, 4)};
  } else {
    m = {selmask::make_geometry<selmask::subpixel>(1, bands, side, side, true),
         random_mask(bands * side * side, 7, 4)};
  }
  workload w{tr::plan::from_masks({m}, s), {}, {}, {}};
  w.data.resize(s.stream_bytes());
  std::mt19937_64 r(3);
  for (auto& b : w.data) {
    b = static_cast<std::byte>(r() & 0x3f); // small values: valid in every dtype
  }
  w.payload = tr::pack(w.plan, w.data);
  w.out.resize(samples * s.sample_values());
  return w;
}

workload& cached(const std::string& kind, tr::dtype dt) {
  static std::vector<std::pair<std::string, std::unique_ptr<workload>>> cache;
  const std::string key = kind + tr::dtype_name(dt);
  for (auto& [k, w] : cache) {
    if (k == key) {
      return *w;
    }
  }
  cache.emplace_back(key, std::make_unique<workload>(make_workload(kind, dt)));
  return *cache.back().second;
}

void report(benchmark::State& st, const workload& w) {
  const auto bytes = static_cast<double>(w.plan.payload_bytes());
  st.counters["payload"] =
    benchmark::Counter(bytes * static_cast<double>(st.iterations()), benchmark::Counter::kIsRate);
  st.counters["payload_MB"] = bytes / 1e6;
  st.counters["ranges"] = static_cast<double>(w.plan.file_ranges(0).size());
}

void bm_memcpy_payload(benchmark::State& st, const std::string& kind, tr::dtype dt) {
  auto& w = cached(kind, dt);
  for (auto _ : st) {
    std::memcpy(w.payload.data(), w.data.data(), w.payload.size());
    benchmark::ClobberMemory();
  }
  report(st, w);
}

void bm_pack(benchmark::State& st, const std::string& kind, tr::dtype dt) {
  auto& w = cached(kind, dt);
  const std::span<const std::byte> one[1] = {w.data};
  for (auto _ : st) {
    tr::pack(w.plan, one, w.payload);
    benchmark::ClobberMemory();
  }
  report(st, w);
}

void bm_unpack(benchmark::State& st, const std::string& kind, tr::dtype dt, float scale) {
  auto& w = cached(kind, dt);
  for (auto _ : st) {
    tr::unpack(w.plan, w.payload, w.out, {.scale = scale});
    benchmark::ClobberMemory();
  }
  report(st, w);
  st.counters["out"] =
    benchmark::Counter(static_cast<double>(w.out.size() * 4) * static_cast<double>(st.iterations()),
                       benchmark::Counter::kIsRate);
}

/// memcpy of as many bytes as unpack writes (the dense float output), the bound for unpack.
void bm_memcpy_output(benchmark::State& st, const std::string& kind, tr::dtype dt) {
  auto& w = cached(kind, dt);
  std::vector<float> src(w.out.size(), 1.0f);
  for (auto _ : st) {
    std::memcpy(w.out.data(), src.data(), w.out.size() * 4);
    benchmark::ClobberMemory();
  }
  report(st, w);
  st.counters["out"] =
    benchmark::Counter(static_cast<double>(w.out.size() * 4) * static_cast<double>(st.iterations()),
                       benchmark::Counter::kIsRate);
}

const auto u16 = tr::dtype::uint16;
const auto f32 = tr::dtype::float32;

BENCHMARK_CAPTURE(bm_memcpy_payload, channel_u16, std::string("channel"), u16);
BENCHMARK_CAPTURE(bm_pack, channel_u16, std::string("channel"), u16);
BENCHMARK_CAPTURE(bm_memcpy_payload, channel_f32, std::string("channel"), f32);
BENCHMARK_CAPTURE(bm_pack, channel_f32, std::string("channel"), f32);
BENCHMARK_CAPTURE(bm_memcpy_output, channel_f32, std::string("channel"), f32);
BENCHMARK_CAPTURE(bm_unpack, channel_f32, std::string("channel"), f32, 1.0f);
BENCHMARK_CAPTURE(bm_unpack, channel_u16_scaled, std::string("channel"), u16, 1.0f / 65535.0f);
BENCHMARK_CAPTURE(bm_memcpy_payload, pixel_interleaved_u16, std::string("pixel"), u16);
BENCHMARK_CAPTURE(bm_pack, pixel_interleaved_u16, std::string("pixel"), u16);
BENCHMARK_CAPTURE(bm_unpack, pixel_interleaved_u16, std::string("pixel"), u16, 1.0f);
BENCHMARK_CAPTURE(bm_pack, subpixel_u16, std::string("subpixel"), u16);
BENCHMARK_CAPTURE(bm_unpack, subpixel_u16, std::string("subpixel"), u16, 1.0f);

// ---- HTTP: multi-range vs one request per range -------------------------------------------------

struct http_fixture {
  std::filesystem::path dir;
  std::unique_ptr<selmask::testing::nginx_server> server;
  std::string error;
  http_fixture() {
    dir = std::filesystem::temp_directory_path() / ("selmask-bench-transfer-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all |
                                        std::filesystem::perms::others_read |
                                        std::filesystem::perms::others_exec);
    for (const char* kind : {"channel", "pixel"}) {
      const auto& w = cached(kind, u16);
      const auto p = dir / (std::string(kind) + ".u16");
      selmask::io::write_file_atomically(
        p, std::string_view(reinterpret_cast<const char*>(w.data.data()), w.data.size()));
      std::filesystem::permissions(p, std::filesystem::perms::owner_read |
                                        std::filesystem::perms::owner_write |
                                        std::filesystem::perms::others_read);
    }
    try {
      server = std::make_unique<selmask::testing::nginx_server>(dir);
    } catch (const selmask::error& e) {
      error = e.what();
    }
  }
  ~http_fixture() {
    server.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

http_fixture& http() {
  static http_fixture f;
  return f;
}

void bm_http(benchmark::State& st, const std::string& kind, tr::range_strategy strategy,
             tr::coalescing merge = tr::coalescing::off()) {
  auto& f = http();
  if (!f.server) {
    st.SkipWithError(f.error.c_str());
    return;
  }
  auto& w = cached(kind, u16);
  tr::http_client client({.strategy = strategy, .merge = merge});
  const std::string url = f.server->url("/" + kind + ".u16");
  tr::wire_stats wire;
  std::vector<std::byte> payload(w.plan.payload_bytes());
  for (auto _ : st) {
    wire = client.fetch_into(w.plan, std::span<const std::string>(&url, 1), payload);
    benchmark::DoNotOptimize(payload.data());
  }
  report(st, w);
  st.counters["requests"] = static_cast<double>(wire.requests);
  st.counters["body_MB"] = static_cast<double>(wire.body_bytes) / 1e6;
  st.counters["header_KB"] = static_cast<double>(wire.header_bytes) / 1e3;
  st.counters["wire_MB"] = static_cast<double>(wire.total()) / 1e6; // requests + headers + bodies
  st.counters["discarded_MB"] = static_cast<double>(wire.discarded_bytes) / 1e6;
}

BENCHMARK_CAPTURE(bm_http, channel_multi_range, std::string("channel"), tr::range_strategy::multi_range)
  ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bm_http, channel_per_range, std::string("channel"), tr::range_strategy::per_range)
  ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bm_http, pixel_multi_range, std::string("pixel"), tr::range_strategy::multi_range)
  ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bm_http, pixel_per_range, std::string("pixel"), tr::range_strategy::per_range)
  ->Unit(benchmark::kMillisecond)
  ->Iterations(2); // tens of thousands of requests per fetch
// range coalescing (transfer/wire.hpp): the pixel plan's holes are read over where cheaper
BENCHMARK_CAPTURE(bm_http, pixel_multi_range_coalesced, std::string("pixel"), tr::range_strategy::multi_range,
                  tr::coalescing::automatic())
  ->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
