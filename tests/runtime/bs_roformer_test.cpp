// BS-RoFormer against the patched upstream (lucidrains/BS-RoFormer at the pin
// with our patches, rotary-embedding-torch): tests/fixtures/bs_roformer was made
// by tools/fixtures/make_bs_roformer_fixtures.py on two small configurations,
// and on a third (`msst`) by Music-Source-Separation-Training's own copy of the
// model with the options that copy adds (linear attention layers, skip
// connections, the mask MLP's width, the DC filter).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/layers/state_dict.h"
#include "tests/runtime/compare.h"
#include "tests/runtime/reference_forward.h"
#include "tests/runtime/msst_fixture.h"
#include "runtime/models/bs_roformer.h"
#include "runtime/models/roformer_blocks.h"
#include "runtime/models/roformer_fast.h"
#include "runtime/models/separator.h"
#include "runtime/version.h"
#include "runtime/weights/checkpoint.h"

namespace {

using namespace stemkit;
const std::string kDir = std::string(STEMKIT_FIXTURES) + "/bs_roformer/";

class BSRoformerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(BSRoformerParity, ForwardMatchesUpstream) {
  std::ifstream in(kDir + GetParam() + ".json");
  auto meta = nlohmann::json::parse(in);
  EXPECT_EQ(meta["fingerprint"]["bs-roformer"].get<std::string>(), component_patchset("bs-roformer"))
      << "stale: regenerate with tools/fixtures/make_bs_roformer_fixtures.py";
  auto config = models::BSRoformerConfig::from_json(meta["kwargs"], GetParam() + ".json");
  models::BSRoformer model(config);
  auto checkpoint = weights::load_torch_checkpoint(kDir + GetParam() + ".ckpt");
  model.load_state_dict(weights::state_dict(checkpoint), GetParam() + ".ckpt");
  auto data = weights::load_safetensors(kDir + GetParam() + ".safetensors");
  at::Tensor mix = layers::to_torch(data.tensors.at("mix")), want = layers::to_torch(data.tensors.at("out"));
  at::Tensor got = model.forward(mix);
  ASSERT_EQ(got.sizes(), want.sizes());
  const double err = test::rel_l2(got, want);
  std::printf("%s: forward rel. L2 %.3g\n", GetParam().c_str(), err);
  EXPECT_LT(err, 1e-5);
  // The blocks' reference forwards (upstream's, line for line) meet upstream
  // as closely, and the fast paths above meet them.
  test::expect_reference_forward_meets(model, mix, got, want, GetParam());
  // to() replaces every parameter; the band modules stack theirs again.
  model.to(at::kCPU, at::kFloat);
  EXPECT_LT(test::rel_l2(model.forward(mix), got), 1e-7);

