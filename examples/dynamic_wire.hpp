#pragma once
// The dynamic transfer of fashion_mnist_dynamic over nginx: the first n test images are written
// as a raw sample-major file (n×784 bytes) to a temporary folder served by a private nginx on
// 127.0.0.1; the client then fetches each image's preview, decides its pixels with the trained
// mask and fetches them (selmask::transfer::fetch_dynamic), one image per exchange and in groups,
// without and with range coalescing, and through selmask's packing server (POST /select: the
// client's decisions go up as bitmaps, the selected values come back in one body). Checked on the way: every
// decision equals the mask's on the decoded image, every assembled image equals the masked image, every
// counted wire byte equals the transport model's prediction; the network's accuracy on what arrived is
// reported.
//
// Needs libcurl (selmask::http), the packing server (selmask::server) and nginx; without nginx
// `dynamic_wire` says why and returns nothing.
#include "../tests/nginx_server.hpp"
#include <selmask/backend/nn_ops.hpp>
#include <selmask/io/atomic_file.hpp>
#include <selmask/io/idx.hpp>
#include <selmask/transfer/dynamic.hpp>
#include <selmask/transfer/plan_file.hpp>
#include <selmask/transfer/server.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

namespace example {

/// Bytes per image of one way of fetching.
struct dynamic_wire_row {
  std::string how;
  std::size_t group = 1;
  double data = 0, wire = 0; ///< per image: data bytes (preview + chosen), HTTP bytes both ways
  std::size_t requests = 0;
};

struct dynamic_wire_report {
  std::vector<dynamic_wire_row> rows;
  double full_download_per_image = 0; ///< one plain GET of the whole file, per image
  double accuracy = 0;                ///< the network on the fetched images
  std::size_t images = 0;
};

template <class B, class Mask, class Net>
std::optional<dynamic_wire_report> dynamic_wire(Mask& mask, Net& net, const std::filesystem::path& idx_images,
                                                const std::vector<std::int32_t>& labels, std::size_t n,
                                                std::string& why) {
  namespace tr = selmask::transfer;
  if (!selmask::testing::nginx_server::find_nginx()) {
    why = "nginx not found (install the Debian package nginx)";
    return std::nullopt;
  }
  const selmask::io::idx_array a = selmask::io::read_idx(idx_images);
  const std::size_t k = 28 * 28;
  n = std::min(n, std::min(labels.size(), a.values.size() / k));
  const auto dir =
    std::filesystem::temp_directory_path() / ("selmask-dynamic-wire-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  selmask::io::write_file_atomically(dir / "t10k.raw",
                                     std::string_view(reinterpret_cast<const char*>(a.values.data()), n * k));
  std::filesystem::permissions(dir / "t10k.raw", std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  const tr::storage stored{{1, 28, 28}, n, tr::dtype::uint8, tr::storage_layout::band_sequential(), 1};
  const tr::dynamic_layout layout(stored);
  const float scale = 1.0f / 255.0f;

  // the reference: the mask on the images decoded as the client decodes them
  std::vector<float> x(n * k);
  for (std::size_t i = 0; i < n * k; ++i)
    x[i] = static_cast<float>(a.values[i]) * scale;
  mask.freeze(true);
  const std::vector<float> want = B::to_host(mask.forward(B::from_host(selmask::shape{n, 1, 28, 28}, x)));

  dynamic_wire_report rep;
  rep.images = n;
  {
    selmask::testing::nginx_server server(dir);
    const std::string url = server.url("/t10k.raw");
    const struct {
      const char* how;
      std::size_t group;
      tr::coalescing merge;
    } ways[] = {{"one image per exchange", 1, tr::coalescing::off()},
                {"one image per exchange, coalesced", 1, tr::coalescing::automatic()},
                {"100 images per exchange", 100, tr::coalescing::off()},
                {"100 images per exchange, coalesced", 100, tr::coalescing::automatic()}};
    for (const auto& w : ways) {
      tr::http_client client(tr::http_options{.merge = w.merge});
      dynamic_wire_row row{w.how, w.group};
      std::vector<float> got(n * k);
      for (std::size_t first = 0; first < n; first += w.group) {
        std::vector<std::size_t> group;
        for (std::size_t i = first; i < std::min(n, first + w.group); ++i)
          group.push_back(i);
        const tr::dynamic_fetch f = tr::fetch_dynamic<B>(client, url, layout, group, mask, scale);
        if (f.preview_wire.total() != f.preview_predicted.total() ||
            f.chosen_wire.total() != f.chosen_predicted.total())
          throw std::runtime_error("dynamic transfer: counted wire bytes differ from the prediction");
        std::copy(f.values.begin(), f.values.end(), got.begin() + static_cast<std::ptrdiff_t>(first * k));
        row.data += static_cast<double>(f.preview_bytes + f.chosen_bytes);
        row.wire += static_cast<double>(f.preview_wire.total() + f.chosen_wire.total());
        row.requests += f.preview_wire.requests + f.chosen_wire.requests;
      }
      if (got != want)
        throw std::runtime_error(std::string("dynamic transfer (") + w.how +
                                 "): the fetched images differ from the masked ones");
      row.data /= static_cast<double>(n);
      row.wire /= static_cast<double>(n);
      rep.rows.push_back(row);
      if (rep.accuracy == 0) {
        std::size_t correct = 0;
        selmask::tensor_t<B> grad;
        const auto& logits = net.forward(B::from_host(selmask::shape{n, 1, 28, 28}, got));
        correct = selmask::bk::softmax_cross_entropy<B>(logits, std::span(labels.data(), n), grad).correct;
        rep.accuracy = static_cast<double>(correct) / static_cast<double>(n);
      }
    }
    tr::http_client plain;
    rep.full_download_per_image =
      static_cast<double>(plain.probe(url).full_download().total()) / static_cast<double>(n);
  }
  {
    // the same decisions, the selections packed by selmask's server (POST /select, bitmaps up)
    const tr::plan tmpl = tr::plan::from_masks(
      {{selmask::make_geometry<selmask::pixel>(1, 1, 28, 28, true), std::vector<float>(k, 1.0f)}}, stored);
    tr::save_plan(tmpl, dir / "pixels.plan.json");
    tr::pack_server srv(dir);
    const tr::packed_source src{srv.url(), {"t10k.raw"}, "pixels.plan.json"};
    for (const std::size_t group : {std::size_t{1}, std::size_t{100}}) {
      tr::http_client client;
      dynamic_wire_row row{group == 1 ? "packing server, one image per exchange"
                                      : "packing server, 100 images per exchange",
                           group};
      for (std::size_t first = 0; first < n; first += group) {
        const std::size_t count = std::min(group, n - first);
        const tr::dynamic_fetch f = tr::fetch_dynamic_packed<B>(client, tmpl, src, first, count, mask, scale);
        if (!std::equal(f.values.begin(), f.values.end(),
                        want.begin() + static_cast<std::ptrdiff_t>(first * k)))
          throw std::runtime_error(
            "dynamic transfer (packing server): the fetched images differ from the masked ones");
        row.data += static_cast<double>(f.preview_bytes + f.chosen_bytes);
        row.wire += static_cast<double>(f.preview_wire.total() + f.chosen_wire.total());
        row.requests += f.preview_wire.requests + f.chosen_wire.requests;
      }
      row.data /= static_cast<double>(n);
      row.wire /= static_cast<double>(n);
      rep.rows.push_back(row);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rep;
}

} // namespace example
