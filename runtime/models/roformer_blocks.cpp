#include "runtime/models/roformer_blocks.h"

#include <ATen/ATen.h>

#include <cmath>
#include <memory>
#include <string>

#include "runtime/attention/attention.h"

namespace stemkit::models::roformer {

namespace nn = torch::nn;

RMSNormImpl::RMSNormImpl(int64_t dim) : scale(std::sqrt(static_cast<double>(dim))) {
  gamma = register_parameter("gamma", at::ones({dim}), false);
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) { return x / x.norm(2, {-1}, true).clamp_min(1e-12) * scale * gamma; }

AttentionImpl::AttentionImpl(int64_t dim, int64_t heads, int64_t dim_head) : heads(heads), dim_head(dim_head) {
  auto rotary = register_module("rotary_embed", std::make_shared<nn::Module>());
  freqs = rotary->register_parameter("freqs", at::zeros({dim_head / 2}), false);
  norm = register_module("norm", RMSNorm(dim));
  to_qkv = register_module("to_qkv", nn::Linear(nn::LinearOptions(dim, 3 * heads * dim_head).bias(false)));
  to_gates = register_module("to_gates", nn::Linear(dim, heads));
  auto out = register_module("to_out", std::make_shared<nn::Module>());
  to_out = out->register_module("0", nn::Linear(nn::LinearOptions(heads * dim_head, dim).bias(false)));
}

namespace {

// rotary-embedding-torch's rotate_queries_or_keys: angle(pos, 2i) =
// angle(pos, 2i + 1) = pos * freqs[i], pairs (x0, x1) -> (x0 cos - x1 sin,
// x1 cos + x0 sin), in float32. t: (B, h, n, d).
at::Tensor rotate(const at::Tensor& t, const at::Tensor& freqs) {
  const int64_t n = t.size(2);
  at::Tensor pos = at::arange(n, t.options().dtype(at::kFloat));
  at::Tensor angles = (pos.unsqueeze(1) * freqs.to(at::kFloat).unsqueeze(0)).repeat_interleave(2, 1);  // (n, d)
  at::Tensor tf = t.to(at::kFloat);
  at::Tensor pairs = tf.view({t.size(0), t.size(1), n, -1, 2});
  at::Tensor rotated = at::stack({-pairs.select(-1, 1), pairs.select(-1, 0)}, -1).view(tf.sizes());
  return (tf * angles.cos() + rotated * angles.sin()).to(t.scalar_type());
}

}  // namespace

at::Tensor AttentionImpl::forward(at::Tensor x) {
  x = norm(x);
  const int64_t N = x.size(0), n = x.size(1);
  at::Tensor qkv = to_qkv(x).view({N, n, 3, heads, dim_head}).permute({2, 0, 3, 1, 4});  // (3, N, h, n, d)
  at::Tensor q = rotate(qkv[0], freqs), k = rotate(qkv[1], freqs), v = qkv[2];
  at::Tensor out = attention::attend(q, k, v);                              // (N, h, n, d)
  out = out * to_gates(x).transpose(1, 2).unsqueeze(-1).sigmoid();         // gates (N, n, h) -> (N, h, n, 1)
  return to_out(out.transpose(1, 2).reshape({N, n, heads * dim_head}));
}

LinearAttentionImpl::LinearAttentionImpl(int64_t dim, int64_t heads, int64_t dim_head) : heads(heads), dim_head(dim_head) {
  norm = register_module("norm", RMSNorm(dim));
  auto qkv = register_module("to_qkv", std::make_shared<nn::Module>());  // Sequential(Linear, Rearrange)
  to_qkv = qkv->register_module("0", nn::Linear(nn::LinearOptions(dim, 3 * heads * dim_head).bias(false)));
  temperature = register_parameter("temperature", at::zeros({heads, 1, 1}), false);
  auto out = register_module("to_out", std::make_shared<nn::Module>());  // Sequential(Rearrange, Linear)
  to_out = out->register_module("1", nn::Linear(nn::LinearOptions(heads * dim_head, dim).bias(false)));
}

at::Tensor LinearAttentionImpl::forward(at::Tensor x) {
  x = norm(x);
  const int64_t N = x.size(0), n = x.size(1);
  // 'b n (qkv h d) -> qkv b h d n'
  at::Tensor qkv = to_qkv(x).view({N, n, 3, heads, dim_head}).permute({2, 0, 3, 4, 1});  // (3, N, h, d, n)
  auto l2norm = [](const at::Tensor& t) { return t / t.norm(2, {-1}, true).clamp_min(1e-12); };  // F.normalize
  at::Tensor q = l2norm(qkv[0]) * temperature.exp(), k = l2norm(qkv[1]), v = qkv[2];
  at::Tensor out = attention::attend_math(q, k, v, 8.0);                                 // (N, h, d, n)
  return to_out(out.permute({0, 3, 1, 2}).reshape({N, n, heads * dim_head}));            // 'b h d n -> b n (h d)'
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t mult) {
  auto net = register_module("net", std::make_shared<nn::Module>());
  norm = net->register_module("0", RMSNorm(dim));
  in = net->register_module("1", nn::Linear(dim, dim * mult));
  out = net->register_module("4", nn::Linear(dim * mult, dim));
}

at::Tensor FeedForwardImpl::forward(const at::Tensor& x) { return out(at::gelu(in(norm(x)))); }

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

at::Tensor TransformerImpl::forward(at::Tensor x) {
  for (size_t j = 0; j < feed_forward.size(); ++j) {
    x = (linear_attention.empty() ? attention[j](x) : linear_attention[j](x)) + x;
    x = feed_forward[j](x) + x;
  }
  return norm ? norm(x) : x;
}

BandSplitImpl::BandSplitImpl(int64_t dim, std::vector<int64_t> dims) : dim_inputs(std::move(dims)) {
  auto features = register_module("to_features", nn::ModuleList());
  for (int64_t dim_in : dim_inputs) {
    auto seq = std::make_shared<nn::Module>();
    norms.push_back(seq->register_module("0", RMSNorm(dim_in)));
    linears.push_back(seq->register_module("1", nn::Linear(dim_in, dim)));
    features->push_back(seq);
  }
}

at::Tensor BandSplitImpl::forward(const at::Tensor& x) {
  std::vector<at::Tensor> bands;
  auto parts = x.split_with_sizes(dim_inputs, -1);
  for (size_t b = 0; b < linears.size(); ++b) bands.push_back(linears[b](norms[b](parts[b])));
  return at::stack(bands, -2);
}

MaskEstimatorImpl::MaskEstimatorImpl(int64_t dim, const std::vector<int64_t>& dim_inputs, int64_t linear_layers,
                                     int64_t hidden) {
  auto to_freqs = register_module("to_freqs", nn::ModuleList());
  for (int64_t dim_in : dim_inputs) {
    // Sequential(MLP, GLU): the MLP's Linear layers at even indices, Tanh between.
    auto outer = std::make_shared<nn::Module>();
    auto mlp = outer->register_module("0", std::make_shared<nn::Module>());
    std::vector<nn::Linear> linears;
    for (int64_t l = 0; l < linear_layers; ++l) {
      const int64_t in = l == 0 ? dim : hidden, out = l + 1 == linear_layers ? dim_in * 2 : hidden;
      linears.push_back(mlp->register_module(std::to_string(2 * l), nn::Linear(in, out)));
    }
    mlps.push_back(linears);
    to_freqs->push_back(outer);
  }
}

at::Tensor MaskEstimatorImpl::forward(const at::Tensor& x) {
  std::vector<at::Tensor> outs;
  for (size_t b = 0; b < mlps.size(); ++b) {
    at::Tensor h = x.select(2, static_cast<int64_t>(b));
    for (size_t l = 0; l < mlps[b].size(); ++l) {
      h = mlps[b][l](h);
      if (l + 1 < mlps[b].size()) h = at::tanh(h);
    }
    outs.push_back(at::glu(h, -1));
  }
  return at::cat(outs, -1);
}

void to_keeping_rotary_fp32(nn::Module& module, const at::Device& device, at::ScalarType dtype) {
  module.to(device, dtype);
  const std::string rotary = "rotary_embed.freqs";
  for (auto& item : module.named_parameters())
    if (item.key().size() >= rotary.size() && item.key().compare(item.key().size() - rotary.size(), rotary.size(), rotary) == 0)
      item.value().set_data(item.value().to(at::kFloat));
}

}  // namespace stemkit::models::roformer