  // The comparison is sensitive: 1% more on the rotary frequencies, the last
  // norm or one band's mask weights moves the output far past the tolerance.
  for (const std::string name :
       {"layers.0.1.layers.0.0.rotary_embed.freqs", "final_norm.gamma", "mask_estimators.0.to_freqs.1.0.0.weight"}) {
    auto state = weights::state_dict(checkpoint);
    std::vector<float> keep;
    state[name] = test::changed(state.at(name), 1.01, 0, keep);
    models::BSRoformer changed(config);
    changed.load_state_dict(state, "changed");
    at::Tensor other = changed.forward(mix);
    const double moved = test::rel_l2(other, want);
    EXPECT_GT(moved, 1e-4) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, BSRoformerParity, ::testing::Values("stereo", "mono", "msst"));

// Each of MSST's options changes the output: the fixture would not notice one
// that the model ignored.
TEST(BSRoformerMsst, EveryOptionMatters) {
  std::ifstream in(kDir + "msst.json");
  auto meta = nlohmann::json::parse(in);
  EXPECT_EQ(meta["fingerprint"]["bs-roformer"].get<std::string>(), component_patchset("bs-roformer"))
      << "stale: regenerate with tools/fixtures/make_bs_roformer_fixtures.py --msst";
  auto checkpoint = weights::load_torch_checkpoint(kDir + "msst.ckpt");
  auto data = weights::load_safetensors(kDir + "msst.safetensors");
  at::Tensor mix = layers::to_torch(data.tensors.at("mix")), want = layers::to_torch(data.tensors.at("out"));
  auto config = models::BSRoformerConfig::from_json(meta["kwargs"], "msst.json");
  EXPECT_EQ(config.msst.linear_transformer_depth, 1);
  EXPECT_EQ(config.msst.mlp_expansion_factor, 2);
  EXPECT_TRUE(config.msst.skip_connection);
  EXPECT_TRUE(config.msst.zero_dc);
  EXPECT_TRUE(config.ignored.empty());
  for (const std::string option : {"skip_connection", "zero_dc"}) {
    nlohmann::json kwargs = meta["kwargs"];
    kwargs[option] = false;
    models::BSRoformer changed(models::BSRoformerConfig::from_json(kwargs, "msst.json"));
    changed.load_state_dict(weights::state_dict(checkpoint), "msst.ckpt");
    const double moved = test::rel_l2(changed.forward(mix), want);
    std::printf("without %s: rel. L2 %.3g\n", option.c_str(), moved);
    EXPECT_GT(moved, 1e-4) << option;
  }
  // Layers whose weights the checkpoint has (or lacks) are named when it does not fit.
  for (const auto& [option, value] :
       std::vector<std::pair<std::string, int>>{{"linear_transformer_depth", 0}, {"mlp_expansion_factor", 4}}) {
    nlohmann::json kwargs = meta["kwargs"];
    kwargs[option] = value;
    models::BSRoformer other(models::BSRoformerConfig::from_json(kwargs, "msst.json"));
    try {
      other.load_state_dict(weights::state_dict(checkpoint), "msst.ckpt");
      ADD_FAILURE() << option << " " << value << ": the checkpoint loaded";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("msst.ckpt"), std::string::npos) << e.what();
    }
  }
}

using test::stereo_msst_config;

// inference.normalize: the track scaled by its mono mix's mean and population
// std (MSST's normalize_audio) before the model and the stems scaled back after;
// the instrumental stem is still the mix minus the target.
TEST(BSRoformerMsst, NormalizeScalesTheTrackAndTheStemsBack) {
  models::MsstConfig config = stereo_msst_config();
  at::Tensor wav = 0.2 * at::randn({2, 9000}, at::TensorOptions().dtype(at::kFloat)) + 0.05;
  auto plain = models::make_roformer_separator(config, kDir + "stereo.ckpt");
  config.normalize = true;
  auto normalizing = models::make_roformer_separator(config, kDir + "stereo.ckpt");
  models::SeparationOptions o;
  at::Tensor got = normalizing->separate(wav, o);
  at::Tensor mono = wav.mean(0);
  const double mean = mono.mean().item<double>(), std = mono.std(/*unbiased=*/false).item<double>();
  at::Tensor want = plain->separate((wav - mean) / std, o)[0] * std + mean;
  EXPECT_LT(test::rel_l2(got[0], want), 1e-6);
  EXPECT_GT(test::rel_l2(got[0], plain->separate(wav, o)[0]), 1e-3);  // the model is not scale-invariant
  EXPECT_LT(test::rel_l2(got[1], wav - got[0]), 1e-6);
}

// tta (MSST's --use_tta, apply_tta): the track separated as it is, with its
// channels swapped and with its polarity inverted; the last two undone and the
// three averaged. The instrumental stem is the mix minus that average.
TEST(BSRoformerMsst, TestTimeAugmentationAveragesThreePasses) {
  auto separator = models::make_roformer_separator(stereo_msst_config(), kDir + "stereo.ckpt");
  at::Tensor wav = 0.2 * at::randn({2, 7000}, at::TensorOptions().dtype(at::kFloat));
  wav[1].mul_(0.5);  // the channels differ, so that swapping them matters
  models::SeparationOptions plain;
  models::SeparationOptions tta = plain;
  tta.tta = true;
  std::vector<double> fractions;
  at::Tensor got = separator->separate(wav, tta, [&](double f) { fractions.push_back(f); });
  const at::Tensor a = separator->separate(wav, plain)[0], b = separator->separate(wav.flip(0), plain)[0].flip(0),
                   c = separator->separate(wav.neg(), plain)[0];
  EXPECT_LT(test::rel_l2(got[0], (a + b - c) / 3), 1e-6);
  EXPECT_GT(test::rel_l2(got[0], a), 1e-3);  // the model is neither channel- nor polarity-symmetric
  EXPECT_LT(test::rel_l2(got[1], wav - got[0]), 1e-6);
  ASSERT_FALSE(fractions.empty());
  EXPECT_TRUE(std::is_sorted(fractions.begin(), fractions.end()));  // one progress over the three passes
  EXPECT_EQ(fractions.back(), 1.0);
}

// MSST's copy gives the input's length (its iSTFT gets length=); the pin drops
// the last partial hop. The samples both give are the same, so a chunk that is
// not a whole number of hops works through MSST's demix as it does in MSST.
TEST(BSRoformerMsst, OutputAsLongAsTheInput) {
  std::ifstream in(kDir + "stereo.json");
  nlohmann::json kwargs = nlohmann::json::parse(in)["kwargs"];
  auto checkpoint = weights::load_torch_checkpoint(kDir + "stereo.ckpt");
  auto data = weights::load_safetensors(kDir + "stereo.safetensors");
  at::Tensor mix = layers::to_torch(data.tensors.at("mix")), pin = layers::to_torch(data.tensors.at("out"));
  kwargs["match_input_audio_length"] = true;
  models::BSRoformer model(models::BSRoformerConfig::from_json(kwargs, "stereo.json"));
  model.load_state_dict(weights::state_dict(checkpoint), "stereo.ckpt");
  at::Tensor got = model.forward(mix);
  ASSERT_EQ(got.size(-1), mix.size(-1));  // 3000, where the pin gives 2944 (23 hops of 128)
  ASSERT_LT(pin.size(-1), mix.size(-1));
  EXPECT_LT(test::rel_l2(got.slice(-1, 0, pin.size(-1)), pin), 1e-5);

  models::MsstConfig config = stereo_msst_config();
  config.chunk_size = 2950;  // not a whole number of hops
  auto separator = models::make_roformer_separator(config, kDir + "stereo.ckpt");
  at::Tensor wav = 0.2 * at::randn({2, 7000}, at::TensorOptions().dtype(at::kFloat));
  models::SeparationOptions o;
  at::Tensor out = separator->separate(wav, o);
  EXPECT_EQ(out.sizes(), at::IntArrayRef({2, 2, 7000}));
  EXPECT_TRUE(out.isfinite().all().item<bool>());
}

TEST(BSRoformerConfig, ProblemsAreNamed) {
  auto message = [](const nlohmann::json& kwargs) {
    try {
      models::BSRoformerConfig::from_json(kwargs, "model.yaml");
    } catch (const stemkit::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"depth", 2}}).find("needs `dim`"), std::string::npos);
  EXPECT_NE(
      message({{"dim", 8}, {"depth", 1}, {"stft_n_fft", 512}}).find("add up to 1025 bins; stft_n_fft 512 gives 257"),
      std::string::npos);
  EXPECT_NE(message({{"dim", 8}, {"depth", "two"}}).find("depth=\"two\": expected a positive integer"),
            std::string::npos);
  EXPECT_NE(message({{"dim", 8}, {"depth", 1}, {"linear_transformer_depth", -1}})
                .find("linear_transformer_depth=-1: expected a non-negative integer"),
            std::string::npos);
  EXPECT_NE(message({{"dim", 8}, {"depth", 1}, {"mlp_expansion_factor", 0}})
                .find("mlp_expansion_factor=0: expected a positive integer"),
            std::string::npos);
  EXPECT_NE(message({{"dim", 8}, {"depth", 1}, {"use_pope", true}}).find("use_pope=true: MSST's PoPE"),
            std::string::npos);
  EXPECT_NE(message({{"dim", 8}, {"depth", 1}, {"skip_connection", "yes"}})
                .find("skip_connection=\"yes\": expected true or false"),
            std::string::npos);
  // viperx's 12.97 config: its MSST-only and training-only arguments are understood.
  auto c = models::BSRoformerConfig::from_json({{"dim", 512},
                                                {"depth", 12},
                                                {"stereo", true},
                                                {"flash_attn", true},
                                                {"linear_transformer_depth", 0},
                                                {"use_torch_checkpoint", false},
                                                {"sage_attention", true},
                                                {"some_new_option", 1}},
                                               "viperx.yaml");
  EXPECT_EQ(c.freqs_per_bands.size(), 62u);  // upstream's default bands for n_fft 2048
  EXPECT_EQ(c.msst.linear_transformer_depth, 0);
  EXPECT_EQ(c.msst.mlp_expansion_factor, 4);
  EXPECT_FALSE(c.msst.skip_connection);
  EXPECT_FALSE(c.msst.zero_dc);  // the pin's behaviour; MSST's copy defaults to true
  EXPECT_EQ(c.ignored, std::vector<std::string>{"some_new_option"});
}

