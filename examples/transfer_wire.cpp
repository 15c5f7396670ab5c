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
//   transfer_wire [--coalesce off|auto|BYTES] [--per-range] [--seed N] [--images IDX] [--chunk-samples S]
//                 [--mask FILE]
//
// With --images (e.g. /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz, the main job's
// 10,000 test images), a second table: the main job's mask over those images — a trained one from
// a checkpoint's .masks file (--mask: the trainer's front_NNN.masks, the first mask 0/1 per pixel),
// else a seeded random pixel(any) mask of 39 of 784 pixels (Q = 0.05) — fetched from nginx (the
// sample-major file with plain and coalesced ranges, the chunked file — rechunk_file: chunks of S
// images x one pixel, default 1024 — and whole) and from the packing server (transfer/server.hpp,
// in-process: the same range fetches, GET /pack of the plan, the mask as per-image bitmaps, and
// whole). Every payload is checked against pack of the images in memory.
//
// Needs the Debian package nginx (scripts/install-deps.sh).
#include "command_line.hpp"

#include "../tests/nginx_server.hpp"
#include <selmask/selmask.hpp>
#include <selmask/transfer/chunked.hpp>
#include <selmask/transfer/http.hpp>
#include <selmask/transfer/pack_client.hpp>
#include <selmask/transfer/server.hpp>
#include <selmask/transfer/transfer.hpp>

#include <cstdio>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <string_view>
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

/// The main job's mask: a trained pixel(any) mask from a checkpoint's .masks file (tensor 0, 0/1
/// per pixel), or a seeded random one of 39 of `cells` pixels (Q = 0.05).
std::vector<float> main_job_mask(const std::filesystem::path& file, std::size_t cells, std::mt19937_64& r) {
  if (file.empty()) {
    return keep_exactly(cells, 39, r);
  }
  const auto t = selmask::nn::read_weights_file(file);
  if (t.empty() || t[0].values.size() != cells) {
    throw selmask::shape_error(file.string() + ": the first mask has " +
                               std::to_string(t.empty() ? 0 : t[0].values.size()) + " values, the images " +
                               std::to_string(cells) + " pixels");
  }
  for (const float v : t[0].values) {
    if (v != 0.0f && v != 1.0f) {
      throw selmask::value_error(file.string() + ": not a hard mask (a value " + std::to_string(v) + ")");
    }
  }
  return t[0].values;
}

