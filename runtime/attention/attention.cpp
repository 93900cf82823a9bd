#include "runtime/attention/attention.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <stdexcept>

#include "runtime/compat/torch_compat.h"
#include "runtime/error.h"

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

bool takes(Backend backend, c10::ScalarType dtype, int64_t head_dim) {
  const bool half = dtype == at::kHalf || dtype == at::kBFloat16;
  switch (backend) {
    case Backend::flash:
    case Backend::cudnn: return half && head_dim % 8 == 0 && head_dim <= 256;
    case Backend::efficient: return head_dim % (half ? 8 : 4) == 0;
    case Backend::math:
    case Backend::automatic: return true;
  }
  return false;
}

namespace {

// The rules without the head size: the backend that is fastest where it runs.
Choice preferred(const DeviceInfo& device, c10::ScalarType dtype, int64_t key_length) {
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

// The backends tried after `b` when it cannot run, in order.
std::vector<Backend> fallbacks(Backend b) {
  switch (b) {
    case Backend::cudnn: return {Backend::flash, Backend::efficient, Backend::math};
    case Backend::flash: return {Backend::efficient, Backend::math};
    case Backend::efficient: return {Backend::math};
    default: return {};
  }
}

}  // namespace

Choice choose(const DeviceInfo& device, c10::ScalarType dtype, int64_t key_length, int64_t head_dim,
              std::optional<Backend> forced) {
  if (forced) return {*forced, "forced by --attention"};
  if (device.kind == DeviceInfo::Kind::cpu)
    return {Backend::automatic, STEMKIT_HAS_SDPA
                                    ? "CPU: libtorch's own kernel choice"
                                    : "CPU, libtorch 1.x: exact math, the scale in q and the softmax in place"};
  Choice c = preferred(device, dtype, key_length);
  if (takes(c.backend, dtype, head_dim)) return c;
  for (Backend next : fallbacks(c.backend))
    if (takes(next, dtype, head_dim) && available(next))
      return {next, std::string(name(c.backend)) + " takes no head size " + std::to_string(head_dim) + " in " +
                        c10::toString(dtype) + ": " + name(next)};
  return {Backend::math, "no fused backend takes this head size: math"};
}

std::optional<DecisionLog::Entry> DecisionLog::find(const std::string& shape) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(shape);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

bool DecisionLog::record(Entry entry) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string shape = entry.shape;
  return entries_.emplace(std::move(shape), std::move(entry)).second;
}

void DecisionLog::replace(Entry entry) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string shape = entry.shape;
  entries_[shape] = std::move(entry);
}

std::vector<DecisionLog::Entry> DecisionLog::entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Entry> out;
  for (const auto& [shape, e] : entries_) out.push_back(e);
  return out;
}

namespace {

std::mutex mutex;  // guards gpu_of's cache

DeviceInfo gpu_of(const at::Tensor& t) {
  if (!t.is_cuda()) return {};
  std::lock_guard<std::mutex> lock(mutex);
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

bool available(Backend backend) {
  switch (backend) {
    case Backend::math:
    case Backend::automatic: return true;
    case Backend::flash:
    case Backend::efficient: return STEMKIT_HAS_SDPA;
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

namespace {

// attend_math's result for the CPU, one (batch, head) at a time: a head's
// scores (queries x keys: 29 MB for HTDemucs' 2688 tokens) are made, turned
// into weights in place and used while they are still in cache, where one
// batched product over every head (231 MB of scores) went through memory
// three times. Same bits, and faster (docs/benchmarks.md, "HTDemucs on the
// CPU"). The scale goes into q before
// the first GEMM (as PyTorch's own attention does; exact where the scale is a
// power of two, as 1/sqrt(64) is). The result is laid out (b, i, h, d) and
// returned as its (b, h, i, d) view: the caller's merge of the heads into
// tokens is then a view, not a copy.
at::Tensor attend_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), Tk = k.size(2), D = v.size(3);
  const at::Tensor qs = q * scale;
  at::Tensor out = at::empty({B, Tq, H, D}, q.options());
  at::Tensor scores = at::empty({Tq, Tk}, q.options());  // one head's, reused
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      at::mm_out(scores, qs[b][h], k[b][h].t());    // (i, d) x (d, j)
      at::_softmax_out(scores, scores, -1, false);  // softmax over j, in place
      at::Tensor o = out[b].select(1, h);           // (i, d), rows H * D apart
      at::mm_out(o, scores, v[b][h]);               // (i, j) x (j, d)
    }
  return out.transpose(1, 2);
}

}  // namespace

at::Tensor attend_with(Backend backend, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       std::optional<double> scale) {
  check_shapes(q, k, v);
  if (!available(backend))
    throw Error("attention backend {} needs a newer libtorch than {}", name(backend), compat::torch_version());
#if STEMKIT_HAS_SDPA
  if (backend == Backend::automatic) return sdpa(q, k, v, scale);
  OnlyBackend only(backend);
  return sdpa(q, k, v, scale);
#else
  if (backend == Backend::automatic && q.device().is_cpu())
    return attend_cpu(q, k, v, scale ? *scale : 1.0 / std::sqrt(double(q.size(-1))));
  return attend_math(q, k, v, scale);
#endif
}

namespace {

std::string shape_key(const DeviceInfo& device, c10::ScalarType dtype, int64_t keys, int64_t head_dim) {
  return device.describe() + ", " + c10::toString(dtype) + (keys < kLongSequence ? ", keys < 512" : ", keys >= 512") +
         ", head " + std::to_string(head_dim);
}

}  // namespace

at::Tensor attend(const Policy& policy, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  std::optional<double> scale) {
  check_shapes(q, k, v);
  const DeviceInfo device = gpu_of(q);
  const int64_t head_dim = q.size(3);
  const std::string key = shape_key(device, q.scalar_type(), k.size(2), head_dim);
  Backend backend;
  if (auto seen = policy.log->find(key); seen && parse_backend(seen->backend)) {
    backend = *parse_backend(seen->backend);  // decided by an earlier call of this shape
  } else {
    const Choice c = choose(device, q.scalar_type(), k.size(2), head_dim, policy.forced);
    policy.log->record({key, name(c.backend), c.reason});
    backend = c.backend;
  }
  if (policy.forced || backend == Backend::math || backend == Backend::automatic)
    return attend_with(backend, q, k, v, scale);
  // libtorch may still refuse inputs the rules let through (layouts, sizes,
  // builds): the next backend in the order, recorded so later calls go there.
  try {
    return attend_with(backend, q, k, v, scale);
  } catch (const c10::Error& e) {
    std::string why = e.what_without_backtrace();
    why = why.substr(0, std::min(why.find('\n'), size_t{100}));
    for (Backend next : fallbacks(backend)) {
      if (!available(next) || !takes(next, q.scalar_type(), head_dim)) continue;
      policy.log->replace(
          {key, name(next), std::string(name(backend)) + " refused these inputs (" + why + "): " + name(next)});
      try {
        return attend_with(next, q, k, v, scale);
      } catch (const c10::Error&) {
      }
    }
    throw;
  }
}

void record_fused(const Policy& policy, const at::Tensor& like, int64_t keys, const std::string& what) {
  const std::string key = gpu_of(like).describe() + ", " + std::string(c10::toString(like.scalar_type())) +
                          ", keys <= " + std::to_string(keys);
  policy.log->record({key, what, "stemkit's fused kernel"});
}

}  // namespace stemkit::attention
