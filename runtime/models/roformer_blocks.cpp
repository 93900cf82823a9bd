// The RoFormer blocks as upstream writes them: each forward below is the
// Python forward of the class of the same name at the pin (manifests/bs-roformer.yaml:
// lucidrains/BS-RoFormer c05f497, bs_roformer.py; mel_band_roformer.py repeats the
// same classes), line for line, with the Python quoted beside the C++. Our
// patches (patches/bs-roformer/) change only attend.py's backend choice, which
// attention::attend makes (runtime/attention/attention.h). Unless the plan asks
// for these (plan::KernelPlan::reference_forward), forward hands over to the
// block's fast path in roformer_fast.cpp at its first line.
#include "runtime/models/roformer_blocks.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <memory>
#include <string>
#include <utility>

#include "runtime/attention/attention.h"
#include "runtime/models/roformer_fast.h"
#include "runtime/plan/kernel_plan.h"
#include "runtime/timeline.h"

namespace stemkit::models::roformer {

namespace nn = torch::nn;

namespace {

// F.normalize(t, dim = -1) (p = 2, eps = 1e-12): t / max(|t|, eps) over the last dimension.
at::Tensor normalize(const at::Tensor& t) { return t / t.norm(2, {-1}, true).clamp_min(1e-12); }

}  // namespace

RMSNormImpl::RMSNormImpl(int64_t dim) : scale(std::sqrt(static_cast<double>(dim))) {
  gamma = register_parameter("gamma", at::ones({dim}), false);
}

// class RMSNorm (bs_roformer.py 33-40)
//     def forward(self, x):
//         return F.normalize(x, dim = -1) * self.scale * self.gamma
at::Tensor RMSNormImpl::forward(const at::Tensor& x, const plan::KernelPlan& plan) {
  if (!plan.reference_forward) return fast::rms_norm(*this, x);
  return normalize(x) * scale * gamma;
}

AttentionImpl::AttentionImpl(int64_t dim, int64_t heads, int64_t dim_head) : heads(heads), dim_head(dim_head) {
  auto rotary = register_module("rotary_embed", std::make_shared<nn::Module>());
  freqs = rotary->register_parameter("freqs", at::zeros({dim_head / 2}), false);
  norm = register_module("norm", RMSNorm(dim));
  to_qkv = register_module("to_qkv", Linear(dim, 3 * heads * dim_head, /*with_bias=*/false));
  to_gates = register_module("to_gates", Linear(dim, heads));
  auto out = register_module("to_out", std::make_shared<nn::Module>());
  to_out = out->register_module("0", Linear(heads * dim_head, dim, /*with_bias=*/false));
}

namespace {

// rotary-embedding-torch's RotaryEmbedding.rotate_queries_or_keys(t) for t
// (b, h, n, d), the sequence at dim -2, with its forward and apply_rotary_emb:
//     seq = torch.arange(seq_len)                                   # get_seq_pos
//     freqs = einsum('..., f -> ... f', seq.type(freqs.dtype), freqs)
//     freqs = repeat(freqs, '... n -> ... (n r)', r = 2)
//     t = (t * freqs.cos()) + (rotate_half(t) * freqs.sin())        # apply_rotary_emb
// with rotate_half(x): '... (d r) -> ... d r', (x1, x2) -> (-x2, x1), back to '... (d r)'.
// freqs is float32 and rotary-embedding-torch runs these with autocast off, so
// the angles and the rotation are float32 whatever t's dtype; the result goes
// back to t's dtype, as autocast casts it for the attention after. The
// positions are float32 here; upstream makes them in t's dtype, which in fp16
// holds the same integers up to 2048 (a segment has fewer frames).
at::Tensor rotate_queries_or_keys(const at::Tensor& freqs_param, const at::Tensor& t_in) {
  const int64_t seq_len = t_in.size(-2), d = t_in.size(-1);
  at::Tensor seq = at::arange(seq_len, t_in.options().dtype(at::kFloat));
  at::Tensor freqs = seq.unsqueeze(-1) * freqs_param.to(t_in.device(), at::kFloat);  // (n, d/2)
  freqs = freqs.repeat_interleave(2, -1);                                            // (n, d)
  at::Tensor t = t_in.to(at::kFloat);
  std::vector<int64_t> pairs = t.sizes().vec();
  pairs.back() = d / 2;
  pairs.push_back(2);
  at::Tensor x = t.reshape(pairs);                                                      // '... (d r) -> ... d r'
  at::Tensor rotated = at::stack({-x.select(-1, 1), x.select(-1, 0)}, -1).flatten(-2);  // stack((-x2, x1)), '... (d r)'
  return (t * freqs.cos() + rotated * freqs.sin()).to(t_in.scalar_type());
}

}  // namespace

// class Attention (bs_roformer.py 65-109; mel_band_roformer.py 76-120)
//     def forward(self, x):
at::Tensor AttentionImpl::forward(const at::Tensor& input, const plan::KernelPlan& plan) {
  const int64_t b = input.size(0), n = input.size(1);
  //     x = self.norm(x)
  at::Tensor x = norm(input, plan);
  //     q, k, v = rearrange(self.to_qkv(x), 'b n (qkv h d) -> qkv b h n d', qkv = 3, h = self.heads)
  at::Tensor qkv = to_qkv(x).view({b, n, 3, heads, dim_head}).permute({2, 0, 3, 1, 4});
  at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
  //     if exists(self.rotary_embed):
  //         q = self.rotary_embed.rotate_queries_or_keys(q)
  //         k = self.rotary_embed.rotate_queries_or_keys(k)
  q = rotate_queries_or_keys(freqs, q);
  k = rotate_queries_or_keys(freqs, k);
  //     out = self.attend(q, k, v)       (attend.py: the patched backend choice, softmax(q kᵀ / sqrt(d)) v)
  at::Tensor out = attention::attend(plan.attention, q, k, v);
  //     gates = self.to_gates(x)
  at::Tensor gates = to_gates(x);
  //     out = out * rearrange(gates, 'b n h -> b h n 1').sigmoid()
  out = out * gates.permute({0, 2, 1}).unsqueeze(-1).sigmoid();
  //     out = rearrange(out, 'b h n d -> b n (h d)')
  out = out.permute({0, 2, 1, 3}).reshape({b, n, heads * dim_head});
  //     return self.to_out(out)          (Linear, then Dropout: the identity at inference)
  return to_out(out);
}

LinearAttentionImpl::LinearAttentionImpl(int64_t dim, int64_t heads, int64_t dim_head)
    : heads(heads), dim_head(dim_head) {
  norm = register_module("norm", RMSNorm(dim));
  auto qkv = register_module("to_qkv", std::make_shared<nn::Module>());  // Sequential(Linear, Rearrange)
  to_qkv = qkv->register_module("0", Linear(dim, 3 * heads * dim_head, /*with_bias=*/false));
  temperature = register_parameter("temperature", at::zeros({heads, 1, 1}), false);
  auto out = register_module("to_out", std::make_shared<nn::Module>());  // Sequential(Rearrange, Linear)
  to_out = out->register_module("1", Linear(heads * dim_head, dim, /*with_bias=*/false));
}

// class LinearAttention (mel_band_roformer.py 122-173)
//     def forward(self, x):
at::Tensor LinearAttentionImpl::forward(const at::Tensor& input, const plan::KernelPlan& plan) {
  const int64_t b = input.size(0), n = input.size(1);
  //     x = self.norm(x)
  at::Tensor x = norm(input, plan);
  //     q, k, v = self.to_qkv(x)         (Linear, then Rearrange('b n (qkv h d) -> qkv b h d n'))
  at::Tensor qkv = to_qkv(x).view({b, n, 3, heads, dim_head}).permute({2, 0, 3, 4, 1});
  at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
  //     q, k = map(l2norm, (q, k))       (l2norm: F.normalize(t, dim = -1, p = 2))
  q = normalize(q);
  k = normalize(k);
  //     q = q * self.temperature.exp()
  q = q * temperature.exp();
  //     out = self.attend(q, k, v)       (Attend(scale = 8): softmax(q kᵀ · 8) v over the d features;
  //                                       exact math, as the policy's kernels do not take n-wide heads)
  at::Tensor out = attention::attend_math(q, k, v, 8.0);
  //     return self.to_out(out)          (Rearrange('b h d n -> b n (h d)'), then Linear)
  return to_out(out.permute({0, 3, 1, 2}).reshape({b, n, heads * dim_head}));
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t mult) {
  auto net = register_module("net", std::make_shared<nn::Module>());
  norm = net->register_module("0", RMSNorm(dim));
  in = net->register_module("1", Linear(dim, dim * mult));
  out = net->register_module("4", Linear(dim * mult, dim));
}

// class FeedForward (bs_roformer.py 44-63)
//     self.net = nn.Sequential(RMSNorm(dim), nn.Linear(dim, dim_inner), nn.GELU(), nn.Dropout(dropout),
//                              nn.Linear(dim_inner, dim), nn.Dropout(dropout))
//     def forward(self, x):
//         return self.net(x)
at::Tensor FeedForwardImpl::forward(const at::Tensor& x, const plan::KernelPlan& plan) {
  at::Tensor h = norm(x, plan);  // net.0: RMSNorm
  h = in(h);                     // net.1: Linear
  h = at::gelu(h);               // net.2: GELU, the exact (erf) form
  // net.3, net.5: Dropout, the identity at inference
  return out(h);  // net.4: Linear
}

TransformerImpl::TransformerImpl(int64_t depth, int64_t dim, int64_t heads, int64_t dim_head, bool norm_output,
                                 bool linear_attn) {
  auto layers = register_module("layers", nn::ModuleList());
  for (int64_t i = 0; i < depth; ++i) {
    auto pair = std::make_shared<nn::Module>();
    if (linear_attn)
      linear_attention.push_back(pair->register_module("0", LinearAttention(dim, heads, dim_head)));
    else
      attention.push_back(pair->register_module("0", Attention(dim, heads, dim_head)));
    feed_forward.push_back(pair->register_module("1", FeedForward(dim, 4)));
    layers->push_back(pair);
  }
  if (norm_output) norm = register_module("norm", RMSNorm(dim));
}

// class Transformer (bs_roformer.py 111-143; mel_band_roformer.py 175-213)
//     def forward(self, x):
at::Tensor TransformerImpl::forward(at::Tensor x, const plan::KernelPlan& plan) {
  if (!plan.reference_forward) return fast::transformer(*this, std::move(x), plan);
  //     for attn, ff in self.layers:
  for (size_t j = 0; j < feed_forward.size(); ++j) {
    //     x = attn(x) + x
    x = (linear_attention.empty() ? attention[j](x, plan) : linear_attention[j](x, plan)) + x;
    //     x = ff(x) + x
    x = feed_forward[j](x, plan) + x;
  }
  //     return self.norm(x)              (nn.Identity() without norm_output)
  return norm ? norm(x, plan) : x;
}

// What BSRoformer.forward does around each time and frequency Transformer
// (bs_roformer.py 398-409; mel_band_roformer.py 517-528):
//     x = rearrange(x, 'b t f d -> b f t d')
//     x, ps = pack([x], '* t d')
//     x = time_transformer(x)
//     x, = unpack(x, ps, '* t d')
//     x = rearrange(x, 'b f t d -> b t f d')
//     x, ps = pack([x], '* f d')
//     x = freq_transformer(x)
//     x, = unpack(x, ps, '* f d')
at::Tensor TransformerImpl::forward_axial(at::Tensor x, int axis, const plan::KernelPlan& plan) {
  TORCH_CHECK(x.dim() == 4 && (axis == 1 || axis == 2),
              "Transformer::forward_axial: x must be (B, T, F, dim), axis 1 or 2");
  if (!plan.reference_forward) return fast::transformer_axial(*this, std::move(x), axis, plan);
  const int64_t B = x.size(0), T = x.size(1), F = x.size(2), d = x.size(3);
  if (axis == 1) {
    x = x.permute({0, 2, 1, 3});                        // 'b t f d -> b f t d'
    x = forward(x.reshape({B * F, T, d}), plan);        // pack '* t d', time_transformer
    return x.view({B, F, T, d}).permute({0, 2, 1, 3});  // unpack, 'b f t d -> b t f d'
  }
  return forward(x.reshape({B * T, F, d}), plan).view({B, T, F, d});  // pack '* f d', freq_transformer, unpack
}

// BSRoformer.forward's loop (bs_roformer.py 396-409), with
// MelBandRoformer's linear Transformer first (mel_band_roformer.py 510-515:
// pack [x] as 'b * d', over all tokens) and MSST's skip connections.
at::Tensor run_axial_layers(std::vector<AxialLayer>& layers, at::Tensor x, bool skip_connection,
                            const plan::KernelPlan& plan) {
  const int64_t B = x.size(0), T = x.size(1), F = x.size(2), d = x.size(3);
  std::vector<at::Tensor> earlier;  // each layer's output, for the skip connections
  for (AxialLayer& layer : layers) {
    if (layer.linear) x = layer.linear->forward(x.reshape({B, T * F, d}), plan).view({B, T, F, d});  // over all tokens
    for (size_t j = 0; j < earlier.size(); ++j) {
      if (j == 0)
        x = x + earlier[0];  // a new tensor: the stored outputs stay as they are
      else
        x.add_(earlier[j]);
    }
    x = layer.time->forward_axial(std::move(x), 1, plan);  // over frames
    x = layer.freq->forward_axial(std::move(x), 2, plan);  // over bands
    if (skip_connection) earlier.push_back(x);
  }
  return x;
}

BandSplitImpl::BandSplitImpl(int64_t dim, std::vector<int64_t> dims) : dim_inputs(std::move(dims)) {
  auto features = register_module("to_features", nn::ModuleList());
  for (int64_t dim_in : dim_inputs) {
    auto seq = std::make_shared<nn::Module>();
    norms.push_back(seq->register_module("0", RMSNorm(dim_in)));
    linears.push_back(seq->register_module("1", Linear(dim_in, dim)));
    features->push_back(seq);
  }
  fast::stack_parameters(*this, /*copy_values=*/false);  // the Linear layers are not set yet
}

// class BandSplit (bs_roformer.py 147-174)
//     def forward(self, x):
at::Tensor BandSplitImpl::forward(const at::Tensor& x, const plan::KernelPlan& plan) {
  if (!plan.reference_forward) return fast::band_split(*this, x);
  //     x = x.split(self.dim_inputs, dim = -1)
  std::vector<at::Tensor> split = x.split_with_sizes(dim_inputs, -1);
  //     outs = []
  //     for split_input, to_feature in zip(x, self.to_features):
  //         split_output = to_feature(split_input)      (Sequential(RMSNorm(dim_in), nn.Linear(dim_in, dim)))
  //         outs.append(split_output)
  std::vector<at::Tensor> outs;
  for (size_t b = 0; b < split.size(); ++b) outs.push_back(linears[b](norms[b](split[b], plan)));
  //     return torch.stack(outs, dim = -2)
  return at::stack(outs, -2);
}

MaskEstimatorImpl::MaskEstimatorImpl(int64_t dim, const std::vector<int64_t>& dim_inputs, int64_t linear_layers,
                                     int64_t hidden) {
  auto to_freqs = register_module("to_freqs", nn::ModuleList());
  for (int64_t dim_in : dim_inputs) {
    // Sequential(MLP, GLU): the MLP's Linear layers at even indices, Tanh between.
    auto outer = std::make_shared<nn::Module>();
    auto mlp = outer->register_module("0", std::make_shared<nn::Module>());
    std::vector<Linear> linears;
    for (int64_t l = 0; l < linear_layers; ++l) {
      const int64_t in = l == 0 ? dim : hidden, out = l + 1 == linear_layers ? dim_in * 2 : hidden;
      linears.push_back(mlp->register_module(std::to_string(2 * l), Linear(in, out)));
    }
    mlps.push_back(linears);
    to_freqs->push_back(outer);
  }
  fast::stack_parameters(*this, /*copy_values=*/false);  // the Linear layers are not set yet
}

// class MaskEstimator (bs_roformer.py 200-233), each band's
//     mlp = nn.Sequential(MLP(dim, dim_in * 2, dim_hidden = dim_hidden, depth = depth), nn.GLU(dim = -1))
// with MLP (bs_roformer.py 176-198): Linear layers, activation() (Tanh) after each but the last.
//     def forward(self, x):
at::Tensor MaskEstimatorImpl::forward(const at::Tensor& x, const plan::KernelPlan& plan) {
  if (!plan.reference_forward) return fast::mask_estimator(*this, x);
  //     x = x.unbind(dim = -2)
  std::vector<at::Tensor> bands = x.unbind(-2);
  //     outs = []
  //     for band_features, mlp in zip(x, self.to_freqs):
  //         freq_out = mlp(band_features)
  //         outs.append(freq_out)
  std::vector<at::Tensor> outs;
  for (size_t b = 0; b < bands.size(); ++b) {
    at::Tensor h = bands[b];
    for (size_t l = 0; l < mlps[b].size(); ++l) {
      h = mlps[b][l](h);                            // nn.Linear
      if (l + 1 < mlps[b].size()) h = at::tanh(h);  // activation(), not after the last
    }
    outs.push_back(at::glu(h, -1));  // nn.GLU(dim = -1)
  }
  //     return torch.cat(outs, dim = -1)
  return at::cat(outs, -1);
}

void to_device(nn::Module& module, const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& plan) {
  // Moved as they are, then converted where they are: on a GPU the conversion
  // of 160 million numbers is the device's, not a CPU pass before the copy; and
  // the rotary frequencies, which stay float32, keep every bit (converted with
  // the rest and back, fp16 rounded them to 11 bits).
  module.to(device);
  timeline::mark("weights copied as stored");
  const std::string rotary = "rotary_embed.freqs";
  auto is_rotary = [&](const std::string& key) {
    return key.size() >= rotary.size() && key.compare(key.size() - rotary.size(), rotary.size(), rotary) == 0;
  };
  {
    at::NoGradGuard no_grad;
    for (auto& item : module.named_parameters())
      if (!is_rotary(item.key()) && item.value().scalar_type() != dtype) item.value().set_data(item.value().to(dtype));
    for (auto& item : module.named_buffers())
      if (at::isFloatingType(item.value().scalar_type()) && item.value().scalar_type() != dtype)
        item.value().set_data(item.value().to(dtype));
  }
  const auto options = at::TensorOptions().device(device).dtype(dtype);
  auto prepare = [&](nn::Module* m) {
    if (auto* split = dynamic_cast<BandSplitImpl*>(m)) fast::stack_parameters(*split);
    if (auto* masks = dynamic_cast<MaskEstimatorImpl*>(m)) fast::stack_parameters(*masks);
    if (auto* transformer = dynamic_cast<TransformerImpl*>(m)) fast::prepare_rows(*transformer, options, plan);
  };
  prepare(&module);  // (modules() can list the module itself only when it is held by a shared_ptr)
  for (const auto& m : module.modules(/*include_self=*/false)) prepare(m.get());
}

}  // namespace stemkit::models::roformer
