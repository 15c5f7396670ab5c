#pragma once
/// \file train/resume.hpp
/// Resuming a training run: what `learn_selection_masks` writes to `trainer_options::state_dir`
/// and reads back with `trainer_options::resume`, and how a run is stopped cleanly.
///
/// The state (`state_dir/state.bin`, an `io::state_file`, replaced atomically after every epoch
/// and, with `state_every_batches = N`, after every N batches) holds everything the rest of the
/// run depends on: the network's weights and optimiser moments (a model with `save_state` /
/// `load_state`, as `nn::sequential` has), every mask's logits and the surrogates' random
/// stream (the pipeline's `save_state`), the mask optimiser's moments, the λ controller's state,
/// λ, τ, the epoch and batch position with the running sums of the epoch, the front so far with
/// its masks, the final point, the notes and the epoch log (`epoch_info` without masks, handed
/// to callbacks as `train_begin_info::done`, so that `epoch_csv_log` rewrites the rows of the
/// epochs before the state). Batches come in an order fixed by (seed, epoch), so nothing of the
/// data source needs saving. A resumed run on the CPU backend with the same thread count gives
/// the same front, masks and weights, bit for bit, as a run never interrupted.
///
/// A policy is saved by its `save_state(state, name)` / `load_state(state, name)` members when
/// it has them, else as its bytes when it is trivially copyable (every λ controller that ships),
/// else not at all when it is empty; anything else, a trainable model without `save_state` /
/// `load_state`, or a mask optimiser without them, is refused when a `state_dir` is set. A
/// state written by a run with other settings (epochs, batch size, seed, λ, data sizes, …) is
/// refused with the first setting that differs.
///
/// Stopping: while a run with a `state_dir` trains, SIGINT and SIGTERM (`stop_on_signals`)
/// or a call to `request_stop()` let the current batch finish, write the state and throw
/// `training_interrupted`, whose message says where the state is. A second signal ends the
/// process at once.

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "../error.hpp"
#include "../io/state_file.hpp"
#include "../shape.hpp"
#include "callbacks.hpp"
#include "front.hpp"
#include "schedule.hpp"

