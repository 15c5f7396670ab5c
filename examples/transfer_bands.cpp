// A channel(any) mask becomes a selection plan: 48 bands of 64x64 uint16 satellite-like data are
// stored band-sequential on a "server"; the mask keeps 6 bands; the plan is saved as JSON (what
// both ends share), the server packs only the kept bands, the client unpacks them into the
// dense float tensor the network takes, and the program prints the bytes saved.
//
//   transfer_bands [output_dir]     (default: the system's temp directory)
#include <selmask/selmask.hpp>
#include <selmask/transfer/transfer.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

namespace tr = selmask::transfer;
using selmask::cpu;

int main(int argc, char** argv) {
  const std::size_t bands = 48, side = 64, scenes = 4;
  const selmask::shape sample{bands, side, side};

  // 1. the mask: a channel(any) mask that keeps bands 2, 3, 7, 19, 20, 41 (as training would leave it)
  using pipe = selmask::pipeline<selmask::any_mask<selmask::channel>>;
  pipe::on<cpu> masks(sample, 1);
  std::vector<float> logits(bands, -4.0f);
  for (std::size_t b : {2, 3, 7, 19, 20, 41}) {
    logits[b] = 4.0f;
  }
  masks.stage<0>().set_logits(cpu::from_host(selmask::shape{1, bands, 1, 1}, logits));

  // 2. the plan over the server's storage: 4 scenes of uint16, band-sequential; saved as JSON
  const tr::storage stored{sample, scenes, tr::dtype::uint16, tr::storage_layout::band_sequential(), 1};
  const tr::plan plan = tr::make_plan(masks, stored);
  const std::filesystem::path dir =
    argc > 1 ? std::filesystem::path(argv[1]) : std::filesystem::temp_directory_path();
  const auto plan_file = dir / "transfer_bands.plan.json";
  tr::save_plan(plan, plan_file);
  const tr::plan shared = tr::load_plan(plan_file, stored); // the client's copy, checked against the data

  // 3. the server's data: seeded synthetic reflectances in [0, 10000]
  std::mt19937_64 rng(5);
  std::vector<std::uint16_t> values(scenes * sample.size());
  for (auto& v : values) {
    v = static_cast<std::uint16_t>(rng() % 10001);
  }
  std::vector<std::byte> file(values.size() * 2);
  std::memcpy(file.data(), values.data(), file.size()); // little-endian, as the plan says

  // 4. server: pack only the selected bytes; client: unpack to N x C x H x W floats in [0, 1]
  const std::vector<std::byte> payload = tr::pack(shared, file);
  const auto x = tr::unpack_tensor<cpu>(shared, payload, {.scale = 1.0f / 10000.0f});

  // the client's tensor is exactly what the pipeline feeds the network in memory
  std::vector<float> dense(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    dense[i] = static_cast<float>(values[i]) * (1.0f / 10000.0f);
  }
  const auto r = masks.forward(cpu::from_host(stored.batch_shape(), dense));
  if (cpu::to_host(r.output) != cpu::to_host(x)) {
    std::printf("transfer_bands FAILED: the unpacked tensor differs from the masked data\n");
    return 1;
  }
  if (payload.size() != plan.payload_bytes()) {
    std::printf("transfer_bands FAILED: payload %zu bytes, plan %zu\n", payload.size(), plan.payload_bytes());
    return 1;
  }

  const double full = static_cast<double>(plan.full_bytes());
  std::printf("plan: %s (%zu bytes of JSON)\n", plan_file.string().c_str(),
              static_cast<std::size_t>(std::filesystem::file_size(plan_file)));
  std::printf("kept %zu of %zu bands; %zu byte ranges for %zu scenes\n", plan.kept_values() / (side * side),
              bands, plan.file_ranges(0).size(), scenes);
  std::printf("transferred %zu of %zu bytes (Q = %.4f): %zu bytes saved (%.1f %%)\n", payload.size(),
              plan.full_bytes(), r.q, plan.full_bytes() - payload.size(),
              100.0 * (full - static_cast<double>(payload.size())) / full);
  return 0;
}
