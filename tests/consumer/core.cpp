// An outside project that uses only the core (selmask::core: masks, pipelines, the reference
// backend), built with -Wall -Wextra -Werror: a pixel mask on the reference backend, Q by hand.
#include <selmask/backend/reference/reference.hpp>
#include <selmask/core.hpp>

#include <cstdio>
#include <vector>

int main() {
  using B = selmask::reference;
  using pixel_masks = selmask::pipeline<selmask::any_mask<selmask::pixel>>;
  pixel_masks::on<B> p(selmask::shape{2, 2, 2});
  // keep pixels 0 and 3 of the 2×2 grid
  p.stage<0>().set_logits(B::from_host(selmask::shape{1, 1, 2, 2}, std::vector<float>{3, -3, -3, 3}));
  const auto x = B::from_host(selmask::shape{1, 2, 2, 2}, std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8});
  const auto r = p.forward(x);
  const std::vector<float> expected{1, 0, 0, 4, 5, 0, 0, 8};
  if (r.q != 0.5 || B::to_host(r.output) != expected) {
    std::printf("consumer_core FAILED: q=%f\n", r.q);
    return 1;
  }
  std::printf("consumer_core ok\n");
  return 0;
}
