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
__global__ void rotary_split_kernel(const T* __restrict__ qkv, int64_t ld, const float2* __restrict__ table,
                                    T* __restrict__ q, T* __restrict__ k, T* __restrict__ v, uint32_t total,
                                    uint32_t packs_per_row, uint32_t T_, uint32_t F_, int axis, uint32_t heads,
                                    uint32_t d) {
  const uint32_t idx = blockIdx.x * kThreads + threadIdx.x;
  if (idx >= total) return;
  const uint32_t r = idx / packs_per_row, col = (idx - r * packs_per_row) * 8;
  const uint32_t hd = heads * d, which = col / hd, cc = col - which * hd, head = cc / d, e = cc - head * d;
  const SeqPos sp = seq_pos(r, T_, F_, axis);
  const int64_t dst = ((static_cast<int64_t>(sp.s) * heads + head) * sp.n + sp.p) * d + e;
  const Pack8<T> a = load8(qkv + static_cast<int64_t>(r) * ld + col);
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
__global__ void gate_to_rows_kernel(const T* __restrict__ o, int64_t ss, int64_t sh, int64_t sp_,
                                    const T* __restrict__ logits, int64_t ld, T* __restrict__ gated, uint32_t total,
                                    uint32_t packs_per_row, uint32_t T_, uint32_t F_, int axis, uint32_t d) {
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

#if defined(SK_HAS_MMA)
// Attention over a short axis (BS-RoFormer's bands: n <= 64 keys, d = 64) in one
// pass, one block of 4 warps per (sequence, head): the q, k, v rows read
// straight from the qkv GEMM's output with q and k rotated (rounded to T, as
// rotary_split writes them); then, per warp and 16 query rows, S = q kᵀ and
// O = P v on tensor cores (mma.sync m16n8k16, float32 accumulation) with S and
// P kept in registers (the accumulator layout of one mma is the operand layout
// of the next, as in FlashAttention 2), softmax in float32, P rounded to T as
// flash attention rounds it; O / rowsum rounded to T, times the gate (as
// gate_to_rows), into the token rows. Replaces rotary_split + SDPA +
// gate_to_rows along the bands, which move q, k, v and o through memory twice.
constexpr int kBandN = 64, kBandD = 64, kBandWarps = 4;
[[maybe_unused]] constexpr int kLdT = kBandD + 8;  // T elements per shared-memory row: 144 bytes, so the 8 rows an mma
                                                   // operand load touches fall on distinct banks

template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
[[maybe_unused]] __device__ __forceinline__ uint32_t pack2<half_t>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
template <>
[[maybe_unused]] __device__ __forceinline__ uint32_t pack2<bf16_t>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// d (16x8, float32) += a (16x16, row-major) b (16x8, column-major), per warp.
template <typename T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same<T, half_t>::value) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

template <typename T>
__device__ __forceinline__ uint32_t lds32(const T* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

#ifndef SK_BAND_MIN_BLOCKS
#define SK_BAND_MIN_BLOCKS 6  // 80 registers: 6 blocks (24 warps) per SM (faster than 4: docs/benchmarks.md)
#endif
#ifndef SK_BAND_LOAD_ROUNDS
#define SK_BAND_LOAD_ROUNDS 2  // the loads in two rounds of six, to fit those registers
#endif
template <typename T>
__global__ void __launch_bounds__(kBandWarps * 32, SK_BAND_MIN_BLOCKS)
    band_attention_kernel(const T* __restrict__ qkv, int64_t ld, const float2* __restrict__ table,
                          const T* __restrict__ logits, int64_t logits_ld, T* __restrict__ gated, uint32_t T_,
                          uint32_t F_, int axis, uint32_t heads, uint32_t n, float scale) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // mma.sync m16n8k16 needs SM 8.0 (the launcher checks)
#else
  __shared__ alignas(16) T qs[kBandN * kLdT];  // q rows, then this warp's output rows
  __shared__ alignas(16) T ks[kBandN * kLdT];  // k rows
  __shared__ alignas(16) T vt[kBandD * kLdT];  // v transposed: vt[e][p]
  // Heads vary fastest across blocks: the blocks of one sequence run together
  // and between them read whole qkv rows and write whole gated rows.
  const uint32_t seq = blockIdx.x / heads, head = blockIdx.x - seq * heads, hd = heads * kBandD;
  const uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const uint32_t r0 = warp * 16;
  // Token row of position p in this sequence (the inverse of seq_pos).
  auto row_of = [&](uint32_t p) -> uint32_t {
    if (axis == 1) {
      const uint32_t b = seq / F_, f = seq - b * F_;
      return (b * T_ + p) * F_ + f;
    }
    return seq * F_ + p;  // seq = b * T + t
  };
  // The gates of this lane's two rows (g and g + 8), loaded first to hide their latency.
  float gate[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const uint32_t r = r0 + g + 8 * i;
    gate[i] = 0.f;
    if (r < n) {
      const float logit = to_f(logits[static_cast<int64_t>(row_of(r)) * logits_ld + head]);
      gate[i] = to_f(from_f<T>(1.f / (1.f + expf(-logit))));  // ATen's sigmoid, rounded to T
    }
  }

  // 1. q, k (rotated) and v (transposed) into shared memory; positions n..63 zero.
  // Every load is issued before the first is used.
  constexpr int kPacks = 3 * kBandN * (kBandD / 8), kPerThread = kPacks / (kBandWarps * 32) / SK_BAND_LOAD_ROUNDS;
  static_assert(kPacks % (kBandWarps * 32 * SK_BAND_LOAD_ROUNDS) == 0, "whole packs per thread");
#pragma unroll 1
  for (int round = 0; round < SK_BAND_LOAD_ROUNDS; ++round) {
    Pack8<T> buf[kPerThread];
#pragma unroll
    for (int it = 0; it < kPerThread; ++it) {
      const uint32_t i = threadIdx.x + (round * kPerThread + it) * (kBandWarps * 32);
      const uint32_t which = i / (kBandN * (kBandD / 8)), rem = i % (kBandN * (kBandD / 8));
      const uint32_t p = rem / (kBandD / 8), e = (rem % (kBandD / 8)) * 8;
      if (p < n) buf[it] = load8(qkv + static_cast<int64_t>(row_of(p)) * ld + which * hd + head * kBandD + e);
    }
#pragma unroll
    for (int it = 0; it < kPerThread; ++it) {
      const uint32_t i = threadIdx.x + (round * kPerThread + it) * (kBandWarps * 32);
      const uint32_t which = i / (kBandN * (kBandD / 8)), rem = i % (kBandN * (kBandD / 8));
      const uint32_t p = rem / (kBandD / 8), e = (rem % (kBandD / 8)) * 8;
      Pack8<T> o;
      if (p >= n) {
#pragma unroll
        for (int j = 0; j < 8; ++j) o.v[j] = from_f<T>(0.f);
      } else if (which == 2) {
        o = buf[it];
      } else {
        const float4* cs = reinterpret_cast<const float4*>(table + static_cast<int64_t>(p) * (kBandD / 2) + e / 2);
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const float4 w = cs[j];  // (cos, sin) of two pairs
          float x0 = to_f(buf[it].v[4 * j]), x1 = to_f(buf[it].v[4 * j + 1]);
          o.v[4 * j] = from_f<T>(x0 * w.x - x1 * w.y);
          o.v[4 * j + 1] = from_f<T>(x0 * w.y + x1 * w.x);
          x0 = to_f(buf[it].v[4 * j + 2]), x1 = to_f(buf[it].v[4 * j + 3]);
          o.v[4 * j + 2] = from_f<T>(x0 * w.z - x1 * w.w);
          o.v[4 * j + 3] = from_f<T>(x0 * w.w + x1 * w.z);
        }
      }
      if (which == 2) {
#pragma unroll
        for (int j = 0; j < 8; ++j) vt[(e + j) * kLdT + p] = o.v[j];
      } else {
        store8((which == 0 ? qs : ks) + p * kLdT + e, o);
      }
    }
  }
  __syncthreads();

  // 2. S = q kᵀ for rows r0..r0+15: s[j] is keys 8j..8j+7; this lane holds rows
  // g (s[j][0], s[j][1]) and g + 8 (s[j][2], s[j][3]) at keys 8j + 2t, 8j + 2t + 1.
  float s[kBandN / 8][4];
#pragma unroll
  for (int j = 0; j < kBandN / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < kBandD / 16; ++kk) {
    const T* qa = qs + (r0 + g) * kLdT + kk * 16 + 2 * t;
    const uint32_t a[4] = {lds32(qa), lds32(qa + 8 * kLdT), lds32(qa + 8), lds32(qa + 8 * kLdT + 8)};
#pragma unroll
    for (int j = 0; j < kBandN / 8; ++j) {
      const T* kb = ks + (8 * j + g) * kLdT + kk * 16 + 2 * t;
      mma16816<T>(s[j], a, lds32(kb), lds32(kb + 8));
    }
  }

  // 3. softmax over the n keys in float32; the four lanes of a row combine by shuffles.
  float m[2] = {-INFINITY, -INFINITY}, sum[2] = {0.f, 0.f};
#pragma unroll
  for (int j = 0; j < kBandN / 8; ++j)
#pragma unroll
    for (int c = 0; c < 4; ++c)
      if (8 * j + 2 * t + (c & 1) < n) m[c / 2] = fmaxf(m[c / 2], s[j][c]);
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    m[i] = fmaxf(m[i], __shfl_xor_sync(0xffffffffu, m[i], 1));
    m[i] = fmaxf(m[i], __shfl_xor_sync(0xffffffffu, m[i], 2));
  }
