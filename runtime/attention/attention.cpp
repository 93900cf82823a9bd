#include "runtime/attention/attention.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <stdexcept>

#include "runtime/compat/torch_compat.h"

namespace stemkit::attention {

const char* name(Backend backend) {
  switch (backend) {
    case Backend::automatic: return "auto";
    case Backend::flash: return "flash";
    case Backend::efficient: return "efficient";
    case Backend::cudnn: return "cudnn";
    case Backend::math: return "math";
  }
  return "?";
}

std::optional<Backend> parse_backend(std::string_view text) {
  for (Backend b : {Backend::automatic, Backend::flash, Backend::efficient, Backend::cudnn, Backend::math})
    if (text == name(b)) return b;
  return std::nullopt;
}

Choice choose(const DeviceInfo& device, c10::ScalarType dtype, int64_t key_length, std::optional<Backend> forced) {
  if (forced) return {*forced, "forced by --attention or STEMKIT_ATTENTION"};
  if (device.kind == DeviceInfo::Kind::cpu)
    return {Backend::automatic, STEMKIT_HAS_SDPA ? "CPU: libtorch's own kernel choice" : "CPU, libtorch 1.x: exact math"};
  bool half = dtype == at::kHalf || dtype == at::kBFloat16;
  if (!half) return {Backend::efficient, "fp32 on a GPU: flash and cuDNN kernels take fp16/bf16 only"};
  if (device.kind == DeviceInfo::Kind::rocm) return {Backend::flash, "ROCm: flash attention"};
  if (device.major >= 9 && key_length < kLongSequence)
    return {Backend::efficient, "NVIDIA SM 9.0+, keys < 512: mem-efficient (fastest on the H100 for short sequences)"};
  if (device.major >= 9 && available(Backend::cudnn))
    return {Backend::cudnn, "NVIDIA SM 9.0+, keys >= 512: cuDNN (fastest on the H100 for long sequences)"};
  if (device.major >= 8) return {Backend::flash, "NVIDIA SM 8.0+: flash attention"};
  return {Backend::efficient, "NVIDIA before SM 8.0: no flash kernel"};
}

namespace {

std::mutex mutex;
std::optional<Backend> override_backend;
bool override_set = false;
std::map<std::string, std::string> decided;  // "(device), dtype" -> "backend (reason)"

DeviceInfo gpu_of(const at::Tensor& t) {
  if (!t.is_cuda()) return {};
  static std::map<int, DeviceInfo> cache;
  int index = t.get_device();
  auto it = cache.find(index);
  if (it == cache.end()) {
#if defined(STEMKIT_ROCM)
    it = cache.emplace(index, query_gpu(index, true)).first;
#else
    it = cache.emplace(index, query_gpu(index, false)).first;
#endif
  }
  return it->second;
}

void check_shapes(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4)
    throw std::invalid_argument("attention: q, k and v must be (batch, heads, seq, dim)");
  if (k.size(2) != v.size(2) || q.size(3) != k.size(3) || q.size(0) != k.size(0) || q.size(1) != k.size(1))
    throw std::invalid_argument("attention: q, k and v shapes do not fit together");
}

#if STEMKIT_HAS_SDPA
// Enables exactly one SDPA backend for its lifetime and restores the previous switches.
class OnlyBackend {
 public:
  explicit OnlyBackend(Backend b) {
    auto& ctx = at::globalContext();
    flash_ = ctx.userEnabledFlashSDP();
    efficient_ = ctx.userEnabledMemEfficientSDP();
    math_ = ctx.userEnabledMathSDP();
    ctx.setSDPUseFlash(b == Backend::flash);
    ctx.setSDPUseMemEfficient(b == Backend::efficient);
    ctx.setSDPUseMath(b == Backend::math);
#if STEMKIT_HAS_SDPA_CUDNN
    cudnn_ = ctx.userEnabledCuDNNSDP();
    ctx.setSDPUseCuDNN(b == Backend::cudnn);
#endif
  }
  ~OnlyBackend() {
    auto& ctx = at::globalContext();
    ctx.setSDPUseFlash(flash_);
    ctx.setSDPUseMemEfficient(efficient_);
    ctx.setSDPUseMath(math_);
#if STEMKIT_HAS_SDPA_CUDNN
    ctx.setSDPUseCuDNN(cudnn_);
#endif
  }

 private:
  bool flash_ = true, efficient_ = true, math_ = true, cudnn_ = true;
};

at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, std::optional<double> scale) {
#if STEMKIT_HAS_SDPA_SCALE
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, false, scale);
#else
  // 2.0 has no scale argument: SDPA scales by 1/sqrt(dim), so pre-scale q to get `scale`.
  if (!scale) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, false);
  return at::scaled_dot_product_attention(q * (*scale * std::sqrt(double(q.size(-1)))), k, v, {}, 0.0, false);
