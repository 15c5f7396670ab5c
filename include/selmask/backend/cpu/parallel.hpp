#pragma once
/// \file backend/cpu/parallel.hpp
/// The CPU backend's threads: one process-wide pool that splits a loop into as many contiguous
/// parts as it has threads (the calling thread runs the first part), or hands out a loop's items
/// one at a time (`parallel_each`).
///
/// Size: `SELMASK_NUM_THREADS`, else `OPENBLAS_NUM_THREADS`, else `OMP_NUM_THREADS`, else the
/// number of hardware threads (read once, on first use). With more than one thread the CPU backend
/// splits its GEMMs itself, so the pool sets OpenBLAS to one thread per call
/// (`openblas_set_num_threads(1)`): two thread teams spinning on the same cores would only get in
/// each other's way. With one thread, OpenBLAS is left as it was.
///
/// A loop started from inside a part, or while another thread is using the pool, runs serially on
/// the caller, so the pool can be used from any thread. Parts are fixed by the thread count alone,
/// so results are the same from run to run.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "blas.hpp"

namespace selmask::cpu_parallel {

namespace detail {
/// A positive integer at most `max` from the environment variable `name`; 0 when it is unset,
/// empty or anything else.
inline std::size_t env_count(const char* name, long max) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    return 0;
  }
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (end != nullptr && *end == '\0' && n > 0 && n <= max) ? static_cast<std::size_t>(n) : 0;
}
inline std::size_t env_threads(const char* name) { return env_count(name, 1024); }
inline void relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
} // namespace detail

/// The number of threads the pool would start, from the environment (see the file comment).
[[nodiscard]] inline std::size_t configured_threads() {
  for (const char* name : {"SELMASK_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"}) {
    if (const std::size_t n = detail::env_threads(name); n > 0) {
      return n;
    }
  }
  return std::max<std::size_t>(1, std::thread::hardware_concurrency());
}

class pool {
public:
  explicit pool(std::size_t threads) : size_(std::max<std::size_t>(1, threads)) {
    if (size_ > 1) {
      blas::set_threads(1);
    }
    workers_.reserve(size_ - 1);
    for (std::size_t i = 1; i < size_; ++i) {
      workers_.emplace_back([this, i] { work(i); });
    }
  }
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;
  ~pool() {
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    for (auto& t : workers_) {
      t.join();
    }
  }

  /// The process-wide pool (`configured_threads()` threads).
  static pool& instance() {
    static pool p(configured_threads());
    return p;
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  /// Calls `f(begin, end)` on disjoint contiguous parts covering `[0, n)`, at most one per thread,
  /// none shorter than `grain` (except a last, shorter one); waits for all of them. The first
  /// exception thrown by a part is rethrown here.
  template <class F>
  void parallel_for(std::size_t n, std::size_t grain, F&& f) {
    if (n == 0) {
      return;
    }
    const std::size_t parts = std::min(size_, std::max<std::size_t>(1, n / std::max<std::size_t>(1, grain)));
    if (parts <= 1 || inside_part_) {
      f(std::size_t{0}, n);
      return;
    }
    std::unique_lock lock(busy_, std::try_to_lock);
    if (!lock.owns_lock()) {
      f(std::size_t{0}, n);
      return;
    }
    struct job_data {
      F* f;
      std::size_t n, parts;
    } data{&f, n, parts};
    job_ = [](void* ctx, std::size_t part) {
      auto* d = static_cast<job_data*>(ctx);
      if (part < d->parts) {
        const std::size_t b = d->n * part / d->parts;
        const std::size_t e = d->n * (part + 1) / d->parts;
        (*d->f)(b, e);
      }
    };
    ctx_ = &data;
    error_ = nullptr;
    pending_.store(size_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    run_part(0);
    // wait for the workers: spin briefly, then sleep
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin < 4000) {
        detail::relax();
      } else {
        const std::size_t p = pending_.load(std::memory_order_acquire);
        if (p != 0) {
          pending_.wait(p, std::memory_order_acquire);
        }
      }
    }
    if (error_) {
      std::rethrow_exception(error_);
    }
  }

  /// Calls `f(i)` once for every `i` in `[0, n)`, handed out one at a time: each thread takes the
  /// next index nobody has taken yet, so a thread that runs slower (its core busy with other
  /// work) takes fewer. For loops of a few dozen expensive items (a convolution's chunks);
  /// which thread runs an index is not fixed, so `f` must give the same result on any thread.
  /// The first exception thrown is rethrown here, once every thread has stopped taking indices
  /// (a thread whose item threw takes no more; indices not yet taken may or may not run).
  template <class F>
  void parallel_each(std::size_t n, F&& f) {
    std::atomic<std::size_t> next{0};
    parallel_for(std::min(n, size_), 1, [&](std::size_t, std::size_t) {
      for (std::size_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
           i = next.fetch_add(1, std::memory_order_relaxed)) {
        f(i);
      }
    });
  }

private:
  void run_part(std::size_t part) {
    inside_part_ = true;
    try {
      job_(ctx_, part);
    } catch (...) {
      std::lock_guard g(error_mutex_);
      if (!error_) {
        error_ = std::current_exception();
      }
    }
    inside_part_ = false;
  }

  void work(std::size_t part) {
    std::uint64_t seen = 0;
    for (;;) {
      // wait for a new generation: spin for a while (the next loop of a training step usually
      // follows within microseconds), then sleep on the atomic
      std::uint64_t g = generation_.load(std::memory_order_acquire);
      for (int spin = 0; g == seen; ++spin) {
        if (spin < 20000) {
          detail::relax();
        } else {
          generation_.wait(seen, std::memory_order_acquire);
        }
        g = generation_.load(std::memory_order_acquire);
      }
      seen = g;
      if (stop_.load(std::memory_order_relaxed)) {
        return;
      }
      run_part(part);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        pending_.notify_one();
      }
    }
  }

  std::size_t size_;
  std::vector<std::thread> workers_;
  std::mutex busy_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<std::size_t> pending_{0};
  std::atomic<bool> stop_{false};
  void (*job_)(void*, std::size_t) = nullptr;
  void* ctx_ = nullptr;
  std::mutex error_mutex_;
  std::exception_ptr error_;
  static inline thread_local bool inside_part_ = false;
};

/// `pool::instance().parallel_for(n, grain, f)`.
template <class F>
void parallel_for(std::size_t n, std::size_t grain, F&& f) {
  pool::instance().parallel_for(n, grain, std::forward<F>(f));
}

/// `pool::instance().parallel_each(n, f)`.
template <class F>
void parallel_each(std::size_t n, F&& f) {
  pool::instance().parallel_each(n, std::forward<F>(f));
}

/// The number of threads of the process-wide pool.
[[nodiscard]] inline std::size_t threads() { return pool::instance().size(); }

} // namespace selmask::cpu_parallel
