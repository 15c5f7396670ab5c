#pragma once
/// \file train/callbacks.hpp
/// What a trainer reports, and the callbacks that ship: a progress display on stderr and a
/// per-epoch CSV log. A callback is any object with some of these members (all optional, ensmallen
/// style); a hook that returns `true` stops training after the current epoch:
///  - `on_train_begin(const train_begin_info&)`
///  - `on_batch_end(const batch_info&)`
///  - `on_epoch_end(const epoch_info&)` → `void` or `bool`
///  - `on_train_end(const accuracy_front&)`

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#if __has_include(<unistd.h>)
#include <unistd.h>
#endif
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../io/atomic_file.hpp"
#include "../shape.hpp"
#include "front.hpp"
#include "schedule.hpp"

namespace selmask {

struct batch_info {
  std::size_t epoch = 0;   ///< 0-based, counting warm-up epochs
  std::size_t epochs = 0;  ///< planned in all
  std::size_t batch = 0;   ///< 0-based within the epoch
  std::size_t batches = 0; ///< per epoch
  phase current = phase::warmup;
  double loss = 0.0;     ///< running mean task loss of this epoch
  double accuracy = 0.0; ///< running training accuracy of this epoch
  double q = 1.0;        ///< Q of the masks this batch used
  float lambda = 0.0f;
  float tau = 1.0f;
  double images_per_second = 0.0;
  double eta_seconds = 0.0; ///< until the planned end of training
};

struct epoch_info {
  std::size_t epoch = 0;
  std::size_t epochs = 0;
  phase current = phase::warmup;
  float lambda = 0.0f;
  float tau = 1.0f;
  double train_loss = 0.0;
  double train_accuracy = 0.0;
  double val_accuracy = 0.0;
  double q = 1.0; ///< Q of the hard masks after the epoch (what is evaluated)
  double test_accuracy = NAN;
  double seconds = 0.0;
  bool front_improved = false;
  std::vector<std::vector<float>> masks; ///< the hard mask of every mask stage after the epoch (host values)
  std::vector<shape> mask_shapes;        ///< their shapes, in pipeline order
};

struct train_begin_info {
  std::size_t epochs = 0; ///< warm-up + mask epochs planned
  std::size_t batches_per_epoch = 0;
  std::size_t train_size = 0;
  std::size_t validation_size = 0;
  /// A resumed run (train/resume.hpp): the epoch and batch it continues at, and the epochs that
  /// ran before its state was written (their numbers; `masks` empty). A fresh run: 0, 0, none.
  std::size_t first_epoch = 0;
  std::size_t first_batch = 0;
  std::span<const epoch_info> done{};
};

/// One line per `every` batches on stderr (overwritten in place on a terminal, one line each in a
/// log file or pipe), one per epoch.
class progress_display {
public:
  explicit progress_display(std::size_t every = 25, std::FILE* out = stderr)
    : every_(every), out_(out), terminal_(is_terminal(out)) {}

  void on_batch_end(const batch_info& b) {
    if (every_ == 0 || (b.batch + 1) % every_ != 0) {
      return;
    }
    std::fprintf(out_,
                 "%sepoch %zu/%zu %-7s batch %zu/%zu  %.0f img/s  loss %.4f  acc %.4f  Q %.4f  "
                 "lambda %.4g  tau %.3g  ETA %s%s",
                 terminal_ ? "\r" : "", b.epoch + 1, b.epochs, phase_name(b.current), b.batch + 1, b.batches,
                 b.images_per_second, b.loss, b.accuracy, b.q, static_cast<double>(b.lambda),
                 static_cast<double>(b.tau), clock(b.eta_seconds).c_str(), terminal_ ? "   " : "\n");
    std::fflush(out_);
  }
  void on_epoch_end(const epoch_info& e) {
    std::fprintf(out_,
                 "%sepoch %zu/%zu %-7s loss %.4f  train acc %.4f  val acc %.4f  test acc %.4f  "
                 "Q %.4f  lambda %.4g  tau %.3g  %.1fs%s\n",
                 terminal_ ? "\r" : "", e.epoch + 1, e.epochs, phase_name(e.current), e.train_loss,
                 e.train_accuracy, e.val_accuracy, e.test_accuracy, e.q, static_cast<double>(e.lambda),
                 static_cast<double>(e.tau), e.seconds, e.front_improved ? "  *front" : "");
    std::fflush(out_);
  }

private:
  static std::string clock(double s) {
    if (!std::isfinite(s) || s < 0) {
      return "?";
    }
    const auto t = static_cast<long>(s);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    return buf;
  }
  static bool is_terminal(std::FILE* f) {
#if __has_include(<unistd.h>)
    return f != nullptr && ::isatty(::fileno(f)) == 1;
#else
    return f == stderr;
#endif
  }
  std::size_t every_;
  std::FILE* out_;
  bool terminal_;
};

/// Appends one CSV row per epoch (header first), flushed at once, so a killed run keeps its log.
/// A resumed run (`train_begin_info::done`) first rewrites the file, atomically, with the rows of
/// the epochs its state holds, so the log reads as if the run had never stopped.
class epoch_csv_log {
public:
  explicit epoch_csv_log(std::filesystem::path path) : path_(std::move(path)) {}

  void on_train_begin(const train_begin_info& info) {
    std::string head =
      "epoch,phase,lambda,tau,train_loss,train_accuracy,val_accuracy,q,test_accuracy,seconds\n";
    for (const epoch_info& e : info.done) {
      head += row(e);
    }
    io::write_file_atomically(path_, head);
    out_.open(path_, std::ios::out | std::ios::app);
    if (!out_) {
      throw io_error("selmask::epoch_csv_log: cannot open " + path_.string() + " for writing");
    }
  }
  void on_epoch_end(const epoch_info& e) {
    out_ << row(e);
    out_.flush();
    if (!out_) {
      throw io_error("selmask::epoch_csv_log: writing " + path_.string() + " failed");
    }
  }

  /// One line of the log.
  static std::string row(const epoch_info& e) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "%zu,%s,%.6g,%.6g,%.6f,%.6f,%.6f,%.6f,%.6f,%.3f\n", e.epoch + 1,
                  phase_name(e.current), static_cast<double>(e.lambda), static_cast<double>(e.tau),
                  e.train_loss, e.train_accuracy, e.val_accuracy, e.q, e.test_accuracy, e.seconds);
    return buf;
  }

private:
  std::filesystem::path path_;
  std::ofstream out_;
};

} // namespace selmask