namespace selmask {

/// A run stopped by a signal or `request_stop()` after writing its state; resume it with
/// `trainer_options::resume`.
class training_interrupted : public error {
public:
  training_interrupted(const std::string& what, std::filesystem::path state, int signal)
    : error(what), state_(std::move(state)), signal_(signal) {}
  [[nodiscard]] const std::filesystem::path& state_file() const noexcept { return state_; }
  /// The signal that stopped the run (0: `request_stop()`).
  [[nodiscard]] int signal() const noexcept { return signal_; }

private:
  std::filesystem::path state_;
  int signal_;
};

/// Something that saves and restores its own state as records of an `io::state_file`.
template <class T>
concept resumable = requires(T& t, io::state_file& s, const io::state_file& cs, const std::string& name) {
  t.save_state(s, name);
  t.load_state(cs, name);
};

namespace detail {
/// Set by the signal handler or `request_stop()`: the signal's number, or -1.
inline volatile std::sig_atomic_t stop_signal = 0;
} // namespace detail

/// Asks a training run with a `state_dir` to stop after its current batch (and write its state).
inline void request_stop() noexcept { detail::stop_signal = -1; }
[[nodiscard]] inline bool stop_requested() noexcept { return detail::stop_signal != 0; }

namespace detail {

inline void selmask_stop_handler(int signo) {
  if (stop_signal != 0) { // a second signal: end the process now
    std::signal(signo, SIG_DFL);
    std::raise(signo);
    return;
  }
  stop_signal = signo;
}

/// SIGINT and SIGTERM set the stop flag while this object lives; the previous handlers after.
class stop_on_signals {
public:
  explicit stop_on_signals(bool on) : on_(on) {
    stop_signal = 0;
    if (on_) {
      int_ = std::signal(SIGINT, selmask_stop_handler);
      term_ = std::signal(SIGTERM, selmask_stop_handler);
    }
  }
  stop_on_signals(const stop_on_signals&) = delete;
  stop_on_signals& operator=(const stop_on_signals&) = delete;
  ~stop_on_signals() {
    if (on_) {
      std::signal(SIGINT, int_ == SIG_ERR ? SIG_DFL : int_);
      std::signal(SIGTERM, term_ == SIG_ERR ? SIG_DFL : term_);
    }
  }

private:
  bool on_;
  void (*int_)(int) = SIG_DFL;
  void (*term_)(int) = SIG_DFL;
};

/// Running sums of one epoch's training batches.
struct epoch_totals {
  double loss = 0.0;
  double score = 0.0;
  std::size_t seen = 0;
  double q = 1.0;
};

/// Where a run stands, as the trainer keeps it (stored as its bytes).
struct trainer_progress {
  std::size_t epoch = 0;    ///< the epoch being trained (0-based, counting warm-up epochs)
  std::size_t batch = 0;    ///< batches of `epoch` done
  epoch_totals totals{};    ///< of those batches
  double epoch_seconds = 0; ///< spent on `epoch` before the state was written
  float lambda = 0.0f;      ///< λ of the coming batches
  float tau = 1.0f;         ///< τ of the coming batches
  float base_lr = 0.0f;     ///< the model's learning rate when training began
  std::size_t final_start = 0;
  std::size_t images_done = 0;
  bool budget_reached = false;
  bool finished = false; ///< every epoch ran (or a callback stopped the run)
};
static_assert(std::is_trivially_copyable_v<trainer_progress>);

template <class T>
inline constexpr bool storable_policy = resumable<T> || std::is_empty_v<T> || std::is_trivially_copyable_v<T>;

/// Saves `t` as record `name`: by its own members, as its bytes, or as an empty record. A policy
/// that is none of these is refused before training (the trainer's check), so is never saved.
template <class T>
void save_policy(io::state_file& s, const std::string& name, T& t) {
  if constexpr (resumable<T>) {
    t.save_state(s, name);
  } else if constexpr (std::is_empty_v<T>) {
    s.put(name, std::string());
  } else if constexpr (std::is_trivially_copyable_v<T>) {
    io::record_writer w;
    w.put(t);
    s.put(name, std::move(w));
  }
}

template <class T>
void load_policy(const io::state_file& s, const std::string& name, T& t) {
  if constexpr (resumable<T>) {
    t.load_state(s, name);
  } else if constexpr (std::is_empty_v<T>) {
    s.reader(name).finish();
  } else if constexpr (std::is_trivially_copyable_v<T>) {
    io::record_reader r = s.reader(name);
    const T v = r.template get<T>();
    r.finish();
    t = v;
  }
}

inline void put_point(io::record_writer& w, const front_point& p) {
  w.put(p.q).put(p.val_accuracy).put(p.test_accuracy).put(static_cast<std::uint64_t>(p.epoch));
  w.put(p.lambda).put(p.tau).put(static_cast<std::uint64_t>(p.masks.size()));
  for (std::size_t i = 0; i < p.masks.size(); ++i) {
    w.put_shape(p.mask_shapes.at(i)).put_array(std::span<const float>(p.masks[i]));
  }
  w.put_string(p.checkpoint.string());
}

inline front_point get_point(io::record_reader& r) {
  front_point p;
  p.q = r.get<double>();
  p.val_accuracy = r.get<double>();
  p.test_accuracy = r.get<double>();
  p.epoch = static_cast<std::size_t>(r.get<std::uint64_t>());
  p.lambda = r.get<float>();
  p.tau = r.get<float>();
  const auto masks = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < masks; ++i) {
    p.mask_shapes.push_back(r.get_shape());
    p.masks.push_back(r.get_array<float>());
    if (p.masks.back().size() != p.mask_shapes.back().size()) {
      r.fail("a front point's mask has " + std::to_string(p.masks.back().size()) + " values for shape " +
             p.mask_shapes.back().str());
    }
  }
  p.checkpoint = r.get_string();
  return p;
}

/// The numbers of an epoch's log line (its masks are not kept).
inline void put_epoch(io::record_writer& w, const epoch_info& e) {
  w.put(static_cast<std::uint64_t>(e.epoch)).put(static_cast<std::uint64_t>(e.epochs));
  w.put(static_cast<std::uint8_t>(e.current)).put(e.lambda).put(e.tau).put(e.train_loss);
  w.put(e.train_accuracy).put(e.val_accuracy).put(e.q).put(e.test_accuracy).put(e.seconds);
  w.put(static_cast<std::uint8_t>(e.front_improved));
}

inline epoch_info get_epoch(io::record_reader& r) {
  epoch_info e;
  e.epoch = static_cast<std::size_t>(r.get<std::uint64_t>());
  e.epochs = static_cast<std::size_t>(r.get<std::uint64_t>());
  const auto ph = r.get<std::uint8_t>();
  if (ph > static_cast<std::uint8_t>(phase::fixation)) {
    r.fail("phase " + std::to_string(ph) + " is not a phase");
  }
  e.current = static_cast<phase>(ph);
  e.lambda = r.get<float>();
  e.tau = r.get<float>();
  e.train_loss = r.get<double>();
  e.train_accuracy = r.get<double>();
  e.val_accuracy = r.get<double>();
  e.q = r.get<double>();
  e.test_accuracy = r.get<double>();
  e.seconds = r.get<double>();
  e.front_improved = r.get<std::uint8_t>() != 0;
  return e;
}

/// What a trainer's state holds besides the objects that save themselves.
struct run_record {
  trainer_progress progress;
  std::vector<front_point> front;
  std::optional<front_point> final_point;
  double full_val_accuracy = 0.0;
  double full_test_accuracy = 0.0;
  std::size_t epochs_run = 0;
  std::vector<std::string> notes;
  std::vector<epoch_info> history;
};

inline void put_record(io::state_file& s, const run_record& r) {
  io::record_writer w;
  w.put(r.progress).put(r.full_val_accuracy).put(r.full_test_accuracy);
  w.put(static_cast<std::uint64_t>(r.epochs_run));
  w.put(static_cast<std::uint64_t>(r.front.size()));
  for (const auto& p : r.front) {
    put_point(w, p);
  }
  w.put(static_cast<std::uint8_t>(r.final_point.has_value()));
  if (r.final_point) {
    put_point(w, *r.final_point);
  }
  w.put(static_cast<std::uint64_t>(r.notes.size()));
  for (const auto& n : r.notes) {
    w.put_string(n);
  }
  w.put(static_cast<std::uint64_t>(r.history.size()));
  for (const auto& e : r.history) {
    put_epoch(w, e);
  }
  s.put("trainer", std::move(w));
}

inline run_record get_record(const io::state_file& s) {
  io::record_reader rd = s.reader("trainer");
  run_record r;
  r.progress = rd.get<trainer_progress>();
  r.full_val_accuracy = rd.get<double>();
  r.full_test_accuracy = rd.get<double>();
  r.epochs_run = static_cast<std::size_t>(rd.get<std::uint64_t>());
  const auto n = rd.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < n; ++i) {
    r.front.push_back(get_point(rd));
  }
  if (rd.get<std::uint8_t>() != 0) {
    r.final_point = get_point(rd);
  }
  const auto notes = rd.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < notes; ++i) {
    r.notes.push_back(rd.get_string());
  }
  const auto epochs = rd.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < epochs; ++i) {
    r.history.push_back(get_epoch(rd));
  }
  rd.finish();
  return r;
}

