// The fast paths of the RoFormer blocks (roformer_blocks.h): the same math as
// the blocks' reference forwards, which follow upstream line by line, done in
// fewer passes over memory. Upstream spends most of its GPU time in
// elementwise kernels, so the work here is in passes, not FLOPs:
//
//   RMSNorm        libtorch's fused RMS norm on a GPU (x / rms(x) = sqrt(dim) x / |x|)
//   Attention      the norm folded into one qkv-and-gates GEMM, rotary as one complex
//                  multiply, the gate written in to_out's layout, the residual added by
//                  to_out's GEMM; with the fused GPU kernels (runtime/kernels/) on the
//                  token rows of (B, T, F, dim) without transposed copies
//   FeedForward    the norm folded into net.1, GELU in its GEMM's epilogue (plan::Gelu),
//                  the residual added by net.4's GEMM
//   Transformer    in place on a tensor the caller handed over
//   BandSplit      a run of bands of equal width as one batched GEMM
//   MaskEstimator  the hidden layers of all bands as one batched GEMM each, the last
//                  layer per run of bands of equal width
//
// The blocks' forward() takes these unless the plan asks for the reference
// (plan::KernelPlan::reference_forward); roformer_blocks_test.cpp compares
// each with its reference on the CPU, roformer_kernels_gpu_test.cpp on a GPU.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "runtime/models/roformer_blocks.h"

namespace stemkit::kernels {
struct Axial;
}

namespace stemkit::models::roformer::fast {

// F.normalize(x, dim=-1) * sqrt(dim) * gamma; on a GPU libtorch's fused RMS norm
// computes the same in one pass.
at::Tensor rms_norm(const RMSNormImpl& norm, const at::Tensor& x);

// x += Attention(x), in place (x (N, n, dim), contiguous and the caller's own).
void add_attention(AttentionImpl& attn, at::Tensor& x, const plan::KernelPlan& plan);
// The same with the fused GPU kernels on rows = x viewed as (B*T*F, dim) token
// rows of a (B, T, F, dim) tensor, attending along layout.axis without moving
// the tokens: the kernels gather q, k, v per sequence and scatter the gated
// output back to the rows.
void add_attention_rows(AttentionImpl& attn, at::Tensor& rows, const kernels::Axial& layout,
                        const plan::KernelPlan& plan);

// x += FeedForward(x), in place (x contiguous and the caller's own).
void add_feed_forward(FeedForwardImpl& ff, at::Tensor& x, const plan::KernelPlan& plan);
// The same with the fused GPU kernels on (rows, dim): net.4's bias is added to
// x by the norm's kernel, before the GEMM adds the rest.
void add_feed_forward_rows(FeedForwardImpl& ff, at::Tensor& rows, const plan::KernelPlan& plan);

// Transformer::forward: (N, n, dim) -> (N, n, dim), x += attn(x); x += ff(x);
// per layer. Works in place on x when the caller hands over the only reference.
at::Tensor transformer(TransformerImpl& t, at::Tensor x, const plan::KernelPlan& plan);
// Transformer::forward_axial: x (B, T, F, dim) along axis 1 or 2. With the
// fused GPU kernels in place without transposed copies; otherwise through
// transformer() on (B*F, T, dim) or (B*T, F, dim).
at::Tensor transformer_axial(TransformerImpl& t, at::Tensor x, int axis, const plan::KernelPlan& plan);
// Folds the norms into the weights of transformer_axial's kernel path now, once
// the parameters are on their device and in their dtype (to_device), rather
// than in the first forward. Made mid-forward, the folded weights (1.5 and 2 MB
// a layer) share the caching allocator's 20 MB segments with that forward's
// temporaries and keep those segments reserved for good; made here they pack
// into a few segments of their own, and the reserved memory of a run no longer
// depends on the shapes that ran before it. Nothing to do where
// transformer_axial takes the ATen path (CPU, linear attention, a plan without
// the fused kernels) or the plan runs the reference forwards.
void prepare_rows(TransformerImpl& t, const at::TensorOptions& options, const plan::KernelPlan& plan);

// Bands in runs of equal input width: bands [first, first + count), their
// columns [offset, offset + count * width) of the concatenated input.
struct BandRun {
  int64_t first, count, width, offset;
};
std::vector<BandRun> band_runs(const std::vector<int64_t>& widths);

// BandSplit::forward: a run of bands of equal width is one batched GEMM, its
// parameters views of one stacked tensor per kind (stack_parameters), so that
// load_state_dict still writes each in place and no weight is held twice.
at::Tensor band_split(BandSplitImpl& split, const at::Tensor& x);
// Makes each run's parameters views of stacked tensors again (after to(),
// which replaces them; until then the bands run one by one). The
// constructor's call leaves the Linear layers' values unset (copy_values).
void stack_parameters(BandSplitImpl& split, bool copy_values = true);
// Whether band_split runs each run of bands as one batched GEMM (the parameters are stacked).
bool stacked(const BandSplitImpl& split);

// MaskEstimator::forward: the hidden layers of all bands as one batched GEMM
// each, the last layer per run of bands of equal width (parameters stacked as
// in BandSplit).
at::Tensor mask_estimator(MaskEstimatorImpl& masks, const at::Tensor& x);
void stack_parameters(MaskEstimatorImpl& masks, bool copy_values = true);  // as BandSplit's
bool stacked(const MaskEstimatorImpl& masks);                              // whether mask_estimator runs batched GEMMs

}  // namespace stemkit::models::roformer::fast
