// A demucs model as users name it: a bag of one or more HTDemucs networks
// with per-source weights (htdemucs is a bag of one, htdemucs_ft a bag of
// four, each the specialist of one source), and the separation of a whole
// track with demucs' semantics (demucs/api.py Separator.separate_tensor and
// demucs/apply.py apply_model at the pin):
//   - the track is normalised by the mean and std of its mono mix, and the
//     stems scaled back after;
//   - each network runs the track in overlapping segments (segment, overlap,
//     triangular transition weights, shifts) through the static-segment
//     driver, every call one shape, replayed as a CUDA graph where possible;
//   - the networks' outputs are weighted per source and normalised by the
//     summed weights.
#pragma once

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/models/htdemucs.h"

namespace stemkit::capture {
class GraphRunner;
}

namespace stemkit::models {

struct DemucsBag {
  std::string name;
  std::vector<HTDemucs> models;
  std::vector<std::vector<double>> weights;  // [model][source]; empty: all ones
  std::optional<double> segment;             // seconds; the bag's own segment, when it sets one

  const std::vector<std::string>& sources() const { return models.front().config().sources; }
  int64_t samplerate() const { return models.front().config().samplerate; }
  int64_t audio_channels() const { return models.front().config().audio_channels; }
  void to(const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& kernels = {});

  // One graph runner per member, kept across tracks so a captured graph is
  // replayed for every file of a batch (made by separate(), dropped by to()).
  mutable std::vector<std::shared_ptr<capture::GraphRunner>> runners;
};

// Loads the members (demucs packages, .th) and checks that they agree on
// sources, sample rate and channels, and that `weights` has one row per
// member and one weight per source. Throws stemkit::Error naming the file.
DemucsBag load_demucs_bag(const std::string& name, const std::vector<std::string>& member_paths,
                          std::vector<std::vector<double>> weights = {}, std::optional<double> segment = std::nullopt);

struct SeparationOptions {
  std::optional<double> segment;  // seconds per chunk, at most the networks' training segment (demucs --segment)
  double overlap = 0.25;
  int shifts = 1;               // random shifts averaged (demucs' default is 1)
  uint64_t seed = 0;            // for the shift offsets
  int64_t batch_size = 1;       // chunks per forward
  bool graphs = true;           // capture the static-shape forward as a CUDA graph where possible
  double window_seconds = 600;  // results come back to the CPU window by window: device memory bounded by this
                                // (the overlap-add carries over between windows: every chunk runs once)
  bool tta = false;             // MSST's --use_tta (RoFormers only): also the channels swapped and the polarity
                                // inverted, each separated and undone, the three averaged
  bool device_assembly = true;  // the track in one window: the stems kept on the model's device until final,
                                // then one copy to the CPU (segment::assemble_on_device); false: window by window
                                // to the CPU, finished there

  // window_seconds in samples at `samplerate`, at least one.
  int64_t window_samples(int64_t samplerate) const {
    return std::max<int64_t>(1, static_cast<int64_t>(window_seconds * static_cast<double>(samplerate)));
  }
};

// What a separation did: for benchmarks and --json.
struct SeparationReport {
  std::string graphs;  // GraphRunner::status() of the last network
  int64_t forward_calls = 0;
  int64_t forward_shape[3] = {0, 0, 0};
};

// Called with the fraction of the work done, from 0 to 1.
using ProgressFn = std::function<void(double)>;

// wav: (channels, length) float32 at the bag's sample rate, on the CPU.
// Returns (sources, channels, length) float32 on the CPU.
at::Tensor separate(const DemucsBag& bag, const at::Tensor& wav, const SeparationOptions& options,
                    const ProgressFn& progress = {}, SeparationReport* report = nullptr);

}  // namespace stemkit::models
