// A GPU kernel trace of one stretch of work, through libtorch's Kineto
// profiler (what torch.profiler uses), saved as a Chrome trace JSON that
// tools/bench/trace_summary.py sums up per kernel. Where the C++ runtime
// spends its GPU time, without nsys on the machine.
// CUDA and ROCm builds only; elsewhere start() throws.
#pragma once

#include <string>

namespace stemkit::bench {

bool kernel_trace_supported();
void start_kernel_trace();
void stop_kernel_trace(const std::string& json_path);  // writes the trace

}  // namespace stemkit::bench
