// HTDemucs in libtorch. Module and parameter names follow demucs' Python
// classes exactly, so upstream state dicts load by name:
//   encoder.{i}  HEncLayer over frequency    tencoder.{i} HEncLayer over time
//   decoder.{i}  HDecLayer over frequency    tdecoder.{i} HDecLayer over time
//   freq_emb     ScaledEmbedding             crosstransformer CrossTransformerEncoder
//   channel_{up,down}sampler[_t]  1x1 convolutions around the transformer
// Comments give each tensor's shape; B batch, C channels, Fr frequency bins,
// T frames (frequency branch) or samples (time branch).
//
// The forwards here are the reference: each maps line for line to upstream's
// Python, cited as file:line of the upstream checkout at the pin with
// patches/demucs/ applied (demucs.py and hdemucs.py as at the pin;
// transformer.py moved down by the sdpa-attention patch). Where a block has a
// faster way to the same result (htdemucs_fast.h), the plan picks it
// (the default on a GPU; plan::KernelPlan::htdemucs_fast_blocks); with
// plan::KernelPlan::reference_forward, and on the CPU, the reference
// forwards run, which is what the tests compare the fast paths against.
#include "runtime/models/htdemucs.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "runtime/attention/attention.h"
#include "runtime/plan/kernel_plan.h"
#include "runtime/dsp/istft.h"
#include "runtime/layers/layers.h"
#include "runtime/layers/state_dict.h"
#include "runtime/models/htdemucs_blocks.h"
#include "runtime/models/htdemucs_fast.h"
#include "runtime/models/kwargs.h"
#include "runtime/timeline.h"

namespace stemkit::models {

namespace nn = torch::nn;

// The blocks declared in htdemucs_blocks.h, whose fast paths are in htdemucs_fast.cpp.
namespace htdemucs {

// transformer.py:242-250 (LayerScale.__init__): scale = zeros(channels), set by the checkpoint.
LayerScaleImpl::LayerScaleImpl(int64_t channels, bool channel_last) : channel_last(channel_last) {
  scale = register_parameter("scale", at::zeros({channels}), false);
}

// transformer.py:252-256 (LayerScale.forward)
at::Tensor LayerScaleImpl::forward(const at::Tensor& x) {
  if (channel_last)
    return scale * x;  // return self.scale * x
  else
    return scale.unsqueeze(1) * x;  // return self.scale[:, None] * x
}

// transformer.py:263-269 (MyGroupNorm.forward)
at::Tensor MyGroupNormImpl::forward(const at::Tensor& input) {
  at::Tensor x = input.transpose(1, 2);              // x = x.transpose(1, 2)
  return GroupNormImpl::forward(x).transpose(1, 2);  // return super().forward(x).transpose(1, 2)
}

// demucs.py:113-149 (DConv.__init__) with HTDemucs' dconv_kw (htdemucs.py:283-288:
// depth, compress, init, gelu=True) and the defaults for the rest (norm=True,
// attn=False, lstm=False, kernel=3). `init` is LayerScale's initial value,
// which the checkpoint overwrites.
DConvImpl::DConvImpl(int64_t channels, double compress, int64_t depth) {
  const int64_t kernel = 3;
  const bool dilate = depth > 0;  // dilate = depth > 0
  depth = std::abs(depth);        // self.depth = abs(depth)
  const int64_t hidden =
      static_cast<int64_t>(static_cast<double>(channels) / compress);  // hidden = int(channels / compress)
  auto list = register_module("layers", nn::ModuleList());             // self.layers = nn.ModuleList([])
  for (int64_t d = 0; d < depth; ++d) {                                // for d in range(self.depth):
    const int64_t dilation = dilate ? (int64_t{1} << d) : 1;           //   dilation = 2 ** d if dilate else 1
    const int64_t padding = dilation * (kernel / 2);                   //   padding = dilation * (kernel // 2)
    auto seq = std::make_shared<nn::Module>();                         //   mods = [...]; nn.Sequential(*mods)
    Branch b;
    b.dilation = dilation;
    b.conv_in = seq->register_module(
        "0", layers::Conv(layers::ConvOptions{channels, hidden, {kernel}, {1}, {padding}, {dilation}}));
    b.norm_in = seq->register_module("1", nn::GroupNorm(nn::GroupNormOptions(1, hidden)));  // norm_fn(hidden); 2: act()
    b.conv_out = seq->register_module("3", layers::Conv(layers::ConvOptions{hidden, 2 * channels, {1}}));
    b.norm_out = seq->register_module("4", nn::GroupNorm(nn::GroupNormOptions(1, 2 * channels)));  // 5: nn.GLU(1)
    b.scale = seq->register_module("6", LayerScale(channels, false));  // LayerScale(channels, init)
    list->push_back(seq);                                              //   self.layers.append(layer)
    branches.push_back(b);
  }
}

// demucs.py:137-142: one branch's nn.Sequential, module by module.
at::Tensor DConvImpl::Branch::forward(const at::Tensor& x) {
  at::Tensor y = conv_in(x);  // nn.Conv1d(channels, hidden, kernel, dilation=dilation, padding=padding)
  y = norm_in(y);             // norm_fn(hidden): nn.GroupNorm(1, hidden)
  y = at::gelu(y);            // act(): nn.GELU()
  y = conv_out(y);            // nn.Conv1d(hidden, 2 * channels, 1)
  y = norm_out(y);            // norm_fn(2 * channels)
  y = at::glu(y, 1);          // nn.GLU(1)
  return scale(y);            // LayerScale(channels, init)
}

// demucs.py:151-154 (DConv.forward)
at::Tensor DConvImpl::forward(at::Tensor x) {
  for (auto& layer : branches)  // for layer in self.layers:
    x = x + layer.forward(x);   //     x = x + layer(x)
  return x;                     // return x
}

}  // namespace htdemucs

namespace {

using at::indexing::None;
using at::indexing::Slice;
using htdemucs::DConv;
using htdemucs::LayerScale;
using htdemucs::MyGroupNorm;

at::Tensor gelu_exact(const at::Tensor& x) { return at::gelu(x); }

// Registers a convolution under `name`: 2d with (k, 1) kernels over
// frequency when `freq`, 1d otherwise; `kernel_time` > 1 gives the decoder's
// (k, k) rewrite kernel. layers::Conv: no random initial values (the checkpoint
// sets them).
layers::Conv make_conv(nn::Module& m, const std::string& name, bool freq, int64_t in, int64_t out, int64_t kernel,
                       int64_t stride, int64_t padding, int64_t kernel_time = 1, int64_t padding_time = 0) {
  layers::ConvOptions o;
  o.in = in, o.out = out;
  if (freq)
    o.kernel = {kernel, kernel_time}, o.stride = {stride, 1}, o.padding = {padding, padding_time};
  else
    o.kernel = {kernel}, o.stride = {stride}, o.padding = {padding};
  return m.register_module(name, layers::Conv(o));
}

// Whether the plan runs the blocks' fast paths (htdemucs_fast.h) or their reference forwards.
bool fast_blocks(const plan::KernelPlan& plan) { return !plan.reference_forward && plan.htdemucs_fast_blocks; }

// self.norm1 / self.norm2 of HEncLayer and HDecLayer: norm_fn(d), which is
// nn.GroupNorm(norm_groups, d) from norm_starts on and nn.Identity() before
// (hdemucs.py:91-93 and 264-266); an empty holder here.
at::Tensor norm(nn::GroupNorm gn, const at::Tensor& x, const plan::KernelPlan& plan) {
  if (!gn) return x;
  return fast_blocks(plan) ? htdemucs::fast::group_norm(*gn, x) : gn(x);
}

// The DConv lines of HEncLayer.forward (hdemucs.py:145-151) and of
// HDecLayer.forward (316-322), the same in both: a frequency layer runs its
// DConv on a (B * Fr, C, T) copy, each bin a sample of its own. The fast
// path runs on (B, C, Fr, T) as it is.
at::Tensor run_dconv(DConv& dconv, at::Tensor y, bool freq, const plan::KernelPlan& plan) {
  if (fast_blocks(plan)) return htdemucs::fast::dconv(*dconv, y);
  int64_t B = 0, C = 0, Fr = 0, T = 0;
  if (freq) {                                                     // if self.freq:
    B = y.size(0), C = y.size(1), Fr = y.size(2), T = y.size(3);  //     B, C, Fr, T = y.shape
    y = y.permute({0, 2, 1, 3}).reshape({-1, C, T});              //     y = y.permute(0, 2, 1, 3).reshape(-1, C, T)
  }
  y = dconv(y);                                       // y = self.dconv(y)
  if (freq)                                           // if self.freq:
    y = y.view({B, Fr, C, T}).permute({0, 2, 1, 3});  //     y = y.view(B, Fr, C, T).permute(0, 2, 1, 3)
  return y;
}

struct LayerOptions {
  int64_t kernel_size, stride;
  bool freq, pad, norm, rewrite;
  int64_t norm_groups;
  int64_t dconv_depth;
  double dconv_comp;
};

// demucs.hdemucs.HEncLayer.
struct HEncLayerImpl : nn::Module {
  bool freq, empty;
  int64_t stride, pad;
  layers::Conv conv{nullptr}, rewrite{nullptr};
  nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  DConv dconv{nullptr};
  bool has_rewrite = false;

