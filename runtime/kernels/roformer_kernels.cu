// The RoFormer kernels (declared in roformer_launch.h): the memory-bound steps
// between a RoFormer layer's GEMMs and attention, each one pass over memory
// where ATen takes two to four, and each reading and writing tokens where they
// lie, so that the time transformer needs no transposed copy of the residual
// stream. Compiled by nvcc (CUDA builds) or as HIP (ROCm builds); only the
// runtime API and the 16-bit float types differ, behind the aliases below.
//
// Arithmetic is in float32 with one rounding to the tensor's type per result,
// as ATen's own kernels for these ops round, so fp32 results agree with the
// ATen path to float32 rounding and fp16/bf16 results mostly bit for bit.
#include "runtime/kernels/roformer_launch.h"

#include <cstdint>

#if defined(__HIP_PLATFORM_AMD__) || defined(USE_ROCM)
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
__device__ __forceinline__ float from_f<float>(float x) { return x; }
template <>
__device__ __forceinline__ half_t from_f<half_t>(float x) { return __float2half_rn(x); }  // round to nearest even
template <>
__device__ __forceinline__ bf16_t from_f<bf16_t>(float x) { return __float2bfloat16(x); }  // round to nearest even

// Eight elements, moved as one (half, bf16: 16 bytes) or two (float) vector loads.
template <typename T>
struct alignas(8 * sizeof(T)) Pack8 {
  T v[8];
};
template <typename T>
__device__ __forceinline__ Pack8<T> load8(const T* p) { return *reinterpret_cast<const Pack8<T>*>(p); }
template <typename T>
__device__ __forceinline__ void store8(T* p, const Pack8<T>& x) { *reinterpret_cast<Pack8<T>*>(p) = x; }

// Token r = (b, t, f) of the (B, T, F) layout as (sequence, position) along the axis.
struct SeqPos {
  uint32_t s, p, n;
};
__device__ __forceinline__ SeqPos seq_pos(uint32_t r, uint32_t T, uint32_t F, int axis) {
  const uint32_t tf = T * F, b = r / tf, rem = r - b * tf, t = rem / F, f = rem - t * F;
  if (axis == 1) return {b * F + f, t, T};
  return {b * T + t, f, F};
}

constexpr int kThreads = 256;
constexpr int kGroup = 32;  // lanes per row in unit_rows

// One 32-lane group per row: sum of squares, then the scaled row (and x + bias).
template <typename T>
__global__ void unit_rows_kernel(T* __restrict__ x, const T* __restrict__ bias, T* __restrict__ u, uint32_t rows,
                                 uint32_t dim, float eps) {
  const uint32_t lane = threadIdx.x % kGroup;
  const uint32_t row = blockIdx.x * (kThreads / kGroup) + threadIdx.x / kGroup;
  if (row >= rows) return;  // the whole group leaves together
  T* xr = x + static_cast<int64_t>(row) * dim;
  T* ur = u + static_cast<int64_t>(row) * dim;
  const uint32_t packs = dim / 8;
  float ss = 0.f;
  for (uint32_t i = lane; i < packs; i += kGroup) {
    const Pack8<T> a = load8(xr + 8 * i);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float f = to_f(a.v[j]);
      ss += f * f;
    }
  }
#pragma unroll
  for (int m = kGroup / 2; m > 0; m /= 2) ss += SK_SHFL_XOR(ss, m);
  const float rstd = rsqrtf(ss / static_cast<float>(dim) + eps);
  for (uint32_t i = lane; i < packs; i += kGroup) {
    Pack8<T> a = load8(xr + 8 * i), o;
#pragma unroll
    for (int j = 0; j < 8; ++j) o.v[j] = from_f<T>(to_f(a.v[j]) * rstd);
    store8(ur + 8 * i, o);
    if (bias != nullptr) {
      const Pack8<T> b = load8(bias + 8 * i);
#pragma unroll
      for (int j = 0; j < 8; ++j) a.v[j] = from_f<T>(to_f(a.v[j]) + to_f(b.v[j]));
      store8(xr + 8 * i, a);
    }
  }
}

