#pragma once
/// \file transfer/http_multi.hpp
/// `transfer::http_multi_client`: many range requests at once over a bounded number of kept-alive
/// connections (the libcurl multi interface), e.g. the samples of a plan fetched concurrently,
/// one request per sample (or per group of samples) instead of one long schedule.
///
/// At most `connections` transfers run at a time and the multi handle keeps at most that many
/// connections open (to one host or all together), reusing them from request to request and from
/// call to call (keep-alive). Over https the connections negotiate HTTP/2 when the server offers
/// it (ALPN), and then requests share them as streams. Each request is checked, salvaged and
/// retried exactly as `http_client` does it (transfer/http.hpp, transfer/retry.hpp: the same
/// options, the same `transfer_error`s): a failed request waits for its backoff while the other
/// requests go on, a body cut short keeps what arrived. A call either fills every byte of every
/// job or throws (the first failure that is final; the other transfers are abandoned).
///
/// Needs libcurl: link the `selmask::http` CMake target.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <curl/curl.h>

#include "../error.hpp"
#include "http.hpp"
#include "plan.hpp"
#include "retry.hpp"
#include "wire.hpp"

namespace selmask::transfer {

class http_multi_client {
public:
  /// One piece of work: the bytes of `ranges` (ascending, disjoint, non-empty) of the resource at
  /// `url` (of `resource_bytes` bytes), one after another into `out` (exactly their total).
  struct job {
    std::string url;
    std::vector<byte_range> ranges;
    std::size_t resource_bytes = 0;
    std::span<std::byte> out;
  };

