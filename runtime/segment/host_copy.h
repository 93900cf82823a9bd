// Results of the segment drivers come back to the CPU window by window. A
// copy from the GPU into ordinary (pageable) memory is slow (for HTDemucs it
// was a third of the whole separation: docs/runtime.md); into page-locked
// memory the same copy is a DMA, and libtorch caches the pinned blocks, so the
// allocation is paid once.
#pragma once

#include <ATen/ATen.h>

namespace stemkit::segment {

// An uninitialised float32 tensor in page-locked CPU memory. Called for a
// track's stems once every GPU pass is queued, a cold allocation
// (cudaHostAlloc, page by page) runs while the GPU still works. Allocated on
// another thread from the start of a separation instead, it held up the
// launching thread (docs/benchmarks.md).
inline at::Tensor pinned_empty(at::IntArrayRef sizes) {
  return at::empty(sizes, at::TensorOptions().dtype(at::kFloat).pinned_memory(true));
}

// t on the CPU: itself when it is there already, else a float32 copy in pinned memory.
inline at::Tensor to_host(const at::Tensor& t) {
  if (!t.device().is_cuda()) return t;
  at::Tensor host = pinned_empty(t.sizes());
  host.copy_(t);
  return host;
}

// Whether a separation whose whole track is one window keeps its stems on the
// model's device until they are final (the mix's statistics, the overlap-add,
// the averaging, the instrumental stem), then, from a GPU, copies them to the
// CPU once, into page-locked memory allocated while the GPU works
// (pinned_empty). The other way, each window's stems come back to the CPU
// to be finished there: each step after the GPU's work is then a pass over the
// stems in CPU memory, much of it in fresh pages, all of it after the GPU has
// finished (docs/runtime.md). On the CPU, the one window's result is used
// as it is instead of being copied into a zeroed track.
// `wanted` is SeparationOptions::device_assembly (the plan's assembly).
inline bool assemble_on_device(int64_t length, int64_t window, bool wanted) { return wanted && length <= window; }

}  // namespace stemkit::segment
