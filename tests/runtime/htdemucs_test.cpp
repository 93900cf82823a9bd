// HTDemucs against the patched upstream demucs: the fixtures under
// tests/fixtures/htdemucs were made by tools/fixtures/make_htdemucs_fixtures.py,
// which runs upstream's HTDemucs (with our patches) on two small
// configurations with fixed random weights.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <utility>

#include "runtime/compat/torch_compat.h"
#include "runtime/layers/state_dict.h"
#include "tests/runtime/compare.h"
#include "tests/runtime/htdemucs_blocks.h"
#include "runtime/models/demucs_bag.h"
#include "runtime/models/htdemucs.h"
#include "runtime/plan/kernel_plan.h"
#include "runtime/segment/overlap_add.h"
#include "runtime/version.h"
#include "runtime/weights/checkpoint.h"

namespace {

using namespace stemkit;
using test::rel_l2;
const std::string kDir = std::string(STEMKIT_FIXTURES) + "/htdemucs/";

struct Fixture {
  nlohmann::json meta;
  weights::SafetensorsFile data;
  at::Tensor get(const std::string& name) const { return layers::to_torch(data.tensors.at(name)); }
};

Fixture load_fixture(const std::string& config) {
  std::ifstream in(kDir + config + ".json");
  return {nlohmann::json::parse(in), weights::load_safetensors(kDir + config + ".safetensors")};
}

class HTDemucsParity : public ::testing::TestWithParam<std::string> {};

TEST_P(HTDemucsParity, FixtureMatchesThisPatchSet) {
  // Reference data made from another demucs patch set is stale, not a pass.
  auto f = load_fixture(GetParam());
  EXPECT_EQ(f.meta["fingerprint"]["demucs"].get<std::string>(), component_patchset("demucs"))
      << "tests/fixtures/htdemucs was made from another demucs patch set: regenerate it with "
         "tools/fixtures/make_htdemucs_fixtures.py";
}

TEST_P(HTDemucsParity, ForwardMatchesUpstream) {
  auto f = load_fixture(GetParam());
  models::HTDemucs model = models::load_htdemucs(kDir + GetParam() + ".th");
  EXPECT_EQ(model.training_length(), f.meta["training_length"].get<int64_t>());
  at::Tensor out = model.forward(f.get("forward_in"));
  at::Tensor want = f.get("forward_out");
  ASSERT_EQ(out.sizes(), want.sizes());
  std::printf("%s: forward rel. L2 %.3g\n", GetParam().c_str(), rel_l2(out, want));
  EXPECT_LT(rel_l2(out, want), 1e-5);

  // Shorter than the training length: padded inside, trimmed back.
  at::Tensor short_out = model.forward(f.get("short_in"));
  ASSERT_EQ(short_out.sizes(), f.get("short_out").sizes());
  EXPECT_LT(rel_l2(short_out, f.get("short_out")), 1e-5);
}

TEST_P(HTDemucsParity, ReferenceForwardsMatchUpstreamAndTheFastPaths) {
  // The plan's reference forwards (reference_forward on) against upstream, and the
  // fast paths (the default plan) against them. fp32, then bf16 and fp16
  // where this CPU's ATen runs the network in them.
  auto f = load_fixture(GetParam());
  models::HTDemucs model = models::load_htdemucs(kDir + GetParam() + ".th");
  const at::Tensor in = f.get("forward_in"), want = f.get("forward_out");
  plan::KernelPlan fast, reference;
  reference.reference_forward = true;
  ASSERT_FALSE(fast.reference_forward) << "the fast paths are the default";

  model.to(at::kCPU, at::kFloat, reference);
  const at::Tensor ref = model.forward(in);
  model.to(at::kCPU, at::kFloat, fast);
  const at::Tensor got = model.forward(in);
  std::printf("%s fp32: reference forwards rel. L2 %.3g against upstream; fast paths %.3g against them\n",
              GetParam().c_str(), rel_l2(ref, want), rel_l2(got, ref));
  EXPECT_LT(rel_l2(ref, want), 1e-5);
  EXPECT_LT(rel_l2(got, ref), 1e-5);

  for (auto [tag, dtype] : {std::pair{"bf16", at::kBFloat16}, std::pair{"fp16", at::kHalf}}) {
#if !STEMKIT_TORCH_AT_LEAST(2, 0)
    // As `separate --precision bf16 --device cpu` refuses it: 1.13's oneDNN
    // transposed convolutions take a bf16 weight in the wrong layout on CPUs
    // with AVX512-BF16 (a shape error) and are not implemented on the others.
    if (dtype == at::kBFloat16) {
      std::printf("%s bf16: skipped, libtorch 1.x cannot run HTDemucs in bf16 on the CPU\n", GetParam().c_str());
      continue;
    }
#endif
    models::HTDemucs half = models::load_htdemucs(kDir + GetParam() + ".th");
    half.to(at::kCPU, dtype, reference);
    at::Tensor ref_half;
    try {
      ref_half = half.forward(in);
    } catch (const c10::Error& e) {
      const std::string what = e.what_without_backtrace();
      if (what.find("not implemented for") == std::string::npos) throw;
      std::printf("%s %s: skipped, this CPU's ATen cannot run the network (%s)\n", GetParam().c_str(), tag,
                  what.substr(0, what.find('\n')).c_str());
      continue;
    }
    half.to(at::kCPU, dtype, fast);
    const double error = rel_l2(half.forward(in), ref_half);
    std::printf("%s %s: fast paths rel. L2 %.3g against the reference forwards\n", GetParam().c_str(), tag, error);
    EXPECT_LT(error, 2e-2) << tag;
  }
}

TEST(HTDemucsFastPaths, EachMatchesItsReferenceOnTheCpu) {
  for (auto [tag, dtype, tolerance] : {std::tuple{"fp32", at::kFloat, 1e-5}, std::tuple{"bf16", at::kBFloat16, 2e-2},
                                       std::tuple{"fp16", at::kHalf, 2e-2}}) {
    for (const auto& c : test::compare_blocks(at::kCPU, dtype)) {
      if (!c.skipped.empty()) {
        std::printf("%s %s: skipped, this CPU's ATen cannot run it (%s)\n", tag, c.block.c_str(), c.skipped.c_str());
        EXPECT_NE(dtype, at::kFloat) << "every block runs in fp32: " << c.block;
        continue;
      }
      std::printf("%s %s: fast path rel. L2 %.3g against the reference\n", tag, c.block.c_str(), c.rel_l2);
      EXPECT_LT(c.rel_l2, tolerance) << tag << " " << c.block;
    }
  }
}

TEST_P(HTDemucsParity, WholeTrackMatchesApplyModel) {
  // demucs.apply.apply_model(StaticSegmentModel(model), split=True, overlap=0.25, shifts=0).
  auto f = load_fixture(GetParam());
  models::HTDemucs model = models::load_htdemucs(kDir + GetParam() + ".th");
  at::Tensor want = f.get("track_out");
  for (int64_t batch : {1, 3}) {
    segment::DemucsSplit split;
    split.segment = model.training_length();
    split.overlap = 0.25;
    split.batch_size = batch;
    std::vector<std::vector<int64_t>> shapes;
    segment::Forward forward = [&](const at::Tensor& x) {
      shapes.push_back(x.sizes().vec());
      return model.forward(x);
    };
    at::Tensor got = segment::apply_demucs(forward, f.get("track_in"), split);
    ASSERT_EQ(got.sizes(), want.sizes());
    std::printf("%s: apply_model batch %d rel. L2 %.3g\n", GetParam().c_str(), static_cast<int>(batch),
                rel_l2(got, want));
    EXPECT_LT(rel_l2(got, want), 1e-5) << "batch " << batch;
    for (const auto& s : shapes) EXPECT_EQ(s, shapes.front()) << "every call has one shape";
  }
}

TEST(DemucsBag, SeparateMatchesDemucsApi) {
  // demucs.api.Separator.separate_tensor: normalised by the mono mix, a bag of one, scaled back.
  auto f = load_fixture("small");
  models::DemucsBag bag = models::load_demucs_bag("small", {kDir + "small.th"});
  models::SeparationOptions o;
  o.shifts = 0;
  o.batch_size = 2;
  o.window_seconds = 0.07;  // output in windows of 3087 samples: four windows, chunks straddling them
  std::vector<double> fractions;
  models::SeparationReport report;
  at::Tensor got = models::separate(
      bag, f.get("track_in"), o, [&](double x) { fractions.push_back(x); }, &report);
  at::Tensor want = f.get("separate_out");
  ASSERT_EQ(got.sizes(), want.sizes());
  std::printf("small: separate rel. L2 %.3g\n", rel_l2(got, want));
  EXPECT_LT(rel_l2(got, want), 1e-5);
  EXPECT_EQ(report.forward_shape[0], 2);
  EXPECT_EQ(report.forward_shape[2], bag.models[0].training_length());
  ASSERT_FALSE(fractions.empty());
  EXPECT_EQ(fractions.back(), 1.0);

  // Two identical members weighted per source give the same stems; mismatched weights are refused.
  models::DemucsBag two =
      models::load_demucs_bag("two", {kDir + "small.th", kDir + "small.th"}, {{1, 0, 0.5, 1}, {0, 1, 0.5, 1}});
  EXPECT_LT(rel_l2(models::separate(two, f.get("track_in"), o), want), 1e-5);
  EXPECT_THROW(models::load_demucs_bag("bad", {kDir + "small.th"}, {{1, 1}}), stemkit::Error);
  EXPECT_THROW(models::load_demucs_bag("mixed", {kDir + "small.th", kDir + "merge.th"}), stemkit::Error);
}

TEST(HTDemucsSegment, ShorterSegmentMatchesApplyModel) {
  // apply_model(segment=0.07): chunks of 3086 samples, each padded to the model's 4410
  // with the neighbouring audio (demucs --segment shorter than the training segment).
  auto f = load_fixture("small");
  models::HTDemucs model = models::load_htdemucs(kDir + "small.th");
  segment::DemucsSplit split;
  split.segment = static_cast<int64_t>(0.07 * 44100);  // int(model.samplerate * segment) in Python: 3086
  split.model_length = model.training_length();
  split.overlap = 0.25;
  split.batch_size = 2;
  segment::Forward forward = [&](const at::Tensor& x) {
    EXPECT_EQ(x.size(-1), model.training_length());
    return model.forward(x);
  };
  at::Tensor got = segment::apply_demucs(forward, f.get("track_in"), split);
  at::Tensor want = f.get("track_out_segment");
  std::printf("small: apply_model segment=0.07 rel. L2 %.3g\n", rel_l2(got, want));
  EXPECT_LT(rel_l2(got, want), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Configs, HTDemucsParity, ::testing::Values("small", "merge"));

TEST(HTDemucsConfig, OfficialDefaultsAndFraction) {
  auto c = models::HTDemucsConfig::from_json({{"sources", {"drums", "bass", "other", "vocals"}},
                                              {"segment", "39/5"},
                                              {"bottom_channels", 512},
                                              {"dconv_mode", 3}},
                                             "htdemucs.th");
  EXPECT_EQ(c.training_length, 343980);  // int(Fraction(39, 5) * 44100)
  EXPECT_EQ(c.segment, "39/5");
  models::HTDemucs model(c);
  // The architecture builds with upstream's names.
  auto names = model.parameter_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "crosstransformer.layers.1.cross_attn.in_proj_weight"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "freq_emb.embedding.weight"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "tdecoder.3.conv_tr.weight"), names.end());
}