#pragma unroll
  for (int j = 0; j < kBandN / 8; ++j)
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const float e = 8 * j + 2 * t + (c & 1) < n ? expf((s[j][c] - m[c / 2]) * scale) : 0.f;
      s[j][c] = e;
      sum[c / 2] += e;
    }
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    sum[i] += __shfl_xor_sync(0xffffffffu, sum[i], 1);
    sum[i] += __shfl_xor_sync(0xffffffffu, sum[i], 2);
  }

  // 4. O = P v, P (rounded to T) straight from the registers of S.
  float o[kBandD / 8][4];
#pragma unroll
  for (int j = 0; j < kBandD / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < kBandN / 16; ++kk) {
    const uint32_t a[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]), pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                           pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
    for (int j = 0; j < kBandD / 8; ++j) {
      const T* vb = vt + (8 * j + g) * kLdT + kk * 16 + 2 * t;
      mma16816<T>(o[j], a, lds32(vb), lds32(vb + 8));
    }
  }

  // 5. O / rowsum rounded to T, times the gate, rounded to T: staged in this warp's
  // own q rows, then written as 16-byte pieces of the token rows.
  const float inv[2] = {1.f / sum[0], 1.f / sum[1]};
#pragma unroll
  for (int j = 0; j < kBandD / 8; ++j)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const float y0 = to_f(from_f<T>(o[j][2 * i] * inv[i])) * gate[i];
      const float y1 = to_f(from_f<T>(o[j][2 * i + 1] * inv[i])) * gate[i];
      *reinterpret_cast<uint32_t*>(qs + (r0 + g + 8 * i) * kLdT + 8 * j + 2 * t) = pack2<T>(y0, y1);
    }
  __syncwarp();
