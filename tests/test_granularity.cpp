// Logit shapes of every granularity, for any- and xOr-masks, on odd and non-square sizes.
#include "support.hpp"

using namespace selmask;
using namespace selmask_test;

namespace {
template <class B, class Mask>
shape logits_shape(const shape& sample) {
  typename pipeline<Mask>::template on<B> p(sample);
  return B::shape_of(p.template stage<0>().logits());
}
template <class B, class G>
shape xor_logits_shape(const shape& sample) {
  using pipe = pipeline<extend<identity_versions<4>>, xor_mask<G>, merge<sum>>;
  typename pipe::template on<B> p(sample);
  return B::shape_of(p.template stage<1>().logits());
}
} // namespace

TEMPLATE_LIST_TEST_CASE("granularity: any-mask logits have the shape of the cell grid", "[granularity]",
                        backends) {
  using B = TestType;
  const shape s{3, 5, 7};
  CHECK(logits_shape<B, any_mask<channel>>(s) == shape{1, 3, 1, 1});
  CHECK(logits_shape<B, any_mask<pixel>>(s) == shape{1, 1, 5, 7});
  CHECK(logits_shape<B, any_mask<subpixel>>(s) == shape{1, 3, 5, 7});
  CHECK(logits_shape<B, any_mask<block<2, 3>>>(s) == shape{1, 3, 3, 3});
  CHECK(logits_shape<B, any_mask<block<2, 3, all_channels>>>(s) == shape{1, 1, 3, 3});
  CHECK(logits_shape<B, any_mask<block<5, 7>>>(s) == shape{1, 3, 1, 1});
  CHECK(logits_shape<B, any_mask<version>>(s) == shape{1, 1, 1, 1});
  // non-square, blocks that do not divide
  CHECK(logits_shape<B, any_mask<block<5, 6>>>(shape{1, 28, 20}) == shape{1, 1, 6, 4});
  CHECK(logits_shape<B, any_mask<pixel>>(shape{1, 1, 1}) == shape{1, 1, 1, 1});
}

TEMPLATE_LIST_TEST_CASE("granularity: xOr-mask logits have one row per version", "[granularity]", backends) {
  using B = TestType;
  const shape s{3, 5, 7};
  CHECK(xor_logits_shape<B, channel>(s) == shape{4, 3, 1, 1});
  CHECK(xor_logits_shape<B, pixel>(s) == shape{4, 1, 5, 7});
  CHECK(xor_logits_shape<B, subpixel>(s) == shape{4, 3, 5, 7});
  CHECK(xor_logits_shape<B, block<2, 3>>(s) == shape{4, 3, 3, 3});
  CHECK(xor_logits_shape<B, block<4, 4, all_channels>>(s) == shape{4, 1, 2, 2});
  CHECK(xor_logits_shape<B, version>(s) == shape{4, 1, 1, 1});
}

TEST_CASE("granularity: every value of a sample belongs to exactly one cell", "[granularity]") {
  const auto check = [](const cell_geometry& g) {
    std::vector<std::size_t> count(g.cells(), 0);
    for (std::size_t i = 0; i < g.values(); ++i) {
      ++count[g.cell_of(i)];
    }
    for (std::size_t k = 0; k < g.cells(); ++k) {
      REQUIRE(count[k] == g.cell_size(k));
      REQUIRE(count[k] > 0);
    }
  };
  check(make_geometry<channel>(1, 3, 5, 7, true));
  check(make_geometry<pixel>(1, 3, 5, 7, true));
  check(make_geometry<subpixel>(2, 3, 5, 7, false));
  check(make_geometry<block<2, 3>>(1, 3, 5, 7, true));
  check(make_geometry<block<4, 4, all_channels>>(3, 2, 9, 6, true));
  check(make_geometry<block<4, 4, all_channels>>(3, 2, 9, 6, false));
  check(make_geometry<version>(1, 3, 5, 7, true));
}

TEMPLATE_LIST_TEST_CASE("granularity: a block larger than the input is rejected with its sizes",
                        "[granularity]", backends) {
  using B = TestType;
  using pipe = pipeline<any_mask<block<8, 8>>>;
  CHECK_THROWS_AS(pipe::on<B>(shape{3, 5, 7}), shape_error);
  CHECK_THROWS_WITH(pipe::on<B>(shape{3, 5, 7}), Catch::Contains("8x8") && Catch::Contains("5x7"));
}
