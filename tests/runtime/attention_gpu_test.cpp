// The attention policy on a GPU (label "gpu"): which backend the policy picks
// for fp16, bf16 and fp32, that exactly that backend runs (it is the only one
// enabled), and its error against float64. Skips, saying why, without a GPU.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "runtime/attention/attention.h"
#include "runtime/compat/torch_compat.h"

using namespace stemkit::attention;

TEST(AttentionGpu, PolicyBackendRunsAndIsAccurate) {
  if (!at::hasCUDA()) GTEST_SKIP() << "skipped: no CUDA or ROCm GPU visible to this libtorch";
  if (!STEMKIT_HAS_SDPA) GTEST_SKIP() << "skipped: libtorch " << stemkit::compat::torch_version() << " has no SDPA";
  Policy policy;
  at::manual_seed(0);
  auto opts = at::TensorOptions().dtype(at::kDouble).device(at::kCUDA);
  at::Tensor q = at::randn({2, 8, 256, 64}, opts), k = at::randn({2, 8, 256, 64}, opts),
             v = at::randn({2, 8, 256, 64}, opts);
  at::Tensor reference = attend_math(q, k, v);
  for (auto [dtype, tolerance] : {std::pair{at::kHalf, 2e-3}, {at::kBFloat16, 1e-2}, {at::kFloat, 1e-5}}) {
    at::Tensor out = attend(policy, q.to(dtype), k.to(dtype), v.to(dtype));  // throws if the chosen backend cannot run
    double err = (out.to(at::kDouble) - reference).norm().item<double>() / reference.norm().item<double>();
    Choice c = choose(query_gpu(0, false), dtype, k.size(2), k.size(3), std::nullopt);
    std::printf("%s: %s (%s), rel. L2 vs float64 %.2e\n", c10::toString(dtype), name(c.backend), c.reason.c_str(), err);
    EXPECT_LT(err, tolerance) << c10::toString(dtype);
  }
  // Head sizes some backend refuses: attend() must still answer, correctly,
  // in every dtype. 20 (cuDNN may refuse it), 6 (HTDemucs with bottom_channels
  // 48: "Invalid backend" in fp32 before the policy knew head sizes).
  for (int64_t d : {20, 6}) {
    at::Tensor q2 = at::randn({1, 2, 600, d}, opts);  // long enough for the cuDNN rule
    at::Tensor want = attend_math(q2, q2, q2);
    for (auto [dtype, tolerance] : {std::pair{at::kHalf, 2e-3}, {at::kBFloat16, 1e-2}, {at::kFloat, 1e-5}}) {
      at::Tensor odd = attend(policy, q2.to(dtype), q2.to(dtype), q2.to(dtype));
      EXPECT_LT((odd.to(at::kDouble) - want).norm().item<double>() / want.norm().item<double>(), tolerance)
          << "head " << d << " " << c10::toString(dtype);
    }
  }
  for (const auto& e : policy.log->entries())
    std::printf("decision: %s: %s (%s)\n", e.shape.c_str(), e.backend.c_str(), e.reason.c_str());
}
