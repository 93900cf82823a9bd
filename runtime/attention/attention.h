// The attention policy: the one function every model calls for attention,
// and the rules that pick its backend. This is the C++ form of the
// BS-RoFormer attention patches and of demucs' SDPA patch
// (manifests/*.yaml, runtime patches "attention-policy" and
// "sdpa-attention-runtime").
//
// Rules (choose()):
//   forced by set_override() (the --attention option) or STEMKIT_ATTENTION
//   CPU                      -> libtorch's own choice (exact math on libtorch 1.13)
//   fp32/fp64 on a GPU       -> mem-efficient: flash and cuDNN kernels reject fp32
//   ROCm, fp16/bf16          -> flash
//   NVIDIA SM 9.0+, fp16/bf16-> keys >= 512: cuDNN where libtorch has it (2.4+), 1.4x
//                               faster than flash on the H100 at BS-RoFormer's time axis;
//                               keys < 512: mem-efficient, 1.3x faster than cuDNN at its
//                               band axis (docs/attention.md). Inputs cuDNN refuses fall
//                               back to flash, logged once
//   NVIDIA SM 8.x, fp16/bf16 -> flash
//   older NVIDIA, fp16/bf16  -> mem-efficient
//   RoFormer layers on NVIDIA, fp16/bf16, keys <= 64, head size 64, no override
//                            -> stemkit's band kernel (runtime/kernels/): rotary, attention
//                               and gate in one pass, recorded here through record_fused()
// The chosen backend is the only one enabled for the call, so a backend that
// cannot run fails loudly instead of silently falling back.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/attention/device.h"

namespace stemkit::attention {

enum class Backend { automatic, flash, efficient, cudnn, math };
const char* name(Backend backend);                          // "auto", "flash", "efficient", "cudnn", "math"
std::optional<Backend> parse_backend(std::string_view text);  // the inverse; nullopt for anything else

struct Choice {
  Backend backend = Backend::automatic;
  std::string reason;
};

// The policy as a pure function of the device, the dtype, the key sequence
// length and an override.
inline constexpr int64_t kLongSequence = 512;
Choice choose(const DeviceInfo& device, c10::ScalarType dtype, int64_t key_length, std::optional<Backend> forced);

// Process-wide override (the runtime's --attention option); when unset,
// STEMKIT_ATTENTION is read. Throws std::invalid_argument for a bad name.
void set_override(std::optional<Backend> backend);
std::optional<Backend> current_override();

// Attention over (batch, heads, seq, dim) tensors: softmax(q kᵀ · scale) v,
// scale defaulting to 1/sqrt(dim). Returns (batch, heads, seq_q, dim).
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, std::optional<double> scale = std::nullopt);

// The same with an explicit backend (benchmarks and tests): only that backend is enabled.
at::Tensor attend_with(Backend backend, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       std::optional<double> scale = std::nullopt);

// Exact math path in the input dtype, used where libtorch has no SDPA (1.13).
at::Tensor attend_math(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, std::optional<double> scale = std::nullopt);

// Records (and logs once, as attend() logs its choices) attention computed
// outside attend() on tensors like `like` over `keys` keys: the fused kernels.
void record_fused(const at::Tensor& like, int64_t keys, const std::string& what);

// One line per (device, dtype) decided so far: "NVIDIA H100 (SM 9.0), Half: flash (NVIDIA SM 8.0+ ...)".
std::vector<std::string> decisions();

// Whether this libtorch offers a given backend at all (cuDNN needs 2.4+, none but math on 1.13).
bool available(Backend backend);

}  // namespace stemkit::attention
