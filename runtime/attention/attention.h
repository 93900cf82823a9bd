// The attention policy: the one function every model calls for attention,
// and the rules that pick its backend. This is the C++ form of the
// BS-RoFormer attention patches and of demucs' SDPA patch
// (manifests/*.yaml, runtime patches "attention-policy" and
// "sdpa-attention-runtime").
//
// Rules (choose()):
//   forced by Policy::forced (the --attention option)
//   CPU                      -> libtorch's own choice (on libtorch 1.13, which has no SDPA:
//                               exact math, the scale applied to q and the softmax in place)
//   fp32/fp64 on a GPU       -> mem-efficient: flash and cuDNN kernels reject fp32
//   ROCm, fp16/bf16          -> flash
//   NVIDIA SM 9.0+, fp16/bf16-> keys >= 512: cuDNN where libtorch has it (2.4+);
//                               keys < 512: mem-efficient (the faster of the two at
//                               each length: docs/attention.md has the measurements)
//   NVIDIA SM 8.x, fp16/bf16 -> flash
//   older NVIDIA, fp16/bf16  -> mem-efficient
//   RoFormer layers on NVIDIA, fp16/bf16, keys <= 64, head size 64, no override
//                            -> stemkit's band kernel (runtime/kernels/): rotary, attention
//                               and gate in one pass, recorded here through record_fused()
//   a head size a backend's kernels do not take (flash and cuDNN: multiples of 8
//   up to 256; mem-efficient: multiples of 8 in fp16/bf16, of 4 in fp32)
//                            -> the next backend that takes it, down to math
// The chosen backend is the only one enabled for the call. Should libtorch
// still refuse the inputs, attend() falls back along the same order (never
// when forced) and records why: the first call of each shape runs eagerly
// (graph capture warms up first), so a captured graph replays the fallback.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/attention/device.h"

namespace stemkit::attention {

enum class Backend { automatic, flash, efficient, cudnn, math };
const char* name(Backend backend);                            // "auto", "flash", "efficient", "cudnn", "math"
std::optional<Backend> parse_backend(std::string_view text);  // the inverse; nullopt for anything else

struct Choice {
  Backend backend = Backend::automatic;
  std::string reason;
};

// The policy as a pure function of the device, the dtype, the key sequence
// length, the head size and an override.
inline constexpr int64_t kLongSequence = 512;
Choice choose(const DeviceInfo& device, c10::ScalarType dtype, int64_t key_length, int64_t head_dim,
              std::optional<Backend> forced);

// Whether a backend's kernels take this dtype and head size (libtorch's own
// checks, for the cases the models meet); math and auto take everything.
bool takes(Backend backend, c10::ScalarType dtype, int64_t head_dim);

// What each call shape got: "NVIDIA H100 (SM 9.0), Half, keys >= 512, head 64"
// -> backend and reason. Shared by the copies of a Policy, so that the plan a
// model was loaded with sees what its forwards decided (separate --explain).
class DecisionLog {
 public:
  struct Entry {
    std::string shape;
    std::string backend;  // name(Backend), or a fused kernel's name
    std::string reason;
  };
  // The entry for `shape`, if one was recorded.
  std::optional<Entry> find(const std::string& shape) const;
  // Records `entry` unless its shape has one; returns whether it was new.
  bool record(Entry entry);
  // Replaces the entry of a shape (a fallback after a refusal).
  void replace(Entry entry);
  std::vector<Entry> entries() const;  // in shape order

 private:
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

// How a model's attention is chosen: by the rules, or forced; and where the
// choices are recorded. Part of plan::KernelPlan.
struct Policy {
  std::optional<Backend> forced;  // --attention; nullopt: the rules (choose())
  std::shared_ptr<DecisionLog> log = std::make_shared<DecisionLog>();
};

// Attention over (batch, heads, seq, dim) tensors: softmax(q kᵀ · scale) v,
// scale defaulting to 1/sqrt(dim). Returns (batch, heads, seq_q, dim).
at::Tensor attend(const Policy& policy, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  std::optional<double> scale = std::nullopt);

// The same with an explicit backend (benchmarks and tests): only that backend is enabled.
at::Tensor attend_with(Backend backend, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       std::optional<double> scale = std::nullopt);

// Exact math path in the input dtype, used where libtorch has no SDPA (1.13).
at::Tensor attend_math(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       std::optional<double> scale = std::nullopt);

// Records, as attend() records its choices, attention computed outside
// attend() on tensors like `like` over `keys` keys: the fused kernels.
void record_fused(const Policy& policy, const at::Tensor& like, int64_t keys, const std::string& what);

// Whether this libtorch offers a given backend at all (cuDNN needs 2.4+, none but math on 1.13).
bool available(Backend backend);

}  // namespace stemkit::attention
