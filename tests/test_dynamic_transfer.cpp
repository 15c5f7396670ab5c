// Dynamic transfer through nginx (transfer/dynamic.hpp): the client fetches each sample's
// preview, decides its cells with the dynamic mask, fetches them; the bytes of the data are the
// preview's plus the chosen cells' (Q_n · sample bytes), the bytes on the wire are the transport
// model's prediction, and what arrives is the masked sample the network saw in training.
#include "support.hpp"

#include "nginx_server.hpp"
#include <selmask/io/atomic_file.hpp>
#include <selmask/mask/dynamic.hpp>
#include <selmask/nn/dense.hpp>
#include <selmask/nn/sequential.hpp>
#include <selmask/selmask.hpp>
#include <selmask/transfer/dynamic.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

using namespace selmask;
using namespace selmask_test;
namespace tr = selmask::transfer;

namespace {

using B = cpu;
using linear = nn::sequential<B, nn::dense<B>>;

struct stored_case {
  tr::storage s;
  std::size_t header;
  float scale;
};

/// Random stored values (within the type's range), the file's bytes and the decoded N×C×H×W floats.
void make_data(const stored_case& c, std::vector<std::byte>& file, std::vector<float>& x,
               std::uint64_t seed) {
  std::mt19937_64 g(seed);
  const std::size_t vb = tr::dtype_size(c.s.type), k = c.s.sample_values();
  file.assign(c.header + c.s.stream_bytes(), std::byte{0x5a});
  x.assign(c.s.samples * k, 0.0f);
  std::vector<std::size_t> order;
  tr::for_each_storage_location(c.s, [&](std::size_t loc) { order.push_back(loc); });
  for (std::size_t n = 0; n < c.s.samples; ++n) {
    for (std::size_t pos = 0; pos < k; ++pos) {
      std::byte* at = file.data() + c.header + n * c.s.sample_bytes() + pos * vb;
      float v = 0.0f;
      if (c.s.type == tr::dtype::uint8) {
        const auto b = static_cast<std::uint8_t>(g() & 0xff);
        std::memcpy(at, &b, 1);
        v = static_cast<float>(b) * c.scale;
      } else {
        const auto u = static_cast<std::uint16_t>(g() & 0xffff);
        std::memcpy(at, &u, 2); // little-endian hosts (the tests' machines)
        v = static_cast<float>(u) * c.scale;
      }
      x[n * k + order[pos]] = v;
    }
  }
}

} // namespace

