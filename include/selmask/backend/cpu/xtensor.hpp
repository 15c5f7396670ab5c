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
// xtensor-blas: BLAS bound to xtensor expressions (the CPU backend's GEMM, backend/cpu/gemm.hpp).
// Its bundled CBLAS prototypes (xflens/cxxblas/drivers/cblas.h) define the same enums as the BLAS's
// own <cblas.h>, so a translation unit could not include both; it uses the BLAS's declarations
// instead (same functions, same enum values), and a user's own #include <cblas.h>, before or after
// selmask's, keeps working.
#include <cblas.h>
#ifndef CXXBLAS_DRIVERS_CBLAS_H
#define CXXBLAS_DRIVERS_CBLAS_H 1
#endif
#include <xtensor-blas/xblas.hpp>
