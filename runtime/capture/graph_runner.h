// Graph capture of a static-shape forward: what our users tried with
// torch.compile(mode="reduce-overhead") and could not make work on ROCm.
//
// On a CUDA build with CUDA inputs, the first call for an input shape warms
// the forward up on a side stream, captures it as a CUDA graph, and every
// later call of that shape copies the input into the graph's buffer and
// replays it: one launch instead of hundreds. Elsewhere (CPU, libtorch
// without CUDA, ROCm for now, a forward that cannot be captured) it runs
// eagerly and status() says why.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/segment/overlap_add.h"

namespace stemkit::capture {

class GraphRunner {
 public:
  explicit GraphRunner(segment::Forward forward, bool enabled = true);
  ~GraphRunner();
  GraphRunner(const GraphRunner&) = delete;
  GraphRunner& operator=(const GraphRunner&) = delete;

  // Same contract as the forward; the result is the caller's (a copy of the graph's output).
  at::Tensor operator()(const at::Tensor& input);

  bool capturing() const;                                // graphs are in use (at least one captured)
  bool requested() const { return requested_; }          // capture was asked for (it may have failed since)
  const std::string& status() const { return status_; }  // "replaying 1 graph" / "eager: <why>"

 private:
  struct Graphs;
  segment::Forward forward_;
  bool requested_;
  bool enabled_;
  std::string status_;
  std::unique_ptr<Graphs> graphs_;
};

// The runner in `slot`, kept when it was made with the same `enabled` (so its
// captured graphs are replayed across calls), else a new one for `forward`.
GraphRunner& reuse_or_make(std::shared_ptr<GraphRunner>& slot, segment::Forward forward, bool enabled);

// Whether this build can capture graphs at all.
bool capture_supported();

// Whether a capture leaves the process's other threads alone (thread-local
// capture mode, libtorch 2.1+), so that several models, one per thread, may
// use graphs at once: on several GPUs, or twice on one. With libtorch's
// default (global) mode, another thread's cudaMalloc or copy to the CPU fails
// while any capture lasts. Either way captures take turns, one at a time in
// the process (the allocator's cache is emptied before each, on every device).
bool captures_per_thread();

}  // namespace stemkit::capture
