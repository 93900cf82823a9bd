#include "runtime/plan/execution_plan.h"

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include "runtime/kernels/lt_gemm.h"
#include "runtime/kernels/roformer_kernels.h"

namespace stemkit::plan {

const char* name(Gemm gemm) { return gemm == Gemm::cublaslt ? "cublaslt" : "aten"; }
const char* name(Gelu gelu) { return gelu == Gelu::tanh_epilogue ? "tanh-epilogue" : "exact"; }

namespace {
const char* precision_name(at::ScalarType dtype) {
  return dtype == at::kHalf ? "fp16" : dtype == at::kBFloat16 ? "bf16" : "fp32";
}
}  // namespace

KernelPlan decide_kernels(const at::Device& device, at::ScalarType dtype, const KernelOptions& o,
                          std::vector<std::pair<std::string, Reasoned>>* reasons) {
  KernelPlan k;
  auto say = [&](const char* what, std::string value, std::string reason) {
    if (reasons) reasons->push_back({what, {std::move(value), std::move(reason)}});
  };
  const at::Tensor like = at::empty({0}, at::TensorOptions().device(device).dtype(dtype));
  const bool half = dtype == at::kHalf || dtype == at::kBFloat16;

  k.reference_forward = o.reference_forward;
  const char* reference = "--reference-forward: the blocks' reference forwards use none";
  say("blocks", k.reference_forward ? "reference" : "fast",
      k.reference_forward
          ? "--reference-forward: the blocks as upstream writes them, line for line"
          : "the RoFormer blocks and HTDemucs' DConv, GroupNorms and LayerScale through their fast paths, "
            "the same math in fewer passes (--reference-forward: upstream's forwards)");

  k.htdemucs_fast_blocks = !k.reference_forward && !device.is_cpu();
  say("htdemucs blocks", k.htdemucs_fast_blocks ? "fast" : "reference",
      k.reference_forward ? std::string("--reference-forward")
      : device.is_cpu()
          ? std::string("the CPU: upstream's DConv and GroupNorms (ATen's group norm kernel) beat the fast paths, "
                        "whose statistics over many short rows are slower there")
          : std::string("the GPU: the fast DConv, GroupNorms and LayerScale (fewer passes, no layout copies)"));

  k.attention.forced = o.attention;
  say("attention", o.attention ? attention::name(*o.attention) : "auto",
      o.attention ? "--attention" : "the policy's rules, per call shape (below)");

  k.fused_kernels = !k.reference_forward && o.fused_kernels && kernels::usable_for(like);
  if (k.reference_forward)
    say("fused kernels", "off", reference);
  else if (!o.fused_kernels)
    say("fused kernels", "off", "--fused-kernels off");
  else if (!kernels::usable_for(like))
    say("fused kernels", "off", device.is_cuda() ? kernels::describe() : "the CPU runs ATen's kernels");
  else
    say("fused kernels", "on",
        std::string(kernels::describe()) + ": RMS norm, rotary, gates; attention for short axes");

  k.seq_kernel = k.fused_kernels && o.seq_kernel;
  say("seq kernel", k.seq_kernel ? "on" : "off",
      k.reference_forward ? reference
      : k.seq_kernel      ? "--seq-kernel: the fused kernel for long axes too (less memory, same speed on the H100)"
                          : "long axes through SDPA (--seq-kernel: the fused kernel, less memory)");

  const bool lt = !k.reference_forward && !o.aten_gemm && kernels::lt_usable_for(like);
  k.gemm = lt ? Gemm::cublaslt : Gemm::aten;
  if (lt) kernels::lt_keep_algorithms(o.gemm_algorithm_dir);
  say("gemm", name(k.gemm),
      k.reference_forward ? std::string(reference)
      : o.aten_gemm       ? "--gemm aten"
      : lt                ? std::string(kernels::lt_describe()) + (o.gemm_algorithm_dir.empty()
                                                                       ? std::string(", timed in each run (no HOME to keep them)")
                                                                       : ", timed once and kept in " + o.gemm_algorithm_dir)
                          : std::string("ATen: ") + kernels::lt_describe());

  const bool tanh = !k.reference_forward && !o.exact_gelu && device.is_cuda() && half;
  k.gelu = tanh ? Gelu::tanh_epilogue : Gelu::exact;
  say("gelu", name(k.gelu),
      k.reference_forward ? reference
      : o.exact_gelu      ? "--exact-gelu"
      : tanh
          ? "fp16/bf16 on a GPU: tanh GELU in the GEMM's epilogue, within 4.7e-4 of erf (below the format's resolution)"
          : "erf GELU, as upstream");
  return k;
}

std::string ExecutionPlan::explain() const {
  std::string out;
  auto line = [&](const std::string& what, const std::string& value, const std::string& reason) {
    out += what + ": " + value + (reason.empty() ? "" : " (" + reason + ")") + "\n";
  };
  line("model", model, "");
  line("device", device.str(), device_name);
  if (!devices.value.empty()) line("devices", devices.value, devices.reason);
  if (!cpu_threads.value.empty()) line("cpu threads", cpu_threads.value, cpu_threads.reason);
  line("precision", precision_name(dtype), precision_reason);
  line("batch", std::to_string(batch_size), batch_reason);
  for (const auto& [what, r] : cutting) line(what, r.value, r.reason);
  line("graphs", graphs ? "on" : "off", graphs_reason);
  char window[32];
  std::snprintf(window, sizeof window, "%g s", window_seconds);
  line("window", window, window_reason);
  line("assembly", device_assembly ? "device" : "host",
       device_assembly ? "a track of one window is finished on the device and copied back once; longer ones window by "
                         "window on the CPU"
                       : "every window's stems finished on the CPU");
  line("host memory", host_block_cache ? "block cache" : "libtorch's allocator", host_block_cache_reason);
  for (const auto& [what, r] : kernel_reasons) line(what, r.value, r.reason);
  for (const auto& e : kernels.attention.log->entries()) line("attention on " + e.shape, e.backend, e.reason);
  return out;
}

nlohmann::json ExecutionPlan::to_json() const {
  nlohmann::json kernel_json = nlohmann::json::object();
  for (const auto& [what, r] : kernel_reasons) kernel_json[what] = {{"value", r.value}, {"reason", r.reason}};
  nlohmann::json cutting_json = nlohmann::json::object();
  for (const auto& [what, r] : cutting) cutting_json[what] = {{"value", r.value}, {"reason", r.reason}};
  nlohmann::json calls = nlohmann::json::array();
  for (const auto& e : kernels.attention.log->entries())
    calls.push_back({{"shape", e.shape}, {"backend", e.backend}, {"reason", e.reason}});
  nlohmann::json out = {
      {"model", model},
      {"device", device.str()},
      {"device_name", device_name},
      {"precision", {{"value", precision_name(dtype)}, {"reason", precision_reason}}},
      {"batch_size", {{"value", batch_size}, {"reason", batch_reason}}},
      {"cutting", cutting_json},
      {"graphs", {{"value", graphs}, {"reason", graphs_reason}}},
      {"window_seconds", {{"value", window_seconds}, {"reason", window_reason}}},
      {"assembly", device_assembly ? "device" : "host"},
      {"host_memory",
       {{"value", host_block_cache ? "block cache" : "libtorch's allocator"}, {"reason", host_block_cache_reason}}},
      {"kernels", kernel_json},
      {"attention_calls", calls}};
  if (!devices.value.empty()) out["devices"] = {{"value", devices.value}, {"reason", devices.reason}};
  if (!cpu_threads.value.empty()) out["cpu_threads"] = {{"value", cpu_threads.value}, {"reason", cpu_threads.reason}};
  return out;
}

}  // namespace stemkit::plan
