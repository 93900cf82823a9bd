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
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include "runtime/layers/layers.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace stemkit::kernels {
struct Axial;
}
namespace stemkit::plan {
struct KernelPlan;
}

namespace stemkit::models::roformer {

// A Linear layer (or several stacked row-wise) with the RMSNorm before it
// folded in: W' = W * (gamma * sqrt(dim)) column by column, so the norm left at
// run time is x / |x|, one pass instead of three. Rebuilt whenever a source
// tensor moves (to()) or is written (load_state_dict); see roformer_blocks.cpp.
struct FoldedLinear;
// cos + i sin of the rotary angles per position, complex float32 (n, d/2), per sequence length.
struct RotaryTable;

// The Linear layers: layers::Linear (runtime/layers/layers.h), nn::Linear without random initial values.
using layers::Linear;

struct RMSNormImpl : torch::nn::Module {
  at::Tensor gamma;
  double scale;
  explicit RMSNormImpl(int64_t dim);
  at::Tensor forward(const at::Tensor& x);  // (..., dim) -> (..., dim)
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
  // x += Attention(x), in place (x (N, n, dim), contiguous and the caller's own).
  // Upstream computes: y = norm(x); q, k, v = to_qkv(y) per head; q, k rotated;
  // out = attend(q, k, v) * sigmoid(to_gates(y)) per head; to_out(out). Here in
  // fewer passes over memory: the norm folded into one qkv-and-gates GEMM, rotary
  // as one complex multiply, the gate written in to_out's layout, the residual
  // added by the to_out GEMM.
  void add_to_inplace(at::Tensor& x, const plan::KernelPlan& plan);
  // The same with the fused GPU kernels (runtime/kernels/) on rows = x viewed as
  // (B*T*F, dim) token rows of a (B, T, F, dim) tensor, attending along
  // layout.axis without moving the tokens: the kernels gather q, k, v per
  // sequence and scatter the gated output back to the rows.
  void add_to_inplace_rows(at::Tensor& rows, const kernels::Axial& layout, const plan::KernelPlan& plan);
  // Builds add_to_inplace_rows' folded weights, or rebuilds them after a weight
  // changed (else nothing): to_device calls it at load, so that the first
  // forward finds them made (TransformerImpl::prepare_rows says why).
  void prepare_rows();

 private:
  const at::Tensor& rotary_table(int64_t n, const at::Device& device);
  std::shared_ptr<FoldedLinear> qkv_gates_;  // [to_qkv; to_gates] with norm.gamma folded in
  std::shared_ptr<FoldedLinear> qkv_, gates_;  // the same, apart (the fused kernels' path)
  std::shared_ptr<RotaryTable> rotary_;
};
TORCH_MODULE(Attention);

// El-Nouby et al.'s cross-covariance attention, upstream's LinearAttention:
// q, k, v as (N, h, d, n); q and k L2-normalised over the n tokens, q times
// exp(temperature); softmax(q kᵀ · 8) over d x d, times v. The "sequence" is
// the d features and the "features" are all n tokens, so this is exact math
// (matmuls), not the attention policy's kernels (whose head sizes are small).
struct LinearAttentionImpl : torch::nn::Module {
  int64_t heads, dim_head;
  RMSNorm norm{nullptr};
  Linear to_qkv{nullptr}, to_out{nullptr};
  at::Tensor temperature;  // (h, 1, 1)
  LinearAttentionImpl(int64_t dim, int64_t heads, int64_t dim_head);
  at::Tensor forward(at::Tensor x);  // (N, n, dim) -> (N, n, dim)
};
TORCH_MODULE(LinearAttention);

struct FeedForwardImpl : torch::nn::Module {
  RMSNorm norm{nullptr};
  Linear in{nullptr}, out{nullptr};
  FeedForwardImpl(int64_t dim, int64_t mult);
  // x += net.4(GELU(net.1(norm(x)))), in place (x contiguous and the caller's
  // own): the norm folded into net.1, the residual added by net.4's GEMM.
  void add_to_inplace(at::Tensor& x, const plan::KernelPlan& plan);
  // The same with the fused GPU kernels on (rows, dim): net.4's bias is added to
  // x by the norm's kernel, before the GEMM adds the rest.
  void add_to_inplace_rows(at::Tensor& rows, const plan::KernelPlan& plan);
  void prepare_rows();  // as Attention's

