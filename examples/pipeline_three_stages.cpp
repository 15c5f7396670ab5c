// A three-stage mask pipeline written as a type, run forward and backward on synthetic data.
//
// extend → xor_mask<channel> → merge<sum>: each of 4 channels chooses one of three versions of
// itself (full, half resolution, nothing), then a pixel any-mask drops pixels. One plain
// gradient step on the mask loss alone shows the masks moving towards cheaper choices.
#include <selmask/selmask.hpp>

#include <cstdio>
#include <random>
#include <span>

namespace {
/// v0 = the channel itself, v1 = a 2×2 box-averaged thumbnail (nearest-upsampled), v2 = nothing.
struct three_qualities {
  std::size_t height = 16, width = 16;
  void operator()(std::size_t v, std::span<const float> in, std::span<float> out) const {
    const std::size_t plane = height * width;
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (v == 0) {
        out[i] = in[i];
      } else if (v == 1) {
        const std::size_t c = i / plane, h = (i % plane) / width, w = i % width;
        const std::size_t h0 = h & ~std::size_t{1}, w0 = w & ~std::size_t{1};
        const float* p = in.data() + c * plane;
        out[i] = 0.25f * (p[h0 * width + w0] + p[h0 * width + w0 + 1] + p[(h0 + 1) * width + w0] +
                          p[(h0 + 1) * width + w0 + 1]);
      } else {
        out[i] = 0.0f;
      }
    }
  }
};
} // namespace

int main() {
  using versions = selmask::functor_versions<3, three_qualities>;
  using pipe = selmask::pipeline<selmask::extend<versions>, selmask::xor_mask<selmask::channel>,
                                 selmask::merge<selmask::sum>, selmask::any_mask<selmask::pixel>>;
  using B = selmask::cpu;

  selmask::extend<versions> ext;
  ext.op.version_costs = {1.0f, 0.25f, 0.0f}; // a thumbnail is a quarter of the bytes
  pipe::on<B> p(selmask::shape{4, 16, 16}, /*seed=*/42, ext, {}, {}, {});

  std::mt19937_64 rng(1);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> host(8 * 4 * 16 * 16);
  for (auto& v : host) {
    v = d(rng);
  }
  const auto x = B::from_host(selmask::shape{8, 4, 16, 16}, host);

  const auto r = p.forward(x);
  std::printf("stages: %zu, masks: %zu\n", pipe::stage_count, pipe::mask_count);
  std::printf("output shape %s, Q = %.4f (everything selected at full quality)\n",
              B::shape_of(r.output).str().c_str(), r.q);

  // pretend the network is indifferent (zero task gradient) and take steps on λ·Q only
  const auto zero = B::zeros(B::shape_of(r.output));
  for (int step = 0; step < 40; ++step) {
    p.zero_grad();
    const double q_now = p.forward(x).q;
    if (step % 5 == 0) {
      std::printf("  step %2d: Q = %.4f\n", step, q_now);
    }
    p.backward(zero, /*lambda=*/10.0f);
    p.for_each_mask([](auto& m) { B::axpy(-1.0f, m.grad(), m.logits_for_update()); });
  }
  const double q = p.forward(x).q;
  std::printf("after 40 steps on the mask loss alone: Q = %.4f\n", q);
  const auto choice = B::to_host(p.stage<1>().applied());
  for (std::size_t c = 0; c < 4; ++c) {
    for (std::size_t v = 0; v < 3; ++v) {
      if (choice[v * 4 + c] == 1.0f) {
        std::printf("  channel %zu sends version %zu\n", c, v);
      }
    }
  }
  std::printf("  pixels kept: %.1f %%\n", 100.0 * p.stage<3>().kept_fraction());
  return q < 1.0 ? 0 : 1;
}
