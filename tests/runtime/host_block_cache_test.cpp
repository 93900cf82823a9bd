// The CPU's host block cache (runtime/memory/host_block_cache.h) and the plan's
// CPU choices for HTDemucs. The cache is process-wide once installed: the
// tests after it in this binary run with it too, as `separate --device cpu` does.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

#include "runtime/memory/host_block_cache.h"
#include "runtime/plan/execution_plan.h"

namespace stemkit {
namespace {

TEST(HostBlockCache, ReusesLargeBlocksAndLeavesSmallOnesToLibtorch) {
  memory::install_host_block_cache();
  memory::install_host_block_cache();  // a second call does nothing
  ASSERT_TRUE(memory::host_block_cache_installed());
  const memory::HostBlockCacheStats before = memory::host_block_cache_stats();
  EXPECT_GT(before.kept_bytes_limit, 0u);

  void* first = nullptr;
  {
    at::Tensor a = at::empty({3 << 20}, at::kFloat);  // 12 MiB
    first = a.data_ptr();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % (uintptr_t{2} << 20), 0u) << "2 MiB-aligned, for huge pages";
    a.fill_(1.5);
    EXPECT_EQ(a.sum().item<double>(), 1.5 * (3 << 20));
  }
  EXPECT_GE(memory::host_block_cache_stats().kept_bytes, size_t{12} << 20) << "the freed block is kept";
  at::Tensor b = at::empty({3 << 20}, at::kFloat);
  EXPECT_EQ(b.data_ptr(), first) << "a request of the same size gets the freed block";
  EXPECT_GE(memory::host_block_cache_stats().reused, before.reused + 1);
  b.fill_(-2);  // a reused block is an ordinary tensor's memory
  EXPECT_EQ(b.sum().item<double>(), -2.0 * (3 << 20));

  // Another size maps a block of its own; a small tensor comes from libtorch's allocator.
  at::Tensor c = at::zeros({5 << 20}, at::kByte);
  EXPECT_NE(c.data_ptr(), b.data_ptr());
  EXPECT_EQ(c.sum().item<int64_t>(), 0);
  at::Tensor small = at::ones({16});
  EXPECT_EQ(small.sum().item<float>(), 16);
}

TEST(HostBlockCache, OneDnnConvolutionsRunThroughIt) {
  // oneDNN takes its buffers through raw_allocate/raw_deallocate, which need
  // the context to be the data and a raw deleter for either allocator's blocks.
  memory::install_host_block_cache();
  at::manual_seed(5);
  const at::Tensor x = at::randn({1, 16, 256, 128}), w = at::randn({32, 16, 3, 3}), bias = at::randn({32});
  for (int i = 0; i < 2; ++i) {  // the second time on reused blocks
    const at::Tensor y = at::conv2d(x, w, bias, 1, 1);
    const at::Tensor want = at::conv2d(x.to(at::kDouble), w.to(at::kDouble), bias.to(at::kDouble), 1, 1);
    EXPECT_LT((y.to(at::kDouble) - want).norm().item<double>() / want.norm().item<double>(), 1e-6);
  }
}

TEST(HTDemucsPlan, TheCpuRunsUpstreamsBlocksAndTheGpuTheFastPaths) {
  plan::ExecutionPlan cpu;
  cpu.kernels = plan::decide_kernels(at::kCPU, at::kFloat, {}, &cpu.kernel_reasons);
  EXPECT_FALSE(cpu.kernels.htdemucs_fast_blocks);
  EXPECT_NE(cpu.explain().find("htdemucs blocks: reference (the CPU"), std::string::npos) << cpu.explain();
  plan::KernelOptions reference;
  reference.reference_forward = true;
  EXPECT_FALSE(plan::decide_kernels(at::kCPU, at::kFloat, reference).htdemucs_fast_blocks);
  EXPECT_TRUE(plan::KernelPlan{}.htdemucs_fast_blocks) << "a plan made by hand (the tests') runs the fast paths";
}

}  // namespace
}  // namespace stemkit
