// The HTTP client against a network that misbehaves: a fault-injecting server on 127.0.0.1
// (tests/fault_server.hpp) drops and resets connections mid-body, stalls, answers 503 and 429
// (with and without Retry-After), labels its parts wrongly and ignores Range; nginx serves https
// with a certificate signed by a CA made for the test (openssl). Every fetched byte is checked
// against the file's own bytes, every retry against what had already arrived, and every retry
// budget against the attempts and the time it took. The retry policy's decisions, Retry-After
// parsing and the missing-range bookkeeping are checked without a server first.
//
// Needs nginx and openssl (Debian packages, scripts/install-deps.sh) for the https case only.
#include <catch2/catch.hpp>

#include "fault_server.hpp"
#include "nginx_server.hpp"
#include "temp_dir.hpp"
#include <selmask/train/baselines.hpp>
#include <selmask/transfer/http.hpp>
#include <selmask/transfer/http_multi.hpp>
#include <selmask/transfer/pack.hpp>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

using namespace selmask;
namespace tr = selmask::transfer;
using selmask::testing::fault;
using selmask::testing::fault_server;
using ms = std::chrono::milliseconds;

namespace {

using span_list = std::vector<std::pair<std::size_t, std::size_t>>; // [first, end)

std::string random_content(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 r(seed);
  std::string s(n, '\0');
  for (char& c : s) {
    c = static_cast<char>(r() & 0xff);
  }
  return s;
}

/// The bytes of `ranges` taken from `content` directly: the truth a fetch is checked against.
std::vector<std::byte> truth(const std::string& content, const std::vector<tr::byte_range>& ranges) {
  std::vector<std::byte> out;
  for (const tr::byte_range& r : ranges) {
    for (std::size_t i = 0; i < r.length; ++i) {
      out.push_back(static_cast<std::byte>(content[r.offset + i]));
    }
  }
  return out;
}

std::vector<std::byte> fetch(tr::http_client& client, const std::string& url,
                             const std::vector<tr::byte_range>& ranges, std::size_t size,
                             tr::wire_stats* wire = nullptr) {
  std::size_t total = 0;
  for (const tr::byte_range& r : ranges) {
    total += r.length;
  }
  std::vector<std::byte> out(total);
  const tr::wire_stats w = client.fetch_ranges_into(url, ranges, size, out);
  if (wire != nullptr) {
    *wire = w;
  }
  return out;
}

/// A Range value "bytes=a-b,c-d" as [first, end) spans.
span_list spans_of(const std::string& range) {
  span_list out;
  REQUIRE(range.rfind("bytes=", 0) == 0);
  std::size_t pos = 6;
  while (pos < range.size()) {
    const std::size_t comma = std::min(range.find(',', pos), range.size());
    const std::string one = range.substr(pos, comma - pos);
    const std::size_t dash = one.find('-');
    out.emplace_back(std::stoull(one.substr(0, dash)), std::stoull(one.substr(dash + 1)) + 1);
    pos = comma + 1;
  }
  return out;
}

std::size_t overlap(const span_list& a, const span_list& b) {
  std::size_t n = 0;
  for (const auto& x : a) {
    for (const auto& y : b) {
      const std::size_t s = std::max(x.first, y.first), e = std::min(x.second, y.second);
      n += s < e ? e - s : 0;
    }
  }
  return n;
}

std::size_t length(const span_list& a) {
  std::size_t n = 0;
  for (const auto& x : a) {
    n += x.second - x.first;
  }
  return n;
}

/// Short timeouts and small, exact delays (no jitter) for tests.
tr::http_options fast(tr::range_strategy strategy = tr::range_strategy::multi_range, int attempts = 4) {
  tr::http_options o;
  o.strategy = strategy;
  o.connect_timeout_ms = 1000;
  o.timeout_ms = 2000;
  o.retry = {.max_attempts = attempts,
             .base_delay = ms(10),
             .max_delay = ms(100),
             .max_retry_time = ms(5000),
             .jitter = 0.0};
  return o;
}

long elapsed_ms(std::chrono::steady_clock::time_point since) {
  return static_cast<long>(std::chrono::duration_cast<ms>(std::chrono::steady_clock::now() - since).count());
}

const std::vector<tr::byte_range> some_ranges{
  {100, 9000}, {20000, 1}, {30000, 3000}, {40000, 10000}, {65000, 536}};
constexpr std::size_t file_bytes = 65536;

} // namespace

