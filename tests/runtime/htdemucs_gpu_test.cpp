// The official htdemucs architecture on a GPU against the patched upstream,
// from reference data made on the GPU machine:
//   python3 tools/fixtures/make_htdemucs_fixtures.py --config full --device cuda --out DIR ...
//   STEMKIT_HTDEMUCS_FULL=DIR runtime_gpu_tests --gtest_filter='HTDemucsGpu*'
// (full.th holds 42M fp32 parameters, too large to commit). Skips, saying
// why, without a GPU or without the data. Prints every error it measures.
// The fast paths of htdemucs_fast.h against the reference forwards, block by
// block and on the committed small fixture, need only a GPU.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>

#include "runtime/layers/state_dict.h"
#include "tests/runtime/compare.h"
#include "tests/runtime/htdemucs_blocks.h"
#include "runtime/plan/execution_plan.h"
#include "runtime/models/htdemucs.h"
#include "runtime/segment/overlap_add.h"
#include "runtime/version.h"
#include "runtime/weights/checkpoint.h"

namespace {

using namespace stemkit;
using test::rel_l2;

TEST(HTDemucsGpu, FullConfigurationMatchesUpstream) {
  if (!at::hasCUDA()) GTEST_SKIP() << "skipped: no CUDA or ROCm GPU";
  const char* dir = std::getenv("STEMKIT_HTDEMUCS_FULL");
  if (!dir)
    GTEST_SKIP()
        << "skipped: STEMKIT_HTDEMUCS_FULL is not set (make the data with make_htdemucs_fixtures.py --config full)";
  const std::string base = std::string(dir) + "/full";
  std::ifstream meta_in(base + ".json");
  ASSERT_TRUE(meta_in) << base << ".json is missing";
  auto meta = nlohmann::json::parse(meta_in);
  EXPECT_EQ(meta["fingerprint"]["demucs"].get<std::string>(), component_patchset("demucs")) << "stale reference data";
  auto data = weights::load_safetensors(base + ".safetensors");
  auto get = [&](const char* name) { return layers::to_torch(data.tensors.at(name)); };

  // fp32 means fp32: no TF32 in convolutions or matrix products (the reference had none).
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  models::HTDemucs model = models::load_htdemucs(base + ".th");
  const at::Device cuda(at::kCUDA, 0);
  at::Tensor in = get("forward_in"), want = get("forward_out");

  plan::KernelPlan reference = plan::decide_kernels(cuda, at::kFloat, {});
  reference.reference_forward = true;
  model.to(cuda, at::kFloat, reference);
  const double fp32_reference = rel_l2(model.forward(in.to(cuda)), want);
  std::printf("htdemucs full, fp32 forward, reference forwards: rel. L2 %.3g against upstream fp32\n", fp32_reference);
  EXPECT_LT(fp32_reference, 1e-5);

  model.to(cuda, at::kFloat, plan::decide_kernels(cuda, at::kFloat, {}));
  const double fp32 = rel_l2(model.forward(in.to(cuda)), want);
  std::printf("htdemucs full, fp32 forward: rel. L2 %.3g against upstream fp32\n", fp32);
  EXPECT_LT(fp32, 1e-5);

  segment::DemucsSplit split;
  split.segment = model.training_length();
  split.overlap = 0.25;
  segment::Forward forward = [&](const at::Tensor& x) { return model.forward(x); };
  const double track = rel_l2(segment::apply_demucs(forward, get("track_in").to(cuda), split), get("track_out"));
  std::printf("htdemucs full, fp32 apply_model (split, overlap 0.25, no shifts): rel. L2 %.3g\n", track);
  EXPECT_LT(track, 1e-5);

  for (auto [tag, dtype] : {std::pair{"fp16", at::kHalf}, std::pair{"bf16", at::kBFloat16}}) {
    model.to(cuda, dtype, plan::decide_kernels(cuda, dtype, {}));
    const double ours = rel_l2(model.forward(in.to(cuda)), want);
    const std::string key = std::string("forward_out_") + tag;
    const double theirs = data.tensors.count(key) ? rel_l2(get(key.c_str()), want) : -1;
    std::printf("htdemucs full, %s forward: rel. L2 %.3g against upstream fp32 (upstream %s autocast: %.3g)\n", tag,
                ours, tag, theirs);
    EXPECT_LT(ours, 2e-2) << tag;
  }
  at::globalContext().setAllowTF32CuDNN(true);
}

// Sets fp32 to mean fp32 (no TF32 in convolutions or matrix products) for a
// scope: the fast paths and the reference run different convolution shapes,
// which TF32 would round differently.
struct NoTf32 {
  bool cublas = at::globalContext().allowTF32CuBLAS(), cudnn = at::globalContext().allowTF32CuDNN();
  NoTf32() {
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
  ~NoTf32() {
    at::globalContext().setAllowTF32CuBLAS(cublas);
    at::globalContext().setAllowTF32CuDNN(cudnn);
  }
};

TEST(HTDemucsGpu, FastPathsMatchTheReferenceForwards) {
  if (!at::hasCUDA()) GTEST_SKIP() << "skipped: no CUDA or ROCm GPU";
  NoTf32 fp32_means_fp32;
  const at::Device cuda(at::kCUDA, 0);
  const std::tuple<const char*, at::ScalarType, double> precisions[] = {
      {"fp32", at::kFloat, 1e-5}, {"fp16", at::kHalf, 2e-2}, {"bf16", at::kBFloat16, 2e-2}};

  for (auto [tag, dtype, tolerance] : precisions) {
    for (const auto& c : test::compare_blocks(cuda, dtype)) {
      EXPECT_TRUE(c.skipped.empty()) << tag << " " << c.block << ": " << c.skipped;
      std::printf("%s %s: fast path rel. L2 %.3g against the reference\n", tag, c.block.c_str(), c.rel_l2);
      EXPECT_LT(c.rel_l2, tolerance) << tag << " " << c.block;
    }
  }

  // The whole network: the committed small configuration, the plan's reference
  // forwards against upstream's CPU output (fp32) and against the fast paths.
  const std::string dir = std::string(STEMKIT_FIXTURES) + "/htdemucs/";
  auto data = weights::load_safetensors(dir + "small.safetensors");
  const at::Tensor in = layers::to_torch(data.tensors.at("forward_in")).to(cuda);
  const at::Tensor want = layers::to_torch(data.tensors.at("forward_out"));
  for (auto [tag, dtype, tolerance] : precisions) {
    models::HTDemucs model = models::load_htdemucs(dir + "small.th");  // fp32 weights, converted by to()
    plan::KernelPlan fast = plan::decide_kernels(cuda, dtype, {}), reference = fast;
    reference.reference_forward = true;
    model.to(cuda, dtype, reference);
    const at::Tensor ref = model.forward(in);
    model.to(cuda, dtype, fast);
    const at::Tensor got = model.forward(in);
    std::printf(
        "small %s: fast paths rel. L2 %.3g against the reference forwards; reference %.3g against upstream fp32\n", tag,
        rel_l2(got, ref), rel_l2(ref, want));
    EXPECT_LT(rel_l2(got, ref), tolerance) << tag;
    if (dtype == at::kFloat) EXPECT_LT(rel_l2(ref, want), 1e-5);
  }
}

}  // namespace
