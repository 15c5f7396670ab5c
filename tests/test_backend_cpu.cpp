// The CPU backend's primitives against naive references and hand-computed cases.
#include "support.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace selmask;
using namespace selmask_test;

TEST_CASE("shape: size, str, drop_front, prepend", "[backend]") {
  const shape s{2, 3, 4};
  CHECK(s.rank() == 3);
  CHECK(s.size() == 24);
  CHECK(s.str() == "[2,3,4]");
  CHECK(s.drop_front() == shape{3, 4});
  CHECK(s.prepend(5) == shape{5, 2, 3, 4});
  CHECK_FALSE(s == shape{2, 3});
  CHECK(shape{}.size() == 1);
  CHECK_THROWS_AS((shape{1, 1, 1, 1, 1, 1, 1}), shape_error);
}

TEST_CASE("cpu: from_host / to_host round trip and sizes", "[backend]") {
  const std::vector<float> v{1, 2, 3, 4, 5, 6};
  auto t = cpu::from_host(shape{2, 3}, v);
  CHECK(cpu::to_host(t) == v);
  CHECK(cpu::shape_of(t) == shape{2, 3});
  cpu::reshape(t, shape{3, 2});
  CHECK(cpu::shape_of(t) == shape{3, 2});
  CHECK(cpu::to_host(t) == v);
  CHECK_THROWS_AS(cpu::reshape(t, shape{4, 2}), shape_error);
  CHECK_THROWS_AS(cpu::from_host(shape{2, 2}, v), shape_error);
  CHECK(cpu::sum(t) == Approx(21.0));
}

TEST_CASE("cell_geometry: hand-computed block tiling with edge cells", "[backend]") {
  // a 1x2x5x7 sample tiled by 1x1x2x3 boxes: grid 1x2x3x3, edge boxes 1x2 / 2x1 / 1x1
  const auto g = cell_geometry::make({1, 2, 5, 7}, {1, 1, 2, 3});
  CHECK(g.grid == std::array<std::size_t, 4>{1, 2, 3, 3});
  CHECK(g.cells() == 18);
  CHECK(g.cell_of(0, 0, 0, 0) == 0);
  CHECK(g.cell_of(0, 0, 4, 6) == 8);
  CHECK(g.cell_of(0, 1, 2, 3) == 9 + 3 + 1);
  CHECK(g.cell_size(0) == 6); // full 2x3
  CHECK(g.cell_size(2) == 2); // columns 6..6, rows 0..1: 2x1
  CHECK(g.cell_size(6) == 3); // row 4 only, columns 0..2: 1x3
  CHECK(g.cell_size(8) == 1); // the corner
  std::size_t total = 0;
  for (std::size_t k = 0; k < g.cells(); ++k) {
    total += g.cell_size(k);
  }
  CHECK(total == g.values());
  for (std::size_t i = 0; i < g.values(); ++i) {
    const std::size_t w = i % 7, h = (i / 7) % 5, c = i / 35;
    REQUIRE(g.cell_of(i) == naive_cell(g, 0, c, h, w));
  }
}

namespace {
template <class A, class B>
std::vector<std::pair<A, B>> cartesian(const std::vector<A>& as, const std::vector<B>& bs) {
  std::vector<std::pair<A, B>> out;
  for (const auto& a : as) {
    for (const auto& b : bs) {
      out.emplace_back(a, b);
    }
  }
  return out;
}
} // namespace

TEST_CASE("cpu: copy of a large tensor (split over threads) is exact", "[backend]") {
  const auto x = random_tensor(shape{300, 1, 28, 28});
  cpu::tensor y;
  cpu::copy(x, y);
  REQUIRE(cpu::shape_of(y) == cpu::shape_of(x));
  CHECK(cpu::to_host(y) == cpu::to_host(x));
}

