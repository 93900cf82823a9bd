// Fused GPU kernels for HTDemucs' fast blocks (htdemucs_kernels.cu), with the
// checks that decide whether they apply. htdemucs_fast.cpp calls them where
// rows_usable_for holds and otherwise computes the same with ATen ops.
//
// What they replace, over the largest activations of the network:
//   row_moments   a norm's statistics: one read, where ATen's sum and 2-norm
//                 (half, bfloat16) or Welford (float32) reductions take two or one
//                 slower one
//   affine_rows   a convolution's bias, or a norm's per-row scale and shift, with
//                 the GELU after it: one pass, where ATen takes a broadcast add or
//                 addcmul and then the GELU
//   affine_glu    a convolution's bias or a norm's affine, the GLU and the
//                 LayerScale's residual add: one pass, where ATen takes three
// A "row" is the last dimension; per-row values are float32 tensors shaped as
// the activation without it.
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>

namespace stemkit::kernels {

// Whether the kernels can run on x: built (compiled()), x on the GPU in float32,
// float16 or bfloat16, contiguous, aligned to 8 elements, under 2^31 elements.
bool rows_usable_for(const at::Tensor& x);

// Mean and biased variance of each row of x, in float32 (shape x.shape[:-1]).
std::pair<at::Tensor, at::Tensor> row_moments(const at::Tensor& x);

// act(x * scale + shift), act GELU (exact) or none; scale and shift per row
// (float32, shape x.shape[:-1]); an undefined scale is 1.
at::Tensor affine_rows(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& shift, bool gelu);

// z is (N, 2C, ..., L); scale and shift per row of z (float32, z.shape[:-1];
// an undefined scale is 1). Returns (N, C, ..., L):
//   residual + layer_scale[c] * a * sigmoid(g),  a = z[:, c] * scale + shift, g = z[:, C + c] * scale + shift
// or a * sigmoid(g) when residual (z's dtype and output shape) and layer_scale
// ((C), float32) are undefined.
at::Tensor affine_glu(const at::Tensor& z, const at::Tensor& scale, const at::Tensor& shift, const at::Tensor& residual,
                      const at::Tensor& layer_scale);

}  // namespace stemkit::kernels
