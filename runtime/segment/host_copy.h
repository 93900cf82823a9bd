// Results of the segment drivers come back to the CPU window by window. A
// copy from the GPU into ordinary (pageable) memory runs at about 1.5 GB/s
// on an H200: for HTDemucs' four stems of a 180 s track (254 MB) that was a
// third of the whole separation. Into page-locked memory the same copy is a
// DMA at tens of GB/s; libtorch caches the pinned blocks, so the allocation
// is paid once.
#pragma once

#include <ATen/ATen.h>

namespace stemkit::segment {

// t on the CPU: itself when it is there already, else a copy in pinned memory.
inline at::Tensor to_host(const at::Tensor& t) {
  if (!t.device().is_cuda()) return t;
  at::Tensor host = at::empty(t.sizes(), t.options().device(at::kCPU).pinned_memory(true));
  host.copy_(t);
  return host;
}

}  // namespace stemkit::segment
