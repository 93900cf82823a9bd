// The blocks of HTDemucs that have a fast path (htdemucs_fast.h) beside their
// reference forward. Declared here so that the fast paths and the tests can
// reach them; defined in htdemucs.cpp with the rest of the model, where each
// reference forward maps line for line to upstream's Python (demucs/demucs.py
// and demucs/transformer.py at the pin, with patches/demucs/ applied).
// Parameter names are upstream's, so state dicts load by name.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "runtime/layers/layers.h"

namespace stemkit::models::htdemucs {

// demucs.transformer.LayerScale: a learnt per-channel scale ("scale", (C)) of
// a residual branch. channel_last: x is (B, T, C) tokens; else (B, C, T).
struct LayerScaleImpl : torch::nn::Module {
  at::Tensor scale;
  bool channel_last;
  LayerScaleImpl(int64_t channels, bool channel_last);
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(LayerScale);

// demucs.transformer.MyGroupNorm: nn.GroupNorm over channel-last tokens
// (B, T, C), which with one group normalises all of T and C together.
struct MyGroupNormImpl : torch::nn::GroupNormImpl {
  using GroupNormImpl::GroupNormImpl;
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(MyGroupNorm);

// demucs.demucs.DConv as HTDemucs builds it (GroupNorm and GELU on, no
// attention, no LSTM): `depth` residual branches over (N, C, T), each
// upstream's nn.Sequential, its modules named by their index in it.
struct DConvImpl : torch::nn::Module {
  struct Branch {
    layers::Conv conv_in{nullptr};           // 0: Conv1d(channels, hidden, 3, dilation=d, padding=d)
    torch::nn::GroupNorm norm_in{nullptr};   // 1: GroupNorm(1, hidden); 2: GELU
    layers::Conv conv_out{nullptr};          // 3: Conv1d(hidden, 2 * channels, 1)
    torch::nn::GroupNorm norm_out{nullptr};  // 4: GroupNorm(1, 2 * channels); 5: GLU(1)
    LayerScale scale{nullptr};               // 6: LayerScale(channels)
    int64_t dilation = 1;
    at::Tensor forward(const at::Tensor& x);  // the Sequential: (N, C, T) -> (N, C, T)
  };
  std::vector<Branch> branches;
  DConvImpl(int64_t channels, double compress, int64_t depth);
  at::Tensor forward(at::Tensor x);  // (N, C, T) -> (N, C, T)
};
TORCH_MODULE(DConv);

}  // namespace stemkit::models::htdemucs
