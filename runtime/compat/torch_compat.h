// The one place where libtorch versions differ. The runtime builds against
// Debian's libtorch 1.13 (CPU, CI) and against libtorch 2.x with CUDA or
// ROCm; code elsewhere tests these macros instead of version numbers.
#pragma once

#include <torch/version.h>

#define STEMKIT_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// c10::Allocator::allocate is const up to 2.2; 2.3 made it non-const and added the
// pure virtual copy_data (runtime/memory/host_block_cache.cpp implements both forms).
#define STEMKIT_ALLOCATE_IS_CONST !STEMKIT_TORCH_AT_LEAST(2, 3)

// at::scaled_dot_product_attention is public from 2.0, with a `scale` argument from 2.1.
#define STEMKIT_HAS_SDPA STEMKIT_TORCH_AT_LEAST(2, 0)
#define STEMKIT_HAS_SDPA_SCALE STEMKIT_TORCH_AT_LEAST(2, 1)
// The cuDNN attention backend and its switch in at::Context.
#define STEMKIT_HAS_SDPA_CUDNN STEMKIT_TORCH_AT_LEAST(2, 4)
// at::cuda::CUDAGraph::capture_begin takes the capture mode from 2.1: a capture in
// thread-local mode leaves other threads free to make any CUDA call meanwhile.
#define STEMKIT_HAS_CAPTURE_MODE STEMKIT_TORCH_AT_LEAST(2, 1)
// at::rms_norm is public from 2.4; from 2.8 CUDA runs it as one fused kernel
// (_fused_rms_norm) instead of pow, mean, rsqrt and mul.
#define STEMKIT_HAS_FUSED_RMS_NORM STEMKIT_TORCH_AT_LEAST(2, 8)

namespace stemkit::compat {

inline const char* torch_version() { return TORCH_VERSION; }

}  // namespace stemkit::compat
