// must not compile: the pipeline ends with versions the network cannot take
#include <selmask/selmask.hpp>
int main() {
  using pipe =
    selmask::pipeline<selmask::extend<selmask::identity_versions<2>>, selmask::xor_mask<selmask::channel>>;
  pipe::on<selmask::cpu> p(selmask::shape{3, 8, 8});
}
