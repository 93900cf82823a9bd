// A loaded model as the `separate` runner drives it, whatever its
// architecture: a demucs bag (HTDemucs, demucs' apply_model semantics) or a
// RoFormer with its MSST configuration (MSST's demix semantics).
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "runtime/models/bs_roformer.h"
#include "runtime/models/demucs_bag.h"
#include "runtime/models/mel_band_roformer.h"
#include "runtime/models/msst_config.h"

namespace stemkit::models {

class Separator {
 public:
  virtual ~Separator() = default;
  // The stems separate() returns, in order.
  virtual const std::vector<std::string>& stems() const = 0;
  virtual int64_t samplerate() const = 0;
  virtual int64_t audio_channels() const = 0;
  // Samples per forward: the one input length every call has.
  virtual int64_t segment_samples() const = 0;
  // kernels: which implementation each layer runs (plan::decide).
  virtual void to(const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& kernels) = 0;
  virtual at::Device device() const = 0;
  // Drops captured graphs (after running out of memory, or to measure from a clean slate).
  virtual void release_graphs() = 0;
  // wav (channels, length) float32 at samplerate(), on the CPU -> (stems, channels, length) float32 on the CPU.
  virtual at::Tensor separate(const at::Tensor& wav, const SeparationOptions& options, const ProgressFn& progress = {},
                              SeparationReport* report = nullptr) const = 0;
};

std::unique_ptr<Separator> make_separator(DemucsBag bag);

// A RoFormer (BS-RoFormer or Mel-Band RoFormer) from its MSST configuration
// and a state dict (.ckpt, .pt, .safetensors). separate() is MSST's demix (chunk_size, num_overlap, fades,
// reflect borders; segment::apply_msst); a one-target model also gives
// "instrumental" = the mix minus the target, as MSST's --extract_instrumental.
// `segment`, `overlap` and `shifts` of SeparationOptions are demucs' and not used.
// The architecture is MSST's model_type: the config's top-level `model_type:`
// when it has one (bs_roformer or mel_band_roformer), else read from the model
// section: `num_bands` (or a `sample_rate`, for the mel filter bank) is
// Mel-Band RoFormer, `freqs_per_bands` or neither is BS-RoFormer, both is an error.
// Model arguments this runtime does not know are ignored, with a line each in
// *warnings when given.
std::unique_ptr<Separator> make_roformer_separator(const MsstConfig& config, const std::string& checkpoint,
                                                   std::vector<std::string>* warnings = nullptr);
std::string msst_model_type(const MsstConfig& config);

}  // namespace stemkit::models
