// must not compile: a block granularity with a zero extent
#include <selmask/selmask.hpp>
int main() {
  using pipe = selmask::pipeline<selmask::any_mask<selmask::block<0, 4>>>;
  pipe::on<selmask::cpu> p(selmask::shape{1, 8, 8});
}
