// The YAML configuration files that Music-Source-Separation-Training (MSST)
// users keep beside their RoFormer checkpoints, e.g. viperx's
// model_bs_roformer_ep_317_sdr_12.9755.yaml:
//   audio:      chunk_size, num_channels, sample_rate
//   model:      the model's keyword arguments (BSRoformerConfig::from_json)
//   training:   instruments, target_instrument, use_amp
//   inference:  batch_size, num_overlap, normalize, chunk_size (over audio's, as MSST)
//   model_type: optional, ours: bs_roformer or mel_band_roformer, for a
//               model section that does not say (MSST takes --model_type)
// Python tags such as `!!python/tuple` are read as plain lists. Everything
// else in the file is kept but not used.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace stemkit::models {

struct MsstConfig {
  std::string path;
  std::string model_type;  // a top-level `model_type:` (MSST passes it on its command line instead); empty if none
  nlohmann::json model;    // the `model:` section as JSON
  int64_t sample_rate = 44100;
  int64_t num_channels = 2;
  int64_t chunk_size = 0;  // samples per model call: inference.chunk_size, else audio.chunk_size (as MSST's demix)
  std::vector<std::string> instruments;
  std::optional<std::string> target_instrument;
  int64_t batch_size = 1;
  int64_t num_overlap = 2;
  // inference.normalize: MSST's inference.py scales the mix by its mono mix's
  // mean and (population) standard deviation before the model and the stems
  // back after it.
  bool normalize = false;
  // training.use_amp (MSST's default: true): MSST's demix runs the model under
  // fp16 autocast on a GPU when it is set; separate's --precision auto follows it.
  bool use_amp = true;

  // The stems the model itself outputs, in order: the target instrument for a
  // one-target model, else the instruments.
  std::vector<std::string> model_stems() const;
};

// Throws stemkit::Error naming the file and, where there is one, the line
// and the key: unreadable YAML, a missing `model:` or `audio.chunk_size`, a
// value of the wrong type.
MsstConfig load_msst_config(const std::string& path);

}  // namespace stemkit::models
