#pragma once
/// \file detail/config.hpp
/// Macros shared by every selmask header.
///
/// SELMASK_HOST_DEVICE marks a function that is compiled for both the host and a CUDA device when
/// the translation unit is compiled by nvcc, and is a plain inline function for a host compiler.
/// Shared formulas (surrogates, costs) are written once behind it and used by every backend.

#if defined(__CUDACC__)
#define SELMASK_HOST_DEVICE __host__ __device__ inline
#else
#define SELMASK_HOST_DEVICE inline
#endif

#define SELMASK_VERSION_MAJOR 0
#define SELMASK_VERSION_MINOR 1
#define SELMASK_VERSION_PATCH 0