// One thread per 8 columns of a token's q, k (and v): pairs (x0, x1) become
// (x0 cos - x1 sin, x0 sin + x1 cos), c10::complex's product in the same order.
template <typename T>
__global__ void rotary_split_kernel(const T* __restrict__ qkvg, int64_t ld, const float2* __restrict__ table,
                                    T* __restrict__ q, T* __restrict__ k, T* __restrict__ v, uint32_t total,
                                    uint32_t packs_per_row, uint32_t T_, uint32_t F_, int axis, uint32_t heads,
                                    uint32_t d) {
  const uint32_t idx = blockIdx.x * kThreads + threadIdx.x;
  if (idx >= total) return;
  const uint32_t r = idx / packs_per_row, col = (idx - r * packs_per_row) * 8;
  const uint32_t hd = heads * d, which = col / hd, cc = col - which * hd, head = cc / d, e = cc - head * d;
  const SeqPos sp = seq_pos(r, T_, F_, axis);
  const int64_t dst = ((static_cast<int64_t>(sp.s) * heads + head) * sp.n + sp.p) * d + e;
  const Pack8<T> a = load8(qkvg + static_cast<int64_t>(r) * ld + col);
  if (which == 2) {
    store8(v + dst, a);
    return;
  }
  const float2* cs = table + static_cast<int64_t>(sp.p) * (d / 2) + e / 2;
  Pack8<T> o;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float2 w = cs[j];
    const float x0 = to_f(a.v[2 * j]), x1 = to_f(a.v[2 * j + 1]);
    o.v[2 * j] = from_f<T>(x0 * w.x - x1 * w.y);
    o.v[2 * j + 1] = from_f<T>(x0 * w.y + x1 * w.x);
  }
  store8((which == 0 ? q : k) + dst, o);
}

// One thread per 8 columns of a token's gated row.
template <typename T>
__global__ void gate_to_rows_kernel(const T* __restrict__ o, int64_t ss, int64_t sh, int64_t sp_, const T* __restrict__ logits,
                                    int64_t ld, T* __restrict__ gated, uint32_t total, uint32_t packs_per_row,
                                    uint32_t T_, uint32_t F_, int axis, uint32_t d) {
  const uint32_t idx = blockIdx.x * kThreads + threadIdx.x;
  if (idx >= total) return;
  const uint32_t r = idx / packs_per_row, col = (idx - r * packs_per_row) * 8, head = col / d, e = col - head * d;
  const SeqPos sp = seq_pos(r, T_, F_, axis);
  const float logit = to_f(logits[static_cast<int64_t>(r) * ld + head]);
  const float g = to_f(from_f<T>(1.f / (1.f + expf(-logit))));  // ATen's sigmoid, rounded to T
  const Pack8<T> a = load8(o + sp.s * ss + head * sh + sp.p * sp_ + e);
  Pack8<T> out;
#pragma unroll
  for (int j = 0; j < 8; ++j) out.v[j] = from_f<T>(to_f(a.v[j]) * g);
  store8(gated + static_cast<int64_t>(r) * packs_per_row * 8 + col, out);
}

uint32_t blocks_for(uint64_t threads) { return static_cast<uint32_t>((threads + kThreads - 1) / kThreads); }

}  // namespace

void unit_rows_add_bias(DType dtype, void* x, const void* bias, void* u, int64_t rows, int64_t dim, double eps,
                        void* stream) {
  const uint32_t blocks = blocks_for(static_cast<uint64_t>(rows) * kGroup);
  auto s = static_cast<stream_t>(stream);
  const auto r = static_cast<uint32_t>(rows);
  const auto n = static_cast<uint32_t>(dim);
  const auto e = static_cast<float>(eps);
  switch (dtype) {
    case DType::f32:
      unit_rows_kernel<float><<<blocks, kThreads, 0, s>>>(static_cast<float*>(x), static_cast<const float*>(bias),
                                                          static_cast<float*>(u), r, n, e);
      break;
    case DType::f16:
      unit_rows_kernel<half_t><<<blocks, kThreads, 0, s>>>(static_cast<half_t*>(x), static_cast<const half_t*>(bias),
                                                           static_cast<half_t*>(u), r, n, e);
      break;
    case DType::bf16:
      unit_rows_kernel<bf16_t><<<blocks, kThreads, 0, s>>>(static_cast<bf16_t*>(x), static_cast<const bf16_t*>(bias),
                                                           static_cast<bf16_t*>(u), r, n, e);
      break;
  }
}

