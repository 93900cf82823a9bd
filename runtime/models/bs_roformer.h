// BS-RoFormer (band-split RoPE transformer) in libtorch, matching
// lucidrains/BS-RoFormer at the pin in manifests/bs-roformer.yaml (c05f497,
// 0.4.1) with rotary-embedding-torch's interleaved rotary embedding, and the
// options that Music-Source-Separation-Training's copy of the model adds
// (linear attention layers, skip connections, the mask MLP's width, the DC
// filter), so that MSST configs and checkpoints run as MSST runs them.
// Attention goes through the runtime's attention policy (the patches
// rocm-flash-attention and fp32-math-fallback).
//
// Shapes, for the viperx 12.97 configuration (dim 512, 62 bands, stereo,
// n_fft 2048, hop 441, chunk 352800):
//   mix            (B, 2, 352800)
//   STFT           (B, 2, 1025, 801) complex -> stereo folded into frequency
//   band split     (B, 801, 62, 512)         RMSNorm + Linear per band
//   depth x        time transformer over 801 frames (per band),
//                  frequency transformer over 62 bands (per frame)
//                  (MSST: [linear transformer over all 801 x 62 tokens,] time,
//                  frequency; with skip_connection the earlier layers' outputs added first)
//   mask           (B, stems, 2050, 801) complex, per-band MLP (Tanh) + GLU
//   iSTFT          (B, stems, 2, 352800)
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/models/msst_options.h"
#include "runtime/plan/kernel_plan.h"
#include "runtime/weights/checkpoint.h"

namespace stemkit::models {

struct BSRoformerConfig {
  int64_t dim = 0;
  int64_t depth = 0;
  bool stereo = false;
  int64_t num_stems = 1;
  int64_t time_transformer_depth = 2;
  int64_t freq_transformer_depth = 2;
  // MSST's additions to its copy of the model (models/bs_roformer/bs_roformer.py),
  // which MSST configs name; their defaults are the pin's behaviour.
  roformer::MsstOptions msst;
  std::vector<int64_t> freqs_per_bands;  // default: upstream's 62 bands for n_fft 2048
  int64_t dim_head = 64;
  int64_t heads = 8;
  int64_t stft_n_fft = 2048;
  int64_t stft_hop_length = 512;
  int64_t stft_win_length = 2048;
  bool stft_normalized = false;
  int64_t mask_estimator_depth = 2;
  // The output as long as the input: MSST's copy always passes the input's
  // length to its iSTFT, the pin drops a last partial hop (the same samples
  // otherwise). Not one of MSST's arguments: make_roformer_separator sets it, and
  // `match_input_audio_length` in a config is read as Mel-Band RoFormer's is.
  bool match_input_audio_length = false;
  std::vector<std::string> ignored;  // training-only arguments accepted without effect

  int64_t audio_channels() const { return stereo ? 2 : 1; }
  // BSRoformer's keyword arguments as JSON (an MSST config's `model:` section).
  // Throws stemkit::Error naming `where` and the argument.
  static BSRoformerConfig from_json(const nlohmann::json& kwargs, const std::string& where);
};

class BSRoformer {
 public:
  explicit BSRoformer(BSRoformerConfig config);
  ~BSRoformer();
  BSRoformer(BSRoformer&&) noexcept;
  BSRoformer& operator=(BSRoformer&&) noexcept;

  const BSRoformerConfig& config() const;
  void load_state_dict(const weights::TensorMap& state, const std::string& source);
  // float32, float16 or bfloat16 for the transformers; the STFT, the rotary
  // angles, the complex mask and the iSTFT stay float32.
  // kernels: which implementation each layer runs (plan::decide); the default
  // is the plain one (ATen, exact GELU, attention by the policy's rules).
  void to(const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& kernels = {});

  // mix (B, channels, L) -> (B, stems, channels, hop * (L / hop)), float32:
  // upstream's iSTFT without a length drops the last partial hop; (..., L) with
  // match_input_audio_length.
  at::Tensor forward(const at::Tensor& mix) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stemkit::models
