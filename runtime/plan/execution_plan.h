// What a run of `separate` will do, decided once when the model is loaded,
// from the options and the device, and printed by `separate --explain`:
//
//   precision   fp32, fp16 or bf16, and why (--precision, or auto's rule)
//   batch       segments per forward, and why (-b, the MSST config, --low-memory)
//   cutting     how the track is cut: demucs' segment, overlap and shifts, or an
//               MSST configuration's chunk_size and num_overlap, each with where
//               it came from (the option, the config, the model)
//   graphs      CUDA/HIP graph capture on or off, and why
//   window      seconds of stems kept on the device before they go to the CPU
//   assembly    where stems are finished: on the device when the track is one
//               window, else window by window on the CPU
//   host memory the CPU allocator: libtorch's, or the block cache that keeps
//               large blocks for reuse (runtime/memory/host_block_cache.h)
//   kernels     the KernelPlan (kernel_plan.h): fused kernels, GEMM backend,
//               GELU form, attention policy; each with its reason
//   attention   per call shape, the backend and why (filled by the first
//               forward of each shape; --explain runs one)
//
// The model code sees only the KernelPlan, handed to its to(); the runner
// reads the rest. Nothing else decides.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/plan/kernel_plan.h"

namespace stemkit::plan {

// The options that choose the KernelPlan (separate's "Execution" group).
struct KernelOptions {
  std::optional<attention::Backend> attention;  // --attention; nullopt: the policy's rules
  bool fused_kernels = true;                    // --fused-kernels off: ATen everywhere
  bool seq_kernel = false;                      // --seq-kernel
  bool aten_gemm = false;                       // --gemm aten
  bool exact_gelu = false;                      // --exact-gelu
  bool reference_forward = false;               // --reference-forward: upstream's forwards, no fast path
  std::string gemm_algorithm_dir;               // where cuBLASLt's timed choices are kept between runs ("": not kept)
};

// One decision and the reason for it, as --explain prints it.
struct Reasoned {
  std::string value;
  std::string reason;
};

// The KernelPlan for a model on `device` in `dtype`: each fast path where it
// can run and the options allow it. `reasons`, when given, gets one line per
// field ("blocks", "attention", "fused kernels", "seq kernel", "gemm", "gelu").
KernelPlan decide_kernels(const at::Device& device, at::ScalarType dtype, const KernelOptions& options,
                          std::vector<std::pair<std::string, Reasoned>>* reasons = nullptr);

struct ExecutionPlan {
  std::string model;
  at::Device device = at::kCPU;
  std::string device_name;  // "NVIDIA H100 80GB HBM3 (SM 9.0)", or "CPU"
  Reasoned devices;      // several devices (--device cuda:0,cuda:1): the list and how they share the files; else empty
  Reasoned cpu_threads;  // CPU devices: the threads and how idle OpenMP workers wait (set by separate); else empty
  at::ScalarType dtype = at::kFloat;
  std::string precision_reason;
  int64_t batch_size = 1;
  std::string batch_reason;
  std::vector<std::pair<std::string, Reasoned>> cutting;
  bool graphs = false;
  std::string graphs_reason;
  double window_seconds = 600;
  std::string window_reason;
  bool device_assembly = true;
  bool host_block_cache = false;  // installed by the runner before the first forward
  std::string host_block_cache_reason;
  KernelPlan kernels;
  std::vector<std::pair<std::string, Reasoned>> kernel_reasons;

  // The plan as separate --explain prints it, one "name: value (reason)" per line.
  std::string explain() const;
  // The same as JSON (separate --explain --json, and every --json summary).
  nlohmann::json to_json() const;
};

}  // namespace stemkit::plan
