// Peak GPU memory, as benchmarks report it: what libtorch's caching
// allocator handed out (torch.cuda.max_memory_allocated) and what it held
// from the driver (max_memory_reserved, close to what nvidia-smi shows).
// Zeros on CPU builds and for CPU devices.
#pragma once

#include <cstdint>

namespace stemkit::bench {

struct GpuMemory {
  int64_t peak_allocated = 0;  // bytes
  int64_t peak_reserved = 0;   // bytes
};

bool gpu_memory_supported();  // a CUDA (or ROCm) build
void reset_gpu_peak(int device);
GpuMemory gpu_peak(int device);
void gpu_synchronize(int device);
void release_gpu_cache();  // hands cached blocks back to the driver (after running out of memory)

}  // namespace stemkit::bench
