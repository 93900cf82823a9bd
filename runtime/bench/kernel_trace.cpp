#include "runtime/bench/kernel_trace.h"

#include <torch/csrc/autograd/profiler_kineto.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/error.h"

namespace stemkit::bench {

namespace profiler = torch::autograd::profiler;

void start_kernel_trace() {
  // The ATen ops (with their input shapes), so that trace_summary.py --by-op
  // can say which op launched each kernel (a bias add of a convolution, say);
  // on the CPU the ops are the work itself.
  const profiler::ProfilerConfig config(profiler::ProfilerState::KINETO, /*report_input_shapes=*/true,
                                        /*profile_memory=*/false);
#if defined(STEMKIT_CUDA) || defined(STEMKIT_ROCM)
  const std::set<torch::profiler::impl::ActivityType> activities{torch::profiler::impl::ActivityType::CPU,
                                                                 torch::profiler::impl::ActivityType::CUDA};
#else
  const std::set<torch::profiler::impl::ActivityType> activities{torch::profiler::impl::ActivityType::CPU};
#endif
  profiler::prepareProfiler(config, activities);
  profiler::enableProfiler(config, activities);
}

void stop_kernel_trace(const std::string& json_path) {
  auto result = profiler::disableProfiler();
#if defined(STEMKIT_CUDA) || defined(STEMKIT_ROCM)
  result->save(json_path);
#else
  // CPU libtorch builds may lack Kineto's trace writer (Debian's 1.13 does:
  // save() throws), though the profiler records the ops: the same Chrome
  // trace fields (cpu_op, thread, start, duration, input dims), written here.
  nlohmann::json events = nlohmann::json::array();
  for (const auto& e : result->events()) {
    nlohmann::json dims = nlohmann::json::array();
    if (e.hasShapes())
      for (const auto& shape : e.shapes()) dims.push_back(shape);
    events.push_back({{"ph", "X"},
                      {"cat", "cpu_op"},
                      {"name", e.name()},
                      {"pid", 0},
                      {"tid", e.startThreadId()},
                      {"ts", e.startUs()},
                      {"dur", e.durationUs()},
                      {"args", {{"Input Dims", dims}}}});
  }
  std::ofstream out(json_path);
  out << nlohmann::json{{"traceEvents", events}}.dump() << "\n";
  if (!out) throw Error("--bench-trace: cannot write {}; give a PREFIX in a writable folder", json_path);
#endif
}

}  // namespace stemkit::bench
