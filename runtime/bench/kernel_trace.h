// A trace of one stretch of work, through libtorch's Kineto profiler (what
// torch.profiler uses): the ATen ops with their input shapes, and on CUDA
// and ROCm builds the GPU kernels, saved as a Chrome trace JSON that
// tools/bench/trace_summary.py sums up per kernel (--cpu: per op). Where the
// C++ runtime spends its time, without nsys or symbols for libtorch.
#pragma once

#include <string>

namespace stemkit::bench {

void start_kernel_trace();
void stop_kernel_trace(const std::string& json_path);  // writes the trace

}  // namespace stemkit::bench
