// CPU versus GPU on the same workloads (gpu_workloads.hpp): a LeNet + pixel(any) training epoch
// on Fashion-MNIST-sized synthetic data, batch 128, and the forward + backward throughput of
// mask pipelines. The CPU runs a slice of the epoch (--cpu-batches) and fewer mask passes;
// rates are compared, and the CPU's epoch time is projected from its rate.
//
//   bench_gpu [--images N] [--iterations N] [--cpu-batches N] [--cpu-iterations N] [--skip-cpu]
//
// scripts/gpu-check.sh builds and runs it. Needs a CUDA device (selmask::cuda_error without one).
#include <selmask/cuda.cuh>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "gpu_workloads.hpp"

namespace {

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr,
               "%s\nusage: bench_gpu [--images N] [--iterations N] [--cpu-batches N] "
               "[--cpu-iterations N] [--skip-cpu]\n",
               msg.c_str());
  std::exit(2);
}

} // namespace

int main(int argc, char** argv) try {
  selmask_bench::settings gpu;
  selmask_bench::settings cpu;
  cpu.max_batches = 60;
  cpu.mask_iterations = 10;
  bool skip_cpu = false;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    const auto value = [&]() -> std::size_t {
      if (i + 1 >= argc)
        usage("missing value after " + k);
      return std::stoul(argv[++i]);
    };
    if (k == "--images")
      gpu.epoch_images = cpu.epoch_images = value();
    else if (k == "--iterations")
      gpu.mask_iterations = value();
    else if (k == "--cpu-batches")
      cpu.max_batches = value();
    else if (k == "--cpu-iterations")
      cpu.mask_iterations = value();
    else if (k == "--skip-cpu")
      skip_cpu = true;
    else
      usage("unknown argument " + k);
  }

  std::printf("GPU: %s (selmask::cuda)\n", selmask::cuda::device_name().c_str());
  const auto g = selmask_bench::run_all<selmask::cuda>(gpu);
  std::vector<selmask_bench::result> c;
  if (!skip_cpu) {
    c = selmask_bench::run_cpu(cpu);
  }

  std::printf("\n%-54s %16s %16s %9s\n", "workload", "cpu", "gpu", "gpu/cpu");
  for (std::size_t i = 0; i < g.size(); ++i) {
    const double cr = i < c.size() ? c[i].rate() : 0.0;
    char cpu_col[32] = "-";
    char ratio[32] = "-";
    if (cr > 0.0) {
      std::snprintf(cpu_col, sizeof cpu_col, "%.0f %s", cr, c[i].unit.c_str());
      std::snprintf(ratio, sizeof ratio, "%.1fx", g[i].rate() / cr);
    }
    char gpu_col[32];
    std::snprintf(gpu_col, sizeof gpu_col, "%.0f %s", g[i].rate(), g[i].unit.c_str());
    std::printf("%-54s %16s %16s %9s\n", g[i].name.c_str(), cpu_col, gpu_col, ratio);
  }
  const double epoch = static_cast<double>(gpu.epoch_images);
  std::printf("\nLeNet + pixel(any) epoch of %.0f images: gpu %.2f s", epoch, epoch / g[0].rate());
  if (!c.empty() && c[0].rate() > 0.0) {
    std::printf(", cpu %.1f s (projected from %.0f images)", epoch / c[0].rate(), c[0].items);
  }
  std::printf("\n");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_gpu: %s\n", e.what());
  return 1;
}