#pragma unroll
  for (int it = 0; it < 16 * (kBandD / 8) / 32; ++it) {
    const uint32_t i = lane + 32 * it, r = r0 + i / (kBandD / 8), e = (i % (kBandD / 8)) * 8;
    if (r < n) store8(gated + static_cast<int64_t>(row_of(r)) * hd + head * kBandD + e, load8(qs + r * kLdT + e));
  }
#endif
}
#endif

#if defined(SK_HAS_MMA)
// Attention along a long axis (BS-RoFormer's time axis: 801 frames, d = 64),
// what band_attention does for the bands, in FlashAttention 2's shape: a block
// of 4 warps per (64 or 128 query rows, head, sequence) walks the keys in tiles
// of 64 with the softmax kept online (running max and sum per row, float32),
// S = q kᵀ and O = P v on tensor cores (mma.sync m16n8k16, operands from shared
// memory through ldmatrix, S and P in registers). q and k are read from the qkv
// GEMM's token rows, q rotated on the way into shared memory (rounded to T, as
// rotary_split writes it) and k rotated in place beforehand by
// rotate_k_inplace (every query block reads every key); k and v tiles go to
// shared memory by cp.async while the previous tile computes; the gate is
// applied and the result written as token rows. Replaces rotary_split + SDPA + gate_to_rows along T, which move q, k, v
// and o through memory twice more.
[[maybe_unused]] constexpr int kSeqD = 64, kSeqKeys = 64, kSeqWarps = 4;