TEST_CASE("retry policy: exponential backoff with jitter, bounded by attempts and time", "[faults]") {
  const tr::retry_policy p{.max_attempts = 6,
                           .base_delay = ms(100),
                           .max_delay = ms(500),
                           .max_retry_time = ms(2000),
                           .jitter = 0.0};
  // exact without jitter: 100, 200, 400, then capped at 500
  CHECK(tr::next_retry(p, 1, ms(0), std::nullopt, 0.3).delay == ms(100));
  CHECK(tr::next_retry(p, 2, ms(0), std::nullopt, 0.3).delay == ms(200));
  CHECK(tr::next_retry(p, 3, ms(0), std::nullopt, 0.3).delay == ms(400));
  CHECK(tr::next_retry(p, 4, ms(0), std::nullopt, 0.3).delay == ms(500));
  CHECK(tr::next_retry(p, 5, ms(0), std::nullopt, 0.3).delay == ms(500));
  // the attempt bound
  const tr::retry_decision last = tr::next_retry(p, 6, ms(0), std::nullopt, 0.3);
  CHECK_FALSE(last.retry);
  CHECK_THAT(last.why_not, Catch::Contains("allows 6 attempts"));
  // the time bound: 1800 ms spent, a 400 ms wait would end past 2000
  const tr::retry_decision late = tr::next_retry(p, 3, ms(1800), std::nullopt, 0.0);
  CHECK_FALSE(late.retry);
  CHECK_THAT(late.why_not, Catch::Contains("past the retry time of 2000 ms"));
  CHECK(tr::next_retry(p, 3, ms(1600), std::nullopt, 0.0).retry);
  // Retry-After replaces a shorter backoff, is not cut to max_delay, and ends the retries when it
  // does not fit the retry time
  CHECK(tr::next_retry(p, 1, ms(0), ms(1500), 0.0).delay == ms(1500));
  CHECK(tr::next_retry(p, 4, ms(0), ms(50), 0.0).delay == ms(500));
  const tr::retry_decision far = tr::next_retry(p, 1, ms(0), ms(3600000), 0.0);
  CHECK_FALSE(far.retry);
  CHECK_THAT(far.why_not, Catch::Contains("server asked to wait 3600000 ms"));
  // jitter: d·(1 − jitter·u), so within [d/2, d] for jitter 0.5, and spread
  tr::retry_policy j = p;
  j.jitter = 0.5;
  std::mt19937_64 r(7);
  std::uniform_real_distribution<double> u;
  long lo = 1000, hi = 0;
  for (int i = 0; i < 200; ++i) {
    const long d = static_cast<long>(tr::next_retry(j, 3, ms(0), std::nullopt, u(r)).delay.count());
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  CHECK(lo >= 200);
  CHECK(hi <= 400);
  CHECK(hi - lo > 150);
  // bad policies are named
  CHECK_THROWS_WITH((tr::retry_policy{.max_attempts = 0}.validate()), Catch::Contains("max_attempts"));
  CHECK_THROWS_WITH((tr::retry_policy{.jitter = 1.5}.validate()), Catch::Contains("jitter"));
  CHECK_THROWS_WITH((tr::retry_policy{.base_delay = ms(-1)}.validate()), Catch::Contains("negative"));
  CHECK_THROWS_AS(tr::http_client(tr::http_options{.retry = {.max_attempts = -3}}), value_error);
  CHECK_THROWS_WITH(tr::http_client(tr::http_options{.ca_file = "/nonexistent/ca.pem"}),
                    Catch::Contains("ca_file") && Catch::Contains("/nonexistent/ca.pem"));
  // which statuses are worth another attempt
  for (long s : {408L, 429L, 500L, 502L, 503L, 504L, 599L}) {
    CHECK(tr::retryable_status(s));
  }
  for (long s : {200L, 206L, 400L, 403L, 404L, 416L, 501L, 505L}) {
    CHECK_FALSE(tr::retryable_status(s));
  }
}

TEST_CASE("Retry-After: delay-seconds and the three HTTP-date forms", "[faults]") {
  using clock = std::chrono::system_clock;
  const clock::time_point t0(std::chrono::seconds(784111777)); // Sun, 06 Nov 1994 08:49:37 GMT
  for (const char* form :
       {"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"}) {
    INFO(form);
    const auto d = tr::parse_http_date(form);
    REQUIRE(d);
    CHECK(*d == t0);
    CHECK(tr::parse_retry_after(form, t0 - std::chrono::seconds(90)) == ms(90000));
    CHECK(tr::parse_retry_after(form, t0 + std::chrono::seconds(5)) == ms(0)); // a date past
  }
  CHECK(tr::parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT") ==
        clock::time_point(std::chrono::seconds(1709251199)));
  CHECK(tr::parse_http_date("Mon, 01 Jan 2001 00:00:00 GMT") ==
        clock::time_point(std::chrono::seconds(978307200)));
  CHECK(tr::parse_retry_after("120") == ms(120000));
  CHECK(tr::parse_retry_after(" 0 ") == ms(0));
  for (const char* bad : {"", "soon", "-5", "1.5", "Sun, 06 Foo 1994 08:49:37 GMT",
                          "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT", "06 Nov 1994"}) {
    INFO(bad);
    CHECK_FALSE(tr::parse_retry_after(bad));
  }
}

TEST_CASE("pending_ranges and salvage_parts: what arrived is kept, the rest asked again", "[faults]") {
  const std::string content = random_content(1000, 3);
  // asked: 100-299 (holding wanted 100-149 and 200-299) and 500-599 (wanted whole)
  const std::vector<tr::byte_range> asked{{100, 200}, {500, 100}};
  const std::vector<tr::byte_range> wanted{{100, 50}, {200, 100}, {500, 100}};
  std::vector<std::byte> out(250, std::byte{0});
  tr::pending_ranges todo(asked, wanted, out.data());
  CHECK(todo.missing_bytes() == 250);
  CHECK(todo.next_ask() == std::vector<tr::byte_range>{{100, 200}, {500, 100}});
  // a one-part answer to 100-299 cut after 120 data bytes
  tr::response_head h;
  h.status = 206;
  h.content_range = "bytes 100-299/1000";
  const std::string body = content.substr(100, 120);
  const auto parts = tr::salvage_parts(h, body, 1000);
  REQUIRE(parts.size() == 1);
  CHECK(parts[0].available == 120);
  CHECK(todo.fill(parts, body) == 70); // 100-149 whole, 200-219
  CHECK(todo.missing_bytes() == 180);
  CHECK(todo.next_ask() == std::vector<tr::byte_range>{{220, 80}, {500, 100}});
  // a multipart answer to 220-299,500-599 cut inside the second part's data
  tr::response_head m;
  m.status = 206;
  m.content_type = "multipart/byteranges; boundary=XYZ";
  std::string mb = "\r\n--XYZ\r\nContent-Range: bytes 220-299/1000\r\n\r\n" + content.substr(220, 80) +
                   "\r\n--XYZ\r\nContent-Range: bytes 500-599/1000\r\n\r\n" + content.substr(500, 30);
  const auto mparts = tr::salvage_parts(m, mb, 1000);
  REQUIRE(mparts.size() == 2);
  CHECK(mparts[1].available == 30);
  tr::pending_ranges::check_parts(mparts, todo.next_ask(), false);
  CHECK(todo.fill(mparts, mb) == 110);
  CHECK(todo.next_ask() == std::vector<tr::byte_range>{{530, 70}});
  // the last piece, then every byte is the file's
  tr::response_head last;
  last.content_range = "bytes 530-599/1000";
  const std::string lb = content.substr(530, 70);
  CHECK(todo.fill(tr::salvage_parts(last, lb, 1000), lb) == 70);
  CHECK(todo.empty());
  CHECK(out == truth(content, wanted));
  // cut at every byte of a two-part body: never a wrong byte, never a throw
  const std::string full = "\r\n--XYZ\r\nContent-Range: bytes 10-19/1000\r\n\r\n" + content.substr(10, 10) +
                           "\r\n--XYZ\r\nContent-Range: bytes 40-44/1000\r\n\r\n" + content.substr(40, 5) +
                           "\r\n--XYZ--\r\n";
  for (std::size_t cut = 0; cut <= full.size(); ++cut) {
    std::vector<std::byte> o(15, std::byte{0x5a});
    const std::vector<tr::byte_range> w{{10, 10}, {40, 5}};
    tr::pending_ranges t(w, w, o.data());
    const std::string_view b(full.data(), cut);
    const auto ps = tr::salvage_parts(m, b, 1000);
    const std::size_t got = t.fill(ps, b);
    CHECK(got + t.missing_bytes() == 15);
    const std::vector<std::byte> want = truth(content, w);
    std::size_t right = 0;
    for (std::size_t i = 0; i < 15; ++i) {
      right += o[i] == want[i] ? 1 : 0;
    }
    CHECK(right >= got); // every byte copied is the file's
  }
  // what arrived but cannot be trusted
  tr::response_head other = h;
  other.content_range = "bytes 100-299/999";
  CHECK_THROWS_WITH(tr::salvage_parts(other, body, 1000), Catch::Contains("999") && Catch::Contains("1000"));
  tr::response_head moved = h;
  moved.content_range = "bytes 101-300/1000";
  CHECK_THROWS_WITH(tr::pending_ranges::check_parts(tr::salvage_parts(moved, body, 1000),
                                                    std::vector<tr::byte_range>{{100, 200}}, false),
                    Catch::Contains("wrong Content-Range"));
  // the header limit: "0-9,100-199" is 11 characters
  const std::vector<tr::byte_range> three{{0, 10}, {100, 100}, {1000, 1}};
  CHECK(tr::ranges_fitting(three, 11) == 2);
  CHECK(tr::ranges_fitting(three, 10) == 1);
  CHECK(tr::ranges_fitting(three, 1) == 1); // never none
  CHECK(tr::ranges_fitting(three, 21) == 3);
  CHECK(tr::range_header_value(three).size() - 6 == 21);
  CHECK_THROWS_AS(tr::pending_ranges(std::vector<tr::byte_range>{{0, 10}},
                                     std::vector<tr::byte_range>{{5, 10}}, out.data()),
                  value_error);
}

TEST_CASE("faults: a body cut short (FIN or RST) is resumed with only the missing ranges",
          "[faults][transfer]") {
  const std::string content = random_content(file_bytes, 11);
  fault_server server(content);
  const std::vector<std::byte> want = truth(content, some_ranges);
  for (auto strategy : {tr::range_strategy::multi_range, tr::range_strategy::per_range}) {
    for (auto k : {fault::kind::drop_after, fault::kind::reset_after}) {
      for (std::size_t cut : {std::size_t{0}, std::size_t{50}, std::size_t{2500}, std::size_t{8999}}) {
        INFO((strategy == tr::range_strategy::multi_range ? "multi-range" : "per-range")
             << (k == fault::kind::drop_after ? ", FIN" : ", RST") << " after " << cut << " body bytes");
        server.reset();
        server.push({.k = k, .bytes = cut});
        tr::http_client client(fast(strategy));
        tr::wire_stats w;
        CHECK(fetch(client, server.url(), some_ranges, file_bytes, &w) == want);
        CHECK(w.retries == 1);
        CHECK(w.range_bytes == want.size());
        const auto log = server.log();
        REQUIRE(log.size() >= 2);
        CHECK(log[0].injected == k);
        // the retry asks for exactly what the cut request had asked for and not delivered
        const span_list first = spans_of(log[0].range);
        const span_list again = spans_of(log[1].range);
        CHECK(overlap(again, log[0].delivered) == 0);
        CHECK(length(again) == length(first) - length(log[0].delivered));
        CHECK(overlap(again, first) == length(again));
        CHECK(log.size() == (strategy == tr::range_strategy::per_range ? some_ranges.size() + 1 : 2));
      }
    }
  }
}

TEST_CASE("faults: a stalled transfer times out and only its missing bytes are asked again",
          "[faults][transfer]") {
  const std::string content = random_content(file_bytes, 12);
  fault_server server(content);
  tr::http_options o = fast();
  o.timeout_ms = 200;
  tr::http_client client(o);
  server.push({.k = fault::kind::stall_after, .bytes = 3000});
  const auto t0 = std::chrono::steady_clock::now();
  tr::wire_stats w;
  CHECK(fetch(client, server.url(), some_ranges, file_bytes, &w) == truth(content, some_ranges));
  const long took = elapsed_ms(t0);
  CHECK(took >= 190);
  CHECK(took < 3000);
  CHECK(w.retries == 1);
  const auto log = server.log();
  REQUIRE(log.size() == 2);
  CHECK(overlap(spans_of(log[1].range), log[0].delivered) == 0);
  CHECK(length(log[0].delivered) > 0);
  // a server that stalls every time: each attempt times out, then the policy gives up
  server.reset();
  server.always({.k = fault::kind::stall_after, .bytes = 0});
  o.retry.max_attempts = 3;
  tr::http_client patient(o);
  const auto t1 = std::chrono::steady_clock::now();
  try {
    fetch(patient, server.url(), some_ranges, file_bytes);
    FAIL("a stalled server gave data");
  } catch (const tr::transfer_error& e) {
    CHECK(e.attempts() == 3);
    CHECK_THAT(e.what(), Catch::Contains("gave up after 3 attempts") && Catch::Contains("imed out"));
  }
  CHECK(elapsed_ms(t1) >= 3 * 190);
  CHECK(server.log().size() == 3);
}

TEST_CASE("faults: 503 and 429, with and without Retry-After, then success", "[faults][transfer]") {
  const std::string content = random_content(file_bytes, 13);
  fault_server server(content);
  const std::vector<std::byte> want = truth(content, some_ranges);
  SECTION("503 then 429 without Retry-After: the backoff, 10 then 20 ms") {
    server.push({.k = fault::kind::status, .status = 503});
    server.push({.k = fault::kind::status, .status = 429});
    tr::http_client client(fast());
    tr::wire_stats w;
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(fetch(client, server.url(), some_ranges, file_bytes, &w) == want);
    CHECK(elapsed_ms(t0) >= 30);
    CHECK(w.retries == 2);
    CHECK(server.log().size() == 3);
  }
  SECTION("Retry-After in seconds is waited for") {
    server.push({.k = fault::kind::status, .status = 503, .retry_after = "1"});
    tr::http_client client(fast());
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(fetch(client, server.url(), some_ranges, file_bytes) == want);
    CHECK(elapsed_ms(t0) >= 990);
    CHECK(elapsed_ms(t0) < 2500);
  }
  SECTION("Retry-After as an HTTP-date is waited for") {
    const auto when =
      std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + std::chrono::seconds(2);
    const std::time_t tt = std::chrono::system_clock::to_time_t(when);
    std::tm g{};
    gmtime_r(&tt, &g);
    char date[64];
    REQUIRE(std::strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &g) > 0);
    server.push({.k = fault::kind::status, .status = 429, .retry_after = date});
    tr::http_client client(fast());
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(fetch(client, server.url(), some_ranges, file_bytes) == want);
    CHECK(elapsed_ms(t0) >= 900);
    CHECK(elapsed_ms(t0) < 3000);
  }
  SECTION("a Retry-After past the retry time ends the retries at once") {
    server.push({.k = fault::kind::status, .status = 503, .retry_after = "3600"});
    tr::http_client client(fast());
    try {
      fetch(client, server.url(), some_ranges, file_bytes);
      FAIL("accepted");
    } catch (const tr::transfer_error& e) {
      CHECK(e.attempts() == 1);
      CHECK(e.status() == 503);
      CHECK_THAT(e.what(),
                 Catch::Contains("server asked to wait 3600000 ms") && Catch::Contains("Retry-After: 3600"));
    }
    CHECK(server.log().size() == 1);
  }
}

