// The fused RoFormer kernels (runtime/kernels/) against the ATen path they
// replace: one small Transformer layer along each axis, in float32, float16 and
// bfloat16, with the kernels switched off and on. Then every block's fast path
// (runtime/models/roformer_fast.h: the kernels, cuBLASLt, the tanh GELU where
// the plan takes them) against its reference forward (roformer_blocks.cpp,
// upstream's line for line) in the same dtype. The full models' parity with
// upstream on the GPU (roformer_gpu_test.cpp) runs through the kernels as well.
// Skips, saying why, without a GPU or without the kernels in the build; the
// axial layout itself is checked on the CPU.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "runtime/attention/attention.h"
#include "runtime/kernels/lt_gemm.h"
#include "runtime/kernels/roformer_kernels.h"
#include "runtime/models/roformer_blocks.h"
#include "runtime/plan/execution_plan.h"
#include "tests/runtime/compare.h"

namespace {

using namespace stemkit;
using test::rel_l2;
namespace roformer = models::roformer;

// Upstream's rotary frequencies (head size 64), non-trivial norm weights and
// linear attention temperatures; the Linear layers, which start uninitialised,
// nn::Linear's uniform(-1/sqrt(in), 1/sqrt(in)) (biases as for in = 64).
void randomise(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& item : m.named_parameters()) {
    const std::string& name = item.key();
    const std::string rotary = "rotary_embed.freqs";  // not the mask estimator's "to_freqs"
    if (name.size() >= rotary.size() &&
        name.compare(name.size() - rotary.size(), rotary.size(), rotary) == 0)  // 1 / 10000^(2i/d)
      item.value().copy_(1.0 / at::pow(10000.0, at::arange(0, 64, 2, at::kFloat) / 64.0));
    else if (name.find("gamma") != std::string::npos)
      item.value().copy_(1.0 + 0.2 * at::randn_like(item.value()));
    else if (name.find("temperature") != std::string::npos)
      item.value().copy_(0.3 * at::randn_like(item.value()));
    else
      item.value().uniform_(-1.0, 1.0).div_(
          std::sqrt(static_cast<double>(item.value().dim() == 2 ? item.value().size(1) : 64)));
  }
  for (auto& p : m.parameters()) p.set_requires_grad(false);  // as the models do
}

// A layer of head size 64, the band kernel's.
roformer::Transformer small_transformer(bool norm_output, bool linear_attn = false) {
  torch::manual_seed(0);
  roformer::Transformer t(1, 64, 2, 64, norm_output, linear_attn);
  randomise(*t);
  return t;
}

// forward_axial along an axis equals forward() on the sequences made contiguous,
// and leaves a tensor the caller kept untouched.
TEST(RoformerAxial, MatchesTransposedSequencesOnCpu) {
  roformer::Transformer t = small_transformer(true);
  const int64_t B = 2, T = 6, F = 5, d = 64;
  at::Tensor x = at::randn({B, T, F, d});
  const at::Tensor before = x.clone();
  const plan::KernelPlan cpu;
  at::Tensor along_t = t->forward_axial(x, 1, cpu);
  at::Tensor want_t = t->forward(x.transpose(1, 2).reshape({B * F, T, d}), cpu).view({B, F, T, d}).transpose(1, 2);
  EXPECT_TRUE(at::equal(x, before)) << "forward_axial wrote into a tensor the caller kept";
  EXPECT_LT(rel_l2(along_t, want_t), 1e-6);
  at::Tensor along_f = t->forward_axial(x, 2, cpu);
  EXPECT_LT(rel_l2(along_f, t->forward(x.reshape({B * T, F, d}), cpu).view({B, T, F, d})), 1e-6);
}

