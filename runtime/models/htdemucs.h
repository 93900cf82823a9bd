// HTDemucs (demucs v4, the hybrid transformer model) in libtorch, matching
// demucs/htdemucs.py at the pin in manifests/demucs.yaml (b9ab48c) with our
// patches: attention through the runtime's attention policy (the
// sdpa-attention patch) and one static input shape (the static-shape-wrapper
// patch: every forward sees the training length).
//
// The shapes, for the official htdemucs (nfft 4096, depth 4, 7.8 s segments):
//   mix            (B, 2, 343980)            stereo at 44.1 kHz
//   spectrogram z  (B, 2, 2048, 336) complex  STFT, hop 1024, normalized
//   freq. branch   (B, 4, 2048, 336)          complex as channels, normalised
//     4 encoders   -> (B, 384, 8, 336)        stride 4 over frequency
//   time branch    (B, 2, 343980)             normalised
//     4 encoders   -> (B, 384, 1344)          stride 4 over time
//   transformer    512 channels (bottom_channels), 5 layers alternating self
//                  and cross attention: 2688 frequency tokens, 1344 time tokens
//   4 + 4 decoders -> (B, 4 sources, 2, 343980), the iSTFT of the frequency
//                  branch's complex spectrogram plus the time branch.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/plan/kernel_plan.h"
#include "runtime/weights/checkpoint.h"

namespace stemkit::models {

// The constructor arguments of demucs.htdemucs.HTDemucs that shape the
// network at inference. Options that only matter for training or
// initialisation are accepted and ignored, as upstream ignores them at
// inference; options this runtime does not implement are refused by name.
struct HTDemucsConfig {
  std::vector<std::string> sources;
  int64_t audio_channels = 2;
  int64_t channels = 48;
  int64_t channels_time = 0;  // 0: same as channels
  double growth = 2;
  int64_t nfft = 4096;
  int64_t depth = 4;
  bool rewrite = true;
  double freq_emb = 0.2;  // weight of the frequency embedding; 0: none
  double emb_scale = 10;
  int64_t kernel_size = 8;
  int64_t time_stride = 2;
  int64_t stride = 4;
  int64_t context = 1;
  int64_t context_enc = 0;
  int64_t norm_starts = 4;
  int64_t norm_groups = 4;
  int64_t dconv_mode = 1;  // 1: encoder, 2: decoder, 3: both
  int64_t dconv_depth = 2;
  double dconv_comp = 8;
  int64_t bottom_channels = 0;
  int64_t t_layers = 5;
  double t_hidden_scale = 4.0;
  int64_t t_heads = 8;
  bool t_norm_in = true;
  bool t_norm_first = true;
  bool t_norm_out = true;
  bool t_layer_scale = true;
  bool t_gelu = true;
  bool t_cross_first = false;
  double t_max_period = 10000.0;
  double t_weight_pos_embed = 1.0;
  int64_t samplerate = 44100;
  std::string segment = "10";        // seconds, as upstream gives it ("39/5" for a Fraction)
  int64_t training_length = 441000;  // int(segment * samplerate): the one input length
  bool use_train_segment = true;
  std::vector<std::string> ignored;  // arguments accepted without effect at inference

  // From demucs' kwargs as JSON (a Fraction as "39/5"). Throws
  // stemkit::Error naming `where` and the argument for unknown,
  // mistyped or unsupported values.
  static HTDemucsConfig from_json(const nlohmann::json& kwargs, const std::string& where);
};

// The kwargs of a demucs package (the pickled `kwargs` dict, and positional
// `args`, which HTDemucs only uses for `sources`) as JSON.
nlohmann::json package_kwargs(const weights::Checkpoint& package);

class HTDemucs {
 public:
  // A network with the configuration's shapes and uninitialised weights.
  explicit HTDemucs(HTDemucsConfig config);
  ~HTDemucs();
  HTDemucs(HTDemucs&&) noexcept;
  HTDemucs& operator=(HTDemucs&&) noexcept;

  const HTDemucsConfig& config() const;
  int64_t training_length() const { return config().training_length; }

  // Every parameter and buffer checked by name, shape and dtype, all problems
  // reported at once (runtime/layers/state_dict.h); nothing loaded on a problem.
  void load_state_dict(const weights::TensorMap& state, const std::string& source);

  // Device, and the dtype the network runs in: float32, float16 or bfloat16.
  // The STFT, the normalisation and the iSTFT always run in float32.
  // kernels: the plan (plan::decide_kernels): the attention policy for the
  // transformer, and reference_forward (or htdemucs_fast_blocks off, the CPU's
  // plan), which picks the reference forwards that
  // map line for line to upstream over the fast DConv, GroupNorms and LayerScale
  // (htdemucs_fast.h). The default: the policy's rules, the fast paths.
  void to(const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& kernels = {});
  at::Device device() const;
  at::ScalarType dtype() const;

  // mix (B, audio_channels, L), L <= training_length (shorter inputs are
  // zero-padded to it, as upstream does) -> (B, sources, audio_channels, L), float32.
  at::Tensor forward(const at::Tensor& mix) const;

  // Parameter names in state-dict order (tests, diagnostics).
  std::vector<std::string> parameter_names() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Loads a demucs package (`.th`, as demucs.states.serialize_model writes it:
// klass, args, kwargs and an fp16 or fp32 state) through the safe checkpoint
// reader. Throws stemkit::Error naming the file: not a package, another
// demucs architecture (HDemucs, Demucs), an unsupported option, a state dict
// that does not fit.
HTDemucs load_htdemucs(const std::string& path);

}  // namespace stemkit::models
