// must not compile: a merge with nothing to merge
#include <selmask/selmask.hpp>
int main() {
  using pipe = selmask::pipeline<selmask::any_mask<selmask::pixel>, selmask::merge<selmask::sum>>;
  pipe::on<selmask::cpu> p(selmask::shape{3, 8, 8});
}