 private:
  std::shared_ptr<FoldedLinear> in_;  // net.1 with net.0.gamma folded in
};
TORCH_MODULE(FeedForward);

struct TransformerImpl : torch::nn::Module {
  std::vector<Attention> attention;              // or, with linear attention,
  std::vector<LinearAttention> linear_attention;
  std::vector<FeedForward> feed_forward;
  RMSNorm norm{nullptr};  // none when !norm_output
  TransformerImpl(int64_t depth, int64_t dim, int64_t heads, int64_t dim_head, bool norm_output, bool linear_attn);
  // (N, n, dim) -> (N, n, dim): x += attn(x); x += ff(x); per layer. Works in
  // place on x when the caller hands over the only reference (a temporary).
  at::Tensor forward(at::Tensor x, const plan::KernelPlan& plan);
  // x (B, T, F, dim), attending along axis 1 (over T: time) or 2 (over F:
  // bands); returns (B, T, F, dim). With the fused GPU kernels this works in
  // place without transposed copies; otherwise through forward() on (B*F, T,
  // dim) or (B*T, F, dim). Pass x with std::move to let it work in place.
  at::Tensor forward_axial(at::Tensor x, int axis, const plan::KernelPlan& plan);
  // Folds the norms into the weights of forward_axial's kernel path now, once the
  // parameters are on their device and in their dtype (to_device), rather than
  // in the first forward. Made mid-forward, the folded weights (1.5 and 2 MB a
  // layer) share the caching allocator's 20 MB segments with that forward's
  // temporaries and keep those segments reserved for good; made here they pack
  // into a few segments of their own, and the reserved memory of a run no
  // longer depends on the shapes that ran before it. Nothing to do where
  // forward_axial takes the ATen path (CPU, linear attention, a plan without
  // the fused kernels).
  void prepare_rows(const at::TensorOptions& options, const plan::KernelPlan& plan);
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

// Bands in runs of equal input width: bands [first, first + count), their
// columns [offset, offset + count * width) of the concatenated input.
struct BandRun {
  int64_t first, count, width, offset;
};
std::vector<BandRun> band_runs(const std::vector<int64_t>& widths);

// (B, T, sum(dim_inputs)) -> (B, T, bands, dim)
// A run of bands of equal width is one batched GEMM: its parameters are views
// of one stacked tensor per kind (stack_parameters), so load_state_dict still
// writes each in place and no weight is held twice.
struct BandSplitImpl : torch::nn::Module {
  std::vector<int64_t> dim_inputs;
  std::vector<RMSNorm> norms;
  std::vector<Linear> linears;
  BandSplitImpl(int64_t dim, std::vector<int64_t> dim_inputs);
  at::Tensor forward(const at::Tensor& x);
  // Makes each run's parameters views of stacked tensors again (after to(),
  // which replaces them; until then the bands run one by one). The
  // constructor's call leaves the Linear layers' values unset (copy_values).
  void stack_parameters(bool copy_values = true);
  // Whether forward runs each run of bands as one batched GEMM (the parameters are stacked).
  bool stacked() const;

 private:
  struct Run {
    BandRun bands;
    at::Tensor gamma, weight, bias;  // (k, w), (k, dim, w), (k, dim)
  };
  std::vector<Run> runs_;
  bool run_stacked(const Run& run) const;
};
TORCH_MODULE(BandSplit);

// (B, T, bands, dim) -> (B, T, sum(dim_inputs)): per band, `linear_layers`
// Linear layers (dim -> hidden -> ... -> 2 * dim_in, Tanh between), then GLU.
// Upstream's MLP depth means depth Linear layers in bs_roformer.py and
// depth + 1 in mel_band_roformer.py; the caller says which. The hidden layers
// of all bands run as one batched GEMM each, the last layer per run of bands
// of equal width (parameters stacked as in BandSplit).
struct MaskEstimatorImpl : torch::nn::Module {
  std::vector<std::vector<Linear>> mlps;  // [band] -> Linear layers
  MaskEstimatorImpl(int64_t dim, const std::vector<int64_t>& dim_inputs, int64_t linear_layers, int64_t hidden);
  at::Tensor forward(const at::Tensor& x);
  void stack_parameters(bool copy_values = true);  // as BandSplit's
  bool stacked() const;     // whether forward runs batched GEMMs

 private:
  std::vector<at::Tensor> hidden_weight_, hidden_bias_;  // per hidden layer: (bands, out, in), (bands, out)
  struct Run {
    BandRun bands;
    at::Tensor weight, bias;  // the last layer: (k, 2w, in), (k, 2w)
  };
  std::vector<Run> runs_;
};
TORCH_MODULE(MaskEstimator);

// Converts a RoFormer to (device, dtype): moved first, converted on the device;
// every rotary_embed.freqs stays float32 with its bits, as upstream computes the
// rotary angles; the band modules' parameters are stacked again where the move
// replaced them (BandSplit, MaskEstimator); the kernel path's folds are built
// where the plan takes that path.
void to_device(torch::nn::Module& module, const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& plan);

}  // namespace stemkit::models::roformer
