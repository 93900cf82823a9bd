#include "runtime/bench/kernel_trace.h"

#if defined(STEMKIT_CUDA) || defined(STEMKIT_ROCM)
#include <torch/csrc/autograd/profiler_kineto.h>
#endif

#include "runtime/error.h"

namespace stemkit::bench {

#if defined(STEMKIT_CUDA) || defined(STEMKIT_ROCM)
namespace profiler = torch::autograd::profiler;

bool kernel_trace_supported() { return true; }

void start_kernel_trace() {
  // The ATen ops too (with their input shapes), so that trace_summary.py --by-op
  // can say which op launched each kernel (a bias add of a convolution, say).
  const profiler::ProfilerConfig config(profiler::ProfilerState::KINETO, /*report_input_shapes=*/true,
                                        /*profile_memory=*/false);
  const std::set<torch::profiler::impl::ActivityType> activities{torch::profiler::impl::ActivityType::CPU,
                                                                 torch::profiler::impl::ActivityType::CUDA};
  profiler::prepareProfiler(config, activities);
  profiler::enableProfiler(config, activities);
}

void stop_kernel_trace(const std::string& json_path) { profiler::disableProfiler()->save(json_path); }
#else
bool kernel_trace_supported() { return false; }
void start_kernel_trace() { throw Error("kernel traces need a CUDA or ROCm build of the runtime"); }
void stop_kernel_trace(const std::string&) {}
#endif

}  // namespace stemkit::bench
