#pragma once
/// \file error.hpp
/// The exceptions selmask throws for bad run-time input.
///
/// Every message names the entity, the rule and (where there is one) the expected and the actual
/// value, e.g. "selmask::any_mask::forward: input shape [8,3,28,28] does not match the mask's
/// [1,28,28] (expected [N,1,28,28])".

#include <stdexcept>
#include <string>

namespace selmask {

/// Base class of every error selmask throws on purpose.
class error : public std::runtime_error {
public:
  explicit error(const std::string& what) : std::runtime_error(what) {}
};

/// A tensor's shape does not fit what the operation requires.
class shape_error : public error {
public:
  using error::error;
};

/// A value is out of its domain: NaN or infinity, a temperature or λ that is not positive, ...
class value_error : public error {
public:
  using error::error;
};

/// A file is missing, truncated, corrupt, or of another format or version.
class io_error : public error {
public:
  using error::error;
};

} // namespace selmask
