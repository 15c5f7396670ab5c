#pragma once
/// \file train/mpi.hpp
/// Data-parallel training over MPI (CMake target `selmask::mpi`, found with CMake's FindMPI;
/// Debian: `libopenmpi-dev openmpi-bin`): `mpi_communicator`, one shard of every batch per rank
/// (train/communicator.hpp), and `mpi_session`, MPI for the lifetime of a program.
///
/// ```cpp
/// int main(int argc, char** argv) {
///   selmask::mpi_session mpi(argc, argv);
///   selmask::mpi_communicator comm(std::chrono::seconds(60));
///   auto policies = selmask::training_policies<>{}.with_communicator(comm);
///   auto result = selmask::learn_selection_masks(masks, net, train, validation, &test, options, policies);
/// }   // mpirun -np 4 ./program
/// ```
///
/// Every rank reads the same data (the batch source gives every rank the whole global batch;
/// each takes its shard) and holds the same masks and weights; rank 0 writes outputs, checkpoints
/// and the training state. Each exchange is an `MPI_Iallgather` polled against a deadline: a rank
/// that died or hangs makes the others throw `communication_error` ("no answer from the other
/// ranks within 60 s") instead of waiting forever; `mpi_session` then ends the job with
/// `MPI_Abort` rather than a finalize that would wait for the missing rank. (Open MPI's `mpirun`
/// also ends the job itself when a rank exits with an error.)

// the C API only: MPI's deprecated C++ bindings are not used (and do not compile warning-free)
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <span>
#include <string>
#include <thread>

#include "../error.hpp"
#include "communicator.hpp"

namespace selmask {

namespace detail {
/// Set when an exchange failed: the session then aborts the job instead of finalising.
inline bool mpi_failed = false;

inline std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<std::size_t>(length));
}
} // namespace detail

/// MPI from construction to destruction (`MPI_Init_thread` unless MPI is already initialised;
/// `MPI_Finalize`, or `MPI_Abort` after a failed exchange or while an exception leaves).
class mpi_session {
public:
  mpi_session(int& argc, char**& argv) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (initialised == 0) {
      int provided = 0;
      const int rc = MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
      if (rc != MPI_SUCCESS) {
        throw communication_error("selmask::mpi_session: MPI_Init_thread failed: " +
                                  detail::mpi_error_text(rc));
      }
      owner_ = true;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  mpi_session(const mpi_session&) = delete;
  mpi_session& operator=(const mpi_session&) = delete;
  ~mpi_session() {
    if (!owner_) {
      return;
    }
    if (detail::mpi_failed || std::uncaught_exceptions() > 0) {
      std::fflush(nullptr);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Finalize();
  }
  [[nodiscard]] static int rank() {
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
  }
  [[nodiscard]] static int size() {
    int s = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &s);
    return s;
  }

private:
  bool owner_ = false;
};

/// One shard per rank of `comm` (default MPI_COMM_WORLD); exchanges give up after `timeout`.
class mpi_communicator {
public:
  static constexpr bool sharded = true;

  explicit mpi_communicator(std::chrono::milliseconds timeout = std::chrono::seconds(60),
                            MPI_Comm comm = MPI_COMM_WORLD)
    : comm_(comm), timeout_(timeout) {
    int r = 0;
    int s = 1;
    MPI_Comm_rank(comm_, &r);
    MPI_Comm_size(comm_, &s);
    rank_ = static_cast<std::size_t>(r);
    size_ = static_cast<std::size_t>(s);
    if (timeout.count() <= 0) {
      throw value_error("selmask::mpi_communicator: the timeout must be positive");
    }
  }
  [[nodiscard]] std::size_t shards() const { return size_; }
  [[nodiscard]] std::size_t first_shard() const { return rank_; }
  [[nodiscard]] std::size_t last_shard() const { return rank_ + 1; }
  [[nodiscard]] bool root() const { return rank_ == 0; }
  [[nodiscard]] std::chrono::milliseconds timeout() const { return timeout_; }

  void all_gather(std::span<const float> mine, std::span<float> all) { gather(mine, all, MPI_FLOAT); }
  void all_gather(std::span<const double> mine, std::span<double> all) { gather(mine, all, MPI_DOUBLE); }
  /// `mine` in R equal chunks, chunk j to rank j; `got` receives chunk `rank` of every rank, in
  /// rank order (the first step of the gradient exchange, train/data_parallel.hpp).
  void all_to_all(std::span<const float> mine, std::span<float> got) {
    if (mine.size() % size_ != 0 || got.size() != mine.size()) {
      throw value_error("selmask::mpi_communicator: all_to_all of " + std::to_string(mine.size()) +
                        " values in " + std::to_string(size_) + " chunks into " + std::to_string(got.size()));
    }
    const int n = static_cast<int>(mine.size() / size_);
    exchange([&](MPI_Request* r) {
      return MPI_Ialltoall(mine.data(), n, MPI_FLOAT, got.data(), n, MPI_FLOAT, comm_, r);
    });
  }

private:
  template <class T>
  void gather(std::span<const T> mine, std::span<T> all, MPI_Datatype type) {
    const std::string who =
      "selmask::mpi_communicator (rank " + std::to_string(rank_) + " of " + std::to_string(size_) + "): ";
    if (all.size() != mine.size() * size_) {
      throw value_error(who + "all_gather of " + std::to_string(mine.size()) + " values needs room for " +
                        std::to_string(mine.size() * size_) + ", got " + std::to_string(all.size()));
    }
    const int n = static_cast<int>(mine.size());
    exchange(
      [&](MPI_Request* r) { return MPI_Iallgather(mine.data(), n, type, all.data(), n, type, comm_, r); });
  }

  /// Starts a non-blocking collective with `start(&request)` and waits for it until the deadline.
  template <class Start>
  void exchange(Start&& start) {
    const std::string who =
      "selmask::mpi_communicator (rank " + std::to_string(rank_) + " of " + std::to_string(size_) + "): ";
    const auto fail = [&](const std::string& what) {
      detail::mpi_failed = true;
      throw communication_error(who + what);
    };
    MPI_Request request = MPI_REQUEST_NULL;
    int rc = start(&request);
    if (rc != MPI_SUCCESS) {
      fail("starting an exchange failed: " + detail::mpi_error_text(rc));
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    int done = 0;
    for (unsigned polls = 0;; ++polls) {
      rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS) {
        fail("an exchange failed: " + detail::mpi_error_text(rc) + " (a rank died?)");
      }
      if (done != 0) {
        return;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        fail("no answer from the other ranks within " + std::to_string(timeout_.count()) +
             " ms: a rank died or hangs; stopping");
      }
      if (polls > 1000) { // after a short spin, poll every 50 µs
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
  }

  MPI_Comm comm_;
  std::chrono::milliseconds timeout_;
  std::size_t rank_ = 0;
  std::size_t size_ = 1;
};

static_assert(communicator<mpi_communicator>);

} // namespace selmask