TEST_CASE("nginx: a dynamic transfer moves the preview and the chosen cells, nothing else",
          "[transfer][nginx][dynamic]") {
  const std::vector<stored_case> cases{
    {tr::storage{shape{1, 8, 8}, 12, tr::dtype::uint8, tr::storage_layout::band_sequential(), 1}, 0,
     1.0f / 255.0f},
    {tr::storage{shape{2, 6, 6}, 9, tr::dtype::uint16, tr::storage_layout::pixel_interleaved(), 1}, 16,
     1.0f / 65535.0f},
    {tr::storage{shape{1, 9, 9}, 7, tr::dtype::uint8, tr::storage_layout::tiled(4, 4), 1}, 3, 1.0f / 255.0f},
  };
  temp_dir dir;
  std::vector<std::vector<std::byte>> files(cases.size());
  std::vector<std::vector<float>> data(cases.size());
  for (std::size_t c = 0; c < cases.size(); ++c) {
    make_data(cases[c], files[c], data[c], 40 + c);
    io::write_file_atomically(
      dir / ("d" + std::to_string(c) + ".bin"),
      std::string_view(reinterpret_cast<const char*>(files[c].data()), files[c].size()));
  }
  testing::nginx_server server(dir.path);

  for (std::size_t c = 0; c < cases.size(); ++c) {
    const stored_case& sc = cases[c];
    INFO("case " << c << ": " << sc.s.sample.str() << " " << tr::dtype_name(sc.s.type) << " "
                 << sc.s.layout.str());
    const std::size_t k = sc.s.sample_values(), vb = tr::dtype_size(sc.s.type), n = sc.s.samples;
    const cell_preview preview = cell_preview::strided(sc.s.sample, 3);
    linear model(nn::sequential_options{.seed = 20 + c}, nn::dense<B>(preview.size(), k));
    dynamic_mask_options mo;
    mo.fill = c == 1 ? -1.0f : 0.0f; // dropped cells: the mask's fill value, on the client too
    dynamic_any_mask<B, linear> mask(sc.s.sample, preview, model, mo, 1);
    mask.prior_for_update() = B::from_host(shape{k}, random_values(k, -0.6f, 0.6f)); // about half kept
    mask.freeze();
    // what training's forward gives for every sample: masks and Q
    const auto y = B::to_host(mask.forward(B::from_host(sc.s.batch_shape(), data[c])));
    const auto applied = B::to_host(mask.applied());
    const std::vector<double> q = mask.sample_q();
    const std::string url = server.url("/d" + std::to_string(c) + ".bin");
    const tr::dynamic_layout layout(sc.s, sc.header);
    REQUIRE(layout.resource_bytes() == files[c].size());

    tr::http_client client;
    std::size_t kept_total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      INFO("sample " << i);
      const std::vector<std::size_t> one{i};
      const tr::dynamic_fetch f = tr::fetch_dynamic<B>(client, url, layout, one, mask, sc.scale);
      REQUIRE(f.kept.size() == 1);
      std::vector<std::size_t> expected;
      for (std::size_t j = 0; j < k; ++j)
        if (applied[i * k + j] > 0.5f)
          expected.push_back(j);
      CHECK(f.kept[0] == expected); // the client's decision from the preview is training's
      const std::vector<float> want(y.begin() + static_cast<std::ptrdiff_t>(i * k),
                                    y.begin() + static_cast<std::ptrdiff_t>((i + 1) * k));
      CHECK(f.values == want); // exactly the masked sample the network saw
      CHECK(f.preview_bytes == preview.size() * vb);
      CHECK(f.chosen_bytes == (expected.size() - preview.size()) * vb);
      // data bytes = Q_n · sample bytes (uniform costs)
      CHECK(static_cast<double>(f.preview_bytes + f.chosen_bytes) ==
            Approx(q[i] * static_cast<double>(sc.s.sample_bytes())));
      CHECK(f.preview_wire.range_bytes == f.preview_bytes);
      CHECK(f.chosen_wire.range_bytes == f.chosen_bytes);
      CHECK(f.preview_wire.discarded_bytes == 0);
      // bytes on the wire, both ways, as the transport model predicts
      CHECK(f.preview_wire.total() == f.preview_predicted.total());
      CHECK(f.preview_wire.request_bytes == f.preview_predicted.request_bytes);
      CHECK(f.chosen_wire.total() == f.chosen_predicted.total());
      CHECK(f.chosen_wire.requests == f.chosen_predicted.requests);
      kept_total += expected.size();
    }
    CHECK(kept_total > n * preview.size()); // the mask chose cells besides the previews
    CHECK(kept_total < n * k);              // and dropped some

    // a group of samples, out of order, in two exchanges; with coalescing the wire stays predicted
    const std::vector<std::size_t> group{3, 1, 5, 0};
    for (const tr::coalescing merge : {tr::coalescing::off(), tr::coalescing::automatic()}) {
      tr::http_client grouped(tr::http_options{.merge = merge});
      const tr::dynamic_fetch f = tr::fetch_dynamic<B>(grouped, url, layout, group, mask, sc.scale);
      for (std::size_t g = 0; g < group.size(); ++g) {
        const std::size_t i = group[g];
        CHECK(std::equal(f.values.begin() + static_cast<std::ptrdiff_t>(g * k),
                         f.values.begin() + static_cast<std::ptrdiff_t>((g + 1) * k),
                         y.begin() + static_cast<std::ptrdiff_t>(i * k)));
      }
      CHECK(f.preview_wire.total() == f.preview_predicted.total());
      CHECK(f.chosen_wire.total() == f.chosen_predicted.total());
      CHECK(f.preview_wire.range_bytes == group.size() * preview.size() * vb);
    }
  }
}

TEST_CASE("dynamic transfer: a plan that does not fit the data is named", "[transfer][dynamic][errors]") {
  const tr::storage s{shape{1, 4, 4}, 3, tr::dtype::uint8, tr::storage_layout::band_sequential(), 1};
  const tr::dynamic_layout layout(s);
  std::vector<tr::byte_range> r;
  std::vector<std::size_t> order;
  CHECK_THROWS_WITH(layout.ranges_of(3, std::vector<std::size_t>{0}, r, order),
                    Catch::Contains("sample 3 is out of range"));
  CHECK_THROWS_WITH(layout.ranges_of(0, std::vector<std::size_t>{16}, r, order),
                    Catch::Contains("location 16"));
  CHECK_THROWS_WITH(layout.ranges_of(0, std::vector<std::size_t>{2, 2}, r, order),
                    Catch::Contains("given twice"));
  layout.ranges_of(1, std::vector<std::size_t>{5, 1, 2, 3, 9}, r, order);
  CHECK(r == std::vector<tr::byte_range>{{17, 3}, {21, 1}, {25, 1}});
  CHECK(order == std::vector<std::size_t>{1, 2, 3, 5, 9});
  tr::storage versions = s;
  versions.versions = 2;
  CHECK_THROWS_WITH(tr::dynamic_layout(versions), Catch::Contains("2 versions"));

  linear model(nn::sequential_options{}, nn::dense<B>(1, 9));
  dynamic_any_mask<B, linear> mask(shape{1, 3, 3}, cell_preview{{4}}, model);
  tr::http_client client;
  CHECK_THROWS_WITH(
    tr::fetch_dynamic<B>(client, "http://127.0.0.1:1/x", layout, std::vector<std::size_t>{0}, mask),
    Catch::Contains("the mask has 9 cells, the stored samples 16 values"));
  CHECK_THROWS_WITH(
    tr::fetch_dynamic<B>(client, "http://127.0.0.1:1/x", layout, std::vector<std::size_t>{}, mask),
    Catch::Contains("no samples"));
}
