// must not compile: an any-mask with a categorical surrogate
#include <selmask/selmask.hpp>
int main() {
  using pipe = selmask::pipeline<selmask::any_mask<selmask::pixel, selmask::st_softmax>>;
  pipe::on<selmask::cpu> p(selmask::shape{3, 8, 8});
}
