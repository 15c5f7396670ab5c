#pragma once
/// \file cuda.cuh
/// Umbrella header for CUDA users (include it from `.cu` files compiled by nvcc): the CUDA
/// backend `selmask::cuda` and everything of selmask that runs on it — granularities,
/// surrogates, masks, costs, extend/merge operators, pipelines, the model concept, the network
/// kit, Algorithm 1 and the I/O helpers. It leaves out the CPU backend, whose xtensor headers
/// are not meant for nvcc: keep CPU code in `.cpp` files and exchange host vectors
/// (`B::to_host`, `B::from_host`) between the two.

#if !defined(__CUDACC__)
#error "selmask/cuda.cuh needs nvcc: CUDA code compiles from .cu files only"
#endif

#include "backend/backend.hpp"
#include "backend/cuda/cuda.cuh"
#include "backend/nn_backend.hpp"
#include "cost/cost.hpp"
#include "error.hpp"
#include "granularity/geometry.hpp"
#include "granularity/granularity.hpp"
#include "io/io.hpp"
#include "mask/mask.hpp"
#include "model/model.hpp"
#include "nn/adamw.hpp"
#include "nn/conv2d.hpp"
#include "nn/dense.hpp"
#include "nn/flatten.hpp"
#include "nn/layer.hpp"
#include "nn/lenet.hpp"
#include "nn/loss.hpp"
#include "nn/max_pool2.hpp"
#include "nn/relu.hpp"
#include "nn/sequential.hpp"
#include "nn/weights_file.hpp"
#include "ops/extend.hpp"
#include "ops/merge.hpp"
#include "pipeline/pipeline.hpp"
#include "pipeline/stage.hpp"
#include "shape.hpp"
#include "surrogate/formulas.hpp"
#include "surrogate/straight_through.hpp"
#include "testing/gradient_check.hpp"
#include "train/callbacks.hpp"
#include "train/front.hpp"
#include "train/schedule.hpp"
#include "train/trainer.hpp"
