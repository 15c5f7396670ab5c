#pragma once
/// \file nn/nn.hpp
/// Umbrella header of the small network kit `selmask::nn`: layers (dense, conv2d, max_pool2,
/// relu, flatten), the `sequential` container (a `trainable_model`), the AdamW optimiser, softmax
/// cross-entropy, the weights file, and `lenet`. Works on any `nn_backend` (the CPU backend is
/// included here).

#include "../backend/cpu/cpu.hpp"
#include "../backend/nn_backend.hpp"
#include "adamw.hpp"
#include "conv2d.hpp"
#include "conv_relu_pool.hpp"
#include "dense.hpp"
#include "flatten.hpp"
#include "layer.hpp"
#include "lenet.hpp"
#include "loss.hpp"
#include "max_pool2.hpp"
#include "relu.hpp"
#include "sequential.hpp"
#include "weights_file.hpp"