[[maybe_unused]] __device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
// Element offset of (row, 8-element chunk) in a tile of 64-element rows, the
// chunks XOR-swizzled by row so that the 8 rows of one ldmatrix (or 8 lanes'
// 16-byte stores) fall on distinct banks.
[[maybe_unused]] __device__ __forceinline__ uint32_t swz(uint32_t row, uint32_t chunk) {
  return row * 64 + ((chunk ^ (row & 7)) << 3);
}

[[maybe_unused]] __device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}
[[maybe_unused]] __device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], uint32_t addr) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}
// 16 bytes global -> shared without registers; zeros where !valid (src is then not read).
[[maybe_unused]] __device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
#endif
}
[[maybe_unused]] __device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
[[maybe_unused]] __device__ __forceinline__ void cp_async_wait_all() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
#endif
}

// 2^x, flushing subnormal results to zero (one MUFU.EX2; exp2f adds the
// subnormal range's scaling around it): the softmax's terms, as flash attention computes them.
[[maybe_unused]] __device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// 8 elements (4 interleaved pairs) of a row at position p, columns 8c..8c+7, rotated
// in float32 and rounded to T: rotary_split's arithmetic.
template <typename T>
[[maybe_unused]] __device__ __forceinline__ Pack8<T> rotate8(const Pack8<T>& a, const float2* __restrict__ table,
                                                             uint32_t p, uint32_t c) {
  const float4* cs = reinterpret_cast<const float4*>(table + static_cast<int64_t>(p) * (kSeqD / 2) + 4 * c);
  Pack8<T> o;
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const float4 w = cs[j];  // (cos, sin) of two pairs
    float x0 = to_f(a.v[4 * j]), x1 = to_f(a.v[4 * j + 1]);
    o.v[4 * j] = from_f<T>(x0 * w.x - x1 * w.y);
    o.v[4 * j + 1] = from_f<T>(x0 * w.y + x1 * w.x);
    x0 = to_f(a.v[4 * j + 2]), x1 = to_f(a.v[4 * j + 3]);
    o.v[4 * j + 2] = from_f<T>(x0 * w.z - x1 * w.w);
    o.v[4 * j + 3] = from_f<T>(x0 * w.w + x1 * w.z);
  }
  return o;
}

// k rotated in place in the qkv rows, once, before seq_attention reads every
// key tile from every query block: one thread per 8 columns of a token's k.
template <typename T>
__global__ void rotate_k_inplace_kernel(T* __restrict__ qkv, int64_t ld, const float2* __restrict__ table,
                                        uint32_t total, uint32_t T_, uint32_t F_, int axis, uint32_t heads) {
  const uint32_t idx = blockIdx.x * kThreads + threadIdx.x;
  if (idx >= total) return;
  const uint32_t packs = heads * kSeqD / 8, r = idx / packs, c = idx - r * packs;
  T* at = qkv + static_cast<int64_t>(r) * ld + heads * kSeqD + c * 8;
  store8(at, rotate8(load8(at), table, seq_pos(r, T_, F_, axis).p, c % (kSeqD / 8)));
}

// kMT: 16-row MMA tiles per warp (1: 64 query rows per block, 2: 128);
// kMinBlocks: blocks per SM the registers must allow.
template <typename T, int kMT, int kMinBlocks>
__global__ void __launch_bounds__(kSeqWarps * 32, kMinBlocks)
    seq_attention_kernel(const T* __restrict__ qkv, int64_t ld, const float2* __restrict__ table,
                         const T* __restrict__ logits, int64_t logits_ld, T* __restrict__ gated, uint32_t T_,
                         uint32_t F_, int axis, uint32_t heads, uint32_t n, float scale_log2) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // ldmatrix, cp.async and mma.sync m16n8k16: SM 8.0 (the launcher checks)
