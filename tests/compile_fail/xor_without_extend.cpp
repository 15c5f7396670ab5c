// must not compile: an xOr-mask with no versions to choose from
#include <selmask/selmask.hpp>
int main() {
  using pipe = selmask::pipeline<selmask::xor_mask<selmask::channel>>;
  pipe::on<selmask::cpu> p(selmask::shape{3, 8, 8});
}
