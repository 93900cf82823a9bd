// Mel-Band RoFormer in libtorch. Module and parameter names follow upstream's
// classes (the pin), so its state dicts load by name:
//   layers.{i}.0           linear Transformer (when linear_transformer_depth > 0; the pin
//                          registers None here otherwise and MSST's copy leaves it out)
//     .layers.{j}.0        LinearAttention: norm.gamma, to_qkv.0, temperature, to_out.1
//   layers.{i}.1 / .2      time / frequency Transformer
//     .layers.{j}.0        Attention: norm.gamma, to_qkv, to_gates, to_out.0, rotary_embed.freqs
//     .layers.{j}.1        FeedForward: net.0.gamma, net.1, net.4
//     .norm.gamma          every Transformer ends in an RMSNorm here (no final_norm)
//   band_split.to_features.{b}.0.gamma / .1             RMSNorm + Linear per band
//   mask_estimators.{n}.to_freqs.{b}.0.{0,2,..}         depth + 1 Linear layers (Tanh between), then GLU
// The band mapping (freq_indices, num_bands_per_freq) is a non-persistent
// buffer upstream: not in checkpoints, computed here from the mel filter bank.
// B batch, C audio channels, F frequency bins, T frames, nb bands, d dim,
// K = C * sum(num_freqs_per_band) the gathered (band, bin, channel) entries.
#include "runtime/models/mel_band_roformer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

#include "runtime/dsp/istft.h"
#include "runtime/layers/state_dict.h"
#include "runtime/models/roformer_blocks.h"
#include "runtime/models/roformer_kwargs.h"

namespace stemkit::models {

namespace nn = torch::nn;
using roformer::AxialLayer;
using roformer::BandSplit;
using roformer::MaskEstimator;
using roformer::Transformer;

struct MelBandRoformer::Impl : nn::Module {
  MelBandRoformerConfig c;
  dsp::MelBands bands;
  std::vector<AxialLayer> layers;
  std::vector<int64_t> band_dims;  // 2 * C * freqs per band
  BandSplit band_split{nullptr};
  std::vector<MaskEstimator> masks;        // per stem
  std::vector<int64_t> freq_index_values;  // (K): bin * C + channel, band after band (upstream's freq_indices)
  std::vector<float> denom_values;         // (F * C): the bands covering each (bin, channel)
  at::Tensor freq_indices, denom;          // the same on the device
  at::ScalarType dtype = at::kFloat;
  at::Device device = at::kCPU;
  plan::KernelPlan kernels;  // which implementation each layer runs (to())
  dsp::InverseStft istft;
  at::Tensor window;

  explicit Impl(MelBandRoformerConfig config)
      : c(std::move(config)), bands(dsp::mel_bands(static_cast<double>(c.sample_rate), c.stft_n_fft, c.num_bands)) {
    auto list = register_module("layers", nn::ModuleList());
    for (int64_t i = 0; i < c.depth; ++i) {
      // Registered under the pin's indices; load_state_dict maps MSST's.
      auto triple = std::make_shared<nn::Module>();
      AxialLayer layer;
      if (c.msst.linear_transformer_depth > 0)
        layer.linear = triple->register_module(
            "0", Transformer(c.msst.linear_transformer_depth, c.dim, c.heads, c.dim_head, true, /*linear_attn=*/true));
      layer.time =
          triple->register_module("1", Transformer(c.time_transformer_depth, c.dim, c.heads, c.dim_head, true, false));
      layer.freq =
          triple->register_module("2", Transformer(c.freq_transformer_depth, c.dim, c.heads, c.dim_head, true, false));
      layers.push_back(layer);
      list->push_back(triple);
    }
    const int64_t C = c.audio_channels();
    for (int64_t n : bands.num_freqs_per_band) band_dims.push_back(2 * n * C);
    band_split = register_module("band_split", BandSplit(c.dim, band_dims));
    auto estimators = register_module("mask_estimators", nn::ModuleList());
    for (int64_t s = 0; s < c.num_stems; ++s) {
      // mel_band_roformer.py's MLP: mask_estimator_depth hidden layers of dim * mlp_expansion_factor.
      masks.push_back(MaskEstimator(c.dim, band_dims, c.mask_estimator_depth + 1, c.dim * c.msst.mlp_expansion_factor));
      estimators->push_back(masks.back());
    }
    // Stereo: 'f -> (f s)' with f * 2 + s, as upstream.
    for (int64_t f : bands.freq_indices)
      for (int64_t s = 0; s < C; ++s) freq_index_values.push_back(f * C + s);
    for (int64_t n : bands.num_bands_per_freq)
      for (int64_t s = 0; s < C; ++s) denom_values.push_back(static_cast<float>(n));
    for (auto& p : parameters()) p.set_requires_grad(false);
  }

