#include "runtime/capture/graph_runner.h"

#include <ATen/ATen.h>

#include <cstdlib>

#if defined(STEMKIT_CUDA)
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace stemkit::capture {

struct GraphRunner::Graphs {
#if defined(STEMKIT_CUDA)
  struct Captured {
    at::cuda::CUDAGraph graph;
    at::Tensor input;   // static buffers the graph reads and writes
    at::Tensor output;
  };
  std::map<std::vector<int64_t>, std::unique_ptr<Captured>> by_shape;
#endif
};

bool capture_supported() {
#if defined(STEMKIT_CUDA)
  return true;
#else
  return false;
#endif
}

GraphRunner::GraphRunner(segment::Forward forward, bool enabled)
    : forward_(std::move(forward)), requested_(enabled), enabled_(enabled), graphs_(std::make_unique<Graphs>()) {
  if (std::getenv("STEMKIT_NO_GRAPHS")) enabled_ = false;
  status_ = !enabled_ ? "eager: graph capture switched off" : capture_supported() ? "eager: nothing captured yet"
                                                                                  : "eager: this build has no CUDA graph support";
}

GraphRunner::~GraphRunner() = default;

GraphRunner& reuse_or_make(std::shared_ptr<GraphRunner>& slot, segment::Forward forward, bool enabled) {
  if (!slot || slot->requested() != enabled) slot = std::make_shared<GraphRunner>(std::move(forward), enabled);
  return *slot;
}

bool GraphRunner::capturing() const {
#if defined(STEMKIT_CUDA)
  return !graphs_->by_shape.empty();
#else
  return false;
#endif
}

at::Tensor GraphRunner::operator()(const at::Tensor& input) {
#if defined(STEMKIT_CUDA)
  if (enabled_ && input.is_cuda()) {
    auto key = input.sizes().vec();
    key.push_back(static_cast<int64_t>(input.scalar_type()));
    auto it = graphs_->by_shape.find(key);
    if (it == graphs_->by_shape.end()) {
      try {
        c10::cuda::CUDAGuard device(input.device());
        auto captured = std::make_unique<Graphs::Captured>();
        captured->input = input.clone();
        // Warm up on a side stream (allocator, cuDNN/cuBLAS plans), then capture there.
        auto stream = c10::cuda::getStreamFromPool();
        stream.synchronize();
        {
          c10::cuda::CUDAStreamGuard guard(stream);
          for (int i = 0; i < 3; ++i) forward_(captured->input);
          stream.synchronize();
          captured->graph.capture_begin();
          try {
            captured->output = forward_(captured->input);
          } catch (...) {
            // End the capture, or the stream stays in capture mode and every
            // later call on it fails; then clear the (non-sticky) CUDA error.
            try {
              captured->graph.capture_end();
            } catch (...) {
            }
            (void)cudaGetLastError();
            throw;
          }
          captured->graph.capture_end();
        }
        it = graphs_->by_shape.emplace(key, std::move(captured)).first;
        status_ = "replaying " + std::to_string(graphs_->by_shape.size()) + " captured graph(s)";
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
