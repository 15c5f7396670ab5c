// The gradient exchange of a data-parallel step (train/data_parallel.hpp) between MPI ranks, at
// the size of LeNet's gradients plus a 28×28 pixel mask's logits (431,080 + 784 floats, 1.73 MB):
// the trainer's exchange (copy to the host, MPI_Iallgather of every rank's vector, sum in rank
// order, copy back) against a plain MPI_Allreduce of the same floats (not deterministic in its
// order in general, and what a bandwidth-optimal design would cost). Prints milliseconds per
// exchange on rank 0 (median of 30 after 5 warm-up rounds).
//   mpirun -np R bench_exchange [FLOATS]
#include <selmask/selmask.hpp>
#include <selmask/train/data_parallel.hpp>
#include <selmask/train/mpi.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  selmask::mpi_session mpi(argc, argv);
  using B = selmask::cpu;
  const std::size_t floats = argc > 1 ? std::stoul(argv[1]) : 431080 + 784;
  selmask::mpi_communicator comm(std::chrono::seconds(60));
  std::vector<B::tensor> grads{B::zeros(selmask::shape{floats})};
  selmask::detail::gradient_exchange<B> exchange;
  exchange.bind({&grads[0]}, 1);
  std::vector<float> in(floats, 1.0f);
  std::vector<float> out(floats);
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::vector<double> ours, allreduce;
  for (int i = 0; i < 35; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    exchange.collect(0);
    exchange.reduce(comm);
    auto t1 = std::chrono::steady_clock::now();
    MPI_Allreduce(in.data(), out.data(), static_cast<int>(floats), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    auto t2 = std::chrono::steady_clock::now();
    if (i >= 5) {
      ours.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      allreduce.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    }
  }
  if (comm.root()) {
    std::printf(
      "bench_exchange: %zu ranks, %zu floats (%.2f MB): trainer's exchange %.2f ms, MPI_Allreduce %.2f ms\n",
      comm.shards(), floats, static_cast<double>(floats) * 4e-6, median(ours), median(allreduce));
  }
  return 0;
}
