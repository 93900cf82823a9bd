// A Linear layer for models whose every weight comes from a checkpoint:
// torch::nn::Linear's parameters, weight (out x in) and bias (out, or none),
// and its forward, without its random initial values. Strict loading
// (state_dict.h) writes each parameter, so drawing those values first was
// wasted: for viperx's BS-RoFormer (160 million parameters) it was most of the
// time it took to build the model, 3.2 s of a 2-core CPU; for HTDemucs, whose
// transformers hold most of its weights, about half. Until a state dict is
// loaded the parameters hold whatever the allocator gave.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace stemkit::model {

struct LinearImpl : torch::nn::Module {
  at::Tensor weight, bias;
  LinearImpl(int64_t in, int64_t out, bool with_bias = true);
  at::Tensor forward(const at::Tensor& x);  // (..., in) -> (..., out)
};
TORCH_MODULE(Linear);

}  // namespace stemkit::model
