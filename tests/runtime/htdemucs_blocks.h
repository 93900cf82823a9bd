// HTDemucs' fast paths (runtime/models/htdemucs_fast.h) against the reference
// forwards (htdemucs.cpp), block by block, on random inputs and random
// weights: htdemucs_test.cpp runs them on the CPU, htdemucs_gpu_test.cpp on
// the GPU. The reference forwards themselves are checked against upstream's
// output through the whole network (the fixtures).
#pragma once

#include <torch/nn/modules/normalization.h>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/layers/layers.h"
#include "runtime/models/htdemucs_blocks.h"
#include "runtime/models/htdemucs_fast.h"
#include "tests/runtime/compare.h"

namespace stemkit::test {

struct BlockComparison {
  std::string block;   // what ran, with its shape
  double rel_l2 = -1;  // the fast path's output against the reference's
  std::string
      skipped;  // why the reference could not run here (an op the device lacks for the dtype); empty when it ran
};

// Random parameters: GroupNorm weights around 1 and biases around 0,
// convolution weights scaled by their fan-in (outputs of the inputs' size)
// with biases as large as the outputs, so that folding them into the norm
// matters; LayerScale factors of either sign.
inline void randomise(torch::nn::Module& m) {
  c10::InferenceMode guard;
  for (auto& p : m.parameters()) p.set_requires_grad(false);
  for (const auto& sub : m.modules()) {
    if (auto* gn = dynamic_cast<torch::nn::GroupNormImpl*>(sub.get())) {
      gn->weight.copy_(1 + 0.3 * at::randn(gn->weight.sizes()));
      gn->bias.copy_(0.3 * at::randn(gn->bias.sizes()));
    } else if (auto* conv = dynamic_cast<layers::ConvImpl*>(sub.get())) {
      conv->weight.copy_(at::randn(conv->weight.sizes()) / std::sqrt(static_cast<double>(conv->weight[0].numel())));
      conv->bias.copy_(at::randn(conv->bias.sizes()));
    } else if (auto* ls = dynamic_cast<models::htdemucs::LayerScaleImpl*>(sub.get())) {
      ls->scale.copy_(0.5 * at::randn(ls->scale.sizes()));
    }
  }
}

// When ATen has no kernel of an op for the dtype on this device (libtorch
// 1.13's CPU: no float16 convolution or addcmul), the block is skipped, saying
// why; any other error fails the test. The callers require every block to run
// in fp32, and on the GPU in every dtype.
inline BlockComparison compare(std::string block, const std::function<at::Tensor()>& reference,
                               const std::function<at::Tensor()>& fast) {
  BlockComparison c{std::move(block)};
  try {
    const at::Tensor want = reference();
    c.rel_l2 = rel_l2(fast(), want);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    if (what.find("not implemented for") == std::string::npos) throw;
    c.skipped = what.substr(0, what.find('\n'));
  }
  return c;
}

// Every fast path of htdemucs_fast.h against its reference, on `device` in
// `dtype`, with the shapes HTDemucs gives them: frequency layers (B, C, Fr, T),
// time layers (B, C, T), transformer tokens (B, T, C).
inline std::vector<BlockComparison> compare_blocks(const at::Device& device, at::ScalarType dtype) {
  namespace nn = torch::nn;
  namespace hd = models::htdemucs;
  c10::InferenceMode guard;
  at::manual_seed(0);
  auto on = [&](const at::Tensor& t) { return t.to(device, dtype); };
  auto input = [&](at::IntArrayRef shape) {
    return on(2 * at::randn(shape) + 0.5);
  };  // an offset for the means to remove
  std::vector<BlockComparison> out;

  // HEncLayer and HDecLayer's norm1/norm2: nn.GroupNorm(norm_groups, C).
  struct GroupNormCase {
    const char* block;
    int64_t groups, channels;
    std::vector<int64_t> shape;
  };
  for (const auto& c :
       {GroupNormCase{"GroupNorm(4, 48), frequency layer (2, 48, 8, 37)", 4, 48, {2, 48, 8, 37}},
        GroupNormCase{"GroupNorm(4, 48), time layer (2, 48, 300)", 4, 48, {2, 48, 300}},
        GroupNormCase{"GroupNorm(4, 16), many rows for ATen's kernel (160, 16, 40)", 4, 16, {160, 16, 40}}}) {
    nn::GroupNorm gn(nn::GroupNormOptions(c.groups, c.channels));
    randomise(*gn);
    gn->to(device, dtype);
    const at::Tensor x = input(c.shape);
    out.push_back(compare(
        c.block, [&] { return gn(x); }, [&] { return hd::fast::group_norm(*gn, x); }));
  }

  {  // The transformer layers' norm_out: MyGroupNorm(1, C) over tokens.
    hd::MyGroupNorm gn(nn::GroupNormOptions(1, 64));
    randomise(*gn);
    gn->to(device, dtype);
    const at::Tensor x = input({2, 75, 64});
    out.push_back(compare(
        "MyGroupNorm(1, 64), tokens (2, 75, 64)", [&] { return gn(x); },
        [&] { return hd::fast::my_group_norm(*gn, x); }));
  }

  {  // A DConv branch's GroupNorm(1) after a convolution run without its bias.
    nn::GroupNorm gn(nn::GroupNormOptions(1, 24));
    randomise(*gn);
    gn->to(device, dtype);
    const at::Tensor bias = on(at::randn({24})), y = input({2, 24, 300}), y4 = input({2, 24, 8, 37});
    out.push_back(compare(
        "DConv GroupNorm(1, 24) with the bias folded, (2, 24, 300)",
        [&] {
          return gn(y + bias.view({1, -1, 1}));
        },
        [&] { return hd::fast::dconv_norm(*gn, y, bias); }));
    // In a frequency layer, upstream normalises each bin of the (B * Fr, C, T) copy.
    out.push_back(compare(
        "DConv GroupNorm(1, 24) with the bias folded, per bin of (2, 24, 8, 37)",
        [&] {
          at::Tensor per_bin = (y4 + bias.view({1, -1, 1, 1})).permute({0, 2, 1, 3}).reshape({-1, 24, 37});
          return gn(per_bin).view({2, 8, 24, 37}).permute({0, 2, 1, 3});
        },
        [&] { return hd::fast::dconv_norm(*gn, y4, bias); }));
  }

  {  // x + LayerScale(y): DConv's residual (channel first) and the transformer's (channel last).
    hd::LayerScale first(48, false), last(64, true);
    randomise(*first);
    randomise(*last);
    first->to(device, dtype);
    last->to(device, dtype);
    const at::Tensor x = input({2, 48, 300}), y = input({2, 48, 300});
    out.push_back(compare(
        "x + LayerScale(48)(y), channel first (2, 48, 300)", [&] { return x + first(y); },
        [&] { return hd::fast::add_layer_scale(x, *first, y); }));
    const at::Tensor xt = input({2, 75, 64}), yt = input({2, 75, 64});
    out.push_back(compare(
        "x + LayerScale(64, channel_last)(y), tokens (2, 75, 64)", [&] { return xt + last(yt); },
        [&] { return hd::fast::add_layer_scale(xt, *last, yt); }));
  }

  {  // DConv(48, compress 4, depth 2) over time, and over frequency as HEncLayer/HDecLayer run it.
    hd::DConv dconv(48, 4.0, 2);
    randomise(*dconv);
    dconv->to(device, dtype);
    const at::Tensor x = input({2, 48, 300}), x4 = input({2, 48, 8, 40});
    out.push_back(compare(
        "DConv(48, 4, 2), time layer (2, 48, 300)", [&] { return dconv(x); },
        [&] { return hd::fast::dconv(*dconv, x); }));
    out.push_back(compare(
        "DConv(48, 4, 2), frequency layer (2, 48, 8, 40)",
        [&] {  // hdemucs.py:146-151
          at::Tensor y = x4.permute({0, 2, 1, 3}).reshape({-1, 48, 40});
          return dconv(y).view({2, 8, 48, 40}).permute({0, 2, 1, 3});
        },
        [&] { return hd::fast::dconv(*dconv, x4); }));
  }
  return out;
}

}  // namespace stemkit::test