/// The record of a run at `progress` (`Result` is `training_result`).
template <class Result>
run_record record_of(const trainer_progress& progress, const Result& result,
                     const std::vector<epoch_info>& history) {
  run_record r;
  r.progress = progress;
  r.front = result.front.points();
  r.final_point = result.final_point;
  r.full_val_accuracy = result.full_val_accuracy;
  r.full_test_accuracy = result.full_test_accuracy;
  r.epochs_run = result.epochs_run;
  r.notes = result.notes;
  r.history = history;
  return r;
}

/// The result and the epoch log as `r` has them.
template <class Result>
void restore(run_record&& r, Result& result, std::vector<epoch_info>& history) {
  for (const front_point& p : r.front) {
    result.front.offer(p);
  }
  result.final_point = std::move(r.final_point);
  result.full_val_accuracy = r.full_val_accuracy;
  result.full_test_accuracy = r.full_test_accuracy;
  result.epochs_run = r.epochs_run;
  result.notes = std::move(r.notes);
  history = std::move(r.history);
}

inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

/// The settings a state must share with the run that resumes it, one `name=value` per line
/// (floats in hexadecimal: exact).
class run_fingerprint {
public:
  template <class T>
  run_fingerprint& add(const char* name, const T& v) {
    std::ostringstream os;
    if constexpr (std::is_floating_point_v<T>) {
      os << std::hexfloat << v;
    } else {
      os << v;
    }
    lines_ += std::string(name) + "=" + os.str() + "\n";
    return *this;
  }
  [[nodiscard]] const std::string& text() const noexcept { return lines_; }
  /// Throws `value_error` naming the first setting that differs from the state's.
  void check(const std::string& stored, const std::string& where) const {
    std::istringstream a(stored);
    std::istringstream b(lines_);
    std::string la;
    std::string lb;
    while (true) {
      const bool more_a = static_cast<bool>(std::getline(a, la));
      const bool more_b = static_cast<bool>(std::getline(b, lb));
      if (!more_a && !more_b) {
        return;
      }
      if (la != lb || more_a != more_b) {
        const std::string key = (more_b ? lb : la).substr(0, (more_b ? lb : la).find('='));
        throw value_error(
          where + "was written by a run with other settings: " + (more_a ? la : std::string("(nothing)")) +
          " there, " + (more_b ? lb : std::string("(nothing)")) + " here (resume with the settings of " +
          "the run that wrote it, or remove the state to start afresh; first difference: " + key + ")");
      }
    }
  }

private:
  std::string lines_;
};