#else
  constexpr int kRows = kSeqWarps * 16 * kMT;  // query rows per block
  constexpr int kThreadsHere = kSeqWarps * 32;
  __shared__ alignas(128) T sq[kRows * kSeqD];        // q rows, then the output rows
  __shared__ alignas(128) T sk[2][kSeqKeys * kSeqD];  // k tiles (rotated already), double-buffered
  __shared__ alignas(128) T sv[2][kSeqKeys * kSeqD];  // v tiles
  // Query tiles vary fastest across blocks: the blocks that read one (sequence,
  // head)'s keys run together and find them in L2.
  const uint32_t seq = blockIdx.y / heads, head = blockIdx.y - seq * heads, hd = heads * kSeqD;
  const uint32_t tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;
  const uint32_t q0 = blockIdx.x * kRows;
  // Position p of this sequence is token row rbase + p * pstep (the inverse of seq_pos).
  uint32_t rbase, pstep;
  if (axis == 1) {
    const uint32_t b = seq / F_, f = seq - b * F_;
    rbase = b * T_ * F_ + f, pstep = F_;
  } else {
    rbase = seq * F_, pstep = 1;
  }
  const T* qrow0 = qkv + static_cast<int64_t>(rbase) * ld + head * kSeqD;  // q of position 0; k at + hd, v at + 2 hd
  const int64_t pld = static_cast<int64_t>(pstep) * ld;

  // The gates of this lane's rows (g and g + 8 of each MMA tile), loaded first to hide their latency.
  float gate[kMT][2];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const uint32_t p = q0 + warp * 16 * kMT + mt * 16 + g + 8 * i;
      gate[mt][i] = 0.f;
      if (p < n) {
        const float logit =
            to_f(logits[(static_cast<int64_t>(rbase) + static_cast<int64_t>(p) * pstep) * logits_ld + head]);
        gate[mt][i] = to_f(from_f<T>(1.f / (1.f + expf(-logit))));  // ATen's sigmoid, rounded to T
      }
    }

  // Each thread moves chunk (tid % 8) of rows tid / 8 + 16 i.
  const uint32_t my_chunk = tid % 8, my_row = tid / 8;
  // k and v of a key tile into shared memory by cp.async; zeros past the end.
  auto load_kv = [&](uint32_t tile, T* kdst, T* vdst) {
#pragma unroll
    for (int i = 0; i < kSeqKeys * 8 / kThreadsHere; ++i) {
      const uint32_t r = my_row + 16 * i, p = tile * kSeqKeys + r;
      const T* src = p < n ? qrow0 + p * pld + my_chunk * 8 : qrow0;
      cp_async16(smem_addr(kdst + swz(r, my_chunk)), src + hd, p < n);
      cp_async16(smem_addr(vdst + swz(r, my_chunk)), src + 2 * hd, p < n);
    }
    cp_async_commit();
  };

  // 1. q (rotated) into shared memory, while k and v of the first tile arrive.
  load_kv(0, sk[0], sv[0]);
