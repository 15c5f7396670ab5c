// The CPU side of bench_gpu: the workloads of gpu_workloads.hpp on selmask::cpu (host compiler;
// the only translation unit of bench_gpu that sees xtensor).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
// GCC 12: a mask's empty cost policy passed down inlined constructors reads as "may be used
// uninitialized", a false positive
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <selmask/backend/cpu/cpu.hpp>

#include "gpu_workloads.hpp"

namespace selmask_bench {

std::vector<result> run_cpu(const settings& s) { return run_all<selmask::cpu>(s); }

} // namespace selmask_bench
