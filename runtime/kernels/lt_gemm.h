// The RoFormer layers' big GEMMs through cuBLASLt (CUDA builds), for two
// things ATen's matmuls do not give us:
//   - an epilogue that adds a bias to a GEMM accumulating into its output
//     (out += a wᵀ + bias): the feed-forward's second GEMM then adds its bias
//     to the residual stream itself, and the norm kernel before it no longer
//     writes x back (one pass over x less per layer);
//   - the fastest of cuBLASLt's candidate algorithms for each shape, timed once
//     at first use (outside graph capture) instead of the heuristic's first pick.
// Anywhere else (CPU, ROCm, fp32, or a plan with plan::Gemm::aten) the callers
// keep ATen's addmm / _addmm_activation, which compute the same.
#pragma once

#include <ATen/core/Tensor.h>

namespace stemkit::kernels {

enum class Epilogue {
  none,       // out = a wᵀ              (or out += a wᵀ)
  bias,       // out = a wᵀ + bias       (or out += a wᵀ + bias)
  gelu_bias,  // out = gelu(a wᵀ + bias): cuBLASLt's tanh-form GELU, as at::_addmm_activation
};

// Whether lt_linear can run for activations like x: a CUDA build with
// cuBLASLt, x on the GPU in float16 or bfloat16.
bool lt_usable_for(const at::Tensor& x);

// out (M, N) [+]= a (M, K) wᵀ (w: (N, K)) with the epilogue; bias (N) in a's dtype.
// Rows of a, w and out contiguous in their last dimension, row strides multiples
// of 8, 16-byte aligned. accumulate: out += ... (not with gelu_bias). Computes
// the same through ATen where cuBLASLt offers no algorithm.
void lt_linear(const at::Tensor& a, const at::Tensor& w, const at::Tensor& bias, const at::Tensor& out,
               Epilogue epilogue, bool accumulate);

// Keeps the timed choices in `dir` between runs (lt_algo_cache.h; the plan
// passes the runner's cache directory); "": timed anew in each process.
// Set before the first lt_linear; a later call changes nothing already chosen.
void lt_keep_algorithms(const std::string& dir);

// "cuBLASLt, fastest algorithm per shape", or why not: for --version and benchmark notes.
const char* lt_describe();

}  // namespace stemkit::kernels
