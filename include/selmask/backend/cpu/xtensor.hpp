#pragma once
/// \file backend/cpu/xtensor.hpp
/// The one place where selmask includes xtensor. Debian 12 ships xtensor 0.24 with flat headers
/// (`xtensor/xarray.hpp`); releases from 0.26 on moved them into subfolders
/// (`xtensor/containers/xarray.hpp`). Every other selmask header includes this one.

#if __has_include(<xtensor/containers/xarray.hpp>)
#include <xtensor/containers/xadapt.hpp>
#include <xtensor/containers/xarray.hpp>
#include <xtensor/core/xmath.hpp>
#else
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xmath.hpp>
#endif
// xtensor-blas: BLAS bound to xtensor expressions (the CPU backend's GEMM, backend/cpu/gemm.hpp)
#include <xtensor-blas/xblas.hpp>
