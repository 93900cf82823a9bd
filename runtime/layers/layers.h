// Layers for models whose every weight comes from a checkpoint: libtorch's
// nn::Linear, nn::ConvNd and nn::ConvTransposeNd parameters (same names, so
// state dicts load by name) and forwards, without their random initial values.
// Strict loading (state_dict.h) writes each parameter, so drawing those values
// first was wasted: for viperx's BS-RoFormer (160 million parameters) it was
// most of the time it took to build the model, 3.2 s of a 2-core CPU; for
// HTDemucs 0.6 to 1 s a model. Until a state dict is loaded the parameters
// hold whatever the allocator gave.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace stemkit::layers {

// weight (out x in), bias (out) or none.
struct LinearImpl : torch::nn::Module {
  at::Tensor weight, bias;
  LinearImpl(int64_t in, int64_t out, bool with_bias = true);
  at::Tensor forward(const at::Tensor& x);  // (..., in) -> (..., out)
};
TORCH_MODULE(Linear);

// A convolution over 1 or 2 dimensions (kernel's length), zero padding, one group.
struct ConvOptions {
  int64_t in = 0, out = 0;
  std::vector<int64_t> kernel;
  std::vector<int64_t> stride = {}, padding = {}, dilation = {};  // empty: 1, 0 and 1 in every dimension
  bool transposed = false;
};

// weight (out, in, kernel...), or (in, out, kernel...) when transposed, as torch's; bias (out).
struct ConvImpl : torch::nn::Module {
  ConvOptions options;
  at::Tensor weight, bias;
  explicit ConvImpl(ConvOptions options);
  at::Tensor forward(const at::Tensor& x);  // (N, in, ...) -> (N, out, ...)
};
TORCH_MODULE(Conv);

}  // namespace stemkit::layers