  HEncLayerImpl(int64_t chin, int64_t chout, const LayerOptions& o, bool use_dconv, int64_t context, bool empty)
      : freq(o.freq), empty(empty), stride(o.stride), pad(o.pad ? o.kernel_size / 4 : 0) {
    conv = make_conv(*this, "conv", freq, chin, chout, o.kernel_size, o.stride, pad);
    if (empty) return;
    if (o.norm) norm1 = register_module("norm1", nn::GroupNorm(nn::GroupNormOptions(o.norm_groups, chout)));
    if (o.rewrite) {
      has_rewrite = true;
      // A square kernel over frequency and time in the frequency layers, as upstream's Conv2d(k).
      rewrite = make_conv(*this, "rewrite", freq, chout, 2 * chout, 1 + 2 * context, 1, context,
                          freq ? 1 + 2 * context : 1, freq ? context : 0);
      if (o.norm) norm2 = register_module("norm2", nn::GroupNorm(nn::GroupNormOptions(o.norm_groups, 2 * chout)));
    }
    if (use_dconv) dconv = register_module("dconv", DConv(chout, o.dconv_comp, o.dconv_depth));
  }

  // hdemucs.py:123-157 (HEncLayer.forward). x: (B, C, Fr, T) over frequency,
  // (B, C, T) over time; inject: the time branch merged into the last
  // frequency layer, (B, C, T) or (B, C, Fr, T).
  at::Tensor forward(at::Tensor x, const at::Tensor& inject, const plan::KernelPlan& plan) {
    if (!freq && x.dim() == 4) x = x.view({x.size(0), -1, x.size(3)});  // 128-130: x = x.view(B, -1, T)
    if (!freq && x.size(-1) % stride != 0)                              // 132-135
      x = at::constant_pad_nd(x, {0, stride - x.size(-1) % stride});
    at::Tensor y = conv(x);  // y = self.conv(x)
    if (empty) return y;
    if (inject.defined()) {  // 139-143
      if (inject.size(-1) != y.size(-1))
        throw std::logic_error("HTDemucs: the time branch does not line up with the frequency branch");
      y = y + (inject.dim() == 3 && y.dim() == 4 ? inject.unsqueeze(2) : inject);
    }
    y = gelu_exact(norm(norm1, y, plan));            // y = F.gelu(self.norm1(y))
    if (dconv) y = run_dconv(dconv, y, freq, plan);  // 145-151
    if (!has_rewrite) return y;                      // else: z = y
    at::Tensor z = norm(norm2, rewrite(y), plan);    // z = self.norm2(self.rewrite(y))
    return at::glu(z, 1);                            // z = F.glu(z, dim=1)
  }
};
TORCH_MODULE(HEncLayer);

// demucs.hdemucs.HDecLayer.
struct HDecLayerImpl : nn::Module {
  bool freq, empty, last;
  int64_t chin, pad;
  layers::Conv conv_tr{nullptr}, rewrite{nullptr};
  nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  DConv dconv{nullptr};
  bool has_rewrite = false;