TEST_CASE("faults: a server that always fails costs a bounded number of attempts, named in the error",
          "[faults][transfer]") {
  const std::string content = random_content(file_bytes, 14);
  fault_server server(content);
  server.always({.k = fault::kind::status, .status = 503});
  {
    tr::http_client client(fast(tr::range_strategy::multi_range, 4)); // waits 10 + 20 + 40 ms
    const auto t0 = std::chrono::steady_clock::now();
    try {
      fetch(client, server.url(), some_ranges, file_bytes);
      FAIL("a 503 was accepted");
    } catch (const tr::transfer_error& e) {
      CHECK(e.attempts() == 4);
      CHECK(e.status() == 503);
      CHECK(e.url() == server.url());
      CHECK(e.range() == "bytes=100-9099,20000-20000,30000-32999,40000-49999,65000-65535");
      CHECK_THAT(e.what(), Catch::Contains("HTTP 503") && Catch::Contains("gave up after 4 attempts") &&
                             Catch::Contains(server.url()) && Catch::Contains("allows 4 attempts"));
    }
    CHECK(elapsed_ms(t0) >= 70);
    CHECK(server.log().size() == 4);
  }
  // the time bound: many attempts allowed, 300 ms of retrying
  server.reset();
  server.always({.k = fault::kind::status, .status = 502});
  tr::http_options o = fast(tr::range_strategy::per_range, 1000);
  o.retry.max_retry_time = ms(300);
  o.retry.max_delay = ms(40);
  tr::http_client client(o);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    fetch(client, server.url(), some_ranges, file_bytes);
    FAIL("a 502 was accepted");
  } catch (const tr::transfer_error& e) {
    CHECK(e.attempts() >= 3); // about 8 on an idle machine: waits of 10, 20, 40, 40, … ms
    CHECK(e.attempts() < 30);
    CHECK(static_cast<std::size_t>(e.attempts()) == server.log().size());
    CHECK_THAT(e.what(), Catch::Contains("past the retry time of 300 ms"));
  }
  CHECK(elapsed_ms(t0) <= 300 + 1500); // the retry time and the last attempt
  // nothing listening: connection refused is retried, then named
  const std::string dead = [] {
    fault_server gone("x");
    return gone.url();
  }();
  tr::http_client refused(fast(tr::range_strategy::multi_range, 3));
  try {
    fetch(refused, dead, some_ranges, file_bytes);
    FAIL("no server, yet data");
  } catch (const tr::transfer_error& e) {
    CHECK(e.attempts() == 3);
    CHECK(e.status() == 0);
    CHECK_THAT(e.what(), Catch::Contains(dead) && Catch::Contains("transfer failed"));
  }
}