// Runs of bands of equal width go through one batched GEMM; the result is the
// band-by-band computation's, and loading weights keeps the parameters stacked.
TEST(RoformerBandModules, BatchedRunsMatchBandByBand) {
  namespace roformer = models::roformer;
  const std::vector<int64_t> widths = {4, 4, 4, 6, 10, 10};
  const auto runs = roformer::fast::band_runs(widths);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].count, 3);
  EXPECT_EQ(runs[1].first, 3);
  EXPECT_EQ(runs[2].offset, 18);
  EXPECT_EQ(runs[2].count, 2);

  at::manual_seed(3);
  const int64_t dim = 16, B = 2, T = 5;
  roformer::BandSplit split(dim, widths);
  roformer::MaskEstimator masks(dim, widths, 3, 24);
  for (auto& p : split->parameters()) p.set_requires_grad(false);  // as the models do
  for (auto& p : masks->parameters()) p.set_requires_grad(false);
  // Weights loaded the way checkpoints load them (copy_ into each parameter).
  {
    at::NoGradGuard no_grad;
    for (auto& p : split->parameters()) p.copy_(at::randn(p.sizes()));
    for (auto& p : masks->parameters()) p.copy_(at::randn(p.sizes()) * 0.3);
  }
  ASSERT_TRUE(roformer::fast::stacked(*split));
  ASSERT_TRUE(roformer::fast::stacked(*masks));
  at::Tensor x = at::randn({B, T, 38});
  const plan::KernelPlan fast;
  at::Tensor bands = split(x, fast), mask = masks(bands, fast);
  EXPECT_EQ(bands.sizes(), (std::vector<int64_t>{B, T, 6, dim}));
  EXPECT_EQ(mask.sizes(), (std::vector<int64_t>{B, T, 38}));

  // Each band alone: parameters set apart from the stacked tensors.
  {
    at::NoGradGuard no_grad;
    for (auto& p : split->parameters()) p.set_data(p.clone());
    for (auto& p : masks->parameters()) p.set_data(p.clone());
  }
  EXPECT_FALSE(roformer::fast::stacked(*split));
  EXPECT_FALSE(roformer::fast::stacked(*masks));
  at::Tensor bands_one = split(x, fast);
  EXPECT_LT(test::rel_l2(bands, bands_one), 1e-6);
  EXPECT_LT(test::rel_l2(mask, masks(bands_one, fast)), 1e-6);

  // to_device stacks them again; one band's weight still counts.
  roformer::to_device(*masks, at::kCPU, at::kFloat, {});
  EXPECT_TRUE(roformer::fast::stacked(*masks));
  EXPECT_LT(test::rel_l2(mask, masks(bands_one, fast)), 1e-6);
  {
    at::NoGradGuard no_grad;
    masks->mlps[4].back()->weight.mul_(1.5);
  }
  EXPECT_GT(test::rel_l2(mask, masks(bands_one, fast)), 1e-3);

  // A move that changes nothing (same device and dtype) keeps the stacked
  // tensors: no copy of the weights at load.
  const void* stacked_at = masks->mlps[0][0]->weight.data_ptr();
  roformer::to_device(*masks, at::kCPU, at::kFloat, {});
  EXPECT_EQ(masks->mlps[0][0]->weight.data_ptr(), stacked_at);
  EXPECT_TRUE(roformer::fast::stacked(*masks));
}

