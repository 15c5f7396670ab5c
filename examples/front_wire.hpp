#pragma once
// Bytes on the wire per test image for the main job's front (fashion_mnist_pixels): the
// transport model of the sample-major test file on nginx is measured once at the start (a private
// nginx on 127.0.0.1 serving the raw test images, three probe requests), and each front point's
// mask is then priced without fetching: the payload, the wire bytes of the default transport
// (coalesced ranges over nginx, multi-range, `coalescing::automatic()`) and the full download,
// per image, as `predict_fetch` gives them (exact against counted bytes in test_wire).
//
// Needs libcurl (selmask::http) and nginx; where either is missing `measure` says why and the job
// leaves the columns out.
#include "../tests/nginx_server.hpp"
#include <selmask/io/idx.hpp>
#include <selmask/transfer/http.hpp>
#include <selmask/transfer/transfer.hpp>
#include <selmask/transfer/wire.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace example {

/// Bytes per test image of one mask.
struct wire_per_image {
  double payload = 0; ///< the selected bytes
  double wire = 0;    ///< coalesced ranges over nginx: requests + response headers + bodies
  double full = 0;    ///< one plain GET of the whole file
};

class front_wire {
public:
  /// Measures the model of the first `n_test` images of `images` (an IDX file of N×28×28 bytes)
  /// served by nginx. Leaves `available()` false, with `why()`, when nginx or the data is missing.
  front_wire(const std::filesystem::path& images, std::size_t n_test) {
    namespace tr = selmask::transfer;
    const auto dir =
      std::filesystem::temp_directory_path() / ("selmask-front-wire-" + std::to_string(::getpid()));
    try {
      if (!selmask::testing::nginx_server::find_nginx()) {
        why_ = "nginx not found (install the Debian package nginx)";
        return;
      }
      const selmask::io::idx_array a = selmask::io::read_idx(images);
      const std::size_t per = 28 * 28;
      if (a.values.size() < n_test * per) {
        why_ = images.string() + " holds fewer than " + std::to_string(n_test) + " images";
        return;
      }
      std::filesystem::create_directories(dir);
      selmask::io::write_file_atomically(
        dir / "t10k.raw", std::string_view(reinterpret_cast<const char*>(a.values.data()), n_test * per));
      std::filesystem::permissions(dir / "t10k.raw", std::filesystem::perms::others_read,
                                   std::filesystem::perm_options::add);
      stored_ = tr::storage{{1, 28, 28}, n_test, tr::dtype::uint8, tr::storage_layout::band_sequential(), 1};
      {
        selmask::testing::nginx_server server(dir);
        tr::http_client probe;
        model_ = probe.probe(server.url("/t10k.raw"));
      }
      available_ = true;
    } catch (const std::exception& e) {
      why_ = e.what();
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  [[nodiscard]] bool available() const noexcept { return available_; }
  [[nodiscard]] const std::string& why() const noexcept { return why_; }

  /// The bytes per image of a pixel mask (`keep`: 784 values 0/1).
  [[nodiscard]] wire_per_image price(const std::vector<float>& keep) const {
    namespace tr = selmask::transfer;
    const tr::plan p =
      tr::plan::from_masks({{selmask::make_geometry<selmask::pixel>(1, 1, 28, 28, true), keep}}, stored_);
    const tr::transport_model ms[1] = {model_};
    const double n = static_cast<double>(stored_.samples);
    wire_per_image w;
    w.payload = static_cast<double>(p.payload_bytes()) / n;
    w.wire = static_cast<double>(tr::predict_fetch(p, ms, tr::range_strategy::multi_range,
                                                   tr::http_options{}.max_range_header_bytes,
                                                   tr::coalescing::automatic())
                                   .total()) /
             n;
    w.full = static_cast<double>(model_.full_download().total()) / n;
    return w;
  }

private:
  bool available_ = false;
  std::string why_;
  selmask::transfer::storage stored_;
  selmask::transfer::transport_model model_;
};

} // namespace example