TEST(RoformerKernelsGpu, TransformerMatchesAtenPath) {
  if (!at::hasCUDA()) GTEST_SKIP() << "skipped: no CUDA or ROCm GPU";
  if (!kernels::compiled()) GTEST_SKIP() << "skipped: " << kernels::describe();
  const at::Device cuda(at::kCUDA, 0);
  struct Shape {
    int64_t B, T, F;
  };
  // In fp16/bf16 (unless a backend is forced) sequences of up to 64 go through
  // the band kernel and longer ones through the sequence kernel: 70 and 130 end
  // in part-filled key tiles (and query blocks), 128 fills them. Forced, or in
  // fp32, they take rotary_split, SDPA and gate_to_rows, which along T with
  // F > 1 reads v per batch element, and along F, or with F = 1, as one view.
  const std::vector<Shape> shapes = {{2, 7, 5},   {1, 9, 1},   {3, 4, 6},   {1, 70, 3}, {2, 3, 64},
                                     {2, 130, 3}, {1, 128, 2}, {1, 200, 1}, {1, 2, 100}};
  for (bool norm_output : {false, true}) {
    roformer::Transformer t = small_transformer(norm_output);
    for (auto [tag, dtype, tol] : {std::tuple{"fp32", at::kFloat, 1e-6}, std::tuple{"fp16", at::kHalf, 2e-3},
                                   std::tuple{"bf16", at::kBFloat16, 1.6e-2}}) {
      for (bool forced : {false, true}) {
        if (forced && dtype == at::kFloat) continue;  // fp32 never takes the band kernel
        plan::KernelOptions options;
        options.seq_kernel = true;  // opt-in for users (--seq-kernel); always checked here
        if (forced) options.attention = attention::Backend::efficient;
        const plan::KernelPlan fast = plan::decide_kernels(cuda, dtype, options);
        plan::KernelPlan aten = fast;  // the same GELU and attention, ATen's ops
        aten.fused_kernels = false;
        roformer::to_device(*t, cuda, dtype, fast);
        for (const Shape& s : shapes)
          for (int axis : {1, 2}) {
            at::Tensor x = at::randn({s.B, s.T, s.F, 64}, at::TensorOptions().device(cuda)).to(dtype);
            const at::Tensor before = x.clone();
            at::Tensor want = t->forward_axial(x, axis, aten);
            ASSERT_TRUE(fast.fused_kernels && kernels::usable_for(x)) << kernels::describe();
            at::Tensor got = t->forward_axial(x, axis, fast);
            EXPECT_TRUE(at::equal(x, before)) << "the kernel path wrote into a tensor the caller kept";
            const double err = rel_l2(got, want);
            const int64_t n = axis == 1 ? s.T : s.F;
            const bool fused = !forced && dtype != at::kFloat;
            std::printf("kernels vs ATen, %s, (%ld, %ld, %ld) along axis %d%s, %s: rel. L2 %.3g\n", tag, long(s.B),
                        long(s.T), long(s.F), axis, norm_output ? ", output norm" : "",
                        !fused    ? "rotary_split + SDPA + gate_to_rows"
                        : n <= 64 ? "band kernel"
                                  : "sequence kernel",
                        err);
            EXPECT_LT(err, tol) << tag << " axis " << axis;
          }
      }
    }
  }
}

// Each block's fast path against its reference forward, on the GPU in the
// same dtype: the fast plan as `separate` decides it (the fused kernels,
// cuBLASLt and the tanh GELU where they run; --seq-kernel too, so that the
// long axis goes through the sequence kernel), within the tolerances above.
// The reference runs the erf GELU: the tanh form's 4.7e-4 is below fp16's and
// bf16's resolution.
TEST(RoformerBlocksGpu, FastMatchesReference) {
  if (!at::hasCUDA()) GTEST_SKIP() << "skipped: no CUDA or ROCm GPU";
  const at::Device cuda(at::kCUDA, 0);
  plan::KernelPlan reference;
  reference.reference_forward = true;
  struct Shape {
    int64_t B, T, F;
  };
  // Bands (up to 64: the band kernel), a long time axis (the sequence kernel),
  // and part-filled tiles.
  const std::vector<Shape> shapes = {{2, 7, 5}, {1, 70, 3}, {2, 3, 64}, {1, 130, 2}};
  const std::vector<int64_t> widths = {4, 4, 4, 6, 10, 10};
  for (auto [tag, dtype, tol] : {std::tuple{"fp32", at::kFloat, 1e-6}, std::tuple{"fp16", at::kHalf, 2e-3},
                                 std::tuple{"bf16", at::kBFloat16, 1.6e-2}}) {
    plan::KernelOptions options;
    options.seq_kernel = true;
    const plan::KernelPlan fast = plan::decide_kernels(cuda, dtype, options);
    const auto o = at::TensorOptions().device(cuda).dtype(dtype);
    std::printf("%s: fused kernels %s, gemm %s, gelu %s\n", tag, fast.fused_kernels ? "on" : "off",
                plan::name(fast.gemm), plan::name(fast.gelu));
    for (bool norm_output : {false, true}) {
      roformer::Transformer t = small_transformer(norm_output);
      roformer::to_device(*t, cuda, dtype, fast);
      for (const Shape& s : shapes)
        for (int axis : {1, 2}) {
          at::Tensor x = at::randn({s.B, s.T, s.F, 64}, o);
          const at::Tensor before = x.clone();
          at::Tensor want = t->forward_axial(x, axis, reference);
          at::Tensor got = t->forward_axial(x, axis, fast);
          EXPECT_TRUE(at::equal(x, before)) << "a forward wrote into a tensor the caller kept";
          const double err = rel_l2(got, want);
          std::printf("fast vs reference, %s, transformer (%ld, %ld, %ld) along axis %d%s: rel. L2 %.3g\n", tag,
                      long(s.B), long(s.T), long(s.F), axis, norm_output ? ", output norm" : "", err);
          EXPECT_LT(err, tol) << tag << " axis " << axis;
        }
    }
    {
      roformer::Transformer linear = small_transformer(true, /*linear_attn=*/true);
      roformer::to_device(*linear, cuda, dtype, fast);
      at::Tensor x = at::randn({2, 40, 64}, o);
      const double err = rel_l2(linear(x, fast), linear(x, reference));
      std::printf("fast vs reference, %s, linear-attention transformer: rel. L2 %.3g\n", tag, err);
      EXPECT_LT(err, tol) << tag << " linear attention";
    }
    torch::manual_seed(1);
    roformer::BandSplit split(64, widths);
    randomise(*split);
    roformer::to_device(*split, cuda, dtype, fast);
    at::Tensor spec = at::randn({2, 9, 38}, o);
    at::Tensor bands = split(spec, reference);
    const double split_err = rel_l2(split(spec, fast), bands);
    roformer::MaskEstimator masks(64, widths, 2, 256);
    randomise(*masks);
    roformer::to_device(*masks, cuda, dtype, fast);
    const double masks_err = rel_l2(masks(bands, fast), masks(bands, reference));
    roformer::RMSNorm norm(64);
    randomise(*norm);
    roformer::to_device(*norm, cuda, dtype, fast);
    const double norm_err = rel_l2(norm(bands, fast), norm(bands, reference));
    std::printf("fast vs reference, %s: band split %.3g, mask estimator %.3g, RMS norm %.3g\n", tag, split_err,
                masks_err, norm_err);
    EXPECT_LT(split_err, tol) << tag;
    EXPECT_LT(masks_err, tol) << tag;
    EXPECT_LT(norm_err, tol) << tag;
  }
}

