// An outside project: finds the installed selmask with find_package and runs a channel mask.
#include <selmask/selmask.hpp>

#include <cstdio>

int main() {
  using channel_masks = selmask::pipeline<selmask::any_mask<selmask::channel>>;
  channel_masks::on<selmask::cpu> p(selmask::shape{3, 4, 4});
  const auto x = selmask::cpu::full(selmask::shape{2, 3, 4, 4}, 1.0f);
  const auto r = p.forward(x);
  // all channels start kept: Q is 1 and the output equals the input
  if (r.q != 1.0 || selmask::cpu::sum(r.output) != 96.0) {
    std::printf("consumer FAILED: q=%f sum=%f\n", r.q, selmask::cpu::sum(r.output));
    return 1;
  }
  std::printf("consumer ok\n");
  return 0;
}
