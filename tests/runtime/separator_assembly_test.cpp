// The separators with the stems finished on the model's device (the default
// when one window covers the track: SeparationOptions::device_assembly) against
// the same separation brought back to the CPU window by window and finished
// there, as before. Compiled twice: for the CPU into runtime_tests, and with
// STEMKIT_ASSEMBLY_ON_GPU into runtime_gpu_tests (separator_assembly_gpu_test.cpp),
// where it skips, saying why, without a GPU.
//
// The RoFormer's steps after the model (overlap-add, TTA's average, normalize's
// scaling back, the instrumental stem) are the same float32 operations on
// either device, so the two ways must give the same bits; so must demucs' on
// the CPU. On a GPU demucs takes the mix's statistics there, whose sums run in
// another order than the CPU's, so the two agree to rounding (1e-5 here).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <string>

#include "runtime/plan/execution_plan.h"
#include "runtime/models/demucs_bag.h"
#include "runtime/models/separator.h"
#include "tests/runtime/compare.h"
#include "tests/runtime/msst_fixture.h"

#if defined(STEMKIT_ASSEMBLY_ON_GPU)
#define ASSEMBLY_SUITE SeparatorAssemblyGpu
#define NEEDS_DEVICE() \
  if (!at::hasCUDA()) GTEST_SKIP() << "skipped: no CUDA or ROCm GPU"
constexpr bool kGpu = true;
#else
#define ASSEMBLY_SUITE SeparatorAssembly
#define NEEDS_DEVICE() (void)0
constexpr bool kGpu = false;
#endif

namespace {

using namespace stemkit;

at::Device device() { return kGpu ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU); }

// The small stereo BS-RoFormer with one target (vocals), so that the
// instrumental stem is made too, and inference.normalize on.
std::unique_ptr<models::Separator> small_roformer() {
  models::MsstConfig config = test::stereo_msst_config();
  config.normalize = true;
  return models::make_roformer_separator(config, test::bs_roformer_fixtures() + "stereo.ckpt");
}

TEST(ASSEMBLY_SUITE, RoformerStemsFinishedOnTheDeviceAreTheSameBits) {
  NEEDS_DEVICE();
  auto separator = small_roformer();
  separator->to(device(), at::kFloat, plan::decide_kernels(device(), at::kFloat, {}));
  at::manual_seed(7);
  at::Tensor wav = 0.2 * at::randn({2, 20000}, at::TensorOptions().dtype(at::kFloat)) + 0.01;
  wav[1].mul_(0.5);  // the channels differ, so that the TTA's swap matters
  for (bool tta : {false, true}) {
    models::SeparationOptions on_device, on_host;
    on_device.batch_size = on_host.batch_size = 2;  // 9 chunks: the last batch short, run eagerly
    on_device.tta = on_host.tta = tta;
    on_host.device_assembly = false;
    separator->separate(wav, on_device);  // graphs captured, GEMM plans chosen: both runs below replay the same work
    const at::Tensor a = separator->separate(wav, on_device), b = separator->separate(wav, on_host);
    ASSERT_EQ(a.sizes(), at::IntArrayRef({2, 2, 20000}));
    EXPECT_TRUE(a.device().is_cpu());
    EXPECT_TRUE(a.isfinite().all().item<bool>());
    EXPECT_TRUE(at::equal(a, b)) << "tta " << tta << ": rel. L2 " << test::rel_l2(a, b);
    EXPECT_LT(test::rel_l2(a[1], wav - a[0]), 1e-6) << "the instrumental is the mix minus the target";
  }
  // A window shorter than the track: brought back window by window whatever device_assembly says.
  models::SeparationOptions windowed;
  windowed.window_seconds = 0.2;  // 8820 samples: three windows
  EXPECT_TRUE(separator->separate(wav, windowed).isfinite().all().item<bool>());
}

TEST(ASSEMBLY_SUITE, DemucsStemsFinishedOnTheDeviceMatch) {
  NEEDS_DEVICE();
  const std::string dir = std::string(STEMKIT_FIXTURES) + "/htdemucs/";
  // Two members with per-source weights: the weighted sum over members too.
  models::DemucsBag bag =
      models::load_demucs_bag("two", {dir + "small.th", dir + "small.th"}, {{1, 0, 0.5, 1}, {0, 1, 0.5, 1}});
  bag.to(device(), at::kFloat);
  at::manual_seed(8);
  at::Tensor wav = 0.2 * at::randn({bag.audio_channels(), 30000}, at::TensorOptions().dtype(at::kFloat)) + 0.01;
  models::SeparationOptions on_device, on_host;
  on_host.device_assembly = false;
  models::separate(bag, wav, on_device);
  const at::Tensor a = models::separate(bag, wav, on_device), b = models::separate(bag, wav, on_host);
  ASSERT_EQ(a.sizes(), b.sizes());
  EXPECT_TRUE(a.device().is_cpu());
  if (kGpu)  // the mix's mean and std summed on the GPU: the input differs in its last bits, the output about as much
    EXPECT_LT(test::rel_l2(a, b), 1e-5) << "rel. L2 " << test::rel_l2(a, b);
  else
    EXPECT_TRUE(at::equal(a, b)) << "rel. L2 " << test::rel_l2(a, b);
}

}  // namespace