TEST_CASE("cpu: scale_cells and reduce_cells match naive loops", "[backend]") {
  const std::array<std::size_t, 4> dims{2, 3, 5, 7};
  const std::vector<std::array<std::size_t, 4>> blocks{{1, 1, 1, 1}, {2, 1, 5, 7}, {2, 3, 1, 1}, {1, 1, 2, 3},
                                                       {2, 3, 2, 2}, {2, 3, 5, 7}, {1, 2, 4, 5}};
  // 4 samples run on one thread; 200 (42000 values) are split over the pool's threads
  for (const auto& [batch, b] : cartesian(std::vector<std::size_t>{4, 200}, blocks)) {
    CAPTURE(batch, b);
    const auto g = cell_geometry::make(dims, b);
    const shape xs{batch, 2, 3, 5, 7};
    const auto x = random_tensor(xs);
    const auto y = random_tensor(xs);
    const auto cells = random_tensor(g.grid_shape());
    cpu::tensor out;
    cpu::scale_cells(x, cells, g, out);
    const auto ref = naive_scale(cpu::to_host(x), cpu::to_host(cells), g);
    const auto got = cpu::to_host(out);
    for (std::size_t i = 0; i < ref.size(); ++i) {
      REQUIRE(got[i] == ref[i]);
    }
    cpu::tensor red;
    cpu::reduce_cells(x, &y, g, red);
    const auto rref = naive_reduce(cpu::to_host(x), cpu::to_host(y), g);
    const auto rgot = cpu::to_host(red);
    REQUIRE(cpu::shape_of(red) == g.grid_shape());
    for (std::size_t k = 0; k < rref.size(); ++k) {
      REQUIRE(rgot[k] == Approx(rref[k]).margin(1e-4));
    }
    // without a second operand: plain sums
    cpu::reduce_cells(x, nullptr, g, red);
    const auto ones = std::vector<float>(xs.size(), 1.0f);
    const auto sref = naive_reduce(cpu::to_host(x), ones, g);
    for (std::size_t k = 0; k < sref.size(); ++k) {
      REQUIRE(cpu::to_host(red)[k] == Approx(sref[k]).margin(1e-4));
    }
  }
}

TEST_CASE("cpu: grouped softmax, one-hot argmax and softmax backward", "[backend]") {
  // V = 3 groups of K = 2 cells, laid out V x K
  const auto w = cpu::from_host(shape{3, 2}, std::vector<float>{1, 0, 2, 0, 3, 5});
  cpu::tensor s;
  cpu::softmax_groups(w, 3, 1.0f, s);
  const auto sv = cpu::to_host(s);
  const double z0 = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  CHECK(sv[0] == Approx(std::exp(1.0) / z0));
  CHECK(sv[2] == Approx(std::exp(2.0) / z0));
  CHECK(sv[4] == Approx(std::exp(3.0) / z0));
  const double z1 = 2.0 + std::exp(5.0);
  CHECK(sv[5] == Approx(std::exp(5.0) / z1));
  CHECK(sv[1] == Approx(1.0 / z1));
  cpu::tensor h;
  cpu::argmax_one_hot_groups(s, 3, h);
  CHECK(cpu::to_host(h) == std::vector<float>{0, 0, 0, 0, 1, 1});
  // τ = 0.5 doubles the logits
  cpu::softmax_groups(w, 3, 2.0f, s);
  CHECK(cpu::to_host(s)[4] == Approx(std::exp(6.0) / (std::exp(2.0) + std::exp(4.0) + std::exp(6.0))));
  // backward against the Jacobian written out: d s_v / d w_u = s_v (δ_vu − s_u)/τ
  const auto g = cpu::from_host(shape{3, 2}, std::vector<float>{0.3f, -1, 2, 0.5f, -0.7f, 1});
  cpu::tensor dw;
  cpu::softmax_groups_backward(s, g, 3, 2.0f, dw);
  const auto ss = cpu::to_host(s), gg = cpu::to_host(g), dd = cpu::to_host(dw);
  for (std::size_t k = 0; k < 2; ++k) {
    for (std::size_t u = 0; u < 3; ++u) {
      double ref = 0.0;
      for (std::size_t v = 0; v < 3; ++v) {
        ref += gg[v * 2 + k] * ss[v * 2 + k] * ((v == u ? 1.0 : 0.0) - ss[u * 2 + k]) * 2.0;
      }
      CHECK(dd[u * 2 + k] == Approx(ref).margin(1e-6));
    }
  }
}