/// The trainer options and data sizes of a run (the trainer adds the types of its policies,
/// model and pipeline).
template <class Options>
run_fingerprint fingerprint_of(const Options& opt, std::size_t train_size, std::size_t batches,
                               std::size_t validation_size, std::size_t test_size, const shape& sample) {
  run_fingerprint f;
  const auto& m = opt.mask_optimizer;
  f.add("lambda", opt.lambda).add("warmup_epochs", opt.warmup_epochs).add("mask_epochs", opt.mask_epochs);
  f.add("mask_optimizer.lr", m.lr).add("mask_optimizer.beta1", m.beta1).add("mask_optimizer.beta2", m.beta2);
  f.add("mask_optimizer.eps", m.eps).add("mask_optimizer.weight_decay", m.weight_decay);
  f.add("mask_optimizer.amsgrad", m.amsgrad).add("tau.init", opt.tau.init).add("tau.factor", opt.tau.factor);
  f.add("tau.min", opt.tau.min).add("final_fixation_epochs", opt.final_fixation_epochs);
  f.add("target_q", opt.target_q).add("keep_cells", opt.keep_cells ? *opt.keep_cells : 0);
  f.add("keep_q", opt.keep_q ? *opt.keep_q : 0.0).add("mask_reach", static_cast<int>(opt.mask_reach));
  f.add("bucket_width", opt.bucket_width).add("seed", opt.seed).add("train.size", train_size);
  f.add("train.batches", batches).add("validation.size", validation_size).add("test.size", test_size);
  f.add("sample", sample.str());
  return f;
}

} // namespace detail

} // namespace selmask
