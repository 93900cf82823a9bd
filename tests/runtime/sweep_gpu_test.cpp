// The configuration sweep on the GPU, against upstream run on the same GPU
// (upstream's own GPU and CPU outputs differ by more than the tolerance):
//   python3 tools/fixtures/make_sweep_fixtures.py ... --device cuda --out DIR
//   STEMKIT_SWEEP=DIR runtime_gpu_tests --gtest_filter='*SweepGpu*'
// In fp32 with TF32 off, through the plan the GPU gets (its attention backends,
// fused kernels and cuBLASLt, each falling back where a shape needs it) and
// through the reference forwards.
#include <cstdlib>

#include "tests/runtime/sweep.h"

namespace {

using namespace stemkit;

void run_sweep(const std::string& model) {
  if (!at::hasCUDA()) GTEST_SKIP() << "skipped: no CUDA or ROCm GPU";
  const char* dir = std::getenv("STEMKIT_SWEEP");
  if (!dir)
    GTEST_SKIP() << "skipped: STEMKIT_SWEEP is not set (make the data on this GPU with make_sweep_fixtures.py "
                    "--device cuda)";
  const auto cases = test::sweep_cases(dir, model);
  ASSERT_FALSE(cases.empty()) << dir << "/" << model << " holds no cases";
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  for (const auto& name : cases) test::expect_sweep_case_matches(dir, model, name, at::Device(at::kCUDA, 0), 1e-5);
  at::globalContext().setAllowTF32CuBLAS(true);
  at::globalContext().setAllowTF32CuDNN(true);
}

TEST(HTDemucsSweepGpu, EveryCaseMatchesUpstreamOnThisGpu) { run_sweep("htdemucs"); }
TEST(BSRoformerSweepGpu, EveryCaseMatchesUpstreamOnThisGpu) { run_sweep("bs_roformer"); }
TEST(MelBandRoformerSweepGpu, EveryCaseMatchesUpstreamOnThisGpu) {
  if (const char* dir = std::getenv("STEMKIT_SWEEP");
      dir && test::sweep_cases(dir, "mel_band_roformer").empty() && at::hasCUDA())
    GTEST_SKIP() << "skipped: " << dir << " has no Mel-Band RoFormer cases (made without librosa: --no-mel)";
  run_sweep("mel_band_roformer");
}

}  // namespace
