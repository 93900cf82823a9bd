#include "runtime/bench/gpu_memory.h"

#if defined(STEMKIT_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace stemkit::bench {

bool gpu_memory_supported() {
#if defined(STEMKIT_CUDA)
  return true;
#else
  return false;
#endif
}

void reset_gpu_peak(int device) {
#if defined(STEMKIT_CUDA)
  c10::cuda::CUDACachingAllocator::resetPeakStats(device);
#else
  (void)device;
#endif
}

GpuMemory gpu_peak(int device) {
  GpuMemory m;
#if defined(STEMKIT_CUDA)
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
  constexpr size_t aggregate = 0;  // StatType::AGGREGATE
  m.peak_allocated = stats.allocated_bytes[aggregate].peak;
  m.peak_reserved = stats.reserved_bytes[aggregate].peak;
#else
  (void)device;
#endif
  return m;
}

void gpu_synchronize(int device) {
#if defined(STEMKIT_CUDA)
  (void)device;  // device_synchronize() waits for every device
  c10::cuda::device_synchronize();
#else
  (void)device;
#endif
}

void release_gpu_cache() {
#if defined(STEMKIT_CUDA)
  c10::cuda::CUDACachingAllocator::emptyCache();
#endif
}

}  // namespace stemkit::bench