TEST_CASE("faults: wrong Content-Range, another size, ignored Range and 404 fail at once",
          "[faults][transfer]") {
  const std::string content = random_content(file_bytes, 15);
  fault_server server(content);
  for (auto strategy : {tr::range_strategy::multi_range, tr::range_strategy::per_range}) {
    INFO((strategy == tr::range_strategy::multi_range ? "multi-range" : "per-range"));
    tr::http_client client(fast(strategy));
    const auto once = [&](fault f, const std::string& url, const std::vector<std::string>& says,
                          const std::vector<tr::byte_range>& ranges = some_ranges) {
      server.reset();
      server.push(f);
      try {
        fetch(client, url, ranges, file_bytes);
        FAIL("a bad answer was accepted");
      } catch (const tr::transfer_error& e) {
        CHECK(e.attempts() == 1);
        for (const std::string& s : says) {
          CHECK_THAT(e.what(), Catch::Contains(s));
        }
      }
      CHECK(server.log().size() == 1); // not retried
    };
    once({.k = fault::kind::wrong_range, .shift = 1}, server.url(), {"wrong Content-Range", "bytes 101-9100"},
         {{100, 9000}, {30000, 3000}}); // the labels stay inside the resource
    once({.k = fault::kind::wrong_range, .shift = 100000}, server.url(), {"reaches past the total length"});
    once({.k = fault::kind::wrong_total, .total = 70000}, server.url(), {"70000", "plan expects 65536"});
    once({.k = fault::kind::ignore_range}, server.url(), {"ignored the Range request"});
    once({.k = fault::kind::status, .status = 501}, server.url(), {"HTTP 501"});
    once({}, server.url("/missing"), {"HTTP 404", "/missing"});
  }
}

