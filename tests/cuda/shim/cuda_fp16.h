// Stand-in for cuda_fp16.h: see cuda_runtime.h here.
#pragma once
#include "cuda_runtime.h"
struct __half { unsigned short x; };
struct __half2 { __half x, y; };
__device__ float __half2float(__half);
__device__ __half __float2half_rn(float);
__device__ __half2 __floats2half2_rn(float, float);
