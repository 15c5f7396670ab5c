// must not compile: something that is not a stage in a pipeline
#include <selmask/selmask.hpp>
int main() {
  using pipe = selmask::pipeline<selmask::any_mask<selmask::pixel>, int>;
  pipe::on<selmask::cpu> p(selmask::shape{3, 8, 8});
}