/// The images table: the mask over the test images from nginx (sample-major plain and coalesced,
/// chunked plain and coalesced, whole) and from the packing server (a named plan, the same mask as
/// per-image bitmaps, whole), counted and, where a model exists, predicted.
void images_table(const std::filesystem::path& images, const std::filesystem::path& mask_file,
                  std::size_t chunk_samples, bool per_range, const tr::coalescing& policy,
                  const std::filesystem::path& dir, selmask::testing::nginx_server& server,
                  std::mt19937_64& r) {
  const tr::chunk_shape chunk{chunk_samples, {1, 1, 1}};
  const tr::storage s = tr::rechunk_file(images, dir / "images.chunked", chunk);
  const selmask::io::idx_array a = selmask::io::read_idx(images);
  selmask::io::write_file_atomically(
    dir / "images.raw", std::string_view(reinterpret_cast<const char*>(a.values.data()), a.values.size()));
  for (const char* f : {"images.raw", "images.chunked"}) {
    std::filesystem::permissions(dir / f, std::filesystem::perms::others_read,
                                 std::filesystem::perm_options::add);
  }
  const selmask::cell_geometry g = selmask::make_geometry<selmask::pixel>(1, 1, s.height(), s.width(), true);
  const std::vector<float> keep = main_job_mask(mask_file, s.height() * s.width(), r);
  const tr::plan plan = tr::plan::from_masks({{g, keep}}, s);
  const tr::chunked_plan cp(plan, chunk);
  tr::http_options opt;
  opt.strategy = per_range ? tr::range_strategy::per_range : tr::range_strategy::multi_range;
  const tr::wire_comparison c = tr::compare_wire(plan, server.url("/images.raw"), opt, policy);
  tr::http_client chunked_plain(opt);
  const tr::wire_stats cpp = chunked_plain.predict(cp, server.url("/images.chunked"));
  const auto cf = chunked_plain.fetch_payload(cp, server.url("/images.chunked"));
  opt.merge = policy;
  tr::http_client chunked_merged(opt);
  const tr::wire_stats cmp = chunked_merged.predict(cp, server.url("/images.chunked"));
  const auto cm = chunked_merged.fetch_payload(cp, server.url("/images.chunked"));
  tr::http_client check;
  const std::vector<std::byte> truth = tr::pack(plan, std::as_bytes(std::span(a.values)));
  if (cf.payload != truth || cm.payload != truth ||
      check.fetch_payload(plan, server.url("/images.raw")).payload != truth) {
    throw selmask::io_error("a fetch from nginx gave another payload than pack");
  }
  // the packing server over the same sample-major file
  tr::save_plan(plan, dir / "images.plan.json");
  tr::pack_server packer(dir);
  tr::http_client pc;
  const tr::packed_source src{packer.url(), {"images.raw"}, "images.plan.json"};
  const tr::wire_stats pp = tr::predict_packed(pc, plan, src);
  const tr::fetched_payload pf = tr::fetch_packed(pc, plan, src);
  const std::vector<std::vector<float>> every(s.samples, keep);
  const tr::fetched_payload sf = tr::fetch_selected(pc, plan, tr::selection_bitmaps(g, every), src);
  opt.merge = tr::coalescing::off();
  const tr::wire_comparison pw = tr::compare_wire(plan, packer.url("/images.raw"), opt, policy);
  tr::http_client packer_chunked(opt);
  const tr::wire_stats pcp = packer_chunked.predict(cp, packer.url("/images.chunked"));
  const auto pcf = packer_chunked.fetch_payload(cp, packer.url("/images.chunked"));
  if (pf.payload != truth || sf.payload != truth || pcf.payload != truth) {
    throw selmask::io_error("a fetch from the packing server gave another payload than pack");
  }
  const tr::transport_model m = check.probe(server.url("/images.chunked"));
  const std::size_t headers =
    cf.payload.size() +
    cf.wire.requests * (m.range_request_fixed + (per_range ? m.single_header_fixed : m.multi_header_fixed));
  std::printf("\n%s: %zu images of %s, pixel(any) %zu of %zu pixels (%s), payload %s bytes; "
              "wire = request + header + body bytes\n\n",
              images.string().c_str(), s.samples, s.sample.str().c_str(), plan.kept_values(),
              s.height() * s.width(), mask_file.empty() ? "seeded random" : mask_file.string().c_str(),
              with_commas(plan.payload_bytes()).c_str());
  std::printf("| transport | requests | wire bytes | per image | read | discarded | predicted - counted |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  const auto line = [&](const std::string& name, const tr::wire_stats& w, const tr::wire_stats* pr) {
    char err[32] = "n/a";
    if (pr != nullptr) {
      std::snprintf(err, sizeof err, "%+.2f %%", relative_error(pr->total(), w.total()));
    }
    std::printf("| %s | %zu | %s | %.1f | %s | %s | %s |\n", name.c_str(), w.requests,
                with_commas(w.total()).c_str(),
                static_cast<double>(w.total()) / static_cast<double>(s.samples),
                with_commas(w.read_bytes).c_str(), with_commas(w.discarded_bytes).c_str(), err);
  };
  line("nginx: sample-major file, plain ranges", c.plain, &c.plain_predicted);
  line("nginx: sample-major file, coalesced (" + policy.str() + ")", c.coalesced, &c.coalesced_predicted);
  line("nginx: chunked file (" + std::to_string(chunk_samples) + " images x 1 pixel), plain ranges", cf.wire,
       &cpp);
  line("nginx: chunked file, coalesced (" + policy.str() + ")", cm.wire, &cmp);
  line("nginx: full download (one plain GET)", c.full, &c.full_predicted);
  line("packing server: sample-major file, plain ranges", pw.plain, &pw.plain_predicted);
  line("packing server: sample-major file, coalesced (" + policy.str() + ")", pw.coalesced,
       &pw.coalesced_predicted);
  line("packing server: chunked file, plain ranges", pcf.wire, &pcp);
  line("packing server: GET /pack (named plan)", pf.wire, &pp);
  line("packing server: POST /select (the mask as one bitmap per image)", sf.wire, nullptr);
  line("packing server: full download (one plain GET)", pw.full, &pw.full_predicted);
  const auto above = [](std::size_t w, std::size_t base) {
    return 100.0 * (static_cast<double>(w) / static_cast<double>(base) - 1.0);
  };
  std::printf("\npayload + one header block per request (chunked, plain): %s bytes; chunked plain is %.1f %% "
              "above it; the packing server's GET /pack is %.2f %% above the payload\n",
              with_commas(headers).c_str(), above(cf.wire.total(), headers),
              above(pf.wire.total(), plan.payload_bytes()));
}
} // namespace

int main(int argc, char** argv) {
  std::string coalesce = "auto";
  bool per_range = false;
  std::uint64_t seed = 1;
  std::filesystem::path images;
  std::filesystem::path mask_file;
  std::size_t chunk_samples = 1024;
  example::command_line cl("transfer_wire");
  cl.option("--coalesce", "off|auto|BYTES", coalesce)
    .flag("--per-range", per_range)
    .option("--seed", "N", seed)
    .option("--images", "IDX", images)
    .option("--chunk-samples", "S", chunk_samples)
    .option("--mask", "FILE", mask_file);
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
    if (!images.empty()) {
      images_table(images, mask_file, chunk_samples, per_range, policy, dir, server, r);
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
