// BS-RoFormer in libtorch. Module and parameter names follow upstream's
// classes, so its state dicts load by name:
//   layers.{i}.0 / layers.{i}.1        time / frequency Transformer; with MSST's
//                                      linear_transformer_depth > 0: .0 the linear
//                                      Transformer (LinearAttention: norm.gamma, to_qkv.0,
//                                      temperature, to_out.1), .1 / .2 time / frequency
//     .layers.{j}.0  Attention: norm.gamma, to_qkv, to_gates, to_out.0, rotary_embed.freqs
//     .layers.{j}.1  FeedForward: net.0.gamma (RMSNorm), net.1, net.4 (Linear)
//   final_norm.gamma
//   band_split.to_features.{b}.0.gamma / .1     RMSNorm + Linear per band
//   mask_estimators.{n}.to_freqs.{b}.0.{0,2,..} the MLP's Linear layers (Tanh between), then GLU
// B batch, C audio channels, F frequency bins, T frames, nb bands, d dim.
#include "runtime/models/bs_roformer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <stdexcept>

#include "runtime/dsp/istft.h"
#include "runtime/layers/state_dict.h"
#include "runtime/models/roformer_blocks.h"
#include "runtime/models/roformer_kwargs.h"

namespace stemkit::models {
namespace {

namespace nn = torch::nn;
using roformer::AxialLayer;
using roformer::BandSplit;
using roformer::MaskEstimator;
using roformer::RMSNorm;
using roformer::Transformer;

const std::vector<int64_t> kDefaultFreqsPerBands = {2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,   2,  2,  2,
                                                    2,  2,  2,  2,  2,  2,  2,  2,  4,  4,  4,  4,  4,   4,  4,  4,
                                                    4,  4,  4,  4,  12, 12, 12, 12, 12, 12, 12, 12, 24,  24, 24, 24,
                                                    24, 24, 24, 24, 48, 48, 48, 48, 48, 48, 48, 48, 128, 129};

}  // namespace

struct BSRoformer::Impl : nn::Module {
  BSRoformerConfig c;
  std::vector<AxialLayer> layers;
  RMSNorm final_norm{nullptr};
  std::vector<int64_t> band_dims;  // 2 * freqs * channels per band
  BandSplit band_split{nullptr};
  std::vector<MaskEstimator> masks;  // per stem
  at::ScalarType dtype = at::kFloat;
  at::Device device = at::kCPU;
  plan::KernelPlan kernels;  // which implementation each layer runs (to())
  dsp::InverseStft istft;    // capture-safe (ATen's checks its envelope with a device-to-host copy)
  at::Tensor window;         // hann(win_length) on the device

  explicit Impl(BSRoformerConfig config) : c(std::move(config)) {
    if (c.freqs_per_bands.empty())
      c.freqs_per_bands = kDefaultFreqsPerBands;  // the header's promise, for configs built in code
    auto list = register_module("layers", nn::ModuleList());
    for (int64_t i = 0; i < c.depth; ++i) {
      // norm_output=False inside BSRoformer: one final_norm after all layers.
      // MSST's copy lists only the transformers that exist, so the time
      // transformer moves to .1 when a linear one comes first.
      auto step = std::make_shared<nn::Module>();
      AxialLayer layer;
      int index = 0;
      if (c.msst.linear_transformer_depth > 0)
        layer.linear = step->register_module(
            std::to_string(index++),
            Transformer(c.msst.linear_transformer_depth, c.dim, c.heads, c.dim_head, false, true));
      layer.time = step->register_module(
          std::to_string(index++), Transformer(c.time_transformer_depth, c.dim, c.heads, c.dim_head, false, false));
      layer.freq = step->register_module(
          std::to_string(index++), Transformer(c.freq_transformer_depth, c.dim, c.heads, c.dim_head, false, false));
      layers.push_back(layer);
      list->push_back(step);
    }
    final_norm = register_module("final_norm", RMSNorm(c.dim));
    for (int64_t f : c.freqs_per_bands) band_dims.push_back(2 * f * c.audio_channels());
    band_split = register_module("band_split", BandSplit(c.dim, band_dims));
    auto estimators = register_module("mask_estimators", nn::ModuleList());
    for (int64_t s = 0; s < c.num_stems; ++s) {
      // bs_roformer.py's MLP: mask_estimator_depth Linear layers, hidden dim * mlp_expansion_factor.
      masks.push_back(MaskEstimator(c.dim, band_dims, c.mask_estimator_depth, c.dim * c.msst.mlp_expansion_factor));
      estimators->push_back(masks.back());
    }
    for (auto& p : parameters()) p.set_requires_grad(false);
  }

