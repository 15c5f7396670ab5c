// must not compile: a JPEG quality outside 1..100
#include <selmask/ops/jpeg.hpp>
#include <selmask/selmask.hpp>
int main() {
  using pipe = selmask::pipeline<selmask::extend<selmask::jpeg_versions<90, 101>>,
                                 selmask::xor_mask<selmask::channel>, selmask::merge<selmask::sum>>;
  pipe::on<selmask::cpu> p(selmask::shape{1, 8, 8});
}
