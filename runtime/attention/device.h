// What the attention policy needs to know about a device: CPU, CUDA or ROCm,
// and for NVIDIA the compute capability. Queried through the GPU driver with
// dlopen, so no CUDA or HIP headers are needed to build the runtime.
#pragma once

#include <string>

namespace stemkit::attention {

struct DeviceInfo {
  enum class Kind { cpu, cuda, rocm } kind = Kind::cpu;
  int major = 0;  // compute capability (NVIDIA)
  int minor = 0;
  std::string name;
  std::string describe() const;  // "NVIDIA H100 80GB HBM3 (SM 9.0)"
};

// `index` is the GPU ordinal; `rocm` says the libtorch in use is a ROCm build.
DeviceInfo query_gpu(int index, bool rocm);

}  // namespace stemkit::attention
