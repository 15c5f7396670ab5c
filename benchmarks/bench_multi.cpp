// The plans of many samples fetched concurrently from a private nginx on 127.0.0.1
// (transfer/http_multi.hpp): one multi-range request per sample (or per --group samples), over 1,
// 8 and 32 kept-alive connections, against one plain GET of a file holding the same bytes (the
// plan's payload) and of the whole file. Every fetched payload is checked against tr::pack of the
// stored bytes (errors: payloads that differ or fetches that threw; must be 0), and the client's
// resident memory is read before the first round and after each (must stay flat).
//
// Data: --samples (10000) images of 1x28x28 uint8 (seeded), a seeded mask of 39 pixels (5 %).
//
//   bench_multi [--samples N] [--connections 1,8,32] [--group G] [--rounds R]
//
// Needs nginx (Debian package) at run time.
#include "../tests/nginx_server.hpp"
#include "../tests/temp_dir.hpp"
#include <selmask/train/baselines.hpp>
#include <selmask/transfer/http.hpp>
#include <selmask/transfer/http_multi.hpp>
#include <selmask/transfer/transfer.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {
namespace tr = selmask::transfer;
using clock_type = std::chrono::steady_clock;

/// Resident memory of this process, KiB (VmRSS of /proc/self/status).
long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return -1;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::vector<std::size_t> parse_list(const std::string& s) {
  std::vector<std::size_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    out.push_back(std::stoul(item));
  }
  return out;
}

/// The best time of three plain GETs of `url`, with the bytes it carried.
std::pair<double, std::size_t> plain_download(tr::http_client& client, const std::string& url) {
  double best = 1e30;
  std::size_t bytes = 0;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = clock_type::now();
    const tr::fetched_payload f = client.download_whole(url);
    best = std::min(best, seconds_since(t0));
    bytes = f.payload.size();
  }
  return {best, bytes};
}

} // namespace

int main(int argc, char** argv) try {
  std::size_t samples = 10000, group = 1, rounds = 2;
  std::vector<std::size_t> connections{1, 8, 32};
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i];
    if (i + 1 >= argc) {
      throw selmask::value_error("bench_multi: " + k + " needs a value");
    }
    if (k == "--samples") {
      samples = std::stoul(argv[i + 1]);
    } else if (k == "--connections") {
      connections = parse_list(argv[i + 1]);
    } else if (k == "--group") {
      group = std::stoul(argv[i + 1]);
    } else if (k == "--rounds") {
      rounds = std::stoul(argv[i + 1]);
    } else {
      throw selmask::value_error("bench_multi: unknown flag " + k +
                                 " (flags: --samples N, --connections 1,8,32, --group G, --rounds R)");
    }
  }
  if (samples == 0 || group == 0 || rounds == 0 || connections.empty()) {
    throw selmask::value_error("bench_multi: --samples, --group and --rounds must be at least 1");
  }
  tr::storage s{selmask::shape{1, 28, 28}, samples, tr::dtype::uint8, tr::storage_layout::band_sequential(),
                1};
  std::mt19937_64 r(1);
  const std::vector<float> keep = selmask::random_mask(784, 39, 1); // 39 pixels
  const tr::plan plan =
    tr::plan::from_masks({{selmask::make_geometry<selmask::pixel>(1, 1, 28, 28, true), keep}}, s);
  std::string stored(s.stream_bytes(), '\0');
  for (char& c : stored) {
    c = static_cast<char>(r() & 0xff);
  }
  std::vector<std::byte> bytes(stored.size());
  std::memcpy(bytes.data(), stored.data(), stored.size());
  const std::vector<std::byte> want = tr::pack(plan, bytes);
  selmask_test::temp_dir dir;
  dir.put("images.u8", stored);
  dir.put("payload.bin", std::string_view(reinterpret_cast<const char*>(want.data()), want.size()));
  selmask::testing::nginx_server nginx(dir.path);
  const std::string url = nginx.url("/images.u8");

  tr::http_client plain;
  const auto [payload_s, payload_bytes] = plain_download(plain, nginx.url("/payload.bin"));
  const auto [file_s, file_bytes] = plain_download(plain, url);
  std::printf(
    "%zu samples of 1x28x28 uint8, 39 pixels each: payload %zu bytes, file %zu bytes; %zu sample(s) "
    "per request, %zu rounds\n",
    samples, plan.payload_bytes(), s.stream_bytes(), group, rounds);
  std::printf("plain GET of the payload's bytes (payload.bin): %.4f s, %.1f MB/s\n", payload_s,
              static_cast<double>(payload_bytes) / payload_s / 1e6);
  std::printf("plain GET of the whole file: %.4f s, %.1f MB/s\n\n", file_s,
              static_cast<double>(file_bytes) / file_s / 1e6);
  std::printf(
    "| connections | samples/s | payload MB/s | wire MB/s | wire bytes/sample | requests | retries | "
    "connections opened | errors | client RSS KiB, before → after each round |\n"
    "|---|---|---|---|---|---|---|---|---|---|\n");
  long errors_total = 0;
  for (std::size_t c : connections) {
    tr::http_multi_client client({}, c);
    const long rss0 = rss_kib();
    std::string rss = std::to_string(rss0);
    double best = 1e30;
    tr::wire_stats w;
    long errors = 0;
    std::vector<std::byte> got(plan.payload_bytes());
    for (std::size_t round = 0; round < rounds; ++round) {
      std::fill(got.begin(), got.end(), std::byte{0});
      const auto t0 = clock_type::now();
      try {
        w = client.fetch_into(plan, std::span<const std::string>(&url, 1), got, group);
      } catch (const selmask::error& e) {
        std::fprintf(stderr, "bench_multi: %zu connections: %s\n", c, e.what());
        ++errors;
      }
      best = std::min(best, seconds_since(t0));
      for (std::size_t n = 0; n < samples; ++n) { // per sample: its bytes must be the file's
        const std::size_t per = plan.sample_payload_bytes(0);
        errors += std::memcmp(got.data() + n * per, want.data() + n * per, per) != 0 ? 1 : 0;
      }
      rss += " → " + std::to_string(rss_kib());
    }
    errors_total += errors;
    const double seconds = best;
    std::printf("| %zu | %.0f | %.3f | %.2f | %.1f | %zu | %zu | %zu | %ld | %s |\n", c,
                static_cast<double>(samples) / seconds,
                static_cast<double>(plan.payload_bytes()) / seconds / 1e6,
                static_cast<double>(w.total()) / seconds / 1e6,
                static_cast<double>(w.total()) / static_cast<double>(samples), w.requests, w.retries,
                client.connections_opened(), errors, rss.c_str());
    std::fflush(stdout);
  }
  return errors_total == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_multi: %s\n", e.what());
  return 1;
}
