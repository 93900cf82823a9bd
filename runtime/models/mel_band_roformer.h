// Mel-Band RoFormer in libtorch, matching lucidrains/BS-RoFormer's
// MelBandRoformer (bs_roformer/mel_band_roformer.py at the pin in
// manifests/bs-roformer.yaml, c05f497) with rotary-embedding-torch's
// interleaved rotary embedding, configured from an MSST `model:` section.
// The blocks are BS-RoFormer's (runtime/models/roformer_blocks.h); what
// differs is the band split: num_bands bands from librosa's mel filter bank
// (runtime/dsp/mel_filters.h), overlapping, so a bin can belong to two bands,
// and the masks of overlapping bands are averaged.
//
// Shapes, for Kim's vocal model (MSST config_vocals_mel_band_roformer_kj.yaml:
// dim 384, depth 6, 60 bands, stereo, n_fft 2048, hop 441, chunk 352800):
//   mix            (B, 2, 352800)
//   STFT           (B, 2, 1025, 801) complex -> stereo folded into frequency (B, 2050, 801)
//   gather         (B, 801, K) with K = 2 * 2 * sum(num_freqs_per_band): each band's bins
//   band split     (B, 801, 60, 384)         RMSNorm + Linear per band
//   depth x        [linear transformer over all 801 x 60 tokens, when linear_transformer_depth > 0,]
//                  time transformer over 801 frames (per band),
//                  frequency transformer over 60 bands (per frame); each ends in its RMSNorm;
//                  with MSST's skip_connection the earlier layers' outputs added first
//   mask           (B, stems, 801, K) per-band MLP (Tanh) + GLU, complex, summed into
//                  (B, stems, 2050, 801) per bin and divided by the bands covering it
//   iSTFT          (B, stems, 2, 352800)
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/dsp/mel_filters.h"
#include "runtime/models/msst_options.h"
#include "runtime/plan/kernel_plan.h"
#include "runtime/weights/checkpoint.h"

namespace stemkit::models {

struct MelBandRoformerConfig {
  int64_t dim = 0;
  int64_t depth = 0;
  bool stereo = false;
  int64_t num_stems = 1;
  int64_t time_transformer_depth = 2;
  int64_t freq_transformer_depth = 2;
  int64_t num_bands = 60;
  int64_t dim_head = 64;
  int64_t heads = 8;
  int64_t sample_rate = 44100;  // for the mel filter bank only
  int64_t stft_n_fft = 2048;
  int64_t stft_hop_length = 512;
  int64_t stft_win_length = 2048;
  bool stft_normalized = false;
  int64_t mask_estimator_depth = 1;  // the MLP's hidden layers: depth + 1 Linear layers
  bool match_input_audio_length = false;
  // MSST's options (its copy of the model, models/bs_roformer/mel_band_roformer.py).
  // msst.linear_transformer_depth defaults to 0 as in MSST's copy, and MSST configs
  // are written for it (Kim's names none and its checkpoint has no linear layers);
  // the pin defaults to 1. zero_dc is not in the pin (MSST's copy defaults to true).
  roformer::MsstOptions msst;
  std::vector<std::string> ignored;  // training-only arguments accepted without effect

  int64_t audio_channels() const { return stereo ? 2 : 1; }
  // MelBandRoformer's keyword arguments as JSON (an MSST config's `model:`
  // section). Throws stemkit::Error naming `where` and the argument.
  static MelBandRoformerConfig from_json(const nlohmann::json& kwargs, const std::string& where);
};

class MelBandRoformer {
 public:
  explicit MelBandRoformer(MelBandRoformerConfig config);
  ~MelBandRoformer();
  MelBandRoformer(MelBandRoformer&&) noexcept;
  MelBandRoformer& operator=(MelBandRoformer&&) noexcept;

  const MelBandRoformerConfig& config() const;
  const dsp::MelBands& bands() const;  // the band mapping (mono bins; stereo doubles them in the forward)
  // Upstream's names (layers.{i}.{1,2} without linear attention: the pin keeps a
  // None at .0) or MSST's (layers.{i}.{0,1}), strictly: every name, shape and dtype.
  void load_state_dict(const weights::TensorMap& state, const std::string& source);
  // float32, float16 or bfloat16 for the transformers; the STFT, the rotary
  // angles, the mask averaging and the iSTFT stay float32.
  // kernels: which implementation each layer runs (plan::decide); the default
  // is the plain one (ATen, exact GELU, attention by the policy's rules).
  void to(const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& kernels = {});

  // mix (B, channels, L) -> (B, stems, channels, hop * (L / hop)) float32, or
  // (B, stems, channels, L) with match_input_audio_length.
  at::Tensor forward(const at::Tensor& mix) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stemkit::models