  at::Tensor forward(const at::Tensor& mix_in) {
    const int64_t B = mix_in.size(0), C = mix_in.size(1), L = mix_in.size(2);
    at::Tensor mix = mix_in.to(device, at::kFloat);
    if (!window.defined() || window.device() != device)
      window = at::hann_window(c.stft_win_length, at::TensorOptions().device(device));
    at::Tensor spec =
        at::stft(mix.reshape({B * C, L}), c.stft_n_fft, c.stft_hop_length, c.stft_win_length, window,
                 /*center=*/true, "reflect", c.stft_normalized, /*onesided=*/true, /*return_complex=*/true);
    const int64_t F = spec.size(1), T = spec.size(2);
    // 'b s f t c -> b (f s) t c': stereo folded into frequency, frequency leading.
    at::Tensor stft_repr =
        at::view_as_real(spec).view({B, C, F, T, 2}).permute({0, 2, 1, 3, 4}).reshape({B, F * C, T, 2});
    at::Tensor x = stft_repr.permute({0, 2, 1, 3}).reshape({B, T, F * C * 2}).to(dtype);  // 'b f t c -> b t (f c)'

    x = band_split(x, kernels);  // (B, T, nb, d)

    x = roformer::run_axial_layers(layers, std::move(x), c.msst.skip_connection,
                                   kernels);  // over frames, then bands, per layer
    x = final_norm(x, kernels);

    std::vector<at::Tensor> stems;
    for (auto& estimator : masks) stems.push_back(estimator(x, kernels));  // (B, T, F*C*2)
    const int64_t N = static_cast<int64_t>(stems.size());
    // 'b n t (f c) -> b n f t c', complex, times the mixture's spectrogram.
    at::Tensor mask =
        at::stack(stems, 1).to(at::kFloat).view({B, N, T, F * C, 2}).permute({0, 1, 3, 2, 4}).contiguous();
    at::Tensor out =
        at::view_as_complex(stft_repr.unsqueeze(1).contiguous()) * at::view_as_complex(mask);  // (B, N, F*C, T)
    // 'b n (f s) t -> (b n s) f t'
    out = out.view({B, N, F, C, T}).permute({0, 1, 3, 2, 4}).reshape({B * N * C, F, T});
    if (c.msst.zero_dc) out = out.index_fill(1, at::zeros({1}, out.options().dtype(at::kLong)), 0);  // MSST's DC filter
    std::optional<int64_t> length;
    if (c.match_input_audio_length) length = L;
    at::Tensor audio = istft(out, c.stft_n_fft, c.stft_hop_length, window, c.stft_normalized, length);
    return audio.view({B, N, C, -1});
  }
};

BSRoformerConfig BSRoformerConfig::from_json(const nlohmann::json& j, const std::string& where) {
  Kwargs k(j, where, "BSRoformer");
  BSRoformerConfig c;
  roformer::read_shared_arguments(k, c);  // with MSST's additions (its models/bs_roformer/bs_roformer.py)
  k.integer("mask_estimator_depth", c.mask_estimator_depth);
  k.use("freqs_per_bands");
  c.freqs_per_bands = kDefaultFreqsPerBands;
  if (k.has("freqs_per_bands")) {
    const auto& f = k.at("freqs_per_bands");
    if (!f.is_array() || f.size() < 2) k.bad("freqs_per_bands", "expected a list of at least two band widths");
    c.freqs_per_bands.clear();
    for (const auto& v : f) {
      if (!v.is_number_integer() || v.get<int64_t>() <= 0) k.bad("freqs_per_bands", "expected positive integers");
      c.freqs_per_bands.push_back(v.get<int64_t>());
    }
  }
  c.ignored = k.unused();
  const int64_t bins = c.stft_n_fft / 2 + 1;
  const int64_t sum = std::accumulate(c.freqs_per_bands.begin(), c.freqs_per_bands.end(), int64_t{0});
  if (sum != bins)
    throw Error("{}: BSRoformer freqs_per_bands add up to {} bins; stft_n_fft {} gives {}", where, sum, c.stft_n_fft,
                bins);
  roformer::check_shared_arguments(k, c);
  return c;
}

BSRoformer::BSRoformer(BSRoformerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
BSRoformer::~BSRoformer() = default;
BSRoformer::BSRoformer(BSRoformer&&) noexcept = default;
BSRoformer& BSRoformer::operator=(BSRoformer&&) noexcept = default;

const BSRoformerConfig& BSRoformer::config() const { return impl_->c; }

void BSRoformer::load_state_dict(const weights::TensorMap& state, const std::string& source) {
  layers::load_state_dict(*impl_, state, source);
}

void BSRoformer::to(const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& kernels) {
  if (dtype != at::kFloat && dtype != at::kHalf && dtype != at::kBFloat16)
    throw std::invalid_argument("BSRoformer runs in float32, float16 or bfloat16");
  roformer::to_device(*impl_, device, dtype, kernels);  // the rotary frequencies stay float32, as upstream
  impl_->device = device;
  impl_->dtype = dtype;
  impl_->kernels = kernels;
  impl_->window = at::Tensor();
  impl_->istft.clear();
}

at::Tensor BSRoformer::forward(const at::Tensor& mix) const {
  if (mix.dim() != 3 || mix.size(1) != impl_->c.audio_channels())
    throw std::invalid_argument("BSRoformer: expected (batch, " + std::to_string(impl_->c.audio_channels()) +
                                " channels, samples), got " + c10::str(mix.sizes()));
  c10::InferenceMode guard;
  return impl_->forward(mix);
}

}  // namespace stemkit::models
