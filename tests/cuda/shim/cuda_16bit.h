// Stand-ins for cuda_fp16.h and cuda_bf16.h (both include this): see cuda_runtime.h here.
#pragma once
#include "cuda_runtime.h"

struct __half {
  unsigned short x;
};
struct __half2 {
  __half x, y;
};
__device__ float __half2float(__half);
__device__ __half __float2half_rn(float);
__device__ __half2 __floats2half2_rn(float, float);

struct __nv_bfloat16 {
  unsigned short x;
};
struct __nv_bfloat162 {
  __nv_bfloat16 x, y;
};
__device__ float __bfloat162float(__nv_bfloat16);
__device__ __nv_bfloat16 __float2bfloat16(float);
__device__ __nv_bfloat162 __floats2bfloat162_rn(float, float);