TEST_CASE("cpu: sum_versions / repeat_versions (weighted)", "[backend]") {
  const auto x = cpu::from_host(shape{2, 3, 2}, std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  cpu::tensor y;
  cpu::sum_versions(x, nullptr, y);
  CHECK(cpu::shape_of(y) == shape{2, 2});
  CHECK(cpu::to_host(y) == std::vector<float>{9, 12, 27, 30});
  const auto w = cpu::from_host(shape{3}, std::vector<float>{1, 0, -1});
  cpu::sum_versions(x, &w, y);
  CHECK(cpu::to_host(y) == std::vector<float>{-4, -4, -4, -4});
  cpu::tensor r;
  cpu::repeat_versions(y, 3, &w, r);
  CHECK(cpu::shape_of(r) == shape{2, 3, 2});
  CHECK(cpu::to_host(r) == std::vector<float>{-4, -4, 0, 0, 4, 4, -4, -4, 0, 0, 4, 4});
  CHECK_THROWS_AS(cpu::repeat_versions(y, 2, &w, r), shape_error);
}

TEST_CASE("cpu: gather and scatter are inverse on the selected indices", "[backend]") {
  const auto x = random_tensor(shape{3, 4});
  const std::vector<std::size_t> idx{0, 5, 6, 11};
  cpu::tensor p;
  cpu::gather(x, idx, p);
  auto back = cpu::zeros(shape{3, 4});
  cpu::scatter(p, idx, back);
  const auto xv = cpu::to_host(x), bv = cpu::to_host(back);
  for (std::size_t i = 0; i < 12; ++i) {
    const bool selected = std::find(idx.begin(), idx.end(), i) != idx.end();
    CHECK(bv[i] == (selected ? xv[i] : 0.0f));
  }
  const std::vector<std::size_t> bad{12};
  CHECK_THROWS_AS(cpu::gather(x, bad, p), shape_error);
}

TEST_CASE("cpu: all_finite sees NaN and infinity", "[backend]") {
  auto t = cpu::full(shape{5}, 1.0f);
  CHECK(cpu::all_finite(t));
  t.data()[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK_FALSE(cpu::all_finite(t));
  t.data()[3] = std::numeric_limits<float>::infinity();
  CHECK_FALSE(cpu::all_finite(t));
}

TEST_CASE("cpu_parallel::pool: every index once, exceptions, nested loops", "[backend]") {
  selmask::cpu_parallel::pool p(3);
  REQUIRE(p.size() == 3);
  SECTION("parts cover [0, n) exactly once, for many sizes") {
    for (std::size_t n : {1u, 2u, 3u, 7u, 1000u}) {
      std::vector<std::atomic<int>> hits(n);
      std::atomic<int> calls{0};
      p.parallel_for(n, 1, [&](std::size_t b, std::size_t e) {
        calls.fetch_add(1);
        for (std::size_t i = b; i < e; ++i)
          hits[i].fetch_add(1);
      });
      for (std::size_t i = 0; i < n; ++i)
        REQUIRE(hits[i].load() == 1);
      CHECK(calls.load() == static_cast<int>(std::min<std::size_t>(n, 3)));
    }
  }
  SECTION("a grain larger than the loop keeps it on one part") {
    std::atomic<int> calls{0};
    p.parallel_for(100, 1000, [&](std::size_t b, std::size_t e) {
      calls.fetch_add(1);
      CHECK(b == 0);
      CHECK(e == 100);
    });
    CHECK(calls.load() == 1);
  }
  SECTION("an exception in a part reaches the caller, and the pool keeps working") {
    CHECK_THROWS_WITH(p.parallel_for(30, 1,
                                     [](std::size_t b, std::size_t) {
                                       if (b > 0)
                                         throw std::runtime_error("part failed");
                                     }),
                      "part failed");
    std::atomic<std::size_t> sum{0};
    p.parallel_for(30, 1, [&](std::size_t b, std::size_t e) { sum.fetch_add(e - b); });
    CHECK(sum.load() == 30);
  }
  SECTION("a loop inside a part runs serially and completes") {
    std::atomic<std::size_t> total{0};
    p.parallel_for(6, 1, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i)
        p.parallel_for(10, 1, [&](std::size_t b2, std::size_t e2) { total.fetch_add(e2 - b2); });
    });
    CHECK(total.load() == 60);
  }
  SECTION("parallel_each calls every index once, on more than one thread when the items take time") {
    for (std::size_t n : {0u, 1u, 2u, 5u, 64u}) {
      std::vector<std::atomic<int>> hits(n);
      std::mutex m;
      std::set<std::thread::id> ids;
      p.parallel_each(n, [&](std::size_t i) {
        hits[i].fetch_add(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        std::lock_guard g(m);
        ids.insert(std::this_thread::get_id());
      });
      for (std::size_t i = 0; i < n; ++i)
        REQUIRE(hits[i].load() == 1);
      if (n >= 5)
        CHECK(ids.size() > 1);
    }
  }
  SECTION("parallel_each: an exception reaches the caller; inside a part it runs serially") {
    CHECK_THROWS_WITH(p.parallel_each(20,
                                      [](std::size_t i) {
                                        if (i == 7)
                                          throw std::runtime_error("item 7 failed");
                                      }),
                      "item 7 failed");
    std::atomic<std::size_t> total{0};
    p.parallel_each(4, [&](std::size_t) { p.parallel_each(10, [&](std::size_t) { total.fetch_add(1); }); });
    CHECK(total.load() == 40);
  }
}