#endif
}
#endif

}  // namespace

void set_override(std::optional<Backend> backend) {
  std::lock_guard<std::mutex> lock(mutex);
  override_backend = backend;
  override_set = true;
}

std::optional<Backend> current_override() {
  std::lock_guard<std::mutex> lock(mutex);
  if (override_set) return override_backend;
  const char* env = std::getenv("STEMKIT_ATTENTION");
  if (!env || !*env) return std::nullopt;
  auto b = parse_backend(env);
  if (!b) throw std::invalid_argument(std::string("STEMKIT_ATTENTION=") + env + ": expected auto, flash, efficient, cudnn or math");
  if (*b == Backend::automatic) return std::nullopt;
  return b;
}

bool available(Backend backend) {
  switch (backend) {
    case Backend::math: case Backend::automatic: return true;
    case Backend::flash: case Backend::efficient: return STEMKIT_HAS_SDPA;
    case Backend::cudnn: return STEMKIT_HAS_SDPA_CUDNN;
  }
  return false;
}

at::Tensor attend_math(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, std::optional<double> scale) {
  check_shapes(q, k, v);
  double s = scale ? *scale : 1.0 / std::sqrt(double(q.size(-1)));
  // (b, h, i, d) x (b, h, d, j) -> (b, h, i, j) -> softmax over j -> x (b, h, j, d)
  at::Tensor weights = at::softmax(at::matmul(q, k.transpose(-2, -1)) * s, -1);
  return at::matmul(weights, v);
}

at::Tensor attend_with(Backend backend, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, std::optional<double> scale) {
  check_shapes(q, k, v);
  if (!available(backend))
    throw std::invalid_argument(std::string("attention backend ") + name(backend) + " needs a newer libtorch than " +
                                compat::torch_version());
#if STEMKIT_HAS_SDPA
  if (backend == Backend::automatic) return sdpa(q, k, v, scale);
  OnlyBackend only(backend);
  return sdpa(q, k, v, scale);
#else
  return attend_math(q, k, v, scale);
#endif
}

at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, std::optional<double> scale) {
  DeviceInfo device = gpu_of(q);
  std::optional<Backend> forced = current_override();
  Choice c = choose(device, q.scalar_type(), k.size(2), forced);
  std::string key = device.describe() + ", " + std::string(c10::toString(q.scalar_type())) +
                    (k.size(2) < kLongSequence ? ", keys < 512" : ", keys >= 512");
  {
    std::lock_guard<std::mutex> lock(mutex);
    // cuDNN refused these inputs before (head size, layout): flash, as on SM 8.x.
    if (auto it = decided.find(key); it != decided.end() && it->second.rfind("flash (cuDNN", 0) == 0)
      c = {Backend::flash, "cuDNN cannot run these inputs"};
    std::string value = std::string(name(c.backend)) + " (" + c.reason + ")";
    if (decided.emplace(key, value).second && !std::getenv("STEMKIT_QUIET"))
      std::cerr << "stemkit: attention on " << key << ": " << value << "\n";
  }
  if (c.backend != Backend::cudnn || forced) return attend_with(c.backend, q, k, v, scale);
  try {
    return attend_with(c.backend, q, k, v, scale);
  } catch (const c10::Error& e) {
    std::lock_guard<std::mutex> lock(mutex);
    decided[key] = "flash (cuDNN cannot run these inputs: " + std::string(e.what_without_backtrace()).substr(0, 80) + ")";
    if (!std::getenv("STEMKIT_QUIET")) std::cerr << "stemkit: attention on " << key << ": " << decided[key] << "\n";
  }
  return attend_with(Backend::flash, q, k, v, scale);
}

void record_fused(const at::Tensor& like, int64_t keys, const std::string& what) {
  std::string key = gpu_of(like).describe() + ", " + std::string(c10::toString(like.scalar_type())) + ", keys <= " +
                    std::to_string(keys);
  std::lock_guard<std::mutex> lock(mutex);
  if (decided.emplace(key, what).second && !std::getenv("STEMKIT_QUIET"))
    std::cerr << "stemkit: attention on " << key << ": " << what << "\n";
}

std::vector<std::string> decisions() {
  std::lock_guard<std::mutex> lock(mutex);
  std::vector<std::string> out;
  for (const auto& [k, v] : decided) out.push_back(k + ": " + v);
  return out;
}

}  // namespace stemkit::attention
