// From ATen tensors to the kernel launchers' plain arguments (launch.h): the
// element type, the current stream, alignment, and the launch's error as a
// c10::Error. For the kernel files' ATen wrappers (roformer_kernels.cpp,
// htdemucs_kernels.cpp) in builds with the kernels (STEMKIT_HAS_KERNELS).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>

#include "runtime/kernels/launch.h"

#if defined(STEMKIT_ROCM)
#include <c10/hip/HIPStream.h>
#else
#include <c10/cuda/CUDAStream.h>
#endif

namespace stemkit::kernels {

inline launch::DType dtype_of(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return launch::DType::f32;
    case at::kHalf: return launch::DType::f16;
    case at::kBFloat16: return launch::DType::bf16;
    default: TORCH_CHECK(false, "stemkit kernels: unsupported dtype ", t.scalar_type());
  }
}

inline void* current_stream(const at::Tensor& t) {
#if defined(STEMKIT_ROCM)
  return c10::hip::getCurrentHIPStream(t.device().index()).stream();
#else
  return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
#endif
}

inline void check_launch(const char* what) {
  const char* err = launch::last_error();
  TORCH_CHECK(err == nullptr || err[0] == '\0', "stemkit kernels: ", what, " failed to launch: ", err);
}

// 8 elements per thread: pointers aligned to 8 elements, sizes and strides multiples of 8.
inline bool aligned8(const at::Tensor& t) {
  return reinterpret_cast<std::uintptr_t>(t.data_ptr()) % (8 * t.element_size()) == 0;
}

}  // namespace stemkit::kernels