TEST_CASE("faults: a whole-resource read, the probe and download_whole survive cut bodies",
          "[faults][transfer]") {
  const std::string content = random_content(file_bytes, 16);
  fault_server server(content);
  // coalescing over every hole turns these ranges into one plain GET of the whole resource
  const std::vector<tr::byte_range> ends{{0, 1000}, {30000, 5000}, {65000, 536}};
  tr::http_options o = fast();
  o.merge = tr::coalescing::holes_up_to(1 << 20);
  tr::http_client client(o);
  server.push({.k = fault::kind::drop_after, .bytes = 0}); // the probe's first request
  CHECK(client.model(server.url(), file_bytes).resource_bytes == file_bytes);
  CHECK(client.probe_wire().retries == 1);
  server.reset();
  server.push({.k = fault::kind::reset_after, .bytes = 12345});
  tr::wire_stats w;
  CHECK(fetch(client, server.url(), ends, file_bytes, &w) == truth(content, ends));
  CHECK(w.retries == 1);
  const auto log = server.log();
  REQUIRE(log.size() == 2);
  CHECK(log[0].range.empty()); // the plain GET
  REQUIRE(log[0].delivered.size() == 1);
  const span_list again = spans_of(log[1].range);
  CHECK(again.front().first == std::max<std::size_t>(log[0].delivered[0].second, 30000));
  CHECK(again.back().second == file_bytes);
  // download_whole: the full download starts over
  server.reset();
  server.push({.k = fault::kind::drop_after, .bytes = 777});
  server.push({.k = fault::kind::status, .status = 500});
  const tr::fetched_payload whole = client.download_whole(server.url());
  CHECK(whole.payload == truth(content, {{0, file_bytes}}));
  CHECK(whole.wire.retries == 2);
}