  HDecLayerImpl(int64_t chin, int64_t chout, const LayerOptions& o, bool use_dconv, int64_t context, bool empty,
                bool last)
      : freq(o.freq), empty(empty), last(last), chin(chin), pad(o.pad ? o.kernel_size / 4 : 0) {
    layers::ConvOptions tr;
    tr.in = chin, tr.out = chout, tr.transposed = true;
    if (freq)
      tr.kernel = {o.kernel_size, 1}, tr.stride = {o.stride, 1};
    else
      tr.kernel = {o.kernel_size}, tr.stride = {o.stride};
    conv_tr = register_module("conv_tr", layers::Conv(tr));
    if (o.norm) norm2 = register_module("norm2", nn::GroupNorm(nn::GroupNormOptions(o.norm_groups, chout)));
    if (empty) return;
    if (o.rewrite) {
      has_rewrite = true;
      // context_freq: the frequency layers' rewrite looks at neighbouring bins too.
      rewrite = freq ? make_conv(*this, "rewrite", true, chin, 2 * chin, 1 + 2 * context, 1, context, 1 + 2 * context,
                                 context)
                     : make_conv(*this, "rewrite", false, chin, 2 * chin, 1 + 2 * context, 1, context);
      if (o.norm) norm1 = register_module("norm1", nn::GroupNorm(nn::GroupNormOptions(o.norm_groups, 2 * chin)));
    }
    if (use_dconv) dconv = register_module("dconv", DConv(chin, o.dconv_comp, o.dconv_depth));
  }

  // hdemucs.py:304-335 (HDecLayer.forward). Returns (output, the input of the
  // final transposed convolution).
  std::pair<at::Tensor, at::Tensor> forward(at::Tensor x, const at::Tensor& skip, int64_t length,
                                            const plan::KernelPlan& plan) {
    if (freq && x.dim() == 3) x = x.view({x.size(0), chin, -1, x.size(2)});  // 305-307: x = x.view(B, self.chin, -1, T)
    at::Tensor y = x;                                                        // else: y = x
    if (!empty) {
      x = x + skip;  // x = x + skip
      if (has_rewrite)
        y = at::glu(norm(norm1, rewrite(x), plan), 1);  // y = F.glu(self.norm1(self.rewrite(x)), dim=1)
      else
        y = x;                                         // y = x
      if (dconv) y = run_dconv(dconv, y, freq, plan);  // 316-322
    }
    at::Tensor z = norm(norm2, conv_tr(y), plan);  // z = self.norm2(self.conv_tr(y))
    if (freq) {
      if (pad) z = z.slice(2, pad, z.size(2) - pad);  // z = z[..., self.pad:-self.pad, :]
    } else {
      z = z.slice(-1, pad, pad + length);  // z = z[..., self.pad:self.pad + length]
      if (z.size(-1) != length) throw std::logic_error("HTDemucs: a time decoder produced the wrong length");
    }
    if (!last) z = gelu_exact(z);  // z = F.gelu(z)
    return {z, y};
  }
};
TORCH_MODULE(HDecLayer);

// nn.MultiheadAttention's parameters (in_proj_weight (3C, C), in_proj_bias,
// out_proj), run through the runtime's attention policy: the sdpa-attention patch.
struct AttentionImpl : nn::Module {
  int64_t heads;
  attention::Policy policy;  // the plan's (set by HTDemucs::to)
  at::Tensor in_proj_weight, in_proj_bias;
  layers::Linear out_proj{nullptr};  // no random initial values: the checkpoint sets them
  AttentionImpl(int64_t dim, int64_t heads) : heads(heads) {
    in_proj_weight = register_parameter("in_proj_weight", at::zeros({3 * dim, dim}), false);
    in_proj_bias = register_parameter("in_proj_bias", at::zeros({3 * dim}), false);
    out_proj = register_module("out_proj", layers::Linear(dim, dim));
  }
  // q: (B, Tq, C), kv: (B, Tk, C) -> (B, Tq, C); self-attention when kv is q.
  at::Tensor forward(const at::Tensor& q_in, const at::Tensor& kv_in, bool self) {
    const int64_t B = q_in.size(0), Tq = q_in.size(1), C = q_in.size(2), Tk = kv_in.size(1), D = C / heads;
    at::Tensor q, k, v;
    if (self) {
      auto qkv = at::linear(q_in, in_proj_weight, in_proj_bias).chunk(3, -1);
      q = qkv[0], k = qkv[1], v = qkv[2];
    } else {
      q = at::linear(q_in, in_proj_weight.slice(0, 0, C), in_proj_bias.slice(0, 0, C));
      auto kv = at::linear(kv_in, in_proj_weight.slice(0, C), in_proj_bias.slice(0, C)).chunk(2, -1);
      k = kv[0], v = kv[1];
    }
    // (B, T, C) -> (B, heads, T, D)
    q = q.view({B, Tq, heads, D}).transpose(1, 2);
    k = k.view({B, Tk, heads, D}).transpose(1, 2);
    v = v.view({B, Tk, heads, D}).transpose(1, 2);
    at::Tensor o = attention::attend(policy, q, k, v);  // (B, heads, Tq, D)
    return out_proj(o.transpose(1, 2).reshape({B, Tq, C}));
  }
};
TORCH_MODULE(Attention);

struct TransformerOptions {
  int64_t dim, heads, hidden;
  bool norm_first, norm_out, layer_scale, gelu;
};

// MyTransformerEncoderLayer (self-attention) and CrossTransformerEncoderLayer
// in one: the cross layer attends from its own tokens to the other branch's
// and has a third norm for the keys.
struct TransformerLayerImpl : nn::Module {
  bool cross;
  TransformerOptions o;
  Attention attn{nullptr};
  layers::Linear linear1{nullptr}, linear2{nullptr};
  nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  MyGroupNorm norm_out{nullptr};
  LayerScale gamma_1{nullptr}, gamma_2{nullptr};

