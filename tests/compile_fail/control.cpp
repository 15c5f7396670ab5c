// must compile: the well-formed twin of the compile-fail tests
#include <selmask/selmask.hpp>
int main() {
  using pipe =
    selmask::pipeline<selmask::extend<selmask::identity_versions<2>>, selmask::xor_mask<selmask::channel>,
                      selmask::merge<selmask::sum>, selmask::any_mask<selmask::block<4, 4>>>;
  pipe::on<selmask::cpu> p(selmask::shape{3, 8, 8});
}
