#pragma once
/// \file io/io.hpp
/// Umbrella header of `selmask::io`: data sets (IDX files, Fashion-MNIST, splits and batches),
/// atomic file writes, CSV tables and logs, PNG pictures.

#include "atomic_file.hpp"
#include "csv.hpp"
#include "dataset.hpp"
#include "fashion_mnist.hpp"
#include "idx.hpp"
#include "npy.hpp"
#include "png.hpp"
