// HTDemucs' fast norms, DConv and LayerScale. Why each exists, with the
// measurements, is in docs/runtime.md ("HTDemucs") and docs/benchmarks.md.
#include "runtime/models/htdemucs_fast.h"

#include <ATen/ATen.h>

#include <stdexcept>
#include <utility>
#include <vector>

namespace stemkit::models::htdemucs::fast {
namespace {

// Mean and biased variance of each row of x (R, L), in float32 whatever x's
// dtype (float64 stays float64), without writing a float32 copy of x: fp32
// rows go through one Welford pass; half and bfloat16 rows through a sum and
// a 2-norm that accumulate in float32 as they read (two reads of 2 bytes
// instead of a 4-byte copy written and read back).
std::pair<at::Tensor, at::Tensor> row_moments(const at::Tensor& x) {
  if (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) {
    auto [var, mean] = at::var_mean(x, {1}, /*unbiased=*/false, /*keepdim=*/false);
    return {mean, var};
  }
  const double L = static_cast<double>(x.size(1));
  at::Tensor mean = at::sum(x, {1}, false, at::kFloat) / L;
  at::Tensor norm = at::linalg_vector_norm(x, 2, {1}, false, at::kFloat);
  return {mean, (norm.square() / L - mean.square()).clamp_min(0)};
}

// GroupNorm(G, C) of x with the channels at `channel_dim` (1, or the last for
// tokens), each sample's groups contiguous rows of x: y = x * a + b with
// a = weight / std and b = bias - mean * a, one addcmul over x.
// ATen's kernel gives each (sample, group) row one thread block: with
// GroupNorm(1, C) over a whole time-branch layer or transformer output, a
// handful of blocks for millions of values, which left most of a GPU idle.
at::Tensor normalise_rows(const torch::nn::GroupNormImpl& gn, const at::Tensor& x, int64_t channel_dim) {
  const auto& o = gn.options;
  const int64_t N = x.size(0), G = o.num_groups(), C = o.num_channels();
  auto [mean, var] = row_moments(x.reshape({N * G, -1}));  // (N * G)
  at::Tensor rstd = (var + o.eps()).rsqrt().view({N, G, 1});
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = N;
  shape[static_cast<size_t>(channel_dim)] = C;
  at::Tensor w = gn.weight.to(rstd.scalar_type()), b = gn.bias.to(rstd.scalar_type());
  at::Tensor scale = (rstd * w.view({1, G, C / G})).view({N, C});  // (N, C)
  at::Tensor shift = b - (mean.view({N, G, 1}) * scale.view({N, G, C / G})).view({N, C});
  return at::addcmul(shift.view(shape).to(x.scalar_type()), x, scale.view(shape).to(x.scalar_type()));
}

}  // namespace

at::Tensor group_norm(const torch::nn::GroupNormImpl& gn, const at::Tensor& x) {
  const auto& o = gn.options;
  // Enough rows to fill the device: ATen's kernel, which reads x once.
  if (x.size(0) * o.num_groups() >= 512) return at::group_norm(x, o.num_groups(), gn.weight, gn.bias, o.eps());
  return normalise_rows(gn, x, 1);
}

at::Tensor my_group_norm(const MyGroupNormImpl& gn, const at::Tensor& x) {
  // Rows of (T, C) per sample are one group only when there is one group.
  if (gn.options.num_groups() != 1) throw std::logic_error("my_group_norm: channel-last tokens need one group");
  return normalise_rows(gn, x, x.dim() - 1);
}

// Moments are taken per channel row over T, moved by the bias and pooled over
// the channels (law of total variance: var = mean of the row variances +
// variance of the row means), so no layout copy is made; then one addcmul.
at::Tensor dconv_norm(const torch::nn::GroupNormImpl& gn, const at::Tensor& x, const at::Tensor& conv_bias) {
  if (gn.options.num_groups() != 1) throw std::logic_error("dconv_norm: DConv's GroupNorm has one group");
  const int64_t C = x.size(1), T = x.size(-1);
  auto [mean, var] = row_moments(x.reshape({-1, T}));
  const std::vector<int64_t> rows(x.sizes().begin(), x.sizes().end() - 1);  // (N, C) or (B, C, Fr)
  std::vector<int64_t> per_channel(rows.size(), 1);
  per_channel[1] = C;
  const auto acc = mean.scalar_type();
  const at::Tensor bias = conv_bias.to(acc).view(per_channel);
  mean = mean.view(rows) + bias;
  at::Tensor pooled_mean = mean.mean(1, true);  // (N, 1[, Fr])
  at::Tensor pooled_var = var.view(rows).mean(1, true) + (mean - pooled_mean).square().mean(1, true);
  at::Tensor scale = (pooled_var + gn.options.eps()).rsqrt() * gn.weight.to(acc).view(per_channel);  // (N, C[, Fr])
  at::Tensor shift = gn.bias.to(acc).view(per_channel) + (bias - pooled_mean) * scale;
  return at::addcmul(shift.unsqueeze(-1).to(x.scalar_type()), x, scale.unsqueeze(-1).to(x.scalar_type()));
}

at::Tensor add_layer_scale(const at::Tensor& x, const LayerScaleImpl& scale, const at::Tensor& y) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim() - 1), 1);  // (C, 1, ...) for channel first
  shape[0] = -1;
  return at::addcmul(x, y, scale.channel_last ? scale.scale : scale.scale.view(shape));
}

// The broadcast bias additions of the two convolutions, over the largest
// activations of the network, are what folding them into dconv_norm saves.
at::Tensor dconv(const DConvImpl& dconv, at::Tensor x) {
  const bool freq = x.dim() == 4;
  for (const auto& b : dconv.branches) {
    const int64_t d = b.dilation;
    at::Tensor y = freq ? at::conv2d(x, b.conv_in->weight.unsqueeze(2), at::Tensor(), at::IntArrayRef{1, 1},
                                     at::IntArrayRef{0, d}, at::IntArrayRef{1, d})
                        : at::conv1d(x, b.conv_in->weight, at::Tensor(), 1, d, d);
    y = at::gelu(dconv_norm(*b.norm_in, y, b.conv_in->bias));
    y = freq ? at::conv2d(y, b.conv_out->weight.unsqueeze(2)) : at::conv1d(y, b.conv_out->weight);
    y = at::glu(dconv_norm(*b.norm_out, y, b.conv_out->bias), 1);
    x = add_layer_scale(x, *b.scale, y);
  }
  return x;
}

}  // namespace stemkit::models::htdemucs::fast
