#pragma once
/// \file selmask.hpp
/// Umbrella header for CPU users: the CPU backend, granularities, surrogates, masks, costs,
/// extend/merge operators and pipelines, the model concept, the network kit, Algorithm 1 and
/// the I/O helpers. CUDA users include `selmask/cuda.cuh` as well.

#include "backend/backend.hpp"
#include "backend/cpu/cpu.hpp"
#include "cost/cost.hpp"
#include "error.hpp"
#include "granularity/geometry.hpp"
#include "granularity/granularity.hpp"
#include "io/io.hpp"
#include "mask/mask.hpp"
#include "model/model.hpp"
#include "nn/nn.hpp"
#include "ops/extend.hpp"
#include "ops/merge.hpp"
#include "pipeline/pipeline.hpp"
#include "pipeline/stage.hpp"
#include "shape.hpp"
#include "surrogate/formulas.hpp"
#include "surrogate/stochastic.hpp"
#include "surrogate/straight_through.hpp"
#include "testing/gradient_check.hpp"
#include "train/trainer.hpp"
