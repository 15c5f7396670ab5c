#pragma once
/// \file backend/cuda/tensor.hpp
/// `basic_device_tensor<Exec>`: the tensor type of the CUDA backend (`selmask::cuda::tensor`, also
/// called `selmask::cuda_tensor`): a float32 buffer in device memory, owned (RAII), with a
/// `selmask::shape`. Values are row-major, like every selmask tensor.
///
///  - A default-constructed tensor is empty: no values, rank 0, and no CUDA call is made (masks,
///    layers and pipelines hold tensors as members before their first batch).
///  - Copies are deep (a device-to-device copy queued on the backend's stream): `nn::sequential`
///    and the masks copy their tensors when a network or a pipeline is copied. Moves steal the
///    buffer and leave the source empty.
///  - `resize` keeps the buffer when it is large enough (its contents are then unspecified), so a
///    workspace reused across batches of equal or smaller size allocates nothing.
///
/// `Exec` is the executor that owns the memory (`detail::cuda_device` for the GPU,
/// `detail::host_emulator` for the host emulation used in tests). Plain C++: all device access
/// goes through `Exec`.

#include <cstddef>
#include <utility>

#include "../../shape.hpp"

namespace selmask {

template <class Exec>
class basic_device_tensor {
public:
  basic_device_tensor() noexcept = default;
  /// A tensor of shape `s` with unspecified values.
  explicit basic_device_tensor(const shape& s) { resize(s); }

  basic_device_tensor(const basic_device_tensor& o) { assign(o); }
  basic_device_tensor(basic_device_tensor&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), capacity_(std::exchange(o.capacity_, 0)),
      size_(std::exchange(o.size_, 0)), shape_(std::exchange(o.shape_, shape{})) {}
  basic_device_tensor& operator=(const basic_device_tensor& o) {
    if (this != &o) {
      assign(o);
    }
    return *this;
  }
  basic_device_tensor& operator=(basic_device_tensor&& o) noexcept {
    if (this != &o) {
      Exec::deallocate(data_);
      data_ = std::exchange(o.data_, nullptr);
      capacity_ = std::exchange(o.capacity_, 0);
      size_ = std::exchange(o.size_, 0);
      shape_ = std::exchange(o.shape_, shape{});
    }
    return *this;
  }
  ~basic_device_tensor() { Exec::deallocate(data_); }

  [[nodiscard]] const shape& dims() const noexcept { return shape_; }
  /// Number of values (0 for an empty, default-constructed tensor).
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  /// Device pointer to the first value (null when nothing was ever allocated).
  [[nodiscard]] float* data() noexcept { return data_; }
  [[nodiscard]] const float* data() const noexcept { return data_; }
  /// Number of values the buffer holds without reallocating.
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  /// Gives the tensor shape `s`; reallocates only when the buffer is too small. The values are
  /// unspecified afterwards (they are kept when the buffer is kept).
  void resize(const shape& s) {
    const std::size_t n = s.size();
    if (n > capacity_ || capacity_ == 0) {
      void* fresh = Exec::allocate(n * sizeof(float)); // the first use creates the CUDA context
      Exec::deallocate(data_);
      data_ = static_cast<float*>(fresh);
      capacity_ = n;
    }
    size_ = n;
    shape_ = s;
  }
  /// Same values, shape `s` of the same size (checked by the caller).
  void reshape(const shape& s) noexcept { shape_ = s; }

private:
  void assign(const basic_device_tensor& o) {
    if (o.size_ == 0 && o.capacity_ == 0 && o.shape_.rank() == 0) {
      *this = basic_device_tensor(); // an empty tensor copies as empty, without touching CUDA
      return;
    }
    resize(o.shape_);
    Exec::device_copy(data_, o.data_, o.size_ * sizeof(float));
  }

  float* data_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t size_ = 0;
  shape shape_{};
};

} // namespace selmask