  TransformerLayerImpl(bool cross, const TransformerOptions& o) : cross(cross), o(o) {
    attn = register_module(cross ? "cross_attn" : "self_attn", Attention(o.dim, o.heads));
    linear1 = register_module("linear1", layers::Linear(o.dim, o.hidden));
    linear2 = register_module("linear2", layers::Linear(o.hidden, o.dim));
    auto ln = [&] { return nn::LayerNorm(nn::LayerNormOptions({o.dim}).eps(1e-5)); };
    norm1 = register_module("norm1", ln());
    norm2 = register_module("norm2", ln());
    if (cross) norm3 = register_module("norm3", ln());
    if (o.norm_first && o.norm_out) norm_out = register_module("norm_out", MyGroupNorm(nn::GroupNormOptions(1, o.dim)));
    if (o.layer_scale) {
      gamma_1 = register_module("gamma_1", LayerScale(o.dim, true));
      gamma_2 = register_module("gamma_2", LayerScale(o.dim, true));
    }
  }
  at::Tensor ff(const at::Tensor& x) {
    at::Tensor h = linear1(x);
    return linear2(o.gelu ? gelu_exact(h) : at::relu(h));
  }
  at::Tensor g1(const at::Tensor& x) { return gamma_1 ? gamma_1->forward(x) : x; }
  at::Tensor g2(const at::Tensor& x) { return gamma_2 ? gamma_2->forward(x) : x; }

  // transformer.py:423-435 (MyTransformerEncoderLayer.forward) and 560-567
  // (CrossTransformerEncoderLayer.forward). x: (B, T, C) tokens; other: (B, S, C),
  // the other branch's tokens (cross layers).
  at::Tensor forward(const at::Tensor& q, const at::Tensor& other, const plan::KernelPlan& plan) {
    at::Tensor x;
    if (o.norm_first) {
      at::Tensor nq = norm1(q);
      x = q + g1(cross ? attn(nq, norm2(other), false) : attn(nq, nq, true));
      x = x + g2(ff(cross ? norm3(x) : norm2(x)));
      if (norm_out)                                                                         // if self.norm_out:
        x = fast_blocks(plan) ? htdemucs::fast::my_group_norm(*norm_out, x) : norm_out(x);  //     x = self.norm_out(x)
    } else {
      x = norm1(q + g1(cross ? attn(q, other, false) : attn(q, q, true)));
      x = norm2(x + g2(ff(x)));
    }
    return x;
  }
};
TORCH_MODULE(TransformerLayer);

// demucs.transformer.create_sin_embedding: (length, 1, dim), cos then sin.
at::Tensor sin_embedding(int64_t length, int64_t dim, double max_period) {
  const int64_t half = dim / 2;
  at::Tensor pos = at::arange(length, at::kLong).view({-1, 1, 1});
  at::Tensor adim = at::arange(half, at::kLong).view({1, 1, -1});
  at::Tensor phase = pos / at::pow(max_period, adim / (half - 1));
  return at::cat({at::cos(phase), at::sin(phase)}, -1);
}

// demucs.transformer.create_2d_sin_embedding: (1, dim, height, width).
at::Tensor sin_embedding_2d(int64_t dim, int64_t height, int64_t width, double max_period) {
  at::Tensor pe = at::zeros({dim, height, width});
  const int64_t d = dim / 2;
  at::Tensor div_term = at::exp(at::arange(0., static_cast<double>(d), 2., at::kFloat) * -(std::log(max_period) / d));
  at::Tensor pos_w = at::arange(0., static_cast<double>(width), 1., at::kFloat).unsqueeze(1);
  at::Tensor pos_h = at::arange(0., static_cast<double>(height), 1., at::kFloat).unsqueeze(1);
  pe.slice(0, 0, d, 2).copy_(at::sin(pos_w * div_term).transpose(0, 1).unsqueeze(1).repeat({1, height, 1}));
  pe.slice(0, 1, d, 2).copy_(at::cos(pos_w * div_term).transpose(0, 1).unsqueeze(1).repeat({1, height, 1}));
  pe.slice(0, d, dim, 2).copy_(at::sin(pos_h * div_term).transpose(0, 1).unsqueeze(2).repeat({1, 1, width}));
  pe.slice(0, d + 1, dim, 2).copy_(at::cos(pos_h * div_term).transpose(0, 1).unsqueeze(2).repeat({1, 1, width}));
  return pe.unsqueeze(0);
}

// demucs.transformer.CrossTransformerEncoder with the "sin" embedding.
struct CrossTransformerImpl : nn::Module {
  int64_t dim;
  double max_period, weight_pos_embed;
  bool cross_first;
  nn::LayerNorm norm_in{nullptr}, norm_in_t{nullptr};
  std::vector<TransformerLayer> layers, layers_t;
  // The positional embeddings depend only on the shape: made once per shape.
  mutable std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int>, std::pair<at::Tensor, at::Tensor>> pos_cache;

  CrossTransformerImpl(const HTDemucsConfig& c, int64_t dim)
      : dim(dim), max_period(c.t_max_period), weight_pos_embed(c.t_weight_pos_embed), cross_first(c.t_cross_first) {
    if (c.t_norm_in) {
      norm_in = register_module("norm_in", nn::LayerNorm(nn::LayerNormOptions({dim})));
      norm_in_t = register_module("norm_in_t", nn::LayerNorm(nn::LayerNormOptions({dim})));
    }
    TransformerOptions o{dim,
                         c.t_heads,
                         static_cast<int64_t>(static_cast<double>(dim) * c.t_hidden_scale),
                         c.t_norm_first,
                         c.t_norm_out,
                         c.t_layer_scale,
                         c.t_gelu};
    auto list = register_module("layers", nn::ModuleList());
    auto list_t = register_module("layers_t", nn::ModuleList());
    for (int64_t i = 0; i < c.t_layers; ++i) {
      const bool cross = i % 2 != (cross_first ? 1 : 0);
      layers.push_back(TransformerLayer(cross, o));
      layers_t.push_back(TransformerLayer(cross, o));
      list->push_back(layers.back());
      list_t->push_back(layers_t.back());
    }
  }

