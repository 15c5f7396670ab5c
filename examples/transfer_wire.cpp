// Bytes on the wire, not in the payload: three selection plans fetched from a private nginx on
// 127.0.0.1 with plain ranges (coalescing off), coalesced ranges and one plain GET of the whole
// file, each counted by the HTTP client (requests, response headers and bodies as libcurl sent and
// received them) and predicted by the transport model the client measured with its probe. Prints a
// Markdown table.
//
// The three plans (seeded random data and masks; the issue "Bytes on the wire" has the same rows):
//  - channel(any), bands 2, 3, 7, 19, 20, 41 of 48, 48x64x64 uint16, band-sequential, 3 samples;
//  - pixel(any), each pixel kept with probability 1/7, 8x32x32 uint16, pixel-interleaved, 5 samples;
//  - pixel(any), 39 of 784 pixels (Q = 0.05), 1x28x28 uint8 (the main job's shape), 100 samples.
//
//   transfer_wire [--coalesce off|auto|BYTES] [--per-range] [--seed N]
//
// Needs the Debian package nginx (scripts/install-deps.sh).
#include "command_line.hpp"

#include <selmask/selmask.hpp>
#include <selmask/testing/nginx_server.hpp>
#include <selmask/transfer/http.hpp>
#include <selmask/transfer/transfer.hpp>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace tr = selmask::transfer;

namespace {

struct row {
  std::string name;
  tr::storage s;
  selmask::cell_geometry geometry;
  std::vector<float> keep;
};

std::vector<float> keep_with_probability(std::size_t cells, unsigned one_in, std::mt19937_64& r) {
  std::vector<float> v(cells, 0.0f);
  for (auto& x : v) {
    x = r() % one_in == 0 ? 1.0f : 0.0f;
  }
  return v;
}

std::vector<float> keep_exactly(std::size_t cells, std::size_t k, std::mt19937_64& r) {
  std::vector<float> v(cells, 0.0f);
  for (std::size_t n = 0; n < k;) {
    const std::size_t i = r() % cells;
    if (v[i] == 0.0f) {
      v[i] = 1.0f;
      ++n;
    }
  }
  return v;
}

std::string with_commas(std::size_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) {
    s.insert(static_cast<std::size_t>(i), ",");
  }
  return s;
}

double relative_error(std::size_t predicted, std::size_t counted) {
  return counted == 0 ? 0.0
                      : 100.0 * (static_cast<double>(predicted) - static_cast<double>(counted)) /
                          static_cast<double>(counted);
}

} // namespace

int main(int argc, char** argv) {
  std::string coalesce = "auto";
  bool per_range = false;
  std::uint64_t seed = 1;
  example::command_line cl("transfer_wire");
  cl.option("--coalesce", "off|auto|BYTES", coalesce)
    .flag("--per-range", per_range)
    .option("--seed", "N", seed);
  if (!cl.parse(argc, argv)) {
    return 2;
  }
  try {
    const tr::coalescing policy = tr::parse_coalescing(coalesce);
    std::mt19937_64 r(seed);
    using L = tr::storage_layout;
    std::vector<row> rows;
    {
      std::vector<float> bands(48, 0.0f);
      for (std::size_t b : {2, 3, 7, 19, 20, 41}) {
        bands[b] = 1.0f;
      }
      rows.push_back({"channel(any), 6 of 48 bands, 48x64x64 uint16, band-sequential, 3 samples",
                      {{48, 64, 64}, 3, tr::dtype::uint16, L::band_sequential(), 1},
                      selmask::make_geometry<selmask::channel>(1, 48, 64, 64, true),
                      bands});
    }
    rows.push_back({"pixel(any), 1 in 7 pixels, 8x32x32 uint16, pixel-interleaved, 5 samples",
                    {{8, 32, 32}, 5, tr::dtype::uint16, L::pixel_interleaved(), 1},
                    selmask::make_geometry<selmask::pixel>(1, 8, 32, 32, true),
                    keep_with_probability(32 * 32, 7, r)});
    rows.push_back({"pixel(any), 39 of 784 pixels, 1x28x28 uint8, 100 samples",
                    {{1, 28, 28}, 100, tr::dtype::uint8, L::band_sequential(), 1},
                    selmask::make_geometry<selmask::pixel>(1, 1, 28, 28, true),
                    keep_exactly(784, 39, r)});

    const auto dir =
      std::filesystem::temp_directory_path() / ("selmask-transfer-wire-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    selmask::testing::nginx_server server(dir);
    std::printf("strategy %s, coalescing %s; bytes are HTTP bytes (requests + response headers + bodies); "
                "predicted - counted in %%\n\n",
                per_range ? "per-range" : "multi-range", policy.str().c_str());
    std::printf(
      "| plan | ranges/sample | payload | plain: body | plain: wire | coalesced: wire (read, discarded, "
      "requests) | full download: wire | predicted vs counted (plain, coalesced, full) |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    bool ok = true;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const row& w = rows[i];
      const tr::plan plan = tr::plan::from_masks({{w.geometry, w.keep}}, w.s);
      std::string bytes(w.s.stream_bytes(), '\0');
      for (auto& c : bytes) {
        c = static_cast<char>(r() & 0xff);
      }
      const std::string file = "row" + std::to_string(i) + ".bin";
      selmask::io::write_file_atomically(dir / file, bytes);
      std::filesystem::permissions(dir / file, std::filesystem::perms::others_read,
                                   std::filesystem::perm_options::add);
      tr::http_options opt;
      opt.strategy = per_range ? tr::range_strategy::per_range : tr::range_strategy::multi_range;
      const tr::wire_comparison c = tr::compare_wire(plan, server.url("/" + file), opt, policy);
      std::printf("| %s | %zu | %s | %s | %s | %s (%s, %s, %zu) | %s | %+.2f, %+.2f, %+.2f |\n",
                  w.name.c_str(), plan.sample_ranges(0).size(), with_commas(c.payload_bytes).c_str(),
                  with_commas(c.plain.body_bytes).c_str(), with_commas(c.plain.total()).c_str(),
                  with_commas(c.coalesced.total()).c_str(), with_commas(c.coalesced.read_bytes).c_str(),
                  with_commas(c.coalesced.discarded_bytes).c_str(), c.coalesced.requests,
                  with_commas(c.full.total()).c_str(),
                  relative_error(c.plain_predicted.total(), c.plain.total()),
                  relative_error(c.coalesced_predicted.total(), c.coalesced.total()),
                  relative_error(c.full_predicted.total(), c.full.total()));
      if (policy.kind != tr::coalescing::mode::off && c.coalesced.total() > c.full.total()) {
        ok = false;
      }
    }
    server.stop();
    std::filesystem::remove_all(dir);
    if (!ok) {
      std::fprintf(stderr, "transfer_wire: a coalesced fetch cost more than the full download\n");
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "transfer_wire: %s\n", e.what());
    return 1;
  }
  return 0;
}