#pragma unroll
  for (int i = 0; i < kRows * 8 / kThreadsHere; ++i) {
    const uint32_t r = my_row + 16 * i, p = q0 + r;
    Pack8<T> o;
    if (p < n) {
      o = rotate8(load8(qrow0 + p * pld + my_chunk * 8), table, p, my_chunk);
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j) o.v[j] = from_f<T>(0.f);
    }
    store8(sq + swz(r, my_chunk), o);
  }
  cp_async_wait_all();
  __syncthreads();

  // This warp's q rows as mma A operands: qf[mt][kk] holds rows 16 mt.. of its
  // block of rows, columns 16 kk..16 kk + 15.
  const uint32_t wrow = warp * 16 * kMT;
  uint32_t qf[kMT][kSeqD / 16][4];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int kk = 0; kk < kSeqD / 16; ++kk)
      ldsm_x4(qf[mt][kk], smem_addr(sq + swz(wrow + mt * 16 + lane % 16, 2 * kk + lane / 16)));

  float o[kMT][kSeqD / 8][4], m[kMT][2], l[kMT][2];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int j = 0; j < kSeqD / 8; ++j) o[mt][j][0] = o[mt][j][1] = o[mt][j][2] = o[mt][j][3] = 0.f;
    m[mt][0] = m[mt][1] = -INFINITY;
    l[mt][0] = l[mt][1] = 0.f;
  }

  const uint32_t tiles = (n + kSeqKeys - 1) / kSeqKeys;
  for (uint32_t tile = 0; tile < tiles; ++tile) {
    const uint32_t buf = tile & 1;
    const bool more = tile + 1 < tiles;
    if (more) load_kv(tile + 1, sk[buf ^ 1], sv[buf ^ 1]);  // in flight while this tile computes

    // 2. S = q kᵀ: s[mt][j] is keys 8j..8j+7 of the tile; this lane holds rows g
    // (s[..][0], [1]) and g + 8 ([2], [3]) at keys 8j + 2 t4, 8j + 2 t4 + 1.
    float s[kMT][kSeqKeys / 8][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int j = 0; j < kSeqKeys / 8; ++j) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
    const T* kt = sk[buf];
#pragma unroll
    for (int kk = 0; kk < kSeqD / 16; ++kk)
#pragma unroll
      for (int j = 0; j < kSeqKeys / 8; j += 2) {
        // matrices: keys 8j.. (chunks 2kk, 2kk+1), keys 8j+8.. (same chunks)
        uint32_t b[4];
        ldsm_x4(b, smem_addr(kt + swz(8 * (j + lane / 16) + lane % 8, 2 * kk + (lane / 8) % 2)));
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          mma16816<T>(s[mt][j], qf[mt][kk], b[0], b[1]);
          mma16816<T>(s[mt][j + 1], qf[mt][kk], b[2], b[3]);
        }
      }
    if ((tile + 1) * kSeqKeys > n) {  // keys past the end
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int j = 0; j < kSeqKeys / 8; ++j)
#pragma unroll
          for (int c = 0; c < 4; ++c)
            if (tile * kSeqKeys + 8 * j + 2 * t4 + (c & 1) >= n) s[mt][j][c] = -INFINITY;
    }

    // 3. online softmax in float32: rescale what was summed so far to the new
    // row maximum; the four lanes of a row combine by shuffles.
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        float mx = m[mt][i];
#pragma unroll
        for (int j = 0; j < kSeqKeys / 8; ++j) mx = fmaxf(mx, fmaxf(s[mt][j][2 * i], s[mt][j][2 * i + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const bool grew = mx > m[mt][i];
        const float corr = exp2_ftz((m[mt][i] - mx) * scale_log2);  // 0 on the first tile (m = -inf)
        m[mt][i] = mx;
        const float base = mx * scale_log2;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < kSeqKeys / 8; ++j) {
          s[mt][j][2 * i] = exp2_ftz(fmaf(s[mt][j][2 * i], scale_log2, -base));
          s[mt][j][2 * i + 1] = exp2_ftz(fmaf(s[mt][j][2 * i + 1], scale_log2, -base));
          sum += s[mt][j][2 * i] + s[mt][j][2 * i + 1];
        }
        l[mt][i] = l[mt][i] * corr + sum;  // this lane's part; the lanes are summed at the end
        // Once the row maxima settle, most tiles change none of this warp's: skip the rescale then.
        if (__any_sync(0xffffffffu, grew)) {
#pragma unroll
          for (int j = 0; j < kSeqD / 8; ++j) o[mt][j][2 * i] *= corr, o[mt][j][2 * i + 1] *= corr;
        }
      }

    // 4. O += P v, P (rounded to T) straight from the registers of S.
    const T* vt = sv[buf];
#pragma unroll
    for (int kk = 0; kk < kSeqKeys / 16; ++kk) {
      uint32_t a[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        a[mt][0] = pack2<T>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        a[mt][1] = pack2<T>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        a[mt][2] = pack2<T>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        a[mt][3] = pack2<T>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int j = 0; j < kSeqD / 8; j += 2) {
        // matrices (transposed): keys 16kk.., 16kk+8.. of chunk j, then of chunk j + 1
        uint32_t b[4];
        ldsm_x4_trans(b, smem_addr(vt + swz(16 * kk + 8 * ((lane / 8) % 2) + lane % 8, j + lane / 16)));
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          mma16816<T>(o[mt][j], a[mt], b[0], b[1]);
          mma16816<T>(o[mt][j + 1], a[mt], b[2], b[3]);
        }
      }
    }

    cp_async_wait_all();
    __syncthreads();
  }

  // 5. O / rowsum rounded to T, times the gate, rounded to T: staged in this
  // warp's own q rows (no other warp reads them), then written as 16-byte
  // pieces of the token rows.
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float sum = l[mt][i];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const float inv = 1.f / sum;
      const uint32_t r = wrow + mt * 16 + g + 8 * i;
