// The launchers of the RoFormer kernels (roformer_kernels.cu): plain pointers,
// sizes and a stream, no libtorch, so the .cu compiles with nvcc or hipcc alone.
// Callers go through roformer_kernels.h, which checks shapes, dtypes and
// alignment and falls back to ATen where these do not apply.
//
// Every tensor is row-major; element type by `dtype` (below). Every pointer is
// aligned to 8 elements and every row length and row stride is a multiple of 8,
// so each thread moves 8 elements (16 bytes of half) with vector loads.
//
// The token layout: the residual stream x is (B, T, F, dim), row r = (b, t, f).
// Attention runs along T (axis 1: sequences s = b*F + f, position p = t) or
// along F (axis 2: sequences s = b*T + t, position p = f), with q, k, v and the
// attention output as (N, h, n, d), N sequences of n positions.
#pragma once

#include <cstdint>

namespace stemkit::kernels::launch {

enum class DType { f32, f16, bf16 };

struct AxialLayout {
  int64_t B, T, F;
  int axis;  // 1: along T, 2: along F
};

// u[r] = x[r] / sqrt(mean(x[r]^2) + eps) (what at::rms_norm computes without a
// weight), then, when bias is non-null, x[r] += bias. rows x dim, both
// contiguous; u may not alias x.
void unit_rows_add_bias(DType dtype, void* x, const void* bias, void* u, int64_t rows, int64_t dim, double eps,
                        void* stream);

// From qkv (rows x ld, row r a token in `layout`, columns [q | k | v | ...],
// each h*d wide): q and k rotated by `table` ((n, d/2) pairs of float32 cos,
// sin: rotary-embedding-torch's interleaved pairs, computed in float32) and
// written as (N, h, n, d); v copied likewise when v is non-null.
void rotary_split(DType dtype, const void* qkv, int64_t ld, const float* table, void* q, void* k, void* v,
                  AxialLayout layout, int64_t heads, int64_t dim_head, void* stream);

// gated[r, hh*d + e] = o[s, hh, p, e] * sigmoid(logits[r * ld + hh]) for token r = (s, p):
// the per-head gate applied and the heads laid back into token rows (rows x h*d,
// contiguous). o's strides (in elements) for its N, h and n dimensions are given; its
// last dimension is contiguous. The sigmoid is rounded to dtype before the
// product, as upstream's fp16 graph does.
void gate_to_rows(DType dtype, const void* o, int64_t o_stride_s, int64_t o_stride_h, int64_t o_stride_p,
                  const void* logits, int64_t ld, void* gated, AxialLayout layout, int64_t heads, int64_t dim_head,
                  void* stream);

// rotary_split, attention and gate_to_rows in one kernel, for short sequences:
// n <= 64 positions, d = 64, float16 or bfloat16 (SM 8.0+ for bfloat16), CUDA
// builds. softmax(q kᵀ / sqrt(d)) v per (sequence, head), gated, into gated
// (rows x h*d). Returns false, launching nothing, where it does not apply.
bool band_attention(DType dtype, const void* qkv, int64_t ld, const float* table, const void* logits, int64_t logits_ld,
                    void* gated, AxialLayout layout, int64_t heads, int64_t dim_head, int64_t n, void* stream);

// The same for sequences of any length (the time axis): FlashAttention 2's
// scheme, keys in tiles of 64 with the softmax kept online; 64 query rows per
// block of 4 warps. k is rotated in place in qkv first
// (qkv is scratch to the caller afterwards). d = 64, float16 or bfloat16,
// SM 8.0+, CUDA builds, at most 65535 (sequence, head) pairs. Returns false,
// launching nothing (and leaving qkv as it was), where it does not apply.
bool seq_attention(DType dtype, void* qkv, int64_t ld, const float* table, const void* logits, int64_t logits_ld,
                   void* gated, AxialLayout layout, int64_t heads, int64_t dim_head, int64_t n, void* stream);

// The last launch's error, as text; empty when fine (cudaGetLastError / hipGetLastError).
const char* last_error();

}  // namespace stemkit::kernels::launch
