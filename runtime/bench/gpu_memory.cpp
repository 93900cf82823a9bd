#include "runtime/bench/gpu_memory.h"

// The caching allocator's statistics. A ROCm libtorch ships them hipified
// (c10/hip, namespace c10::hip); our sources are not hipified, so name them.
#if defined(STEMKIT_ROCM)
#include <c10/hip/HIPCachingAllocator.h>
#include <c10/hip/HIPFunctions.h>
#define STEMKIT_GPU_MEMORY 1
namespace gpu_allocator = c10::hip::HIPCachingAllocator;
namespace gpu_runtime = c10::hip;
#elif defined(STEMKIT_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#define STEMKIT_GPU_MEMORY 1
namespace gpu_allocator = c10::cuda::CUDACachingAllocator;
namespace gpu_runtime = c10::cuda;
#endif

namespace stemkit::bench {

bool gpu_memory_supported() {
#if defined(STEMKIT_GPU_MEMORY)
  return true;
#else
  return false;
#endif
}

void reset_gpu_peak(int device) {
#if defined(STEMKIT_GPU_MEMORY)
  gpu_allocator::resetPeakStats(device);
#else
  (void)device;
#endif
}

GpuMemory gpu_peak(int device) {
  GpuMemory m;
#if defined(STEMKIT_GPU_MEMORY)
  auto stats = gpu_allocator::getDeviceStats(device);
  constexpr size_t aggregate = 0;  // StatType::AGGREGATE
  m.peak_allocated = stats.allocated_bytes[aggregate].peak;
  m.peak_reserved = stats.reserved_bytes[aggregate].peak;
#else
  (void)device;
#endif
  return m;
}

void gpu_synchronize(int device) {
#if defined(STEMKIT_GPU_MEMORY)
  (void)device;  // device_synchronize() waits for every device
  gpu_runtime::device_synchronize();
#else
  (void)device;
#endif
}

void release_gpu_cache() {
#if defined(STEMKIT_GPU_MEMORY)
  gpu_allocator::emptyCache();
#endif
}

}  // namespace stemkit::bench