#pragma unroll
      for (int j = 0; j < kSeqD / 8; ++j) {
        const float y0 = to_f(from_f<T>(o[mt][j][2 * i] * inv)) * gate[mt][i];
        const float y1 = to_f(from_f<T>(o[mt][j][2 * i + 1] * inv)) * gate[mt][i];
        *reinterpret_cast<uint32_t*>(sq + swz(r, j) + 2 * t4) = pack2<T>(y0, y1);
      }
    }
  __syncwarp();
  T* out0 = gated + static_cast<int64_t>(rbase) * hd + head * kSeqD;
  const int64_t pout = static_cast<int64_t>(pstep) * hd;
#pragma unroll
  for (int it = 0; it < 16 * kMT * 8 / 32; ++it) {
    const uint32_t i = lane + 32 * it, r = wrow + i / 8, c = i % 8, p = q0 + r;
    if (p < n) store8(out0 + p * pout + c * 8, load8(sq + swz(r, c)));
  }
#endif
}
#endif

uint32_t blocks_for(uint64_t threads) { return static_cast<uint32_t>((threads + kThreads - 1) / kThreads); }

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

void unit_rows_add_bias(DType dtype, void* x, const void* bias, void* u, int64_t rows, int64_t dim, double eps,
                        void* stream) {
  const uint32_t blocks = blocks_for(static_cast<uint64_t>(rows) * kGroup);
  with_type(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    unit_rows_kernel<T><<<blocks, kThreads, 0, static_cast<stream_t>(stream)>>>(
        static_cast<T*>(x), static_cast<const T*>(bias), static_cast<T*>(u), static_cast<uint32_t>(rows),
        static_cast<uint32_t>(dim), static_cast<float>(eps));
  });
}

void rotary_split(DType dtype, const void* qkv, int64_t ld, const float* table, void* q, void* k, void* v,
                  AxialLayout layout, int64_t heads, int64_t dim_head, void* stream) {
  const int64_t rows = layout.B * layout.T * layout.F;
  const auto packs = static_cast<uint32_t>((v != nullptr ? 3 : 2) * heads * dim_head / 8);
  const auto total = static_cast<uint32_t>(rows * packs);
  with_type(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    rotary_split_kernel<T><<<blocks_for(total), kThreads, 0, static_cast<stream_t>(stream)>>>(
        static_cast<const T*>(qkv), ld, reinterpret_cast<const float2*>(table), static_cast<T*>(q), static_cast<T*>(k),
        static_cast<T*>(v), total, packs, static_cast<uint32_t>(layout.T), static_cast<uint32_t>(layout.F), layout.axis,
        static_cast<uint32_t>(heads), static_cast<uint32_t>(dim_head));
  });
}

void gate_to_rows(DType dtype, const void* o, int64_t o_stride_s, int64_t o_stride_h, int64_t o_stride_p,
                  const void* logits, int64_t ld, void* gated, AxialLayout layout, int64_t heads, int64_t dim_head,
                  void* stream) {
  const int64_t rows = layout.B * layout.T * layout.F;
  const auto packs = static_cast<uint32_t>(heads * dim_head / 8);
  const auto total = static_cast<uint32_t>(rows * packs);
  with_type(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    gate_to_rows_kernel<T><<<blocks_for(total), kThreads, 0, static_cast<stream_t>(stream)>>>(
        static_cast<const T*>(o), o_stride_s, o_stride_h, o_stride_p, static_cast<const T*>(logits), ld,
        static_cast<T*>(gated), total, packs, static_cast<uint32_t>(layout.T), static_cast<uint32_t>(layout.F),
        layout.axis, static_cast<uint32_t>(dim_head));
  });
}

