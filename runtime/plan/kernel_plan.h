// The part of an ExecutionPlan (execution_plan.h) that model and kernel code
// reads: which implementation each layer runs. Decided once, when a model is
// loaded (plan::decide), handed to the model's to(), and passed down to every
// block's forward as an argument. Nothing below the runner reads the
// environment or a process-wide switch.
//
// A default-constructed KernelPlan is the plain one: ATen everywhere, exact
// GELU, attention by the policy. Tests build the plan they compare against.
// reference_forward goes further: the blocks run their forwards as upstream
// writes them (RoFormer: roformer_blocks.cpp, not roformer_fast.cpp; HTDemucs'
// DConv, GroupNorms and LayerScale: htdemucs.cpp, not htdemucs_fast.cpp); of
// the other fields only the attention policy applies then.
#pragma once

#include "runtime/attention/attention.h"

namespace stemkit::plan {

// The GEMMs of the RoFormer layers' fast path.
enum class Gemm {
  aten,      // at::addmm and friends
  cublaslt,  // cuBLASLt with bias epilogues and per-shape algorithm timing (runtime/kernels/lt_gemm.h)
};

// GELU in the feed-forward layers.
enum class Gelu {
  exact,          // erf GELU, as upstream
  tanh_epilogue,  // tanh GELU inside the first GEMM (fp16/bf16 on a GPU: below those formats' resolution)
};

struct KernelPlan {
  attention::Policy attention;  // forced backend or the rules, and the log of what each call shape got
  bool fused_kernels = false;   // stemkit's RoFormer kernels (runtime/kernels/roformer_kernels.h)
  bool seq_kernel = false;      // ...for long axes (time) too, not only the bands
  Gemm gemm = Gemm::aten;
  Gelu gelu = Gelu::exact;
  // The blocks' reference forwards (RoFormer and HTDemucs), line for line upstream's: to check
  // the fast paths against, and to find the step a difference comes from.
  bool reference_forward = false;
  // HTDemucs' DConv, GroupNorms and LayerScale through their fast paths (htdemucs_fast.h),
  // unless reference_forward. Off on the CPU, where the fast paths' per-row statistics
  // (var_mean over short rows) cost more than ATen's group norm kernel and the copies it needs.
  bool htdemucs_fast_blocks = true;
};

const char* name(Gemm gemm);  // "aten", "cublaslt"
const char* name(Gelu gelu);  // "exact", "tanh-epilogue"

}  // namespace stemkit::plan