TEST(HTDemucsConfig, UnsupportedAndMistypedArgumentsAreNamed) {
  auto message = [](const nlohmann::json& kwargs) {
    try {
      models::HTDemucsConfig::from_json(kwargs, "model.th");
    } catch (const stemkit::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  nlohmann::json base = {{"sources", {"a", "b"}}};
  auto with = [&](const char* key, nlohmann::json value) {
    auto k = base;
    k[key] = value;
    return k;
  };
  EXPECT_NE(message(with("t_emb", "cape")).find("model.th: HTDemucs argument t_emb=\"cape\""), std::string::npos);
  EXPECT_NE(message(with("cac", false)).find("cac=false: not supported"), std::string::npos);
  EXPECT_NE(message(with("t_sparse_self_attn", true)).find("t_sparse_self_attn"), std::string::npos);
  EXPECT_NE(message(with("channels", "many")).find("channels=\"many\": expected an integer"), std::string::npos);
  EXPECT_NE(message(with("segment", "ten")).find("segment"), std::string::npos);
  EXPECT_NE(message(nlohmann::json::object()).find("needs `sources`"), std::string::npos);
  // Two sources of one name would be one stem file: the package is to blame, not the input.
  EXPECT_EQ(message({{"sources", {"drums", "vocals", "drums"}}}),
            "model.th: `sources` names the source 'drums' twice ([\"drums\",\"vocals\",\"drums\"]); a model's "
            "sources need distinct names: the package is damaged or was edited");
  EXPECT_NE(message(with("t_heads", 7)).find("not divisible by t_heads=7"), std::string::npos);
  // Training-only arguments are accepted; unknown ones are listed as ignored, as demucs drops them.
  auto kwargs = with("t_dropout", 0.1);
  kwargs["brand_new"] = 1;
  auto c = models::HTDemucsConfig::from_json(kwargs, "model.th");
  EXPECT_EQ(c.ignored, std::vector<std::string>{"brand_new"});
}

TEST(HTDemucsLoad, StateDictProblemsAreAllReported) {
  auto package = weights::load_torch_checkpoint(kDir + "small.th");
  auto config = models::HTDemucsConfig::from_json(models::package_kwargs(package), "small.th");
  auto state = weights::collect_tensors(package.root->get("state"));
  state.erase("crosstransformer.norm_in.weight");
  state["extra.weight"] = state.at("encoder.0.conv.bias");
  models::HTDemucs model(config);
  try {
    model.load_state_dict(state, "small.th");
    FAIL() << "a damaged state dict loaded";
  } catch (const stemkit::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("missing from the checkpoint: crosstransformer.norm_in.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("not in the model: extra.weight"), std::string::npos) << m;
  }
}

TEST(HTDemucsLoad, NotAPackageIsNamed) {
  try {
    models::load_htdemucs(std::string(STEMKIT_FIXTURES) + "/weights/state_dict.pt");
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("state_dict.pt"), std::string::npos) << e.what();
  }
}

}  // namespace
