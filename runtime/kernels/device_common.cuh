// What the stemkit kernel files (roformer_kernels.cu, htdemucs_kernels.cu)
// share: the platform's runtime API and 16-bit float types behind aliases
// (CUDA with nvcc, HIP with hipcc), float32 conversions with one rounding,
// 8-element vector loads, and the dispatch from launch::DType to an element
// type. Device code only; included by the .cu files alone.
#pragma once

#include "runtime/kernels/launch.h"

#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__HIP__) || defined(__HIP_PLATFORM_AMD__) || defined(USE_ROCM)
#include <hip/hip_bf16.h>
#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>
using half_t = __half;
using bf16_t = __hip_bfloat16;
using stream_t = hipStream_t;
// Within 32-lane groups, which divide a wave of 32 or 64 lanes alike.
#define SK_SHFL_XOR(v, m) __shfl_xor((v), (m), 32)
static const char* sk_last_error() {
  const hipError_t e = hipGetLastError();
  return e == hipSuccess ? "" : hipGetErrorString(e);
}
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#define SK_HAS_MMA 1  // mma.sync (PTX) for the band kernel
using half_t = __half;
using bf16_t = __nv_bfloat16;
using stream_t = cudaStream_t;
#define SK_SHFL_XOR(v, m) __shfl_xor_sync(0xffffffffu, (v), (m), 32)
static const char* sk_last_error() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? "" : cudaGetErrorString(e);
}
#endif

namespace stemkit::kernels::launch {
namespace {

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(half_t x) { return __half2float(x); }
__device__ __forceinline__ float to_f(bf16_t x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ half_t from_f<half_t>(float x) {
  return __float2half_rn(x);
}  // round to nearest even
template <>
__device__ __forceinline__ bf16_t from_f<bf16_t>(float x) {
  return __float2bfloat16(x);
}  // round to nearest even

// Eight elements, moved as one (half, bf16: 16 bytes) or two (float) vector loads.
template <typename T>
struct alignas(8 * sizeof(T)) Pack8 {
  T v[8];
};
template <typename T>
__device__ __forceinline__ Pack8<T> load8(const T* p) {
  return *reinterpret_cast<const Pack8<T>*>(p);
}
template <typename T>
__device__ __forceinline__ void store8(T* p, const Pack8<T>& x) {
  *reinterpret_cast<Pack8<T>*>(p) = x;
}

template <typename T>
struct Type {
  using type = T;
};
// Calls f(Type<T>{}) with T the element type that dtype names.
template <typename F>
void with_type(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: f(Type<float>{}); break;
    case DType::f16: f(Type<half_t>{}); break;
    case DType::bf16: f(Type<bf16_t>{}); break;
  }
}

}  // namespace
}  // namespace stemkit::kernels::launch