  // x: (B, C, Fr, T1), xt: (B, C, T2) -> the same shapes.
  std::pair<at::Tensor, at::Tensor> forward(at::Tensor x, at::Tensor xt, const plan::KernelPlan& plan) {
    const int64_t B = x.size(0), C = x.size(1), Fr = x.size(2), T1 = x.size(3), T2 = xt.size(2);
    auto key = std::make_tuple(Fr, T1, T2, static_cast<int64_t>(x.device().index()),
                               static_cast<int>(x.scalar_type()) * 16 + static_cast<int>(x.device().type()));
    auto it = pos_cache.find(key);
    if (it == pos_cache.end()) {
      // "b c fr t1 -> b (t1 fr) c" and "t2 b c -> b t2 c", scaled, in the network's dtype.
      at::Tensor pos2d = sin_embedding_2d(C, Fr, T1, max_period).permute({0, 3, 2, 1}).reshape({1, T1 * Fr, C});
      at::Tensor pos1d = sin_embedding(T2, C, max_period).permute({1, 0, 2});
      it = pos_cache
               .emplace(key, std::make_pair((weight_pos_embed * pos2d).to(x.device(), x.scalar_type()),
                                            (weight_pos_embed * pos1d).to(x.device(), x.scalar_type())))
               .first;
    }
    x = x.permute({0, 3, 2, 1}).reshape({B, T1 * Fr, C});  // (B, T1*Fr, C)
    if (norm_in) x = norm_in(x);
    x = x + it->second.first;
    xt = xt.permute({0, 2, 1});  // (B, T2, C)
    if (norm_in_t) xt = norm_in_t(xt);
    xt = xt + it->second.second;
    for (size_t i = 0; i < layers.size(); ++i) {
      if (!layers[i]->cross) {
        x = layers[i]->forward(x, {}, plan);
        xt = layers_t[i]->forward(xt, {}, plan);
      } else {
        at::Tensor old_x = x;
        x = layers[i]->forward(x, xt, plan);
        xt = layers_t[i]->forward(xt, old_x, plan);
      }
    }
    x = x.view({B, T1, Fr, C}).permute({0, 3, 2, 1});  // "b (t1 fr) c -> b c fr t1"
    xt = xt.permute({0, 2, 1});
    return {x, xt};
  }
};
TORCH_MODULE(CrossTransformer);

// demucs.hdemucs.pad1d: reflect padding that also works on inputs shorter
// than the padding (extra zeros first).
at::Tensor pad1d_reflect(at::Tensor x, int64_t left, int64_t right) {
  const int64_t length = x.size(-1);
  const int64_t max_pad = std::max(left, right);
  if (length <= max_pad) {
    const int64_t extra = max_pad - length + 1;
    const int64_t extra_right = std::min(right, extra), extra_left = extra - extra_right;
    left -= extra_left;
    right -= extra_right;
    x = at::constant_pad_nd(x, {extra_left, extra_right});
  }
  // reflection_pad1d wants (N, C, L).
  auto shape = x.sizes().vec();
  at::Tensor flat = x.reshape({-1, 1, shape.back()});
  at::Tensor out = at::reflection_pad1d(flat, {left, right});
  shape.back() = out.size(-1);
  return out.view(shape);
}

}  // namespace

struct HTDemucs::Impl : nn::Module {
  HTDemucsConfig c;
  std::vector<HEncLayer> encoder, tencoder;
  std::vector<HDecLayer> decoder, tdecoder;
  nn::Embedding freq_emb{nullptr};
  layers::Conv up{nullptr}, down{nullptr}, up_t{nullptr}, down_t{nullptr};
  CrossTransformer transformer{nullptr};
  at::ScalarType dtype = at::kFloat;
  at::Device device = at::kCPU;
  plan::KernelPlan plan;  // HTDemucs::to's; a default one (the fast paths) until then
  mutable std::map<std::pair<int, int>, at::Tensor> windows;  // hann window per (device, index)
  dsp::InverseStft istft;                                     // capture-safe, envelopes made once per shape

  explicit Impl(HTDemucsConfig config) : c(std::move(config)) {
    // The constructor of demucs.htdemucs.HTDemucs, layer for layer.
    const int64_t S = static_cast<int64_t>(c.sources.size());
    int64_t chin = c.audio_channels, chin_z = chin * 2;  // complex as channels
    int64_t chout = c.channels_time ? c.channels_time : c.channels, chout_z = c.channels;
    int64_t freqs = c.nfft / 2;
    std::vector<HDecLayer> dec_rev, tdec_rev;
    auto enc_list = register_module("encoder", nn::ModuleList());
    auto tenc_list = register_module("tencoder", nn::ModuleList());
    for (int64_t index = 0; index < c.depth; ++index) {
      const bool norm = index >= c.norm_starts, freq = freqs > 1;
      int64_t stri = c.stride, ker = c.kernel_size;
      if (!freq) {
        ker = c.time_stride * 2;
        stri = c.time_stride;
      }
      bool pad = true, last_freq = false;
      if (freq && freqs <= c.kernel_size) {
        ker = freqs;
        pad = false;
        last_freq = true;
      }
      LayerOptions kw{ker, stri, freq, pad, norm, c.rewrite, c.norm_groups, c.dconv_depth, c.dconv_comp};
      LayerOptions kwt = kw;
      kwt.freq = false;
      kwt.kernel_size = c.kernel_size;
      kwt.stride = c.stride;
      kwt.pad = true;
      if (last_freq) {
        chout_z = std::max(chout, chout_z);
        chout = chout_z;
      }
      encoder.push_back(HEncLayer(chin_z, chout_z, kw, c.dconv_mode & 1, c.context_enc, false));
      enc_list->push_back(encoder.back());
      if (freq) {
        tencoder.push_back(HEncLayer(chin, chout, kwt, c.dconv_mode & 1, c.context_enc, last_freq));
        tenc_list->push_back(tencoder.back());
      }
      if (index == 0) {
        chin = c.audio_channels * S;
        chin_z = chin * 2;
      }
      dec_rev.push_back(HDecLayer(chout_z, chin_z, kw, c.dconv_mode & 2, c.context, false, index == 0));
      if (freq) tdec_rev.push_back(HDecLayer(chout, chin, kwt, c.dconv_mode & 2, c.context, last_freq, index == 0));
      chin = chout;
      chin_z = chout_z;
      chout = static_cast<int64_t>(c.growth * static_cast<double>(chout));
      chout_z = static_cast<int64_t>(c.growth * static_cast<double>(chout_z));
      if (freq) freqs = freqs <= c.kernel_size ? 1 : freqs / c.stride;
      if (index == 0 && c.freq_emb != 0)
        freq_emb = register_module("freq_emb", std::make_shared<nn::Module>())
                       ->register_module("embedding", nn::Embedding(freqs, chin_z));
    }
    auto dec_list = register_module("decoder", nn::ModuleList());
    auto tdec_list = register_module("tdecoder", nn::ModuleList());
    decoder.assign(dec_rev.rbegin(), dec_rev.rend());
    tdecoder.assign(tdec_rev.rbegin(), tdec_rev.rend());
    for (auto& d : decoder) dec_list->push_back(d);
    for (auto& d : tdecoder) tdec_list->push_back(d);

    int64_t transformer_channels = c.channels * static_cast<int64_t>(std::pow(c.growth, c.depth - 1));
    if (c.bottom_channels) {
      auto conv1x1 = [&](const char* name, int64_t in, int64_t out) {
        return register_module(name, layers::Conv(layers::ConvOptions{in, out, {1}}));
      };
      up = conv1x1("channel_upsampler", transformer_channels, c.bottom_channels);
      down = conv1x1("channel_downsampler", c.bottom_channels, transformer_channels);
      up_t = conv1x1("channel_upsampler_t", transformer_channels, c.bottom_channels);
      down_t = conv1x1("channel_downsampler_t", c.bottom_channels, transformer_channels);
      transformer_channels = c.bottom_channels;
    }
    if (c.t_layers > 0) transformer = register_module("crosstransformer", CrossTransformer(c, transformer_channels));
    for (auto& p : parameters()) p.set_requires_grad(false);
  }