  /// `options` as for `http_client` (multi-range requests of each job's ranges, split at
  /// `max_range_header_bytes`; coalescing must be off); `connections` ≥ 1.
  explicit http_multi_client(http_options options = {}, std::size_t connections = 8)
    : base_(options), connections_(connections) {
    const std::string where = "selmask::transfer::http_multi_client: ";
    if (connections == 0 || connections > 1024) {
      throw value_error(where + "connections must be in 1..1024, got " + std::to_string(connections));
    }
    if (options.merge.kind != coalescing::mode::off) {
      throw value_error(where +
                        "range coalescing is not supported (each job's ranges are asked as they are)");
    }
    multi_.reset(curl_multi_init());
    if (!multi_) {
      throw io_error(where + "curl_multi_init failed");
    }
    const auto n = static_cast<long>(connections);
    curl_multi_setopt(multi_.get(), CURLMOPT_MAX_TOTAL_CONNECTIONS, n);
    curl_multi_setopt(multi_.get(), CURLMOPT_MAX_HOST_CONNECTIONS, n);
    curl_multi_setopt(multi_.get(), CURLMOPT_MAXCONNECTS, n);
    curl_multi_setopt(multi_.get(), CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    for (std::size_t i = 0; i < connections; ++i) {
      slots_.push_back(std::make_unique<slot>());
      slots_.back()->easy.reset(curl_easy_init());
      if (!slots_.back()->easy) {
        throw io_error(where + "curl_easy_init failed");
      }
    }
  }

  [[nodiscard]] std::size_t connections() const noexcept { return connections_; }
  /// Connections opened so far (CURLINFO_NUM_CONNECTS summed): with keep-alive at most
  /// `connections()` per server for as long as the server keeps them open.
  [[nodiscard]] std::size_t connections_opened() const noexcept { return opened_; }
  /// Responses so far that came over HTTP/2 (multiplexed on the connections).
  [[nodiscard]] std::size_t http2_responses() const noexcept { return http2_; }
  [[nodiscard]] const http_options& options() const noexcept { return base_.options(); }

  /// Runs every job, at most `connections()` at a time; returns what crossed the wire.
  wire_stats fetch(std::span<const job> jobs) {
    for (const job& j : jobs) {
      check_job(j);
    }
    wire_stats wire;
    run(
      jobs.size(), [&](std::size_t i) { return jobs[i]; }, wire);
    return wire;
  }

  /// The payload of `p` (exactly `p.payload_bytes()` bytes into `payload`) from `urls` (one per
  /// stream), one request per `samples_per_request` samples of each stream.
  wire_stats fetch_into(const plan& p, std::span<const std::string> urls, std::span<std::byte> payload,
                        std::size_t samples_per_request = 1) {
    const std::string where = "selmask::transfer::http_multi_client::fetch_into: ";
    if (urls.size() != p.streams()) {
      throw shape_error(where + std::to_string(urls.size()) + " URLs given, the plan reads " +
                        std::to_string(p.streams()) + " streams (one URL per version)");
    }
    if (payload.size() != p.payload_bytes()) {
      throw shape_error(where + "payload buffer of " + std::to_string(payload.size()) +
                        " bytes, the plan's payload is " + std::to_string(p.payload_bytes()));
    }
    if (samples_per_request == 0) {
      throw value_error(where + "samples_per_request must be at least 1");
    }
    const std::size_t stride = p.source().sample_bytes(), n = p.source().samples;
    const std::size_t groups = (n + samples_per_request - 1) / samples_per_request;
    std::vector<std::size_t> streams; // the streams with bytes to read, `groups` jobs each
    for (std::size_t v = 0; v < p.streams(); ++v) {
      if (p.sample_payload_bytes(v) > 0) {
        streams.push_back(v);
      }
    }
    // a job is made when it starts: memory for the requests in flight, not for every sample
    const auto make = [&](std::size_t i) {
      const std::size_t v = streams[i / groups], per = p.sample_payload_bytes(v);
      const std::size_t first = (i % groups) * samples_per_request;
      const std::size_t count = std::min(samples_per_request, n - first);
      job j{urls[v],
            {},
            p.source().stream_bytes(),
            payload.subspan(p.payload_offset(v) + first * per, count * per)};
      j.ranges.reserve(count * p.sample_ranges(v).size());
      for (std::size_t smp = first; smp < first + count; ++smp) {
        for (const byte_range& r : p.sample_ranges(v)) {
          if (!j.ranges.empty() &&
              j.ranges.back().offset + j.ranges.back().length == smp * stride + r.offset) {
            j.ranges.back().length += r.length;
          } else {
            j.ranges.push_back({smp * stride + r.offset, r.length});
          }
        }
      }
      return j;
    };
    wire_stats w;
    run(streams.size() * groups, make, w);
    if (w.range_bytes != p.payload_bytes()) {
      throw io_error(where + "received " + std::to_string(w.range_bytes) +
                     " bytes of range data, the plan's payload is " + std::to_string(p.payload_bytes()));
    }
    return w;
  }

  /// `fetch_into` with a fresh payload.
  fetched_payload fetch_payload(const plan& p, std::span<const std::string> urls,
                                std::size_t samples_per_request = 1) {
    fetched_payload out;
    out.payload.resize(p.payload_bytes());
    out.wire = fetch_into(p, urls, out.payload, samples_per_request);
    return out;
  }
  fetched_payload fetch_payload(const plan& p, const std::string& url, std::size_t samples_per_request = 1) {
    return fetch_payload(p, std::span<const std::string>(&url, 1), samples_per_request);
  }

private:
  using clock = std::chrono::steady_clock;
  using response = http_client::response;
  struct multi_deleter {
    void operator()(CURLM* m) const noexcept { curl_multi_cleanup(m); }
  };
  /// One transfer in flight: its easy handle (reused), response and body.
  struct slot {
    std::unique_ptr<CURL, http_client::curl_deleter> easy;
    std::unique_ptr<curl_slist, http_client::slist_deleter> headers;
    response r;
    std::string body;
    std::string range;
    std::vector<byte_range> ask;
    char errbuf[CURL_ERROR_SIZE] = {};
    std::size_t job = 0;
    bool busy = false;
  };
  /// A job's progress.
  struct state {
    std::optional<job> work;            ///< from its first start until it is done
    std::optional<pending_ranges> todo; ///< its bytes still missing
    int failures = 0;                   ///< failed attempts of the current request
    clock::time_point started{};        ///< when its first attempt began
    clock::time_point ready{};          ///< not before (a backoff)
  };

  /// Removes the transfers in flight from the multi handle (also when unwinding).
  struct abandon {
    http_multi_client& c;
    ~abandon() {
      for (auto& s : c.slots_) {
        if (s->busy) {
          curl_multi_remove_handle(c.multi_.get(), s->easy.get());
          s->busy = false;
        }
      }
    }
  };

  static void check_job(const job& j) {
    std::size_t total = 0;
    for (const byte_range& r : j.ranges) {
      total += r.length;
    }
    if (j.out.size() != total || j.ranges.empty()) {
      throw shape_error("selmask::transfer::http_multi_client::fetch: job for " + j.url +
                        " has an output of " + std::to_string(j.out.size()) + " bytes for " +
                        std::to_string(j.ranges.size()) + " ranges of " + std::to_string(total));
    }
  }

  /// Starts the next request of job `j` (made by `source` on its first start) on `s`.
  template <class Source>
  void start(slot& s, std::size_t j, Source& source, state& js) {
    if (!js.work) {
      js.work = source(j);
      check_job(*js.work);
      js.todo.emplace(js.work->ranges, js.work->ranges, js.work->out.data());
    }
    const job& jb = *js.work;
    s.ask = js.todo->next_ask();
    s.ask.resize(ranges_fitting(s.ask, base_.opt_.max_range_header_bytes)); // the rest in the next request
    std::size_t read = 0;
    for (const byte_range& br : s.ask) {
      read += br.length;
    }
    const std::size_t span_bytes = s.ask.back().offset + s.ask.back().length - s.ask.front().offset;
    s.range = range_header_value(s.ask).substr(6);
    s.body.clear();
    s.body.reserve(s.ask.size() == 1 ? read : read + 256 + s.ask.size() * 160);
    s.r = response{};
    s.r.body = &s.body;
    s.r.body_limit = s.ask.size() == 1 ? span_bytes : span_bytes + 1024 + s.ask.size() * 256;
    s.r.accept = 206;
    s.errbuf[0] = '\0';
    s.headers = base_.prepare(s.easy.get(), jb.url, s.range, s.r, s.errbuf);
    if (js.failures == 0) {
      js.started = clock::now();
    }
    s.job = j;
    s.busy = true;
    curl_multi_add_handle(multi_.get(), s.easy.get());
  }

  /// The transfer of `s` ended with `rc`: the job is done, waits for a retry, or the call throws.
  void finish(slot& s, CURLcode rc, std::vector<state>& st, std::deque<std::size_t>& ready,
              std::vector<std::size_t>& waiting, std::size_t& done, wire_stats& wire) {
    curl_multi_remove_handle(multi_.get(), s.easy.get());
    s.busy = false;
    http_client::account(s.easy.get(), rc, s.errbuf, s.r, wire);
    long connects = 0;
    curl_easy_getinfo(s.easy.get(), CURLINFO_NUM_CONNECTS, &connects);
    opened_ += static_cast<std::size_t>(connects > 0 ? connects : 0);
    long version = 0;
    curl_easy_getinfo(s.easy.get(), CURLINFO_HTTP_VERSION, &version);
    http2_ += version == CURL_HTTP_VERSION_2_0 ? 1 : 0;
    state& js = st[s.job];
    const job& jb = *js.work;
    const attempt_result a = base_.take_ranges(s.r, s.body, s.ask, *js.todo, jb.resource_bytes, wire);
    const auto what = [&] {
      const std::string v = range_header_value(s.ask);
      return "selmask::transfer::http_multi_client: GET " + jb.url +
             " (Range: " + (v.size() > 80 ? v.substr(0, 77) + "..." : v) + "): ";
    };
    if (a.k == attempt_result::kind::done) {
      js.failures = 0;
      if (js.todo->empty()) {
        js.todo.reset(); // a finished job's memory goes now
        js.work.reset();
        ++done;
      } else {
        ready.push_front(s.job); // the part past the header limit
      }
      return;
    }
    js.failures += 1;
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - js.started);
    const std::string tries = std::to_string(js.failures) + (js.failures == 1 ? " attempt" : " attempts") +
                              " in " + std::to_string(elapsed.count()) + " ms";
    if (a.k == attempt_result::kind::permanent) {
      throw transfer_error(what() + a.message + " (" + tries + ")", jb.url,
                           range_header_value(js.todo->next_ask()), a.status, js.failures);
    }
    const retry_decision d = next_retry(base_.opt_.retry, js.failures, elapsed, a.retry_after,
                                        std::uniform_real_distribution<double>()(base_.rng_));
    if (!d.retry) {
      throw transfer_error(what() + a.message + "; gave up after " + tries + ": " + d.why_not, jb.url,
                           range_header_value(js.todo->next_ask()), a.status, js.failures);
    }
    js.ready = clock::now() + d.delay;
    waiting.push_back(s.job);
    wire.retries += 1;
  }

