// must not compile: extend on data that already has versions
#include <selmask/selmask.hpp>
int main() {
  using ext = selmask::extend<selmask::identity_versions<2>>;
  using pipe = selmask::pipeline<ext, ext, selmask::merge<selmask::sum>>;
  pipe::on<selmask::cpu> p(selmask::shape{3, 8, 8});
}