bool band_attention(DType dtype, const void* qkv, int64_t ld, const float* table, const void* logits, int64_t logits_ld,
                    void* gated, AxialLayout layout, int64_t heads, int64_t dim_head, int64_t n, void* stream) {
#if defined(SK_HAS_MMA)
  if (dim_head != kBandD || n > kBandN || n < 1 || dtype == DType::f32) return false;
  {
    int device = 0, major = 0;  // mma.sync m16n8k16: SM 8.0 and newer
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess || major < 8)
      return false;
  }
  const int64_t N = layout.axis == 1 ? layout.B * layout.F : layout.B * layout.T;
  with_type(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same<T, float>::value)
      band_attention_kernel<T><<<static_cast<uint32_t>(N * heads), kBandWarps * 32, 0, static_cast<stream_t>(stream)>>>(
          static_cast<const T*>(qkv), ld, reinterpret_cast<const float2*>(table), static_cast<const T*>(logits),
          logits_ld, static_cast<T*>(gated), static_cast<uint32_t>(layout.T), static_cast<uint32_t>(layout.F),
          layout.axis, static_cast<uint32_t>(heads), static_cast<uint32_t>(n),
          1.f / sqrtf(static_cast<float>(dim_head)));
  });
  return true;
#else
  (void)dtype, (void)qkv, (void)ld, (void)table, (void)logits, (void)logits_ld, (void)gated, (void)layout, (void)heads,
      (void)dim_head, (void)n, (void)stream;
  return false;  // HIP: no MFMA/WMMA version yet; the caller takes rotary_split + SDPA + gate_to_rows
#endif
}

bool seq_attention(DType dtype, void* qkv, int64_t ld, const float* table, const void* logits, int64_t logits_ld,
                   void* gated, AxialLayout layout, int64_t heads, int64_t dim_head, int64_t n, void* stream) {
#if defined(SK_HAS_MMA)
  const int64_t N = layout.axis == 1 ? layout.B * layout.F : layout.B * layout.T;
  if (dim_head != kSeqD || n < 1 || dtype == DType::f32 || N * heads > 65535 ||
      layout.B * layout.T * layout.F * heads * (kSeqD / 8) >= (int64_t{1} << 31))
    return false;
  {
    int device = 0, major = 0;  // ldmatrix, cp.async, mma.sync m16n8k16: SM 8.0 and newer
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess || major < 8)
      return false;
  }
  const float scale_log2 =
      1.4426950408889634f / sqrtf(static_cast<float>(dim_head));  // log2(e) / sqrt(d): softmax by exp2
  constexpr int64_t rows_per_block = 64;
  const dim3 grid(static_cast<uint32_t>((n + rows_per_block - 1) / rows_per_block), static_cast<uint32_t>(N * heads));
  with_type(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same<T, float>::value) {
      auto args = [&](auto kernel) {
        kernel<<<grid, kSeqWarps * 32, 0, static_cast<stream_t>(stream)>>>(
            static_cast<const T*>(qkv), ld, reinterpret_cast<const float2*>(table), static_cast<const T*>(logits),
            logits_ld, static_cast<T*>(gated), static_cast<uint32_t>(layout.T), static_cast<uint32_t>(layout.F),
            layout.axis, static_cast<uint32_t>(heads), static_cast<uint32_t>(n), scale_log2);
      };
      const auto rows = static_cast<uint32_t>(layout.B * layout.T * layout.F),
                 total = rows * static_cast<uint32_t>(heads * kSeqD / 8);
      rotate_k_inplace_kernel<T><<<blocks_for(total), kThreads, 0, static_cast<stream_t>(stream)>>>(
          static_cast<T*>(qkv), ld, reinterpret_cast<const float2*>(table), total, static_cast<uint32_t>(layout.T),
          static_cast<uint32_t>(layout.F), layout.axis, static_cast<uint32_t>(heads));
      // 64 query rows per block, 4 blocks per SM (docs/benchmarks.md: 128-row
      // blocks tied, capping registers for 5 blocks spilled).
      args(seq_attention_kernel<T, 1, 4>);
    }
  });
  return true;
#else
  (void)dtype, (void)qkv, (void)ld, (void)table, (void)logits, (void)logits_ld, (void)gated, (void)layout, (void)heads,
      (void)dim_head, (void)n, (void)stream;
  return false;  // HIP: no MFMA/WMMA version yet; the caller takes rotary_split + SDPA + gate_to_rows
#endif
}

const char* last_error() { return sk_last_error(); }

}  // namespace stemkit::kernels::launch
