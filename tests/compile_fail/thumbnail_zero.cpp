// must not compile: a thumbnail factor of 0
#include <selmask/ops/versions.hpp>
#include <selmask/selmask.hpp>
int main() {
  using pipe = selmask::pipeline<selmask::extend<selmask::thumbnail_versions<2, 0>>,
                                 selmask::xor_mask<selmask::channel>, selmask::merge<selmask::sum>>;
  pipe::on<selmask::cpu> p(selmask::shape{1, 8, 8});
}
