// Graph capture on a CUDA GPU (label "gpu"); skips with the reason elsewhere.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>

#include "runtime/capture/graph_runner.h"

using namespace stemkit;

namespace {

at::Tensor small_ops(const at::Tensor& x) {
  at::Tensor y = x;
  for (int i = 0; i < 60; ++i) y = at::tanh(y * 1.01 + 0.01);
  return y.unsqueeze(1);
}

double ms_per_call(const std::function<at::Tensor()>& f, int iters = 200) {
  for (int i = 0; i < 10; ++i) f();
  f().sum().item<double>();
  auto start = std::chrono::steady_clock::now();
  at::Tensor last;
  for (int i = 0; i < iters; ++i) last = f();
  last.sum().item<double>();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / iters;
}

TEST(GraphRunnerGpu, ReplaysAndMatchesEager) {
  if (!at::hasCUDA()) GTEST_SKIP() << "skipped: no CUDA GPU visible to this libtorch";
  if (!capture::capture_supported())
    GTEST_SKIP() << "skipped: this build has no CUDA graph support (not a CUDA libtorch)";
  capture::GraphRunner run(small_ops);
  auto opts = at::TensorOptions().device(at::kCUDA);
  at::Tensor a = at::randn({4, 2, 4096}, opts), b = at::randn({4, 2, 4096}, opts);
  at::Tensor ra = run(a);
  ASSERT_TRUE(run.capturing()) << run.status();
  at::Tensor rb = run(b);  // replay with new data
  EXPECT_TRUE(at::allclose(ra, small_ops(a), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(rb, small_ops(b), 1e-5, 1e-6));
  EXPECT_FALSE(at::allclose(ra, rb));
  double eager = ms_per_call([&] { return small_ops(b); });
  double replay = ms_per_call([&] { return run(b); });
  std::printf("60 small kernels on (4, 2, 4096): eager %.4f ms, graph replay %.4f ms (%.1fx); %s\n", eager, replay,
              eager / replay, run.status().c_str());
  at::Tensor c = at::randn({2, 2, 4096}, opts);  // another shape: a second graph
  EXPECT_TRUE(at::allclose(run(c), small_ops(c), 1e-5, 1e-6));
  EXPECT_NE(run.status().find("2 captured"), std::string::npos) << run.status();
}

}  // namespace