  at::Tensor window() {
    auto key = std::make_pair(static_cast<int>(device.type()), static_cast<int>(device.index()));
    auto it = windows.find(key);
    if (it == windows.end())
      it = windows.emplace(key, at::hann_window(c.nfft, at::TensorOptions().device(device))).first;
    return it->second;
  }

  // HTDemucs._spec: (B, C, L) -> (B, C, nfft/2, ceil(L / hop)) complex, padded
  // so that frames line up with the time branch's strides.
  at::Tensor spec(const at::Tensor& x) {
    const int64_t hl = c.nfft / 4, L = x.size(-1);
    const int64_t le = (L + hl - 1) / hl, pad = hl / 2 * 3;
    at::Tensor xp = pad1d_reflect(x, pad, pad + le * hl - L);
    auto other = xp.sizes().vec();
    other.pop_back();
    at::Tensor z = at::stft(xp.reshape({-1, xp.size(-1)}), c.nfft, hl, c.nfft, window(), /*center=*/true, "reflect",
                            /*normalized=*/true, /*onesided=*/true, /*return_complex=*/true);
    other.push_back(z.size(-2));
    other.push_back(z.size(-1));
    z = z.view(other);
    return z.slice(-2, 0, z.size(-2) - 1).slice(-1, 2, 2 + le);
  }

  // HTDemucs._ispec: (..., nfft/2, frames) complex -> (..., length).
  at::Tensor ispec(at::Tensor z, int64_t length) {
    const int64_t hl = c.nfft / 4;
    z = at::constant_pad_nd(z, {0, 0, 0, 1});
    z = at::constant_pad_nd(z, {2, 2});
    const int64_t pad = hl / 2 * 3, le = hl * ((length + hl - 1) / hl) + 2 * pad;
    auto other = z.sizes().vec();
    const int64_t freqs = other[other.size() - 2], frames = other.back();
    other.resize(other.size() - 2);
    const int64_t n_fft = 2 * freqs - 2;
    at::Tensor x = istft(z.reshape({-1, freqs, frames}), n_fft, hl, window(), /*normalized=*/true, le);
    other.push_back(le);
    return x.view(other).slice(-1, pad, pad + length);
  }