  /// Runs jobs 0..n-1; `source(j)` makes job j when it first starts.
  template <class Source>
  void run(std::size_t n, Source&& source, wire_stats& wire) {
    abandon guard{*this};
    std::vector<state> st(n);
    std::deque<std::size_t> ready;
    for (std::size_t j = 0; j < n; ++j) {
      ready.push_back(j);
    }
    std::vector<std::size_t> waiting; // jobs in a backoff
    std::size_t done = 0;
    while (done < n) {
      const auto now = clock::now();
      auto next_due = now + std::chrono::milliseconds(100);
      for (std::size_t i = 0; i < waiting.size();) {
        if (st[waiting[i]].ready <= now) {
          ready.push_back(waiting[i]);
          waiting[i] = waiting.back();
          waiting.pop_back();
        } else {
          next_due = std::min(next_due, st[waiting[i]].ready);
          ++i;
        }
      }
      for (auto& s : slots_) {
        if (!s->busy && !ready.empty()) {
          const std::size_t j = ready.front();
          ready.pop_front();
          start(*s, j, source, st[j]);
        }
      }
      int running = 0;
      if (const CURLMcode mc = curl_multi_perform(multi_.get(), &running); mc != CURLM_OK) {
        throw io_error(std::string("selmask::transfer::http_multi_client: curl_multi_perform failed: ") +
                       curl_multi_strerror(mc));
      }
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi_.get(), &left)) {
        if (m->msg != CURLMSG_DONE) {
          continue;
        }
        for (auto& s : slots_) {
          if (s->busy && s->easy.get() == m->easy_handle) {
            finish(*s, m->data.result, st, ready, waiting, done, wire);
            break;
          }
        }
      }
      if (done < n && (ready.empty() || running > 0)) {
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_due - clock::now());
        curl_multi_poll(multi_.get(), nullptr, 0, static_cast<int>(std::max<long long>(0, wait.count())),
                        nullptr);
      }
    }
  }

  http_client base_; ///< options, request setup, checks and the jitter's generator
  std::size_t connections_ = 0;
  std::size_t opened_ = 0;
  std::size_t http2_ = 0;
  std::unique_ptr<CURLM, multi_deleter> multi_;
  std::vector<std::unique_ptr<slot>> slots_; ///< stable addresses: curl holds pointers to their parts
};

} // namespace selmask::transfer
