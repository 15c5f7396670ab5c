#pragma once
/// \file backend/cpu/blas.hpp
/// What the CPU backend needs to know about the BLAS it was linked with.
///
/// OpenBLAS built with DYNAMIC_ARCH (Debian's) chooses its kernels when it is loaded, from the CPU
/// model. A CPU that its table does not know gets the generic "Prescott" (SSE3) kernels: on an
/// AVX-512 Xeon with Debian 12's OpenBLAS 0.3.21 their `sgemm` is about 5× slower than the
/// SkylakeX kernels the same library carries. The choice can only be overridden before the
/// library loads, through the environment variable `OPENBLAS_CORETYPE` (OpenBLAS's
/// documentation); selmask's scripts set it. From inside a program selmask can only notice:
/// `blas::check_kernels()` prints one warning on stderr naming the variable to set, and the CPU
/// backend calls it before its first GEMM. `SELMASK_QUIET_BLAS=1` silences it.
///
/// The OpenBLAS entry points are declared weak, so that linking another BLAS also works (the
/// functions then report "unknown" and do nothing).

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" {
char* openblas_get_corename(void) __attribute__((weak));
void openblas_set_num_threads(int) __attribute__((weak));
int openblas_get_num_threads(void) __attribute__((weak));
}

namespace selmask::blas {

/// The OpenBLAS kernel family in use ("SkylakeX", "Haswell", "Prescott", …), or "unknown" when the
/// BLAS is not OpenBLAS.
[[nodiscard]] inline std::string core_name() {
  if (openblas_get_corename == nullptr) {
    return "unknown";
  }
  const char* n = openblas_get_corename();
  return n != nullptr ? std::string(n) : std::string("unknown");
}

/// The `OPENBLAS_CORETYPE` value this CPU should run: "SkylakeX" with AVX-512, "Haswell" with AVX2
/// and FMA, "" when the generic kernels are all it can run.
[[nodiscard]] inline std::string_view suggested_coretype() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
    return "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return "Haswell";
  }
#endif
  return "";
}

/// True when OpenBLAS runs kernels older than what the CPU supports (a generic SSE kernel on a CPU
/// with AVX2 or AVX-512).
[[nodiscard]] inline bool generic_kernels_on_modern_cpu() {
  const std::string core = core_name();
  const bool generic = core == "Prescott" || core == "Core2" || core == "Penryn" || core == "Dunnington" ||
                       core == "Nehalem" || core == "Atom" || core == "Katmai" || core == "Coppermine" ||
                       core == "Northwood" || core == "Banias";
  return generic && !suggested_coretype().empty();
}

/// Prints (once per process) a warning on stderr when `generic_kernels_on_modern_cpu()`, naming the
/// environment variable that fixes it. Returns whether the kernels are generic.
inline bool check_kernels() {
  static const bool generic = [] {
    const bool g = generic_kernels_on_modern_cpu();
    const char* quiet = std::getenv("SELMASK_QUIET_BLAS");
    if (g && (quiet == nullptr || std::string_view(quiet) != "1")) {
      std::fprintf(stderr,
                   "selmask: OpenBLAS picked its generic '%s' kernels on a CPU that supports %s; GEMMs run "
                   "several times slower. Run with OPENBLAS_CORETYPE=%s in the environment "
                   "(SELMASK_QUIET_BLAS=1 hides this note).\n",
                   core_name().c_str(), suggested_coretype() == "SkylakeX" ? "AVX-512" : "AVX2",
                   std::string(suggested_coretype()).c_str());
    }
    return g;
  }();
  return generic;
}

/// Sets the number of threads OpenBLAS uses for one call (no effect with another BLAS).
inline void set_threads(int n) {
  if (openblas_set_num_threads != nullptr) {
    openblas_set_num_threads(n);
  }
}

/// The number of threads OpenBLAS uses for one call (1 with another BLAS).
[[nodiscard]] inline int threads() {
  return openblas_get_num_threads != nullptr ? openblas_get_num_threads() : 1;
}

} // namespace selmask::blas
