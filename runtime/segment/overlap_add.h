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
  int64_t segment = 0;       // samples per chunk (int(segment_seconds * samplerate))
  int64_t model_length = 0;  // samples per model call, >= segment (the model's valid_length); 0: segment.
                             // Chunks are padded to it with the neighbouring audio, as demucs does
                             // when --segment is shorter than the training length
  double overlap = 0.25;
  double transition_power = 1.0;
  int shifts = 0;                      // random shifts averaged (demucs --shifts)
  int64_t max_shift = 0;               // samples; demucs uses int(0.5 * samplerate)
  int64_t batch_size = 1;              // chunks per model call
  uint64_t seed = 0;                   // for the shift offsets
  std::vector<int64_t> shift_offsets;  // explicit offsets (tests, reproducing a Python run); overrides seed
};

// mix: (channels, length). Returns (sources, channels, length), float32 on
// mix's device: like demucs, weights and sums are float32 whatever the model's dtype.
at::Tensor apply_demucs(const Forward& model, const at::Tensor& mix, const DemucsSplit& options);

// Receives the output in order, block by block: (sources, channels, n) starting at sample `start`.
using Sink = std::function<void(int64_t start, const at::Tensor& block)>;

// The same result, delivered in windows of `window` samples as soon as each
// is final, so memory for the output and the work in flight is bounded by the
// window, not by the track: a 60-minute file needs no 60-minute output
// tensor. Every chunk still runs once: the overlap-add carries over from one
// window to the next, and the batches are the same whatever the window.
void apply_demucs_streaming(const Forward& model, const at::Tensor& mix, const DemucsSplit& options, int64_t window,
                            const Sink& sink);

// Music-Source-Separation-Training's demix (utils/model_utils.py, "generic"
// mode, used for BS-RoFormer and Mel-Band RoFormer):
//   - tracks longer than 2 x border (border = chunk - step) are reflect-padded
//     by border on both sides, and the border is cut off at the end;
//   - chunks start every step = chunk / num_overlap samples; a chunk shorter
//     than the chunk size is reflect-padded when longer than half a chunk,
//     zero-padded otherwise;
//   - outputs are weighted by a window with linear fades of chunk / 10
//     samples (none before the first chunk, none after the last) and
//     normalised by the summed window.
// The chunks MSST runs that start past the end of the track (at two overlaps,
// always the last one) are not run: their output lies in the border that is
// cut off, so the result is the same without them.
// Chunks go to the model batch_size at a time, the last batch with the chunks
// it has, as MSST runs it (topped up with silence to the captured graph's
// shape, it cost more than it saved: docs/benchmarks.md). The result does not
// depend on batch_size: it is MSST's at batch 1
// (MSST itself drops the first chunk's fade-in only when it is alone in its
// batch, and the last fade-out for every chunk of the last batch).
struct MsstChunking {
  int64_t chunk_size = 0;
  int64_t num_overlap = 2;
  int64_t batch_size = 1;
};

// mix: (channels, length). The model returns (batch, sources, channels, chunk)
// or, for one target, (batch, channels, chunk). Returns (sources, channels, length), float32.
at::Tensor apply_msst(const Forward& model, const at::Tensor& mix, const MsstChunking& options);

// The same, delivered window by window as apply_demucs_streaming does, every
// chunk run once: device memory is bounded by the window (plus a chunk and a
// batch) at no extra work, and the result is the same whatever the window.
void apply_msst_streaming(const Forward& model, const at::Tensor& mix, const MsstChunking& options, int64_t window,
                          const Sink& sink);

// The static-shape form of a forward: pads (B, C, L <= segment) to (B, C,
// segment), runs `model`, trims back to L. The C++ StaticSegmentModel.
at::Tensor run_static(const Forward& model, const at::Tensor& input, int64_t segment);

}  // namespace stemkit::segment
