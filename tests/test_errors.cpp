// Bad input gets a selmask error that names what was wrong.
#include "support.hpp"

using namespace selmask;
using namespace selmask_test;
using Catch::Contains;

TEST_CASE("errors: data whose shape does not match the masks", "[errors]") {
  pipeline<any_mask<pixel>>::on<cpu> p(shape{3, 5, 7});
  CHECK_THROWS_AS(p.forward(cpu::zeros(shape{2, 3, 5, 6})), shape_error);
  CHECK_THROWS_WITH(p.forward(cpu::zeros(shape{2, 3, 5, 6})), Contains("[2,3,5,6]") && Contains("[3,5,7]"));
  CHECK_THROWS_AS(p.forward(cpu::zeros(shape{3, 5, 7})), shape_error);
  CHECK_THROWS_WITH(p.stage<0>().set_logits(cpu::zeros(shape{1, 1, 7, 5})), Contains("set_logits"));
  p.forward(cpu::zeros(shape{2, 3, 5, 7}));
  CHECK_THROWS_AS(p.backward(cpu::zeros(shape{4, 3, 5, 7}), 0.0f), shape_error);
  CHECK_THROWS_AS((pipeline<any_mask<pixel>>::on<cpu>(shape{5, 7})), shape_error);
  CHECK_THROWS_AS((pipeline<any_mask<pixel>>::on<cpu>(shape{0, 5, 7})), shape_error);
}

TEST_CASE("errors: an empty batch", "[errors]") {
  pipeline<any_mask<channel>>::on<cpu> p(shape{3, 5, 7});
  CHECK_THROWS_WITH(p.forward(cpu::zeros(shape{0, 3, 5, 7})), Contains("empty batch"));
}

TEST_CASE("errors: temperatures that are not positive", "[errors]") {
  any_mask<pixel> cfg;
  cfg.tau = 0.0f;
  CHECK_THROWS_AS((pipeline<any_mask<pixel>>::on<cpu>(shape{1, 4, 4}, 0, cfg)), value_error);
  CHECK_THROWS_WITH((pipeline<any_mask<pixel>>::on<cpu>(shape{1, 4, 4}, 0, cfg)), Contains("tau"));
  pipeline<any_mask<pixel>>::on<cpu> p(shape{1, 4, 4});
  CHECK_THROWS_AS(p.set_tau(-1.0f), value_error);
  CHECK_THROWS_AS(p.set_tau(std::numeric_limits<float>::quiet_NaN()), value_error);
  CHECK(p.stage<0>().tau() == 1.0f); // unchanged by the rejected calls
}

TEST_CASE("errors: NaN in logits or inputs", "[errors]") {
  pipeline<any_mask<pixel>>::on<cpu> p(shape{1, 4, 4});
  auto& m = p.stage<0>();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto w = cpu::full(shape{1, 1, 4, 4}, 1.0f);
  w.data()[5] = nan;
  CHECK_THROWS_AS(m.set_logits(w), value_error);
  auto x = cpu::full(shape{2, 1, 4, 4}, 1.0f);
  x.data()[7] = nan;
  CHECK_THROWS_WITH(p.forward(x), Contains("input contains NaN"));
  // an optimiser that wrote NaN into the logits: the next forward says so
  m.logits_for_update().data()[0] = nan;
  CHECK_THROWS_WITH(p.forward(cpu::full(shape{2, 1, 4, 4}, 1.0f)), Contains("logits contain NaN"));
}

TEST_CASE("errors: lambda must be finite and non-negative", "[errors]") {
  pipeline<any_mask<pixel>>::on<cpu> p(shape{1, 4, 4});
  const auto x = cpu::full(shape{2, 1, 4, 4}, 1.0f);
  p.forward(x);
  CHECK_THROWS_WITH(p.backward(x, -0.1f), Contains("lambda"));
  CHECK_THROWS_AS(p.backward(x, std::numeric_limits<float>::infinity()), value_error);
}

TEST_CASE("errors: cost tables, merge weights and initial versions of the wrong size", "[errors]") {
  any_mask<channel, st_sigmoid, table_cost> cfg;
  cfg.cost = table_cost{{1.0f, 2.0f}};
  CHECK_THROWS_WITH((pipeline<any_mask<channel, st_sigmoid, table_cost>>::on<cpu>(shape{3, 4, 4}, 0, cfg)),
                    Contains("2 costs given"));
  cfg.cost = table_cost{{1.0f, -2.0f, 1.0f}};
  CHECK_THROWS_AS((pipeline<any_mask<channel, st_sigmoid, table_cost>>::on<cpu>(shape{3, 4, 4}, 0, cfg)),
                  value_error);
  using wp = pipeline<extend<identity_versions<3>>, merge<weighted_sum>>;
  CHECK_THROWS_WITH((wp::on<cpu>(shape{1, 4, 4}, 0, {}, merge<weighted_sum>{{{1.0f, 2.0f}}})),
                    Contains("2 weights for 3 versions"));
  using xp = pipeline<extend<identity_versions<3>>, xor_mask<pixel>, merge<sum>>;
  xor_mask<pixel> xm;
  xm.initial_version = 3;
  CHECK_THROWS_WITH((xp::on<cpu>(shape{1, 4, 4}, 0, {}, xm, {})), Contains("initial_version 3"));
}
