// The full RoFormer architectures on a GPU against the patched upstream, from
// reference data made there (tools/gpu/htdemucs-run.sh roformer-parity / mel-parity):
//   viperx's BS-RoFormer 12.97:
//     python3 tools/fixtures/make_bs_roformer_fixtures.py --config full --device cuda --out DIR ...
//     STEMKIT_BS_ROFORMER_FULL=DIR runtime_gpu_tests --gtest_filter='BSRoformerGpu*'
//   Kim's Mel-Band RoFormer vocal model:
//     python3 tools/fixtures/make_mel_band_roformer_fixtures.py --config full --device cuda --out DIR ...
//     STEMKIT_MEL_BAND_ROFORMER_FULL=DIR runtime_gpu_tests --gtest_filter='MelBandRoformerGpu*'
// Skips, saying why, without a GPU or without the data. Prints every error it measures.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/layers/state_dict.h"
#include "runtime/plan/execution_plan.h"
#include "runtime/models/bs_roformer.h"
#include "runtime/models/mel_band_roformer.h"
#include "runtime/version.h"
#include "runtime/weights/checkpoint.h"
#include "tests/runtime/compare.h"

namespace {

using namespace stemkit;
using test::rel_l2;

// fp32 within 1e-5 of upstream's fp32, fp16 and bf16 within 2e-2 (upstream's own
// autocast error printed beside ours); the same for the blocks' reference
// forwards (--reference-forward), and between those and the fast paths.
// `label` names the model in the output.
template <typename Model, typename Config>
void full_configuration_matches_upstream(const char* env, const char* label, const char* script) {
  if (!at::hasCUDA()) GTEST_SKIP() << "skipped: no CUDA or ROCm GPU";
  const char* dir = std::getenv(env);
  if (!dir) GTEST_SKIP() << "skipped: " << env << " is not set (make the data with " << script << " --config full)";
  const std::string base = std::string(dir) + "/full";
  std::ifstream meta_in(base + ".json");
  ASSERT_TRUE(meta_in) << base << ".json is missing";
  auto meta = nlohmann::json::parse(meta_in);
  EXPECT_EQ(meta["fingerprint"]["bs-roformer"].get<std::string>(), component_patchset("bs-roformer"))
      << "stale reference data";
  auto data = weights::load_safetensors(base + ".safetensors");
  auto get = [&](const std::string& name) { return layers::to_torch(data.tensors.at(name)); };

  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  Model model(Config::from_json(meta["kwargs"], base + ".json"));
  auto checkpoint = weights::load_torch_checkpoint(base + ".ckpt");
  model.load_state_dict(weights::state_dict(checkpoint), base + ".ckpt");
  const at::Device cuda(at::kCUDA, 0);
  at::Tensor mix = get("mix").to(cuda), want = get("out");
  plan::KernelOptions reference_options;
  reference_options.reference_forward = true;
  model.to(cuda, at::kFloat, plan::decide_kernels(cuda, at::kFloat, {}));
  const at::Tensor fast32 = model.forward(mix);
  const double fp32 = rel_l2(fast32, want);
  std::printf("%s full, fp32 forward: rel. L2 %.3g against upstream fp32\n", label, fp32);
  EXPECT_LT(fp32, 1e-5);
  // The blocks' reference forwards (upstream's, line for line) as closely, and
  // the fast paths against them.
  model.to(cuda, at::kFloat, plan::decide_kernels(cuda, at::kFloat, reference_options));
  const at::Tensor reference32 = model.forward(mix);
  std::printf("%s full, fp32 reference forward: rel. L2 %.3g against upstream fp32; fast path %.3g against it\n", label,
              rel_l2(reference32, want), rel_l2(fast32, reference32));
  EXPECT_LT(rel_l2(reference32, want), 1e-5);
  EXPECT_LT(rel_l2(fast32, reference32), 1e-5);
  for (auto [tag, dtype] : {std::pair{"fp16", at::kHalf}, std::pair{"bf16", at::kBFloat16}}) {
    model.to(cuda, dtype, plan::decide_kernels(cuda, dtype, {}));
    const at::Tensor fast = model.forward(mix);
    const double ours = rel_l2(fast, want);
    const std::string key = std::string("out_") + tag;
    const double theirs = data.tensors.count(key) ? rel_l2(get(key), want) : -1;
    std::printf("%s full, %s forward: rel. L2 %.3g against upstream fp32 (upstream %s autocast: %s)\n", label, tag,
                ours, tag, theirs < 0 ? "failed" : std::to_string(theirs).c_str());
    EXPECT_LT(ours, 2e-2) << tag;
    model.to(cuda, dtype, plan::decide_kernels(cuda, dtype, reference_options));
    const at::Tensor reference = model.forward(mix);
    std::printf("%s full, %s reference forward: rel. L2 %.3g against upstream fp32; fast path %.3g against it\n", label,
                tag, rel_l2(reference, want), rel_l2(fast, reference));
    EXPECT_LT(rel_l2(reference, want), 2e-2) << tag;
    EXPECT_LT(rel_l2(fast, reference), 2e-2) << tag;
  }
  at::globalContext().setAllowTF32CuDNN(true);
}

TEST(BSRoformerGpu, FullConfigurationMatchesUpstream) {
  full_configuration_matches_upstream<models::BSRoformer, models::BSRoformerConfig>(
      "STEMKIT_BS_ROFORMER_FULL", "bs-roformer", "make_bs_roformer_fixtures.py");
}

TEST(MelBandRoformerGpu, FullConfigurationMatchesUpstream) {
  full_configuration_matches_upstream<models::MelBandRoformer, models::MelBandRoformerConfig>(
      "STEMKIT_MEL_BAND_ROFORMER_FULL", "mel-band-roformer", "make_mel_band_roformer_fixtures.py");
}

}  // namespace
