#pragma once
/// \file transfer/transfer.hpp
/// Umbrella header of selmask's transfer part (inference: fetching only what the masks select):
/// storage descriptions, selection plans, their JSON files, pack/unpack, the HTTP range
/// vocabulary, and the transport model with range coalescing (bytes on the wire, wire.hpp).
///
/// The HTTP client (`transfer/http.hpp`) is not included here because it needs libcurl: include
/// it and link the `selmask::http` CMake target where you fetch over HTTP.

#include "byteranges.hpp"
#include "pack.hpp"
#include "plan.hpp"
#include "plan_file.hpp"
#include "storage.hpp"
#include "wire.hpp"
