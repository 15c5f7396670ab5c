// Must not compile: the libtorch headers after Catch2 would let glog's CHECK replace Catch2's.
#include <catch2/catch.hpp>

#include <selmask/libtorch/aten.hpp>

int main() { return 0; }
