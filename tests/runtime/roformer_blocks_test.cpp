// Each RoFormer block's fast path (runtime/models/roformer_fast.h) against the
// block's reference forward (roformer_blocks.cpp: upstream's forward, line for
// line), on the CPU in float32 with random inputs and weights: RMSNorm,
// Attention, FeedForward, Transformer (softmax and linear attention, with and
// without its output norm, along either axis), BandSplit and MaskEstimator.
// The reference forwards themselves are checked against upstream's output, and
// the fast paths against them, on whole models in bs_roformer_test.cpp and
// mel_band_roformer_test.cpp; roformer_kernels_gpu_test.cpp repeats these on a
// GPU with the fused kernels and cuBLASLt.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/models/roformer_blocks.h"
#include "runtime/models/roformer_fast.h"
#include "runtime/plan/execution_plan.h"
#include "tests/runtime/compare.h"

namespace {

using namespace stemkit;
using test::rel_l2;
namespace roformer = models::roformer;

// The CPU's float32 tolerance of the other block tests (bs_roformer_test.cpp,
// roformer_kernels_gpu_test.cpp): the fast paths fold, fuse and reorder float32
// operations, nothing more.
constexpr double kTolerance = 1e-6;

plan::KernelPlan reference_plan() {
  plan::KernelPlan p;
  p.reference_forward = true;
  return p;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Weights of upstream's scale: nn.Linear's uniform(-1/sqrt(in), 1/sqrt(in))
// (biases too, their fan-in unknown here: dim 32's), norm gains around 1, the
// rotary frequencies 1 / 10000^(2i/d) of RotaryEmbedding, temperatures around 0.
void randomise(torch::nn::Module& m, uint64_t seed) {
  at::manual_seed(seed);
  at::NoGradGuard no_grad;
  for (auto& item : m.named_parameters()) {
    const std::string& name = item.key();
    at::Tensor p = item.value();
    if (ends_with(name, "freqs")) {
      const int64_t d = 2 * p.size(0);
      p.copy_(1.0 / at::pow(10000.0, at::arange(0, d, 2, at::kDouble) / static_cast<double>(d)));
    } else if (ends_with(name, "gamma")) {
      p.copy_(1.0 + 0.2 * at::randn_like(p));
    } else if (ends_with(name, "temperature")) {
      p.copy_(0.3 * at::randn_like(p));
    } else {
      const double fan_in = p.dim() == 2 ? static_cast<double>(p.size(1)) : 32.0;
      p.uniform_(-1.0, 1.0).div_(std::sqrt(fan_in));
    }
  }
  for (auto& p : m.parameters()) p.set_requires_grad(false);  // as the models do
}

TEST(RoformerBlocks, RMSNormFastMatchesReference) {
  roformer::RMSNorm norm(24);
  randomise(*norm, 1);
  at::Tensor x = at::randn({3, 5, 24});
  x[1][2].zero_();  // F.normalize's clamp: a zero row stays zero
  at::Tensor want = norm(x, reference_plan()), got = norm(x, plan::KernelPlan{});
  EXPECT_TRUE(at::equal(want[1][2], at::zeros({24})));
  EXPECT_LT(rel_l2(got, want), kTolerance);
}

// The fast path adds attn(x) into x in place; the reference returns attn(x).
TEST(RoformerBlocks, AttentionFastMatchesReference) {
  roformer::Attention attn(32, 2, 16);
  randomise(*attn, 2);
  const plan::KernelPlan fast;
  for (int64_t n : {1, 7, 16}) {
    at::Tensor x = at::randn({3, n, 32});
    at::Tensor want = attn(x, reference_plan());
    at::Tensor y = x.clone();
    roformer::fast::add_attention(*attn, y, fast);
    const double err = rel_l2(y - x, want);
    std::printf("attention, n %ld: fast against reference rel. L2 %.3g\n", long(n), err);
    EXPECT_LT(err, kTolerance) << "n " << n;
  }
}

TEST(RoformerBlocks, FeedForwardFastMatchesReference) {
  roformer::FeedForward ff(32, 4);
  randomise(*ff, 3);
  at::Tensor x = at::randn({3, 7, 32});
  at::Tensor want = ff(x, reference_plan());
  at::Tensor y = x.clone();
  roformer::fast::add_feed_forward(*ff, y, plan::KernelPlan{});
  const double err = rel_l2(y - x, want);
  std::printf("feed-forward: fast against reference rel. L2 %.3g\n", err);
  EXPECT_LT(err, kTolerance);
}

// Softmax attention with and without the output norm (BS-RoFormer's time and
// frequency transformers, Mel-Band RoFormer's), and linear attention (MSST's
// linear transformer), on sequences and along each axis of (B, T, F, dim).
TEST(RoformerBlocks, TransformerFastMatchesReference) {
  struct Case {
    const char* name;
    bool norm_output, linear_attn;
  };
  for (const Case& c : {Case{"softmax", false, false}, Case{"softmax, output norm", true, false},
                        Case{"linear attention", true, true}}) {
    roformer::Transformer t(2, 32, 2, 16, c.norm_output, c.linear_attn);
    randomise(*t, 4);
    const plan::KernelPlan fast, reference = reference_plan();
    at::Tensor seqs = at::randn({3, 9, 32});
    const at::Tensor kept = seqs.clone();
    at::Tensor want = t(seqs, reference);
    const double err = rel_l2(t(seqs, fast), want);
    std::printf("transformer, %s: fast against reference rel. L2 %.3g\n", c.name, err);
    EXPECT_LT(err, kTolerance) << c.name;
    EXPECT_TRUE(at::equal(seqs, kept)) << c.name << ": a forward wrote into a tensor the caller kept";
    at::Tensor x = at::randn({2, 5, 4, 32});
    for (int axis : {1, 2}) {
      at::Tensor want_axial = t->forward_axial(x, axis, reference);
      const double axial_err = rel_l2(t->forward_axial(x, axis, fast), want_axial);
      std::printf("transformer, %s, along axis %d: fast against reference rel. L2 %.3g\n", c.name, axis, axial_err);
      EXPECT_LT(axial_err, kTolerance) << c.name << " axis " << axis;
    }
  }
}

// Stacked (runs of equal width as batched GEMMs) and band by band.
TEST(RoformerBlocks, BandModulesFastMatchReference) {
  const std::vector<int64_t> widths = {4, 4, 4, 6, 10, 10};
  roformer::BandSplit split(16, widths);
  randomise(*split, 5);
  at::Tensor x = at::randn({2, 5, 38});
  const plan::KernelPlan fast, reference = reference_plan();
  at::Tensor bands = split(x, reference);
  EXPECT_EQ(bands.sizes(), (std::vector<int64_t>{2, 5, 6, 16}));
  ASSERT_TRUE(roformer::fast::stacked(*split));
  EXPECT_LT(rel_l2(split(x, fast), bands), kTolerance);

  // mel_band_roformer.py's MLP of depth 0 (one Linear layer), bs_roformer.py's default 2, and 3.
  for (int64_t linear_layers : {1, 2, 3}) {
    roformer::MaskEstimator masks(16, widths, linear_layers, 24);
    randomise(*masks, 6);
    at::Tensor want = masks(bands, reference);
    EXPECT_EQ(want.sizes(), (std::vector<int64_t>{2, 5, 38}));
    ASSERT_TRUE(roformer::fast::stacked(*masks));
    const double err = rel_l2(masks(bands, fast), want);
    std::printf("mask estimator, %ld Linear layers: fast (stacked) against reference rel. L2 %.3g\n",
                long(linear_layers), err);
    EXPECT_LT(err, kTolerance) << linear_layers << " layers";
    {
      at::NoGradGuard no_grad;
      for (auto& p : masks->parameters()) p.set_data(p.clone());  // apart from the stacks: band by band
    }
    ASSERT_FALSE(roformer::fast::stacked(*masks));
    EXPECT_LT(rel_l2(masks(bands, fast), want), kTolerance) << linear_layers << " layers, band by band";
  }
  {
    at::NoGradGuard no_grad;
    for (auto& p : split->parameters()) p.set_data(p.clone());
  }
  ASSERT_FALSE(roformer::fast::stacked(*split));
  EXPECT_LT(rel_l2(split(x, fast), bands), kTolerance);
}

// --reference-forward makes the plan's other fast-path fields moot: decide_kernels
// turns them off and says so, and --explain names the choice.
TEST(RoformerBlocks, ReferenceForwardIsAPlanField) {
  plan::KernelOptions options;
  plan::ExecutionPlan fast;
  fast.kernels = plan::decide_kernels(at::kCPU, at::kFloat, options, &fast.kernel_reasons);
  EXPECT_FALSE(fast.kernels.reference_forward);
  EXPECT_NE(fast.explain().find("blocks: fast"), std::string::npos) << fast.explain();

  options.reference_forward = true;
  plan::ExecutionPlan reference;
  reference.kernels = plan::decide_kernels(at::kCPU, at::kFloat, options, &reference.kernel_reasons);
  EXPECT_TRUE(reference.kernels.reference_forward);
  EXPECT_FALSE(reference.kernels.fused_kernels);
  EXPECT_FALSE(reference.kernels.seq_kernel);
  EXPECT_EQ(reference.kernels.gemm, plan::Gemm::aten);
  EXPECT_EQ(reference.kernels.gelu, plan::Gelu::exact);
  const std::string text = reference.explain();
  EXPECT_NE(text.find("blocks: reference (--reference-forward"), std::string::npos) << text;
  EXPECT_EQ(reference.to_json()["kernels"]["blocks"]["value"], "reference");
}

}  // namespace
