# Sourced by the other scripts. OpenBLAS 0.3.21 (Debian 12) chooses its kernels from the CPU model
# when it loads, and falls back to its generic SSE3 ("Prescott") kernels on CPUs its table does not
# know, which made sgemm about 5x slower on our AVX-512 machines. OPENBLAS_CORETYPE overrides the
# choice; it is set here from the CPU's flags unless the caller set it already.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -r /proc/cpuinfo ]; then
  cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  if [[ $cpu_flags == *" avx512f "* && $cpu_flags == *" avx512bw "* && $cpu_flags == *" avx512dq "* &&
        $cpu_flags == *" avx512vl "* ]]; then
    export OPENBLAS_CORETYPE=SkylakeX
  elif [[ $cpu_flags == *" avx2 "* && $cpu_flags == *" fma "* ]]; then
    export OPENBLAS_CORETYPE=Haswell
  fi
  unset cpu_flags
fi
