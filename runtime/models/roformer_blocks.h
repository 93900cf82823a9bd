// The modules BS-RoFormer and Mel-Band RoFormer share at the pin in
// manifests/bs-roformer.yaml (lucidrains/BS-RoFormer c05f497: bs_roformer.py
// and mel_band_roformer.py define the same classes), with upstream's module and
// parameter names so that state dicts load by name. Shapes: N sequences of n
// tokens of width dim; h heads of d = dim_head.
//
//   RMSNorm        gamma (dim)                 F.normalize(x, dim=-1) * sqrt(dim) * gamma
//   Attention      norm.gamma, to_qkv (3hd x dim, no bias), to_gates (h x dim),
//                  to_out.0 (dim x hd, no bias), rotary_embed.freqs (d/2)
//   LinearAttention norm.gamma, to_qkv.0 (3hd x dim), temperature (h, 1, 1), to_out.1 (dim x hd)
//   FeedForward    net.0.gamma, net.1 (4dim x dim), net.4 (dim x 4dim)       GELU between
//   Transformer    layers.{j}.0 (Attention or LinearAttention), layers.{j}.1 (FeedForward),
//                  norm.gamma when norm_output (Mel-Band RoFormer; BS-RoFormer has none)
//   BandSplit      to_features.{b}.0.gamma, to_features.{b}.1    RMSNorm + Linear per band
//   MaskEstimator  to_freqs.{b}.0.{0,2,..}     Linear layers with Tanh between, then GLU
//
// Each block's forward is upstream's forward, line for line (roformer_blocks.cpp
// names the lines), when the plan asks for it (plan::KernelPlan::reference_forward);
// otherwise it runs the block's fast path (roformer_fast.h), the same math in
// fewer passes over memory. Attention's and FeedForward's fast paths add into
// the residual stream in place, so Transformer::forward is where those are
// chosen; their forward() is the reference alone.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include "runtime/layers/layers.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace stemkit::plan {
struct KernelPlan;
}

