#pragma once
/// \file core.hpp
/// The backend-agnostic core of selmask, for a user who brings a backend (or uses the reference
/// backend) and needs neither the CPU backend's xtensor and BLAS nor data files, pictures or
/// transfer plans: the backend and model concepts, granularities, surrogates, masks, cost models,
/// extend/merge operators and pipelines. CMake target `selmask::core` (Boost's headers only).
/// `selmask/selmask.hpp` is the everything header (CPU backend, I/O, network kit, trainer).

#include "backend/backend.hpp"
#include "cost/cost.hpp"
#include "error.hpp"
#include "granularity/geometry.hpp"
#include "granularity/granularity.hpp"
#include "mask/mask.hpp"
#include "model/adapters.hpp"
#include "model/model.hpp"
#include "ops/extend.hpp"
#include "ops/merge.hpp"
#include "pipeline/pipeline.hpp"
#include "pipeline/stage.hpp"
#include "shape.hpp"
#include "surrogate/formulas.hpp"
#include "surrogate/straight_through.hpp"