// The cuBLASLt GEMMs against ATen's: every epilogue, writing and accumulating,
// with row counts that fill no tile and a strided output (a column slice).
TEST(LtGemmGpu, MatchesAtenGemms) {
  if (!at::hasCUDA()) GTEST_SKIP() << "skipped: no CUDA or ROCm GPU";
  const at::Device cuda(at::kCUDA, 0);
  at::Tensor probe = at::zeros({8}, at::TensorOptions().device(cuda).dtype(at::kHalf));
  if (!kernels::lt_usable_for(probe)) GTEST_SKIP() << "skipped: " << kernels::lt_describe();
  torch::manual_seed(0);
  for (auto [tag, dtype, tol] : {std::tuple{"fp16", at::kHalf, 2e-3}, std::tuple{"bf16", at::kBFloat16, 1e-2}}) {
    const auto o = at::TensorOptions().device(cuda).dtype(dtype);
    for (int64_t M : {1, 37, 1000}) {
      const int64_t K = 64, N = 96;
      at::Tensor a = at::randn({M, K}, o), w = at::randn({N, K}, o) / 8, bias = at::randn({N}, o);
      at::Tensor base = at::randn({M, N + 16}, o).narrow(1, 8, N);  // row stride N + 16
      using kernels::Epilogue;
      for (auto [name, ep, acc] :
           {std::tuple{"none", Epilogue::none, false}, std::tuple{"none, +=", Epilogue::none, true},
            std::tuple{"bias", Epilogue::bias, false}, std::tuple{"bias, +=", Epilogue::bias, true},
            std::tuple{"gelu_bias", Epilogue::gelu_bias, false}}) {
        at::Tensor want = base.to(at::kFloat);
        at::Tensor y = at::matmul(a.to(at::kFloat), w.to(at::kFloat).t());
        if (ep != Epilogue::none) y = y + bias.to(at::kFloat);
        if (ep == Epilogue::gelu_bias) y = at::gelu(y, "tanh");
        want = acc ? want + y : y;
        at::Tensor got = at::empty({M, N + 16}, o).narrow(1, 8, N).copy_(base);
        kernels::lt_linear(a, w, bias, got, ep, acc);
        kernels::lt_linear(a, w, bias, got.copy_(base), ep, acc);  // again, with the algorithm chosen
        const double err = rel_l2(got.to(at::kFloat), want);
        std::printf("lt_linear %s, M %ld, %s: rel. L2 %.3g\n", tag, long(M), name, err);
        EXPECT_LT(err, tol) << tag << " M " << M << " " << name;
      }
    }
  }
}

}  // namespace