  void place() {
    freq_indices = at::tensor(freq_index_values, at::TensorOptions().dtype(at::kLong)).to(device);
    denom = at::tensor(denom_values, at::TensorOptions().dtype(at::kFloat)).to(device);
    window = at::hann_window(c.stft_win_length, at::TensorOptions().device(device));
  }

  at::Tensor forward(const at::Tensor& mix_in) {
    const int64_t B = mix_in.size(0), C = mix_in.size(1), L = mix_in.size(2);
    if (!window.defined() || window.device() != device) place();
    at::Tensor mix = mix_in.to(device, at::kFloat);
    at::Tensor spec =
        at::stft(mix.reshape({B * C, L}), c.stft_n_fft, c.stft_hop_length, c.stft_win_length, window,
                 /*center=*/true, "reflect", c.stft_normalized, /*onesided=*/true, /*return_complex=*/true);
    const int64_t F = spec.size(1), T = spec.size(2);
    // 'b s f t c -> b (f s) t c': stereo folded into frequency, frequency leading.
    at::Tensor stft_repr =
        at::view_as_real(spec).view({B, C, F, T, 2}).permute({0, 2, 1, 3, 4}).reshape({B, F * C, T, 2});
    const int64_t K = freq_indices.size(0);
    // stft_repr[:, freq_indices] then 'b f t c -> b t (f c)'
    at::Tensor x = stft_repr.index_select(1, freq_indices).permute({0, 2, 1, 3}).reshape({B, T, K * 2}).to(dtype);

    x = band_split(x, kernels);  // (B, T, nb, d)
    x = roformer::run_axial_layers(layers, std::move(x), c.msst.skip_connection,
                                   kernels);  // [all tokens,] frames, bands, per layer

    std::vector<at::Tensor> stems;
    for (auto& estimator : masks) stems.push_back(estimator(x, kernels));  // (B, T, K*2)
    const int64_t N = static_cast<int64_t>(stems.size());
    // 'b n t (f c) -> b n f t c'; each band's mask summed into its bins, then
    // divided by the number of bands covering the bin (scatter_add_ upstream,
    // on the real and imaginary parts here: the same sums).
    at::Tensor mask = at::stack(stems, 1).to(at::kFloat).view({B, N, T, K, 2}).permute({0, 1, 3, 2, 4});
    at::Tensor index = freq_indices.view({1, 1, K, 1, 1}).expand({B, N, K, T, 2});
    at::Tensor summed = at::zeros({B, N, F * C, T, 2}, mask.options()).scatter_add_(2, index, mask);
    at::Tensor averaged = (summed / denom.view({1, 1, F * C, 1, 1})).contiguous();
    at::Tensor out =
        at::view_as_complex(stft_repr.unsqueeze(1).contiguous()) * at::view_as_complex(averaged);  // (B, N, F*C, T)
    // 'b n (f s) t -> (b n s) f t'
    out = out.view({B, N, F, C, T}).permute({0, 1, 3, 2, 4}).reshape({B * N * C, F, T});
    if (c.msst.zero_dc) out = out.index_fill(1, at::zeros({1}, out.options().dtype(at::kLong)), 0);  // MSST's DC filter
    std::optional<int64_t> length;
    if (c.match_input_audio_length) length = L;
    at::Tensor audio = istft(out, c.stft_n_fft, c.stft_hop_length, window, c.stft_normalized, length);
    return audio.view({B, N, C, -1});
  }
};

MelBandRoformerConfig MelBandRoformerConfig::from_json(const nlohmann::json& j, const std::string& where) {
  Kwargs k(j, where, "MelBandRoformer");
  MelBandRoformerConfig c;
  roformer::read_shared_arguments(k, c);  // with MSST's additions (its models/bs_roformer/mel_band_roformer.py)
  k.integer("num_bands", c.num_bands);
  k.integer("sample_rate", c.sample_rate);
  k.integer("mask_estimator_depth", c.mask_estimator_depth, false, true);
  c.ignored = k.unused();
  roformer::check_shared_arguments(k, c);
  try {
    dsp::mel_bands(static_cast<double>(c.sample_rate), c.stft_n_fft, c.num_bands);
  } catch (const std::invalid_argument& e) {
    throw Error("{}: MelBandRoformer num_bands {}: {}", where, c.num_bands, e.what());
  }
  return c;
}

MelBandRoformer::MelBandRoformer(MelBandRoformerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
MelBandRoformer::~MelBandRoformer() = default;
MelBandRoformer::MelBandRoformer(MelBandRoformer&&) noexcept = default;
MelBandRoformer& MelBandRoformer::operator=(MelBandRoformer&&) noexcept = default;

const MelBandRoformerConfig& MelBandRoformer::config() const { return impl_->c; }
const dsp::MelBands& MelBandRoformer::bands() const { return impl_->bands; }

void MelBandRoformer::load_state_dict(const weights::TensorMap& state, const std::string& source) {
  // MSST's copy appends only the transformers that exist: without linear
  // attention its layers.{i}.0 / .1 are the pin's layers.{i}.1 / .2.
  bool msst_layout = false;
  if (impl_->c.msst.linear_transformer_depth == 0)
    for (const auto& [name, tensor] : state)
      if (name.rfind("layers.0.0.", 0) == 0) msst_layout = true;
  if (!msst_layout) {
    layers::load_state_dict(*impl_, state, source);
    return;
  }
  static const std::regex layer(R"(^layers\.(\d+)\.([01])\.)");
  weights::TensorMap renamed;
  for (const auto& [name, tensor] : state) {
    std::smatch m;
    std::string key = name;
    if (std::regex_search(name, m, layer))
      key = "layers." + m[1].str() + "." + std::to_string(std::stoi(m[2].str()) + 1) + "." + m.suffix().str();
    renamed.emplace(key, tensor);
  }
  layers::load_state_dict(*impl_, renamed, source + " (MSST layout: layers.{i}.{0,1} read as layers.{i}.{1,2})");
}

void MelBandRoformer::to(const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& kernels) {
  if (dtype != at::kFloat && dtype != at::kHalf && dtype != at::kBFloat16)
    throw std::invalid_argument("MelBandRoformer runs in float32, float16 or bfloat16");
  roformer::to_device(*impl_, device, dtype, kernels);
  impl_->device = device;
  impl_->dtype = dtype;
  impl_->kernels = kernels;
  impl_->window = at::Tensor();
  impl_->istft.clear();
}

at::Tensor MelBandRoformer::forward(const at::Tensor& mix) const {
  if (mix.dim() != 3 || mix.size(1) != impl_->c.audio_channels())
    throw std::invalid_argument("MelBandRoformer: expected (batch, " + std::to_string(impl_->c.audio_channels()) +
                                " channels, samples), got " + c10::str(mix.sizes()));
  c10::InferenceMode guard;
  return impl_->forward(mix);
}

}  // namespace stemkit::models
