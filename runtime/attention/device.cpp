#include "runtime/attention/device.h"

#include <dlfcn.h>

namespace stemkit::attention {

std::string DeviceInfo::describe() const {
  switch (kind) {
    case Kind::cpu: return "CPU";
    case Kind::rocm: return (name.empty() ? std::string("AMD GPU") : name) + " (ROCm)";
    case Kind::cuda:
      return (name.empty() ? std::string("NVIDIA GPU") : name) + " (SM " + std::to_string(major) + "." +
             std::to_string(minor) + ")";
  }
  return "?";
}

DeviceInfo query_gpu(int index, bool rocm) {
  DeviceInfo info;
  if (rocm) {
    info.kind = DeviceInfo::Kind::rocm;
    return info;  // the policy needs no more on ROCm: flash everywhere
  }
  info.kind = DeviceInfo::Kind::cuda;
  // The CUDA driver API: cuInit, cuDeviceGet, cuDeviceGetAttribute, cuDeviceGetName.
  void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (!lib) return info;
  using Init = int (*)(unsigned);
  using Get = int (*)(int*, int);
  using Attr = int (*)(int*, int, int);
  using Name = int (*)(char*, int, int);
  auto init = reinterpret_cast<Init>(dlsym(lib, "cuInit"));
  auto get = reinterpret_cast<Get>(dlsym(lib, "cuDeviceGet"));
  auto attr = reinterpret_cast<Attr>(dlsym(lib, "cuDeviceGetAttribute"));
  auto name = reinterpret_cast<Name>(dlsym(lib, "cuDeviceGetName"));
  int device = 0;
  if (init && get && attr && init(0) == 0 && get(&device, index) == 0) {
    constexpr int kMajor = 75, kMinor = 76;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR
    attr(&info.major, kMajor, device);
    attr(&info.minor, kMinor, device);
    char buf[256] = {};
    if (name && name(buf, sizeof buf - 1, device) == 0) info.name = buf;
  }
  // The driver stays loaded: libtorch uses it too.
  return info;
}

}  // namespace stemkit::attention