// to_device converts every weight to the model's dtype but the rotary
// frequencies, which stay float32 with every bit (a round trip through fp16
// rounded them), and stacks the band modules' parameters again.
TEST(RoformerToDevice, ConvertsWeightsAndKeepsRotaryFrequenciesExact) {
  namespace roformer = models::roformer;
  roformer::Transformer t(1, 64, 2, 64, false, false);
  const at::Tensor freqs = 1.0 / at::pow(10000.0, at::arange(0, 64, 2, at::kDouble) / 64.0);
  {
    at::NoGradGuard no_grad;
    for (auto& item : t->named_parameters()) {
      if (item.key().find("freqs") != std::string::npos)
        item.value().copy_(freqs);
      else
        item.value().uniform_(-0.1, 0.1);
    }
  }
  const at::Tensor want = freqs.to(at::kFloat);
  ASSERT_FALSE(at::equal(want.to(at::kHalf).to(at::kFloat), want));  // fp16 would change them
  roformer::to_device(*t, at::kCPU, at::kHalf, {});
  int converted = 0, rotary = 0;
  for (const auto& item : t->named_parameters()) {
    if (item.key().find("rotary_embed.freqs") != std::string::npos) {
      ++rotary;
      EXPECT_EQ(item.value().scalar_type(), at::kFloat) << item.key();
      EXPECT_TRUE(at::equal(item.value(), want)) << item.key();
    } else {
      ++converted;
      EXPECT_EQ(item.value().scalar_type(), at::kHalf) << item.key();
    }
  }
  EXPECT_EQ(rotary, 1);
  EXPECT_GT(converted, 5);

  roformer::MaskEstimator masks(16, std::vector<int64_t>{4, 4, 6}, 2, 24);
  {
    at::NoGradGuard no_grad;
    for (auto& p : masks->parameters()) p.uniform_(-0.1, 0.1);
  }
  roformer::to_device(*masks, at::kCPU, at::kBFloat16, {});
  EXPECT_TRUE(roformer::fast::stacked(*masks));
  for (const auto& p : masks->parameters()) EXPECT_EQ(p.scalar_type(), at::kBFloat16);
}

}  // namespace