namespace stemkit::models::roformer {

// What the fast paths derive from a block's parameters (roformer_fast.cpp):
// folded weights, rotary tables, stacked band parameters.
namespace fast {
struct AttentionWeights;
struct FeedForwardWeights;
struct BandSplitRuns;
struct MaskEstimatorRuns;
}  // namespace fast

// The Linear layers: layers::Linear (runtime/layers/layers.h), nn::Linear without random initial values.
using layers::Linear;

struct RMSNormImpl : torch::nn::Module {
  at::Tensor gamma;
  double scale;
  explicit RMSNormImpl(int64_t dim);
  at::Tensor forward(const at::Tensor& x, const plan::KernelPlan& plan);  // (..., dim) -> (..., dim)
};
TORCH_MODULE(RMSNorm);

// Attention with rotary embeddings (rotary-embedding-torch's interleaved pairs,
// angles and rotation in float32) on q and k, through the attention policy,
// and a per-head sigmoid gate.
struct AttentionImpl : torch::nn::Module {
  int64_t heads, dim_head;
  RMSNorm norm{nullptr};
  Linear to_qkv{nullptr}, to_gates{nullptr}, to_out{nullptr};
  at::Tensor freqs;  // rotary inverse frequencies (dim_head / 2), rotary_embed.freqs
  AttentionImpl(int64_t dim, int64_t heads, int64_t dim_head);
  // Upstream's Attention.forward: (N, n, dim) -> attn(x), (N, n, dim). The
  // fast path (fast::add_attention) adds attn(x) into x in place.
  at::Tensor forward(const at::Tensor& x, const plan::KernelPlan& plan);
  std::shared_ptr<fast::AttentionWeights> fast_weights;  // made by the fast path when it first runs
};
TORCH_MODULE(Attention);

// El-Nouby et al.'s cross-covariance attention, upstream's LinearAttention:
// q, k, v as (N, h, d, n); q and k L2-normalised over the n tokens, q times
// exp(temperature); softmax(q kᵀ · 8) over d x d, times v. The "sequence" is
// the d features and the "features" are all n tokens, so this is exact math
// (matmuls), not the attention policy's kernels (whose head sizes are small).
// No fast path of its own: the fast Transformer calls this forward too.
struct LinearAttentionImpl : torch::nn::Module {
  int64_t heads, dim_head;
  RMSNorm norm{nullptr};
  Linear to_qkv{nullptr}, to_out{nullptr};
  at::Tensor temperature;  // (h, 1, 1)
  LinearAttentionImpl(int64_t dim, int64_t heads, int64_t dim_head);
  at::Tensor forward(const at::Tensor& x, const plan::KernelPlan& plan);  // (N, n, dim) -> (N, n, dim)
};
TORCH_MODULE(LinearAttention);

struct FeedForwardImpl : torch::nn::Module {
  RMSNorm norm{nullptr};
  Linear in{nullptr}, out{nullptr};
  FeedForwardImpl(int64_t dim, int64_t mult);
  // Upstream's FeedForward.forward: net.4(GELU(net.1(norm(x)))). The fast path
  // (fast::add_feed_forward) adds that into x in place.
  at::Tensor forward(const at::Tensor& x, const plan::KernelPlan& plan);
  std::shared_ptr<fast::FeedForwardWeights> fast_weights;  // made by the fast path when it first runs
};
TORCH_MODULE(FeedForward);

struct TransformerImpl : torch::nn::Module {
  std::vector<Attention> attention;  // or, with linear attention,
  std::vector<LinearAttention> linear_attention;
  std::vector<FeedForward> feed_forward;
  RMSNorm norm{nullptr};  // none when !norm_output
  TransformerImpl(int64_t depth, int64_t dim, int64_t heads, int64_t dim_head, bool norm_output, bool linear_attn);
  // (N, n, dim) -> (N, n, dim): x = attn(x) + x; x = ff(x) + x; per layer. The
  // fast path works in place on x when the caller hands over the only
  // reference (a temporary).
  at::Tensor forward(at::Tensor x, const plan::KernelPlan& plan);
  // x (B, T, F, dim), attending along axis 1 (over T: time) or 2 (over F:
  // bands); returns (B, T, F, dim): upstream's rearrange and pack around a
  // time or frequency Transformer. Pass x with std::move to let the fast path
  // work in place.
  at::Tensor forward_axial(at::Tensor x, int axis, const plan::KernelPlan& plan);
};
TORCH_MODULE(Transformer);

// One depth step of either RoFormer: [a linear-attention Transformer over all
// T x F tokens (MSST's linear_transformer_depth > 0),] the time Transformer
// (along T), the frequency Transformer (along F).
struct AxialLayer {
  Transformer linear{nullptr}, time{nullptr}, freq{nullptr};
};

// x (B, T, F, dim) through the layers in order -> (B, T, F, dim). With MSST's
// skip_connection, the outputs of all earlier layers are added to x (in their
// order, as MSST's `x = x + store[j]`) after a layer's linear Transformer and
// before its time Transformer. Pass x with std::move to let it work in place.
at::Tensor run_axial_layers(std::vector<AxialLayer>& layers, at::Tensor x, bool skip_connection,
                            const plan::KernelPlan& plan);

// (B, T, sum(dim_inputs)) -> (B, T, bands, dim): RMSNorm + Linear per band.
// The constructor stacks the parameters of each run of bands of equal width
// for the fast path (fast::stack_parameters); the reference reads each band's
// parameters, views of those stacks, as they are.
struct BandSplitImpl : torch::nn::Module {
  std::vector<int64_t> dim_inputs;
  std::vector<RMSNorm> norms;
  std::vector<Linear> linears;
  BandSplitImpl(int64_t dim, std::vector<int64_t> dim_inputs);
  at::Tensor forward(const at::Tensor& x, const plan::KernelPlan& plan);
  std::shared_ptr<fast::BandSplitRuns> fast_runs;  // the stacked parameters
};
TORCH_MODULE(BandSplit);

// (B, T, bands, dim) -> (B, T, sum(dim_inputs)): per band, `linear_layers`
// Linear layers (dim -> hidden -> ... -> 2 * dim_in, Tanh between), then GLU.
// Upstream's MLP depth means depth Linear layers in bs_roformer.py and
// depth + 1 in mel_band_roformer.py; the caller says which. Parameters stacked
// for the fast path as in BandSplit.
struct MaskEstimatorImpl : torch::nn::Module {
  std::vector<std::vector<Linear>> mlps;  // [band] -> Linear layers
  MaskEstimatorImpl(int64_t dim, const std::vector<int64_t>& dim_inputs, int64_t linear_layers, int64_t hidden);
  at::Tensor forward(const at::Tensor& x, const plan::KernelPlan& plan);
  std::shared_ptr<fast::MaskEstimatorRuns> fast_runs;  // the stacked parameters
};
TORCH_MODULE(MaskEstimator);

// Converts a RoFormer to (device, dtype): moved first, converted on the device;
// every rotary_embed.freqs stays float32 with its bits, as upstream computes the
// rotary angles; the band modules' parameters are stacked again where the move
// replaced them (BandSplit, MaskEstimator); the kernel path's folds are built
// where the plan takes that path.
void to_device(torch::nn::Module& module, const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& plan);

}  // namespace stemkit::models::roformer
