// The fast paths of HTDemucs' blocks, run when the plan says so
// (unless plan::KernelPlan::reference_forward). Each computes what the
// block's reference forward in htdemucs.cpp computes, up to rounding, with
// fewer passes over the activations and no layout copies;
// tests/runtime/htdemucs_test.cpp (CPU) and htdemucs_gpu_test.cpp compare
// each with its reference. Plain ATen: they run on every device and dtype.
#pragma once

#include <torch/nn/modules/normalization.h>

#include <ATen/core/Tensor.h>

#include "runtime/models/htdemucs_blocks.h"

namespace stemkit::models::htdemucs::fast {

// gn(x): the GroupNorm(G, C) of HEncLayer and HDecLayer on (N, C, ...).
// With few (sample, group) rows the statistics come from a reduction spread
// over the device, in float32 whatever the dtype, and the affine
// normalisation is one pass; with many rows, ATen's kernel.
at::Tensor group_norm(const torch::nn::GroupNormImpl& gn, const at::Tensor& x);

// gn(x) for MyGroupNorm with one group: x is (N, T, C) tokens, normalised
// over all of T and C, without the two transposes.
at::Tensor my_group_norm(const MyGroupNormImpl& gn, const at::Tensor& x);

// gn(x + conv_bias), the GroupNorm(1) after a DConv convolution that ran
// without its bias: x is (N, C, T), or (B, C, Fr, T) with each bin a sample
// of its own. The bias is folded into the statistics; x + bias is never made.
at::Tensor dconv_norm(const torch::nn::GroupNormImpl& gn, const at::Tensor& x, const at::Tensor& conv_bias);

// x + scale(y) in one pass, for either LayerScale form; y and x of one shape,
// channels at dimension 1 (channel first, any number of trailing
// dimensions) or last (channel_last).
at::Tensor add_layer_scale(const at::Tensor& x, const LayerScaleImpl& scale, const at::Tensor& y);

// dconv(x): every branch's x = x + branch(x), the convolutions without their
// bias (dconv_norm folds it in) and the LayerScale in the residual add.
// x is (N, C, T), or (B, C, Fr, T) in a frequency layer, where upstream runs
// the (B * Fr, C, T) copy; here the Conv1d kernels run as (1, k) Conv2d
// kernels over (Fr, T), and no copy is made.
at::Tensor dconv(const DConvImpl& dconv, at::Tensor x);

}  // namespace stemkit::models::htdemucs::fast
