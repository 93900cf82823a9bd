#include "runtime/capture/graph_runner.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "runtime/compat/torch_compat.h"
#include "runtime/timeline.h"

// CUDA and ROCm share this code: devices, streams and guards go through c10's
// device-generic API (a ROCm libtorch registers HIP as the "cuda" device), so
// only the graph header and the runtime's error call differ. PyTorch's ROCm
// build hipifies its own headers into ATen/hip/ (ours are not hipified), and
// the graph class keeps its CUDA name there.
#if defined(STEMKIT_CUDA) || defined(STEMKIT_ROCM)
#define STEMKIT_GRAPHS 1
#include <c10/core/DeviceGuard.h>
#include <c10/core/Stream.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#if defined(STEMKIT_ROCM)
#include <ATen/hip/HIPGraph.h>
#include <c10/hip/HIPCachingAllocator.h>
#include <hip/hip_runtime_api.h>
#define STEMKIT_CLEAR_GPU_ERROR() (void)hipGetLastError()
#define STEMKIT_CAPTURE_THREAD_LOCAL hipStreamCaptureModeThreadLocal
namespace gpu_allocator = c10::hip::HIPCachingAllocator;
#else
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime_api.h>
#define STEMKIT_CLEAR_GPU_ERROR() (void)cudaGetLastError()
#define STEMKIT_CAPTURE_THREAD_LOCAL cudaStreamCaptureModeThreadLocal
namespace gpu_allocator = c10::cuda::CUDACachingAllocator;
#endif
#endif

namespace stemkit::capture {

struct GraphRunner::Graphs {
#if defined(STEMKIT_GRAPHS)
  struct Captured {
    at::cuda::CUDAGraph graph;
    at::Tensor input;  // static buffers the graph reads and writes
    at::Tensor output;
  };
  std::map<std::vector<int64_t>, std::unique_ptr<Captured>> by_shape;
#endif
};

bool capture_supported() {
#if defined(STEMKIT_GRAPHS)
  return true;
#else
  return false;
#endif
}

bool captures_per_thread() {
#if defined(STEMKIT_GRAPHS) && STEMKIT_HAS_CAPTURE_MODE
  return true;
#else
  return false;
#endif
}

#if defined(STEMKIT_GRAPHS)
namespace {

// One warm-up and capture at a time in the process. emptyCache() empties every
// device's cache, and libtorch's allocator must not do that on a device while
// a capture is under way there; with several models (one per thread) their
// first calls would otherwise meet.
std::mutex& capture_turn() {
  static std::mutex m;
  return m;
}

std::string shape_text(const at::Tensor& t) {
  std::string out = "[";
  for (int64_t d = 0; d < t.dim(); ++d) out += (d ? ", " : "") + std::to_string(t.size(d));
  return out + "]";
}

}  // namespace
#endif

GraphRunner::GraphRunner(segment::Forward forward, bool enabled)
    : forward_(std::move(forward)), requested_(enabled), enabled_(enabled), graphs_(std::make_unique<Graphs>()) {
  status_ = !enabled_             ? "eager: graph capture switched off"
            : capture_supported() ? "eager: nothing captured yet"
                                  : "eager: this build has no CUDA/HIP graph support";
}

GraphRunner::~GraphRunner() = default;

GraphRunner& reuse_or_make(std::shared_ptr<GraphRunner>& slot, segment::Forward forward, bool enabled) {
  if (!slot || slot->requested() != enabled) slot = std::make_shared<GraphRunner>(std::move(forward), enabled);
  return *slot;
}

bool GraphRunner::capturing() const {
#if defined(STEMKIT_GRAPHS)
  return !graphs_->by_shape.empty();
#else
  return false;
#endif
}

at::Tensor GraphRunner::operator()(const at::Tensor& input) {
#if defined(STEMKIT_GRAPHS)
  if (enabled_ && input.is_cuda()) {
    auto key = input.sizes().vec();
    key.push_back(static_cast<int64_t>(input.scalar_type()));
    auto it = graphs_->by_shape.find(key);
    if (it == graphs_->by_shape.end()) {
      try {
        c10::DeviceGuard device(input.device());
        std::lock_guard<std::mutex> turn(capture_turn());
        auto captured = std::make_unique<Graphs::Captured>();
        captured->input = input.clone();
        // Warm up on a side stream, then capture there. One forward does every
        // lazy setup a capture must not meet: cuBLAS workspaces for the stream,
        // cuBLASLt's algorithm timing, cuDNN's plans and autotuning, kernel
        // attributes, the attention policy's fallbacks. More bought nothing and
        // cost a first song one batch's forward each (PyTorch's examples use 3;
        // docs/benchmarks.md).
        // The warm-up's output is this call's result: the first call of a shape
        // costs one forward and a capture, not a forward, a capture and a replay.
        const auto* guard_impl = c10::impl::getDeviceGuardImpl(input.device().type());
        const c10::Stream caller = guard_impl->getStream(input.device());
        c10::Stream stream = guard_impl->getStreamFromGlobalPool(input.device());
        stream.synchronize();
        at::Tensor result;
        {
          c10::StreamGuard guard(stream);
          result = forward_(captured->input).clone();
          stream.synchronize();
          timeline::mark("warm-up forward " + shape_text(input));
          // Made on the side stream, used on the caller's: the allocator must
          // not hand its memory out again before the caller's stream is done with it.
          result.record_stream(caller);
          // The warm-up's activations are free now but stay cached; the graph
          // gets a pool of its own for the same activations. Handing the cached
          // blocks back first keeps the two from being reserved at once (the
          // peak a user sees).
          gpu_allocator::emptyCache();
#if STEMKIT_HAS_CAPTURE_MODE
          captured->graph.capture_begin({0, 0}, STEMKIT_CAPTURE_THREAD_LOCAL);
#else
          captured->graph.capture_begin();
#endif
          try {
            captured->output = forward_(captured->input);
          } catch (...) {
            // End the capture, or the stream stays in capture mode and every
            // later call on it fails; then clear the (non-sticky) CUDA error.
            try {
              captured->graph.capture_end();
            } catch (...) {
            }
            STEMKIT_CLEAR_GPU_ERROR();
            throw;
          }
          captured->graph.capture_end();
          timeline::mark("graph captured " + shape_text(input));
        }
        graphs_->by_shape.emplace(key, std::move(captured));
        status_ = "replaying " + std::to_string(graphs_->by_shape.size()) + " captured graph(s)";
        return result;
      } catch (const std::exception& e) {
        enabled_ = false;  // a forward that cannot be captured runs eagerly from now on
        std::string why = e.what();
        status_ = "eager: capture failed: " + why.substr(0, why.find('\n'));
        return forward_(input);
      }
    }
    it->second->input.copy_(input);
    it->second->graph.replay();
    return it->second->output.clone();
  }
#endif
  return forward_(input);
}

}  // namespace stemkit::capture
