#pragma once
/// \file transfer/transfer.hpp
/// Umbrella header of selmask's transfer part (inference on a remote server's data): storage
/// descriptions, selection plans, their JSON files, pack/unpack, and the HTTP range vocabulary.
///
/// The HTTP client (`transfer/http.hpp`) is not included here because it needs libcurl: include
/// it and link the `selmask::http` CMake target where you fetch over HTTP.

#include "byteranges.hpp"
#include "pack.hpp"
#include "plan.hpp"
#include "plan_file.hpp"
#include "storage.hpp"
