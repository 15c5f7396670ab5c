// The packing server (transfer/server.hpp) started in-process on 127.0.0.1 at a free port, and
// its client (transfer/pack_client.hpp):
//  - the body of a packed fetch equals `pack` of the stored bytes in memory, and equals the bytes
//    picked out by hand (kept pixels of each sample in ascending order), for a named plan file, a
//    plan sent as JSON, a plan of two streams and per-sample bitmaps;
//  - plain GET and Range requests return the file's bytes (range fetches of a plan equal `pack`);
//  - bad requests (truncated and oversized bitmaps, bodies over the limits, an unknown plan, paths
//    outside the root, malformed HTTP, an oversized header) get the 4xx named, with a message, and
//    the next request on a new connection succeeds;
//  - 16 concurrent clients get correct payloads; two requests on one connection are both answered;
//  - the predicted wire bytes of a packed fetch are within 1 % of the bytes counted.
#include "support.hpp"

#include <selmask/mask/dynamic.hpp>
#include <selmask/nn/dense.hpp>
#include <selmask/nn/sequential.hpp>
#include <selmask/transfer/dynamic.hpp>
#include <selmask/transfer/pack_client.hpp>
#include <selmask/transfer/server.hpp>
#include <selmask/transfer/transfer.hpp>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

using namespace selmask;
using namespace selmask_test;
namespace tr = selmask::transfer;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t n_samples = 120;

std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 r(seed);
  std::vector<std::byte> b(n);
  for (auto& x : b) {
    x = static_cast<std::byte>(r() & 0xff);
  }
  return b;
}

void write_bytes(const fs::path& p, const std::vector<std::byte>& b) {
  io::write_file_atomically(p, std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

std::vector<float> keep_exactly(std::size_t cells, std::size_t k, std::mt19937_64& r) {
  std::vector<float> v(cells, 0.0f);
  for (std::size_t n = 0; n < k;) {
    const std::size_t i = r() % cells;
    if (v[i] == 0.0f) {
      v[i] = 1.0f;
      ++n;
    }
  }
  return v;
}

/// The kept pixels of each sample of a 1×28×28 uint8 band-sequential array, in ascending pixel
/// order: the payload by definition, without the library.
std::vector<std::byte> by_hand(const std::vector<std::byte>& data,
                               const std::vector<std::vector<float>>& keep, std::size_t first) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i < keep.size(); ++i) {
    for (std::size_t k = 0; k < 784; ++k) {
      if (keep[i][k] == 1.0f) {
        out.push_back(data[(first + i) * 784 + k]);
      }
    }
  }
  return out;
}

/// Sends `request` on a new connection to 127.0.0.1:port and returns everything read until the
/// server closes (or 5 s pass).
std::string raw_exchange(unsigned short port, const std::string& request, bool half_close = false) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  if (half_close) {
    ::shutdown(fd, SHUT_WR);
  }
  std::string got;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      break;
    }
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return got;
}

struct fixture {
  temp_dir root_dir;
  temp_dir outside_dir;
  fs::path root = root_dir.path;
  fs::path outside = outside_dir.path;
  tr::storage s{{1, 28, 28}, n_samples, tr::dtype::uint8, tr::storage_layout::band_sequential(), 1};
  cell_geometry g = make_geometry<pixel>(1, 1, 28, 28, true);
  std::vector<std::byte> data = random_bytes(n_samples * 784, 7);
  std::mt19937_64 r{11};
  std::vector<float> keep = keep_exactly(784, 39, r);
  tr::plan p = tr::plan::from_masks({{g, keep}}, s);

  fixture() {
    write_bytes(root / "data.raw", data);
    fs::create_directories(root / "plans");
    tr::save_plan(p, root / "plans" / "q05.plan.json");
    write_bytes(outside / "secret.raw", random_bytes(100, 3));
    fs::create_symlink(outside / "secret.raw", root / "escape.raw");
  }
  [[nodiscard]] tr::packed_source source(const tr::pack_server& srv,
                                         std::string plan_file = "plans/q05.plan.json") const {
    return {srv.url(), {"data.raw"}, std::move(plan_file)};
  }
};

/// Status and body of one request with a fresh client (a new connection).
std::pair<long, std::string> ask(const std::string& method, const std::string& url,
                                 std::string_view body = {}) {
  tr::http_client c;
  auto r = c.exchange(method, url, body, 1 << 20);
  return {r.status, r.body};
}

} // namespace