void rotary_split(DType dtype, const void* qkvg, int64_t ld, const float* table, void* q, void* k, void* v,
                  AxialLayout layout, int64_t heads, int64_t dim_head, void* stream) {
  const int64_t rows = layout.B * layout.T * layout.F;
  const auto packs = static_cast<uint32_t>((v != nullptr ? 3 : 2) * heads * dim_head / 8);
  const auto total = static_cast<uint32_t>(rows * packs);
  auto s = static_cast<stream_t>(stream);
  auto tb = reinterpret_cast<const float2*>(table);
  const auto T = static_cast<uint32_t>(layout.T), F = static_cast<uint32_t>(layout.F);
  const auto h = static_cast<uint32_t>(heads), d = static_cast<uint32_t>(dim_head);
  switch (dtype) {
    case DType::f32:
      rotary_split_kernel<float><<<blocks_for(total), kThreads, 0, s>>>(
          static_cast<const float*>(qkvg), ld, tb, static_cast<float*>(q), static_cast<float*>(k), static_cast<float*>(v),
          total, packs, T, F, layout.axis, h, d);
      break;
    case DType::f16:
      rotary_split_kernel<half_t><<<blocks_for(total), kThreads, 0, s>>>(
          static_cast<const half_t*>(qkvg), ld, tb, static_cast<half_t*>(q), static_cast<half_t*>(k),
          static_cast<half_t*>(v), total, packs, T, F, layout.axis, h, d);
      break;
    case DType::bf16:
      rotary_split_kernel<bf16_t><<<blocks_for(total), kThreads, 0, s>>>(
          static_cast<const bf16_t*>(qkvg), ld, tb, static_cast<bf16_t*>(q), static_cast<bf16_t*>(k),
          static_cast<bf16_t*>(v), total, packs, T, F, layout.axis, h, d);
      break;
  }
}

void gate_to_rows(DType dtype, const void* o, int64_t o_stride_s, int64_t o_stride_h, int64_t o_stride_p,
                  const void* logits, int64_t ld, void* gated, AxialLayout layout, int64_t heads, int64_t dim_head,
                  void* stream) {
  const int64_t rows = layout.B * layout.T * layout.F;
  const auto packs = static_cast<uint32_t>(heads * dim_head / 8);
  const auto total = static_cast<uint32_t>(rows * packs);
  auto s = static_cast<stream_t>(stream);
  const auto T = static_cast<uint32_t>(layout.T), F = static_cast<uint32_t>(layout.F);
  const auto d = static_cast<uint32_t>(dim_head);
  switch (dtype) {
    case DType::f32:
      gate_to_rows_kernel<float><<<blocks_for(total), kThreads, 0, s>>>(
          static_cast<const float*>(o), o_stride_s, o_stride_h, o_stride_p, static_cast<const float*>(logits), ld,
          static_cast<float*>(gated), total, packs, T, F, layout.axis, d);
      break;
    case DType::f16:
      gate_to_rows_kernel<half_t><<<blocks_for(total), kThreads, 0, s>>>(
          static_cast<const half_t*>(o), o_stride_s, o_stride_h, o_stride_p, static_cast<const half_t*>(logits), ld,
          static_cast<half_t*>(gated), total, packs, T, F, layout.axis, d);
      break;
    case DType::bf16:
      gate_to_rows_kernel<bf16_t><<<blocks_for(total), kThreads, 0, s>>>(
          static_cast<const bf16_t*>(o), o_stride_s, o_stride_h, o_stride_p, static_cast<const bf16_t*>(logits), ld,
          static_cast<bf16_t*>(gated), total, packs, T, F, layout.axis, d);
      break;
  }
}

const char* last_error() { return sk_last_error(); }

}  // namespace stemkit::kernels::launch