TEST_CASE("faults: random faults over many requests, every byte the file's", "[faults][transfer]") {
  const std::string content = random_content(1 << 20, 17);
  fault_server server(content);
  std::mt19937_64 r(20200101);
  std::vector<tr::byte_range> ranges;
  for (std::size_t at = 0; at + 4096 < content.size();) {
    const std::size_t len = 1 + r() % 3000;
    ranges.push_back({at, len});
    at += len + 1 + r() % 6000;
  }
  const std::vector<std::byte> want = truth(content, ranges);
  for (auto strategy : {tr::range_strategy::multi_range, tr::range_strategy::per_range}) {
    INFO((strategy == tr::range_strategy::multi_range ? "multi-range" : "per-range"));
    server.reset();
    std::size_t faults = 0;
    for (int i = 0; i < 60; ++i) {
      switch (r() % 5) {
        case 0:
          server.push({.k = fault::kind::drop_after, .bytes = static_cast<std::size_t>(r() % 40000)});
          break;
        case 1:
          server.push({.k = fault::kind::reset_after, .bytes = static_cast<std::size_t>(r() % 40000)});
          break;
        case 2:
          server.push({.k = fault::kind::status, .status = 503, .retry_after = "0"});
          break;
        case 3:
          server.push({.k = fault::kind::status, .status = 429});
          break;
        default:
          server.push({});
          continue;
      }
      ++faults;
    }
    tr::http_options o = fast(strategy, 30);
    o.max_range_header_bytes = 200; // many multi-range requests
    o.retry.base_delay = ms(1);
    o.retry.max_delay = ms(4);
    tr::http_client client(o);
    tr::wire_stats w;
    CHECK(fetch(client, server.url(), ranges, content.size(), &w) == want);
    CHECK(w.range_bytes == want.size());
    const auto log = server.log();
    std::size_t faulted = 0;
    for (const auto& e : log) {
      faulted += e.injected != fault::kind::none ? 1 : 0;
    }
    CHECK(faulted > 10);
    CHECK(w.retries == faulted); // one retry per fault, none for a clean answer
    CHECK(w.requests == log.size());
  }
}