TEST_CASE("pack server: a named plan and a plan sent as JSON answer pack's bytes", "[server][wire]") {
  fixture f;
  tr::pack_server srv(f.root);
  tr::http_client client;
  const std::vector<std::byte> truth = tr::pack(f.p, f.data);
  REQUIRE(truth == by_hand(f.data, std::vector<std::vector<float>>(n_samples, f.keep), 0));
  const tr::fetched_payload named = tr::fetch_packed(client, f.p, f.source(srv));
  CHECK(named.payload == truth);
  CHECK(named.wire.requests == 1);
  CHECK(named.wire.body_bytes == truth.size());
  const tr::fetched_payload posted = tr::fetch_packed(client, f.p, f.source(srv, ""));
  CHECK(posted.payload == truth);
  // another layout and dtype, and a plan of two streams (an xOr-mask picking a version per pixel)
  tr::storage s2{{3, 8, 8}, 5, tr::dtype::uint16, tr::storage_layout::pixel_interleaved(), 2};
  const cell_geometry gx = make_geometry<pixel>(2, 3, 8, 8, false);
  std::vector<float> pick(gx.cells(), 0.0f);
  for (std::size_t k = 0; k < 64; ++k) {
    pick[(f.r() % 2) * 64 + k] = 1.0f;
  }
  const tr::plan px = tr::plan::from_masks({{gx, pick}}, s2);
  const auto v0 = random_bytes(s2.stream_bytes(), 21);
  const auto v1 = random_bytes(s2.stream_bytes(), 22);
  write_bytes(f.root / "v0.raw", v0);
  write_bytes(f.root / "v1.raw", v1);
  tr::save_plan(px, f.root / "px.plan.json");
  const std::span<const std::byte> streams[2] = {v0, v1};
  const tr::fetched_payload two =
    tr::fetch_packed(client, px, {srv.url(), {"v0.raw", "v1.raw"}, "px.plan.json"});
  CHECK(two.payload == tr::pack(px, std::span<const std::span<const std::byte>>(streams)));
}

TEST_CASE("pack server: per-sample bitmaps answer pack of each sample with its own mask", "[server][wire]") {
  fixture f;
  tr::pack_server srv(f.root);
  tr::http_client client;
  const std::size_t first = 10;
  const std::size_t n = 50;
  std::vector<std::vector<float>> keep;
  std::vector<std::byte> truth;
  tr::storage one = f.s;
  one.samples = 1;
  for (std::size_t i = 0; i < n; ++i) {
    keep.push_back(keep_exactly(784, 1 + f.r() % 120, f.r));
    const tr::plan pi = tr::plan::from_masks({{f.g, keep.back()}}, one);
    const auto part = tr::pack(pi, std::span<const std::byte>(f.data).subspan((first + i) * 784, 784));
    truth.insert(truth.end(), part.begin(), part.end());
  }
  REQUIRE(truth == by_hand(f.data, keep, first));
  const std::vector<std::uint8_t> bits = tr::selection_bitmaps(f.g, keep);
  REQUIRE(bits.size() == n * 98);
  const tr::fetched_payload got = tr::fetch_selected(client, f.p, bits, f.source(srv), first);
  CHECK(got.payload == truth);
  // unpacked: each sample's kept pixels as floats, the others 0 (by hand)
  const std::vector<float> x = tr::unpack_selected(f.p, bits, got.payload);
  REQUIRE(x.size() == n * 784);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < 784; ++k) {
      const float want =
        keep[i][k] == 1.0f ? static_cast<float>(std::to_integer<int>(f.data[(first + i) * 784 + k])) : 0.0f;
      differ += x[i * 784 + k] != want ? 1 : 0;
    }
  }
  CHECK(differ == 0);
  CHECK_THROWS_AS(
    tr::unpack_selected(f.p, bits, std::span<const std::byte>(got.payload).first(got.payload.size() - 1)),
    shape_error);
  // the bitmaps are counted once as sent, with a request line and headers of a few hundred bytes
  CHECK(got.wire.request_bytes > bits.size() + 100);
  CHECK(got.wire.request_bytes < bits.size() + 600);
}

