// Only for tests/hip/compile_kernels.sh on ROCm older than 5.7 (Debian 12 has 5.2), which
// lack hip_bf16.h: the part of its API roformer_kernels.cu uses, so that the rest of the
// file is compile-checked there. Real ROCm builds use ROCm's own header.
#pragma once
#include <hip/hip_runtime.h>

struct __hip_bfloat16 {
  unsigned short data;
};
__host__ __device__ inline float __bfloat162float(__hip_bfloat16 a) {
  return __builtin_bit_cast(float, static_cast<unsigned int>(a.data) << 16);
}
__host__ __device__ inline __hip_bfloat16 __float2bfloat16(float f) {  // round to nearest even
  unsigned int u = __builtin_bit_cast(unsigned int, f);
  u += 0x7fffu + ((u >> 16) & 1u);
  return {static_cast<unsigned short>(u >> 16)};
}