namespace {

/// A port nothing listens on now (for nginx's https listener).
std::uint16_t free_port() {
  fault_server probe("x");
  const std::string u = probe.url();
  return static_cast<std::uint16_t>(std::stoi(u.substr(u.rfind(':') + 1)));
}

/// A CA (`ca.pem`) and a certificate for 127.0.0.1 signed by it (`server.pem`, `server.key`), by
/// the openssl command line.
void make_certificates(const selmask_test::temp_dir& d, const std::string& stem) {
  const std::string p = (d.path / stem).string();
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  d.put(stem + "ext.cnf",
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  const std::string cmd =
    "openssl req -x509" + ec + " -keyout " + p + "ca.key -out " + p +
    "ca.pem -days 2 -subj '/CN=selmask test CA " + stem +
    "' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign 2>/dev/null && " +
    "openssl req" + ec + " -keyout " + p + "server.key -out " + p +
    "server.csr -subj /CN=127.0.0.1 2>/dev/null && " + "openssl x509 -req -in " + p + "server.csr -CA " + p +
    "ca.pem -CAkey " + p + "ca.key -CAcreateserial -out " + p + "server.pem -days 2 -extfile " + p +
    "ext.cnf 2>/dev/null";
  INFO(cmd);
  REQUIRE(std::system(cmd.c_str()) == 0);
}

} // namespace

TEST_CASE("https: nginx with a certificate of a private CA, the CA given to the client",
          "[faults][transfer][https][nginx]") {
  REQUIRE(std::system("openssl version >/dev/null 2>&1") == 0); // Debian package openssl
  selmask_test::temp_dir certs, root;
  make_certificates(certs, "good");
  make_certificates(certs, "other");
  const std::string content = random_content(file_bytes, 18);
  root.put("data.bin", content);
  const std::uint16_t port = free_port();
  const std::string c = certs.path.string() + "/good";
  selmask::testing::nginx_server nginx(
    root.path, "    listen 127.0.0.1:" + std::to_string(port) + " ssl http2;\n    ssl_certificate " + c +
                 "server.pem;\n" + "    ssl_certificate_key " + c + "server.key;\n" +
                 "    location /busy/ { return 503; }\n");
  const std::string url = "https://127.0.0.1:" + std::to_string(port) + "/data.bin";
  for (auto strategy : {tr::range_strategy::multi_range, tr::range_strategy::per_range}) {
    tr::http_options o = fast(strategy);
    o.ca_file = c + "ca.pem";
    tr::http_client client(o);
    tr::wire_stats w;
    CHECK(fetch(client, url, some_ranges, file_bytes, &w) == truth(content, some_ranges));
    CHECK(w.retries == 0);
    CHECK(client.download_whole(url).payload == truth(content, {{0, file_bytes}}));
  }
  // many requests at once over HTTP/2 (nginx offers it by ALPN), multiplexed on at most 4 connections
  {
    std::vector<tr::byte_range> many;
    for (std::size_t at = 0; at + 100 < file_bytes; at += 997) {
      many.push_back({at, 1 + at % 50});
    }
    tr::http_options o = fast();
    o.ca_file = c + "ca.pem";
    tr::http_multi_client client(o, 4);
    std::vector<tr::http_multi_client::job> jobs;
    std::vector<std::vector<std::byte>> outs(many.size());
    for (std::size_t i = 0; i < many.size(); ++i) {
      outs[i].resize(many[i].length);
      jobs.push_back({url, {many[i]}, file_bytes, outs[i]});
    }
    const tr::wire_stats w = client.fetch(jobs);
    std::vector<std::byte> joined;
    for (const auto& o1 : outs) {
      joined.insert(joined.end(), o1.begin(), o1.end());
    }
    CHECK(joined == truth(content, many));
    CHECK(w.requests == many.size());
    CHECK(client.http2_responses() == many.size());
    CHECK(client.connections_opened() <= 4);
  }
  // without the CA (the system's CAs do not know it) or with another CA: a certificate error at once
  for (const std::string& ca : {std::string(), certs.path.string() + "/otherca.pem"}) {
    INFO("ca_file '" << ca << "'");
    tr::http_options o = fast();
    o.ca_file = ca;
    tr::http_client client(o);
    try {
      fetch(client, url, some_ranges, file_bytes);
      FAIL("an untrusted certificate was accepted");
    } catch (const tr::transfer_error& e) {
      CHECK(e.attempts() == 1);
      CHECK_THAT(e.what(), Catch::Contains("certificate") && Catch::Contains("http_options::ca_file") &&
                             Catch::Contains(url));
    }
  }
  // retries work over TLS too: a 503 location, 3 attempts
  tr::http_options o = fast(tr::range_strategy::multi_range, 3);
  o.ca_file = c + "ca.pem";
  tr::http_client client(o);
  try {
    fetch(client, "https://127.0.0.1:" + std::to_string(port) + "/busy/data.bin", some_ranges, file_bytes);
    FAIL("a 503 was accepted");
  } catch (const tr::transfer_error& e) {
    CHECK(e.attempts() == 3);
    CHECK(e.status() == 503);
  }
  // a CA file that is not PEM
  tr::http_options bad = fast();
  bad.ca_file = (root.path / "data.bin").string();
  tr::http_client garbled(bad);
  CHECK_THROWS_WITH(fetch(garbled, url, some_ranges, file_bytes), Catch::Contains("ca_file"));
}

TEST_CASE("multi: many samples at once over a bounded number of kept-alive connections",
          "[faults][transfer][multi]") {
  // 600 samples of 1x28x28 uint8, a seeded 39-pixel mask: one multi-range request per sample
  tr::storage s{selmask::shape{1, 28, 28}, 600, tr::dtype::uint8, tr::storage_layout::band_sequential(), 1};
  const std::vector<float> keep = selmask::random_mask(784, 39, 5);
  const tr::plan plan =
    tr::plan::from_masks({{selmask::make_geometry<selmask::pixel>(1, 1, 28, 28, true), keep}}, s);
  const std::string content = random_content(s.stream_bytes(), 19);
  std::vector<std::byte> bytes(content.size());
  std::memcpy(bytes.data(), content.data(), content.size());
  const std::vector<std::byte> want = tr::pack(plan, bytes);
  selmask_test::temp_dir root;
  root.put("data.bin", content);
  selmask::testing::nginx_server nginx(root.path);
  const std::string url = nginx.url("/data.bin");
  for (std::size_t connections : {std::size_t{1}, std::size_t{4}, std::size_t{16}}) {
    INFO(connections << " connections");
    tr::http_multi_client client(fast(), connections);
    const tr::fetched_payload got = client.fetch_payload(plan, url);
    CHECK(got.payload == want);
    CHECK(got.wire.requests == 600);
    CHECK(got.wire.range_bytes == plan.payload_bytes());
    CHECK(client.connections_opened() >= 1);
    CHECK(client.connections_opened() <= connections); // kept alive, never more than the bound
    // grouped: 100 samples per request, the same bytes; the connections are still the same
    const tr::fetched_payload grouped = client.fetch_payload(plan, url, 100);
    CHECK(grouped.payload == want);
    CHECK(grouped.wire.requests >= 6);
    CHECK(client.connections_opened() <= connections);
  }
  // against the fault server (one answer per connection): random cuts and 503s, every byte right
  fault_server faulty(content);
  std::mt19937_64 f(3);
  for (int i = 0; i < 200; ++i) {
    const auto k = f() % 4;
    faulty.push(k == 0   ? fault{.k = fault::kind::drop_after, .bytes = static_cast<std::size_t>(f() % 600)}
                : k == 1 ? fault{.k = fault::kind::status, .status = 503}
                         : fault{});
  }
  tr::http_options o = fast(tr::range_strategy::multi_range, 20);
  o.retry.base_delay = ms(1);
  o.retry.max_delay = ms(4);
  tr::http_multi_client client(o, 8);
  const tr::fetched_payload got = client.fetch_payload(plan, faulty.url());
  CHECK(got.payload == want);
  std::size_t faulted = 0;
  for (const auto& e : faulty.log()) {
    faulted += e.injected != fault::kind::none ? 1 : 0;
  }
  CHECK(faulted > 30);
  CHECK(got.wire.retries == faulted);
  // a final failure ends the call with the job's URL and range
  faulty.reset();
  faulty.always({.k = fault::kind::status, .status = 404});
  CHECK_THROWS_WITH(client.fetch_payload(plan, faulty.url()),
                    Catch::Contains("HTTP 404") && Catch::Contains("http_multi_client"));
  CHECK_THROWS_AS(tr::http_multi_client(fast(), 0), value_error);
  CHECK_THROWS_AS(tr::http_multi_client(tr::http_options{.merge = tr::coalescing::automatic()}), value_error);
}