TEST_CASE("pack server: plain GET and Range as a file server, range fetches of a plan", "[server][wire]") {
  fixture f;
  tr::pack_server srv(f.root);
  tr::http_client client;
  const tr::fetched_payload whole = client.download_whole(srv.url("/data.raw"));
  CHECK(whole.payload == f.data);
  tr::http_client ranges(tr::http_options{.strategy = tr::range_strategy::per_range});
  CHECK(ranges.fetch_payload(f.p, srv.url("/data.raw")).payload == tr::pack(f.p, f.data));
  // multi-range requests (multipart/byteranges): plain and coalesced fetches give pack's bytes,
  // and the client's transport model, probed from this server, predicts their bytes
  const tr::wire_comparison c = tr::compare_wire(f.p, srv.url("/data.raw"));
  CHECK(c.plain.range_bytes == f.p.payload_bytes());
  CHECK(c.plain.requests > 1); // more ranges than fit one Range header
  for (const auto& [counted, predicted] :
       {std::pair{c.plain, c.plain_predicted}, std::pair{c.coalesced, c.coalesced_predicted},
        std::pair{c.full, c.full_predicted}}) {
    CHECK(std::abs(static_cast<double>(predicted.total()) - static_cast<double>(counted.total())) <=
          0.01 * static_cast<double>(counted.total()));
  }
  tr::http_client multi;
  CHECK(multi.fetch_payload(f.p, srv.url("/data.raw")).payload == tr::pack(f.p, f.data));
  const std::string two = raw_exchange(
    srv.port(), "GET /data.raw HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1,5-6\r\nConnection: close\r\n\r\n");
  CHECK(two.rfind("HTTP/1.1 206", 0) == 0);
  CHECK(two.find("multipart/byteranges; boundary=") != std::string::npos);
  CHECK(two.find("Content-Range: bytes 5-6/" + std::to_string(f.data.size())) != std::string::npos);
  const std::string got = raw_exchange(
    srv.port(), "GET /data.raw HTTP/1.1\r\nHost: x\r\nRange: bytes=784-787\r\nConnection: close\r\n\r\n");
  CHECK(got.rfind("HTTP/1.1 206", 0) == 0);
  CHECK(got.find("Content-Range: bytes 784-787/" + std::to_string(f.data.size())) != std::string::npos);
  CHECK(got.substr(got.size() - 4) == std::string(reinterpret_cast<const char*>(f.data.data()) + 784, 4));
  const std::string past =
    raw_exchange(srv.port(), "GET /data.raw HTTP/1.1\r\nHost: x\r\nRange: bytes=999999-\r\n"
                             "Connection: close\r\n\r\n");
  CHECK(past.rfind("HTTP/1.1 416", 0) == 0);
}

