// Fused GPU kernels for the RoFormer layers (roformer_kernels.cu), with the
// checks that decide whether they apply. roformer_fast.cpp calls them when
// the plan says so (plan::KernelPlan::fused_kernels, decided where
// usable_for(x) holds) and otherwise computes the same with ATen ops.
//
// What they replace, per layer, with x the residual stream (B, T, F, dim):
//   unit_rows_add_bias  RMS norm (the weight folded into the next GEMM), and the
//                       feed-forward's output bias added to x in the same pass
//   rotary_split        q, k, v out of the qkv GEMM's rows into (N, h, n, d),
//                       q and k rotated: replaces the transposed copy of x for
//                       the time transformer and the two rotary multiplies
//   gate_to_rows        sigmoid gate times the attention output, written back
//                       as token rows for the output GEMM
//   fused_attention     rotary_split, attention and gate_to_rows in one pass:
//                       band_attention along short axes (BS-RoFormer's 62
//                       bands), seq_attention along long ones (801 frames)
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <utility>
#include <cstdint>

namespace stemkit::kernels {

// x (B, T, F, dim): attention along axis 1 (T) or 2 (F). See roformer_launch.h.
struct Axial {
  int64_t B, T, F;
  int axis;
  int64_t rows() const { return B * T * F; }
  int64_t sequences() const { return axis == 1 ? B * F : B * T; }
  int64_t length() const { return axis == 1 ? T : F; }
};

// Whether the kernels are in this build: a CUDA or ROCm flavour built with a
// device compiler (CMake says which at configure time).
bool compiled();
// Whether they can run on tensors like x: compiled, x on the GPU in float32,
// float16 or bfloat16.
bool usable_for(const at::Tensor& x);
// "fused (CUDA)", "fused (HIP)" or "ATen (not built: ...)": for --version and benchmarks.
const char* describe();

// u = x / sqrt(mean(x^2) + eps) row by row (x: (rows, dim), contiguous); then,
// with bias defined, x += bias. Returns u.
at::Tensor unit_rows_add_bias(const at::Tensor& x, const at::Tensor& bias, double eps);

// q, k, v (N, h, n, d), contiguous, from qkv's token rows (rows x >= 3hd, row
// stride a multiple of 8); table: complex64 (n, d/2), cos + i sin per position.
// With copy_v false, v is a strided view into qkv where one tensor can be (along
// F, where a sequence's tokens are consecutive rows, or with F = 1) and undefined
// otherwise: then read it per batch element with v_along_t.
std::array<at::Tensor, 3> rotary_split(const at::Tensor& qkv, const at::Tensor& table, const Axial& layout,
                                       int64_t heads, int64_t dim_head, bool copy_v);

// v of batch element b along T, read in place: (F, h, T, d), a strided view of
// qkv's rows (SDPA reads it as it reads a contiguous v, 128-byte rows at a time).
at::Tensor v_along_t(const at::Tensor& qkv, const Axial& layout, int64_t heads, int64_t dim_head, int64_t b);

// (rows, h*d): o (N, h, n, d) times sigmoid(logits[:, head]), in token rows;
// logits (rows, >= h) with contiguous columns. Into `out` ((rows, h*d),
// contiguous) when given.
at::Tensor gate_to_rows(const at::Tensor& o, const at::Tensor& logits, const Axial& layout, int64_t heads,
                        int64_t dim_head, const at::Tensor& out = {});

// rotary_split, attention and gate_to_rows in one kernel: band_attention for
// short sequences (n <= 64), seq_attention (flash-style, keys in tiles) for
// longer ones; d = 64, float16 or bfloat16 on SM 8.0+, CUDA builds. Returns
// (rows, h*d), with the kernel's name in *which, or an undefined tensor where
// neither applies (then take the three steps, qkv untouched). qkv: (rows, >= 3hd)
// token rows, whose k columns the long-sequence kernel rotates in place (so qkv
// is spent once this returns a result); logits: (rows, >= h). long_sequences:
// whether seq_attention takes the sequences longer than 64 (plan::KernelPlan::seq_kernel).
at::Tensor fused_attention(const at::Tensor& qkv, const at::Tensor& table, const at::Tensor& logits,
                           const Axial& layout, int64_t heads, int64_t dim_head, bool long_sequences,
                           const char** which = nullptr);

}  // namespace stemkit::kernels