  at::Tensor forward(at::Tensor mix) {
    const int64_t length = mix.size(-1), T_train = c.training_length;
    if (length > T_train)
      throw std::invalid_argument("HTDemucs: input of " + std::to_string(length) +
                                  " samples, longer than the training length " + std::to_string(T_train) +
                                  "; split the track (segment::apply_demucs does)");
    mix = mix.to(device, at::kFloat);
    if (length < T_train) mix = at::constant_pad_nd(mix, {0, T_train - length});
    at::Tensor z = spec(mix);  // (B, C, Fq, T) complex
    const int64_t B = z.size(0), Fq = z.size(2), T = z.size(3);
    // Complex as channels: (B, C, Fq, T, 2) -> (B, 2C, Fq, T).
    at::Tensor x = at::view_as_real(z).permute({0, 1, 4, 2, 3}).reshape({B, -1, Fq, T});
    // Normalisation, with the unbiased std as upstream.
    at::Tensor mean = x.mean({1, 2, 3}, true), std = x.std({1, 2, 3}, true, true);
    x = ((x - mean) / (1e-5 + std)).to(dtype);
    at::Tensor meant = mix.mean({1, 2}, true), stdt = mix.std({1, 2}, true, true);
    at::Tensor xt = ((mix - meant) / (1e-5 + stdt)).to(dtype);

    std::vector<at::Tensor> saved, saved_t;
    std::vector<int64_t> lengths, lengths_t;
    for (size_t idx = 0; idx < encoder.size(); ++idx) {
      lengths.push_back(x.size(-1));
      at::Tensor inject;
      if (idx < tencoder.size()) {
        lengths_t.push_back(xt.size(-1));
        xt = tencoder[idx]->forward(xt, {}, plan);
        if (!tencoder[idx]->empty)
          saved_t.push_back(xt);
        else
          inject = xt;  // the time branch joins the frequency branch here
      }
      x = encoder[idx]->forward(x, inject, plan);
      if (idx == 0 && freq_emb) {
        // Frequency embedding, (Fr, C) -> (1, C, Fr, 1), ScaledEmbedding's scale applied.
        at::Tensor emb = (freq_emb->weight * c.emb_scale).t().unsqueeze(0).unsqueeze(-1);
        x = x + c.freq_emb * emb;
      }
      saved.push_back(x);
    }
    if (transformer) {
      if (up) {
        const int64_t b = x.size(0), ch = x.size(1), f = x.size(2), t = x.size(3);
        x = up(x.reshape({b, ch, f * t})).view({b, -1, f, t});
        xt = up_t(xt);
      }
      std::tie(x, xt) = transformer->forward(x, xt, plan);
      if (down) {
        const int64_t b = x.size(0), ch = x.size(1), f = x.size(2), t = x.size(3);
        x = down(x.reshape({b, ch, f * t})).view({b, -1, f, t});
        xt = down_t(xt);
      }
    }
    const size_t offset = decoder.size() - tdecoder.size();
    for (size_t idx = 0; idx < decoder.size(); ++idx) {
      at::Tensor skip = saved.back();
      saved.pop_back();
      at::Tensor pre;
      std::tie(x, pre) = decoder[idx]->forward(x, skip, lengths.back(), plan);
      lengths.pop_back();
      if (idx >= offset) {
        auto& tdec = tdecoder[idx - offset];
        const int64_t length_t = lengths_t.back();
        lengths_t.pop_back();
        if (tdec->empty) {
          xt = tdec->forward(pre.select(2, 0), {}, length_t, plan).first;  // pre: (B, C, 1, T)
        } else {
          at::Tensor skip_t = saved_t.back();
          saved_t.pop_back();
          xt = tdec->forward(xt, skip_t, length_t, plan).first;
        }
      }
    }
    const int64_t S = static_cast<int64_t>(c.sources.size());
    x = x.to(at::kFloat).view({B, S, -1, Fq, T}) * std.unsqueeze(1) + mean.unsqueeze(1);
    // CaC: (B, S, C, 2, Fq, T) -> complex (B, S, C, Fq, T).
    at::Tensor zout = at::view_as_complex(x.view({B, S, -1, 2, Fq, T}).permute({0, 1, 2, 4, 5, 3}).contiguous());
    at::Tensor out = ispec(zout, T_train);
    xt = xt.to(at::kFloat).view({B, S, -1, T_train}) * stdt.unsqueeze(1) + meant.unsqueeze(1);
    out = out + xt;
    return length < T_train ? out.slice(-1, 0, length) : out;
  }
};

HTDemucsConfig HTDemucsConfig::from_json(const nlohmann::json& kwargs, const std::string& where) {
  Kwargs k(kwargs, where, "HTDemucs");
  HTDemucsConfig c;
  k.use("sources");
  if (!k.has("sources") || !kwargs.at("sources").is_array() || kwargs.at("sources").empty())
    throw Error("{}: HTDemucs needs `sources`, a list of source names", where);
  for (const auto& s : kwargs.at("sources")) {
    if (!s.is_string()) k.bad("sources", "expected a list of names");
    const std::string name = s.get<std::string>();
    // Each source is a stem written to its own file: two of one name would be one file.
    if (std::find(c.sources.begin(), c.sources.end(), name) != c.sources.end())
      throw Error(
          "{}: `sources` names the source '{}' twice ({}); a model's sources need distinct names: the package "
          "is damaged or was edited",
          where, name, kwargs.at("sources").dump());
    c.sources.push_back(name);
  }
  k.python("audio_channels", c.audio_channels);
  k.python("channels", c.channels);
  k.python("channels_time", c.channels_time);
  k.python("growth", c.growth);
  k.python("nfft", c.nfft);
  k.python("depth", c.depth);
  k.python("rewrite", c.rewrite);
  k.python("freq_emb", c.freq_emb);
  k.python("emb_scale", c.emb_scale);
  k.python("kernel_size", c.kernel_size);
  k.python("time_stride", c.time_stride);
  k.python("stride", c.stride);
  k.python("context", c.context);
  k.python("context_enc", c.context_enc);
  k.python("norm_starts", c.norm_starts);
  k.python("norm_groups", c.norm_groups);
  k.python("dconv_mode", c.dconv_mode);
  k.python("dconv_depth", c.dconv_depth);
  k.python("dconv_comp", c.dconv_comp);
  k.python("bottom_channels", c.bottom_channels);
  k.python("t_layers", c.t_layers);
  k.python("t_hidden_scale", c.t_hidden_scale);
  k.python("t_heads", c.t_heads);
  k.python("t_norm_in", c.t_norm_in);
  k.python("t_norm_first", c.t_norm_first);
  k.python("t_norm_out", c.t_norm_out);
  k.python("t_layer_scale", c.t_layer_scale);
  k.python("t_gelu", c.t_gelu);
  k.python("t_cross_first", c.t_cross_first);
  k.python("t_max_period", c.t_max_period);
  k.python("t_weight_pos_embed", c.t_weight_pos_embed);
  k.python("samplerate", c.samplerate);
  k.python("use_train_segment", c.use_train_segment);

  // What the official models use and this runtime implements.
  k.require("cac", true, "complex-as-channels is the only output mode implemented; Wiener filtering is not");
  k.require("t_group_norm", false, "the official models use LayerNorm");
  k.require("t_sparse_self_attn", false, "sparse attention needs xformers upstream");
  k.require("t_sparse_cross_attn", false, "sparse attention needs xformers upstream");
  k.require("t_sin_random_shift", int64_t{0}, "a random shift makes inference random");
  k.require("t_norm_in_group", false, "the official models use LayerNorm");
  k.use("t_emb");
  if (k.has("t_emb") && kwargs.at("t_emb") != "sin") k.bad("t_emb", "only the \"sin\" embedding is implemented");
  k.use("multi_freqs");
  if (k.has("multi_freqs") && !(kwargs.at("multi_freqs").is_array() && kwargs.at("multi_freqs").empty()))
    k.bad("multi_freqs", "MultiWrap frequency bands are not implemented");
  if (!c.use_train_segment) k.bad("use_train_segment", "the static-shape runtime always runs at the training length");

  // segment: seconds, an int, a float or a Fraction ("39/5").
  k.use("segment");
  if (k.has("segment")) {
    const auto& s = kwargs.at("segment");
    if (s.is_number()) {
      c.segment = s.dump();
      c.training_length = static_cast<int64_t>(s.get<double>() * static_cast<double>(c.samplerate));
    } else if (s.is_string()) {
      const std::string text = s.get<std::string>();
      size_t slash = text.find('/');
      try {
        if (slash == std::string::npos) throw std::invalid_argument("no fraction");
        int64_t num = std::stoll(text.substr(0, slash)), den = std::stoll(text.substr(slash + 1));
        if (num <= 0 || den <= 0) throw std::invalid_argument("not positive");
        c.segment = text;
        c.training_length = num * c.samplerate / den;  // int(Fraction * samplerate) floors
      } catch (const std::exception&) {
        k.bad("segment", "expected seconds as a number or a fraction \"39/5\"");
      }
    } else {
      k.bad("segment", "expected seconds as a number or a fraction \"39/5\"");
    }
  } else {
    c.training_length = 10 * c.samplerate;
  }

  // Training and initialisation only: no effect on inference.
  for (const char* key : {"wiener_iters",
                          "end_iters",
                          "wiener_residual",
                          "multi_freqs_depth",
                          "emb_smooth",
                          "dconv_init",
                          "rescale",
                          "t_dropout",
                          "t_max_positions",
                          "t_weight_decay",
                          "t_lr",
                          "t_cape_mean_normalize",
                          "t_cape_augment",
                          "t_cape_glob_loc_scale",
                          "t_mask_type",
                          "t_mask_random_seed",
                          "t_sparse_attn_window",
                          "t_global_window",
                          "t_sparsity",
                          "t_auto_sparsity"})
    k.use(key);
  c.ignored = k.unused();

  auto positive = [&](const char* key, double v) {
    if (!(v > 0)) throw Error("{}: HTDemucs argument {} must be positive", where, key);
  };
  positive("audio_channels", c.audio_channels);
  positive("channels", c.channels);
  positive("nfft", c.nfft);
  positive("depth", c.depth);
  positive("stride", c.stride);
  positive("kernel_size", c.kernel_size);
  positive("samplerate", c.samplerate);
  positive("training length", c.training_length);
  if (c.nfft % 4) throw Error("{}: HTDemucs argument nfft must be a multiple of 4", where);
  const int64_t dim =
      c.bottom_channels ? c.bottom_channels : c.channels * static_cast<int64_t>(std::pow(c.growth, c.depth - 1));
  if (c.t_layers > 0 && (c.t_heads <= 0 || dim % c.t_heads))
    throw Error("{}: HTDemucs transformer width {} is not divisible by t_heads={}", where, dim, c.t_heads);
  return c;
}

nlohmann::json package_kwargs(const weights::Checkpoint& package) {
  using weights::Value;
  std::function<nlohmann::json(const weights::ValuePtr&, const std::string&)> to_json =
      [&](const weights::ValuePtr& v, const std::string& at) -> nlohmann::json {
    if (!v) return nullptr;
    switch (v->kind) {
      case Value::Kind::none: return nullptr;
      case Value::Kind::boolean: return v->boolean;
      case Value::Kind::integer: return v->integer;
      case Value::Kind::floating: return v->floating;
      case Value::Kind::string: return v->text;
      case Value::Kind::fraction: return std::to_string(v->integer) + "/" + std::to_string(v->denominator);
      case Value::Kind::list:
      case Value::Kind::tuple: {
        nlohmann::json a = nlohmann::json::array();
        for (const auto& item : v->items) a.push_back(to_json(item, at));
        return a;
      }
      case Value::Kind::dict: {
        nlohmann::json o = nlohmann::json::object();
        for (const auto& [key, val] : v->entries) {
          if (!key || key->kind != Value::Kind::string)
            throw Error("{}: {} has a key that is not a string", package.path, at);
          o[key->text] = to_json(val, at + "." + key->text);
        }
        return o;
      }
      default: throw Error("{}: {} holds {}, which is not a plain value", package.path, at, v->describe());
    }
  };
  const auto& root = package.root;
  if (!root || root->kind != Value::Kind::dict || !root->get("kwargs") || !root->get("state"))
    throw Error(
        "{}: not a demucs model package (a dict with klass, args, kwargs and state); "
        "give the .th file of a demucs model",
        package.path);
  nlohmann::json kwargs = to_json(root->get("kwargs"), "kwargs");
  if (auto args = root->get("args"); args && !args->items.empty()) {
    // HTDemucs(sources, ...): only the first positional argument is ever used.
    if (args->items.size() > 1)
      throw Error("{}: the package passes {} positional arguments; HTDemucs takes only `sources` positionally",
                  package.path, args->items.size());
    kwargs["sources"] = to_json(args->items[0], "args[0]");
  }
  return kwargs;
}

HTDemucs::HTDemucs(HTDemucsConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
HTDemucs::~HTDemucs() = default;
HTDemucs::HTDemucs(HTDemucs&&) noexcept = default;
HTDemucs& HTDemucs::operator=(HTDemucs&&) noexcept = default;

const HTDemucsConfig& HTDemucs::config() const { return impl_->c; }

void HTDemucs::load_state_dict(const weights::TensorMap& state, const std::string& source) {
  layers::load_state_dict(*impl_, state, source);
}

void HTDemucs::to(const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& kernels) {
  if (dtype != at::kFloat && dtype != at::kHalf && dtype != at::kBFloat16)
    throw std::invalid_argument("HTDemucs runs in float32, float16 or bfloat16");
  impl_->nn::Module::to(device, dtype);
  for (const auto& m : impl_->modules(/*include_self=*/false))
    if (auto* attn = dynamic_cast<AttentionImpl*>(m.get())) attn->policy = kernels.attention;
  impl_->device = device;
  impl_->dtype = dtype;
  impl_->plan = kernels;
  impl_->windows.clear();
  impl_->istft.clear();
  if (impl_->transformer) impl_->transformer->pos_cache.clear();
}

at::Device HTDemucs::device() const { return impl_->device; }
at::ScalarType HTDemucs::dtype() const { return impl_->dtype; }

at::Tensor HTDemucs::forward(const at::Tensor& mix) const {
  if (mix.dim() != 3 || mix.size(1) != impl_->c.audio_channels)
    throw std::invalid_argument("HTDemucs: expected (batch, " + std::to_string(impl_->c.audio_channels) +
                                " channels, samples), got " + c10::str(mix.sizes()));
  c10::InferenceMode guard;
  return impl_->forward(mix);
}

std::vector<std::string> HTDemucs::parameter_names() const {
  std::vector<std::string> names;
  for (const auto& item : impl_->named_parameters()) names.push_back(item.key());
  return names;
}

HTDemucs load_htdemucs(const std::string& path) {
  weights::Checkpoint package = weights::load_torch_checkpoint(path);
  timeline::mark("checkpoint read");
  if (auto klass =
          package.root && package.root->kind == weights::Value::Kind::dict ? package.root->get("klass") : nullptr;
      klass && klass->text != "demucs.htdemucs.HTDemucs")
    throw Error("{}: a {} model; this runtime runs HTDemucs (demucs v4: htdemucs, htdemucs_ft, htdemucs_6s)", path,
                klass->text);
  HTDemucsConfig config = HTDemucsConfig::from_json(package_kwargs(package), path);
  HTDemucs model(std::move(config));
  timeline::mark("model built");
  model.load_state_dict(weights::collect_tensors(package.root->get("state")), path);
  return model;
}

}  // namespace stemkit::models