TEST_CASE("pack server: bad requests get a 4xx with a message, the next request succeeds", "[server][wire]") {
  fixture f;
  tr::server_options opt;
  opt.max_body_bytes = 64 * 1024;
  opt.max_bitmap_bytes = 50 * 98;
  opt.max_header_bytes = 2048;
  tr::pack_server srv(f.root, opt);
  const cell_geometry blocks = make_geometry<block<4, 4>>(1, 1, 28, 28, true);
  tr::save_plan(tr::plan::from_masks({{blocks, std::vector<float>(49, 1.0f)}}, f.s),
                f.root / "blocks.plan.json");
  const std::string sel = srv.url("/select?file=data.raw&plan=plans/q05.plan.json&first=0&count=40");
  const std::string good = tr::packed_url(f.source(srv));
  const auto next_succeeds = [&] {
    tr::http_client c;
    CHECK(tr::fetch_packed(c, f.p, f.source(srv)).payload == tr::pack(f.p, f.data));
  };
  struct bad {
    std::string what, method, url, body;
    long status;
    std::string message;
  };
  const std::vector<bad> cases = {
    {"truncated bitmaps", "POST", sel, std::string(40 * 98 - 1, '\0'), 400, "truncated bitmaps"},
    {"oversized bitmaps", "POST", sel, std::string(40 * 98 + 1, '\0'), 413, "oversized bitmaps"},
    {"bitmaps over the limit", "POST", srv.url("/select?file=data.raw&plan=plans/q05.plan.json&count=51"),
     std::string(51 * 98, '\0'), 413, "the limit is"},
    {"a body over the limit", "POST", srv.url("/pack?file=data.raw"), std::string(65 * 1024, '{'), 413,
     "limit"},
    {"bits past the last cell", "POST", srv.url("/select?file=data.raw&plan=blocks.plan.json&count=1"),
     std::string(6, '\0') + std::string(1, '\x02'), 400, "past the last cell"}, // 49 cells: bit 49 set
    {"samples past the end", "POST",
     srv.url("/select?file=data.raw&plan=plans/q05.plan.json&first=100&count=21"), std::string(21 * 98, '\0'),
     400, "past the 120 samples"},
    {"a count that is not a number", "POST",
     srv.url("/select?file=data.raw&plan=plans/q05.plan.json&count=x"), "", 400, "'count' is not a number"},
    {"bitmaps without a plan file", "POST", srv.url("/select?file=data.raw"), "", 400, "/select needs plan="},
    {"an unknown plan", "GET", srv.url("/pack?file=data.raw&plan=plans/nope.json"), "", 404, "no plan"},
    {"a plan that is not JSON", "POST", srv.url("/pack?file=data.raw"), "not json", 400, "JSON"},
    {"an unknown file", "GET", srv.url("/pack?file=nope.raw&plan=plans/q05.plan.json"), "", 404, "no file"},
    {"a '..' in the file", "GET", srv.url("/pack?file=../x/secret.raw&plan=plans/q05.plan.json"), "", 403,
     "'..'"},
    {"an absolute file", "GET", srv.url("/pack?file=/etc/passwd&plan=plans/q05.plan.json"), "", 403,
     "absolute"},
    {"a symlink out of the root", "GET", srv.url("/escape.raw"), "", 403, "outside the root"},
    {"an encoded '..' in the path", "GET", srv.url("/%2e%2e/etc/passwd"), "", 403, "'..'"},
    {"a file of another size", "GET", srv.url("/pack?file=plans/q05.plan.json&plan=plans/q05.plan.json"), "",
     400, "bytes, the plan's storage holds"},
    {"no file", "GET", srv.url("/pack?plan=plans/q05.plan.json"), "", 400, "no file="},
    {"an unknown parameter", "GET", good + "&colour=red", "", 400, "unknown parameter 'colour'"},
    {"a wrong method", "POST", srv.url("/data.raw"), "x", 405, "method POST"},
  };
  for (const bad& c : cases) {
    INFO(c.what);
    const auto [status, body] = ask(c.method, c.url, c.body);
    CHECK(status == c.status);
    CHECK(body.find(c.message) != std::string::npos);
    next_succeeds();
  }
  const auto raw = [&](const std::string& what, const std::string& request, const std::string& status) {
    INFO(what);
    const std::string got = raw_exchange(srv.port(), request, true);
    CHECK(got.rfind("HTTP/1.1 " + status, 0) == 0);
    CHECK(got.find("selmask pack server: ") != std::string::npos);
    next_succeeds();
  };
  raw("not HTTP", "THIS IS NOT HTTP AT ALL\r\n\r\n", "400");
  raw("a bad header line", "GET /data.raw HTTP/1.1\r\nHost x\r\n\r\n", "400");
  raw("an oversized header",
      "GET /data.raw HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n", "431");
  raw("a bad Content-Length", "POST /pack?file=data.raw HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
      "400");
}

TEST_CASE("pack server: 16 concurrent clients, keep-alive", "[server][wire]") {
  fixture f;
  tr::pack_server srv(f.root);
  const std::vector<std::byte> truth = tr::pack(f.p, f.data);
  std::vector<std::vector<float>> keep(n_samples);
  for (auto& k : keep) {
    k = keep_exactly(784, 20, f.r);
  }
  const std::vector<std::uint8_t> bits = tr::selection_bitmaps(f.g, keep);
  const std::vector<std::byte> selected = by_hand(f.data, keep, 0);
  std::atomic<int> right{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 16; ++t) {
    clients.emplace_back([&] {
      try {
        tr::http_client c;
        for (int i = 0; i < 8; ++i) {
          const bool ok = i % 2 == 0 ? tr::fetch_packed(c, f.p, f.source(srv)).payload == truth
                                     : tr::fetch_selected(c, f.p, bits, f.source(srv)).payload == selected;
          (ok ? right : wrong) += 1;
        }
      } catch (const std::exception&) {
        wrong += 1;
      }
    });
  }
  for (auto& t : clients) {
    t.join();
  }
  CHECK(wrong == 0);
  CHECK(right == 16 * 8);
  // two requests on one connection (HTTP/1.1 keep-alive): both answered, then the server closes
  const std::string one = "GET /data.raw HTTP/1.1\r\nHost: x\r\nRange: bytes=0-3\r\n\r\n";
  const std::string got = raw_exchange(srv.port(), one + one, true);
  std::size_t answers = 0;
  for (std::size_t at = got.find("HTTP/1.1 206"); at != std::string::npos;
       at = got.find("HTTP/1.1 206", at + 1)) {
    ++answers;
  }
  CHECK(answers == 2);
}

