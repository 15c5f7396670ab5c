#pragma once
/// \file train/nccl.hpp
/// Data-parallel training between GPUs through NCCL (CMake target `selmask::nccl`: the CUDA
/// runtime, the NCCL library of the CUDA install, and `selmask::mpi`, which starts the processes
/// and hands NCCL its unique id): `nccl_communicator`, one shard per rank, each rank on its own
/// GPU (NCCL refuses two ranks on one device).
///
/// ```cpp
/// selmask::mpi_session mpi(argc, argv);
/// selmask::nccl_communicator comm(local_rank_device, std::chrono::seconds(60));
/// auto policies = selmask::training_policies<>{}.with_communicator(comm);
/// ```
///
/// The trainer gathers host values (train/data_parallel.hpp); this communicator copies them to
/// the device, gathers them with `ncclAllGather` on its own stream, and copies the result back.
/// The stream is polled against the deadline: a rank that died or hangs makes the others abort
/// their NCCL communicator and throw `communication_error` instead of waiting forever.

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <thread>

#include "../error.hpp"
#include "communicator.hpp"
#include "mpi.hpp"

namespace selmask {

class nccl_communicator {
public:
  static constexpr bool sharded = true;

  /// Rank r of MPI_COMM_WORLD on CUDA device `device`.
  explicit nccl_communicator(int device, std::chrono::milliseconds timeout = std::chrono::seconds(60))
    : state_(std::make_shared<state>()) {
    state_->timeout = timeout;
    state_->rank = static_cast<std::size_t>(mpi_session::rank());
    state_->size = static_cast<std::size_t>(mpi_session::size());
    cuda("cudaSetDevice", cudaSetDevice(device));
    ncclUniqueId id{};
    if (state_->rank == 0) {
      nccl("ncclGetUniqueId", ncclGetUniqueId(&id));
    }
    if (MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS) {
      throw communication_error(who() + "MPI_Bcast of the NCCL unique id failed");
    }
    nccl("ncclCommInitRank",
         ncclCommInitRank(&state_->comm, static_cast<int>(state_->size), id, static_cast<int>(state_->rank)));
    cuda("cudaStreamCreate", cudaStreamCreate(&state_->stream));
  }
  [[nodiscard]] std::size_t shards() const { return state_->size; }
  [[nodiscard]] std::size_t first_shard() const { return state_->rank; }
  [[nodiscard]] std::size_t last_shard() const { return state_->rank + 1; }
  [[nodiscard]] bool root() const { return state_->rank == 0; }

  void all_gather(std::span<const float> mine, std::span<float> all) { gather(mine, all, ncclFloat); }
  void all_gather(std::span<const double> mine, std::span<double> all) { gather(mine, all, ncclDouble); }

private:
  struct state {
    ncclComm_t comm = nullptr;
    cudaStream_t stream = nullptr;
    void* send = nullptr;
    void* receive = nullptr;
    std::size_t capacity = 0; ///< bytes of `receive` (`send` holds a share of it)
    std::chrono::milliseconds timeout{60000};
    std::size_t rank = 0;
    std::size_t size = 1;
    bool aborted = false;
    ~state() {
      cudaFree(send);
      cudaFree(receive);
      if (comm != nullptr) {
        if (aborted) {
          ncclCommAbort(comm);
        } else {
          ncclCommDestroy(comm);
        }
      }
      if (stream != nullptr) {
        cudaStreamDestroy(stream);
      }
    }
  };

  [[nodiscard]] std::string who() const {
    return "selmask::nccl_communicator (rank " + std::to_string(state_->rank) + " of " +
           std::to_string(state_->size) + "): ";
  }
  void cuda(const char* what, cudaError_t e) const {
    if (e != cudaSuccess) {
      throw communication_error(who() + what + ": " + cudaGetErrorString(e));
    }
  }
  void nccl(const char* what, ncclResult_t r) const {
    if (r != ncclSuccess) {
      throw communication_error(who() + what + ": " + ncclGetErrorString(r));
    }
  }

  template <class T>
  void gather(std::span<const T> mine, std::span<T> all, ncclDataType_t type) {
    state& s = *state_;
    if (all.size() != mine.size() * s.size) {
      throw value_error(who() + "all_gather of " + std::to_string(mine.size()) + " values needs room for " +
                        std::to_string(mine.size() * s.size) + ", got " + std::to_string(all.size()));
    }
    const std::size_t bytes = all.size() * sizeof(T);
    if (bytes > s.capacity) {
      cudaFree(s.send);
      cudaFree(s.receive);
      s.send = s.receive = nullptr;
      s.capacity = 0;
      cuda("cudaMalloc", cudaMalloc(&s.send, bytes));
      cuda("cudaMalloc", cudaMalloc(&s.receive, bytes));
      s.capacity = bytes;
    }
    cuda("cudaMemcpyAsync",
         cudaMemcpyAsync(s.send, mine.data(), mine.size() * sizeof(T), cudaMemcpyHostToDevice, s.stream));
    nccl("ncclAllGather", ncclAllGather(s.send, s.receive, mine.size(), type, s.comm, s.stream));
    cuda("cudaMemcpyAsync", cudaMemcpyAsync(all.data(), s.receive, bytes, cudaMemcpyDeviceToHost, s.stream));
    const auto deadline = std::chrono::steady_clock::now() + s.timeout;
    while (true) {
      const cudaError_t q = cudaStreamQuery(s.stream);
      if (q == cudaSuccess) {
        return;
      }
      if (q != cudaErrorNotReady) {
        cuda("cudaStreamQuery", q);
      }
      if (std::chrono::steady_clock::now() > deadline) {
        s.aborted = true;
        detail::mpi_failed = true;
        throw communication_error(who() + "no answer from the other ranks within " +
                                  std::to_string(s.timeout.count()) + " ms: a rank died or hangs; stopping");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  std::shared_ptr<state> state_; ///< shared by copies (the trainer's policies hold one)
};

static_assert(communicator<nccl_communicator>);

} // namespace selmask
