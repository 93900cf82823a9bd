// Running a whole track through a static-shape model, chunk by chunk, with
// demucs' apply_model semantics (demucs/apply.py at the pin):
//   - the track is cut every stride = (1 - overlap) * segment samples;
//   - each chunk is padded to the segment length with the neighbouring real
//     audio, zeros only past the ends of the track (TensorChunk.padded);
//   - outputs are centre-trimmed and overlap-added with triangular weights
//     raised to `transition_power`, then normalised by the summed weights;
//   - with shifts, the track is zero-padded by max_shift on both sides and
//     the whole procedure runs at `shifts` random offsets, averaged.
// Every model call sees exactly (batch_size, channels, segment): the last,
// partial batch is padded with silence, so a captured graph is replayed for all.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace stemkit::segment {

// (batch, channels, segment) -> (batch, sources, channels, segment)
using Forward = std::function<at::Tensor(const at::Tensor&)>;

struct DemucsSplit {
  int64_t segment = 0;              // samples per model call (int(segment_seconds * samplerate))
  double overlap = 0.25;
  double transition_power = 1.0;
  int shifts = 0;                   // random shifts averaged (demucs --shifts)
  int64_t max_shift = 0;            // samples; demucs uses int(0.5 * samplerate)
  int64_t batch_size = 1;           // chunks per model call
  uint64_t seed = 0;                // for the shift offsets
  std::vector<int64_t> shift_offsets;  // explicit offsets (tests, reproducing a Python run); overrides seed
};

// mix: (channels, length). Returns (sources, channels, length), float32 on
// mix's device: like demucs, weights and sums are float32 whatever the model's dtype.
at::Tensor apply_demucs(const Forward& model, const at::Tensor& mix, const DemucsSplit& options);

// The static-shape form of a forward: pads (B, C, L <= segment) to (B, C,
// segment), runs `model`, trims back to L. The C++ StaticSegmentModel.
at::Tensor run_static(const Forward& model, const at::Tensor& input, int64_t segment);

}  // namespace stemkit::segment