TEST_CASE("pack server: predicted wire bytes of a packed fetch within 1 % of the counted", "[server][wire]") {
  fixture f;
  tr::pack_server srv(f.root);
  for (std::size_t k : {1, 39, 400, 784}) {
    INFO(k << " pixels kept");
    std::mt19937_64 r(k);
    const tr::plan p = tr::plan::from_masks({{f.g, keep_exactly(784, k, r)}}, f.s);
    tr::save_plan(p, f.root / "k.plan.json");
    tr::http_client c;
    const tr::packed_source src = f.source(srv, "k.plan.json");
    const tr::wire_stats predicted = tr::predict_packed(c, p, src);
    const tr::fetched_payload got = tr::fetch_packed(c, p, src);
    CHECK(got.payload == tr::pack(p, f.data));
    const double err =
      std::abs(static_cast<double>(predicted.total()) - static_cast<double>(got.wire.total()));
    CHECK(err <= 0.01 * static_cast<double>(got.wire.total()));
    CHECK(predicted.total() == got.wire.total()); // exact, in fact
    CHECK(got.wire.body_bytes == p.payload_bytes());
  }
}

TEST_CASE("pack server: a dynamic transfer decided on the client, packed by the server", "[server][wire][dynamic]") {
  fixture f;
  tr::pack_server srv(f.root);
  using linear = nn::sequential<cpu, nn::dense<cpu>>;
  const cell_preview preview = cell_preview::strided(shape{1, 28, 28}, 7);
  linear model(nn::sequential_options{.seed = 4}, nn::dense<cpu>(preview.size(), 784));
  dynamic_mask_options mo;
  mo.fill = -1.0f;
  dynamic_any_mask<cpu, linear> mask(shape{1, 28, 28}, preview, model, mo, 1);
  mask.prior_for_update() = cpu::from_host(shape{784}, random_values(784, -2.0f, 0.5f));
  mask.freeze();
  const float scale = 1.0f / 255.0f;
  const std::size_t first = 7, count = 30;
  std::vector<float> x(count * 784);
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(std::to_integer<unsigned>(f.data[first * 784 + i])) * scale;
  const auto want = cpu::to_host(mask.forward(cpu::from_host(shape{count, 1, 28, 28}, x)));
  const std::vector<double> q = mask.sample_q();

  tr::http_client client;
  const tr::dynamic_fetch got = tr::fetch_dynamic_packed<cpu>(client, f.p, f.source(srv), first, count, mask, scale);
  CHECK(got.values == want); // the masked samples, dropped pixels at the fill value
  CHECK(got.preview_bytes == count * preview.size());
  double q_bytes = 0.0;
  for (double v : q)
    q_bytes += v * 784.0;
  CHECK(static_cast<double>(got.preview_bytes + got.chosen_bytes) == Approx(q_bytes));
  CHECK(got.preview_wire.requests == 1);
  CHECK(got.chosen_wire.requests == 1);
  CHECK(got.preview_wire.body_bytes == got.preview_bytes); // one body, no framing per cell
  CHECK(got.chosen_wire.body_bytes == got.chosen_bytes);
  CHECK(got.chosen_wire.request_bytes > count * 98); // the bitmaps went up
  (void)mask.forward(cpu::from_host(shape{count, 1, 28, 28}, x)); // choose() replaced the masks
  const auto applied = cpu::to_host(mask.applied());
  std::vector<std::size_t> expected;
  for (std::size_t c = 0; c < 784; ++c)
    if (applied[c] > 0.5f)
      expected.push_back(c);
  CHECK(got.kept[0] == expected);
  // a plan whose mask does not have one cell per value is refused
  const tr::plan blocks = tr::plan::from_masks({{make_geometry<block<4, 4>>(1, 1, 28, 28, true),
                                                 std::vector<float>(49, 1.0f)}}, f.s);
  CHECK_THROWS_WITH(tr::fetch_dynamic_packed<cpu>(client, blocks, f.source(srv), 0, 1, mask, scale),
                    Catch::Contains("one cell per value"));
}
