// Checkpoint tensors into libtorch: values, dtypes and views as torch saved
// them, and a state dict loaded into a module with every mismatch reported.
#include <gtest/gtest.h>

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <ATen/ATen.h>

#include "runtime/layers/state_dict.h"

using namespace stemkit;

namespace {

const std::string kFixtures = std::string(STEMKIT_FIXTURES) + "/weights/";

TEST(StateDict, ToTorchKeepsValuesDtypesAndViews) {
  auto sd = weights::state_dict(weights::load_torch_checkpoint(kFixtures + "state_dict.pt"));
  at::Tensor base = layers::to_torch(sd.at("shared.base"));
  EXPECT_TRUE(at::equal(base, at::arange(24, at::kFloat).reshape({4, 6})));
  EXPECT_TRUE(at::equal(layers::to_torch(sd.at("view.t")), base.t()));
  EXPECT_TRUE(at::equal(layers::to_torch(sd.at("view.slice")), base.slice(0, 1, 3).slice(1, 2, 5)));
  EXPECT_EQ(layers::to_torch(sd.at("half")).scalar_type(), at::kHalf);
  EXPECT_EQ(layers::to_torch(sd.at("bf16")).scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(layers::to_torch(sd.at("steps")), at::tensor(std::vector<int64_t>{1, -2, 3})));
  EXPECT_EQ(layers::to_torch(sd.at("scalar")).item<float>(), 2.5f);
  EXPECT_EQ(layers::to_torch(sd.at("empty")).sizes(), (std::vector<int64_t>{0, 3}));
}

struct Net : torch::nn::Module {
  explicit Net(int64_t kernel)
      : conv(register_module("conv", torch::nn::Conv1d(torch::nn::Conv1dOptions(2, 4, kernel)))) {}
  torch::nn::Conv1d conv;
};

TEST(StateDict, LoadsIntoAModuleWhenEverythingMatches) {
  auto sd = weights::state_dict(weights::load_torch_checkpoint(kFixtures + "state_dict.pt"));
  weights::TensorMap conv_only = {{"conv.weight", sd.at("conv.weight")}, {"conv.bias", sd.at("conv.bias")}};
  Net net(3);
  auto report = layers::load_state_dict(net, conv_only, "state_dict.pt");
  EXPECT_TRUE(report.ok());
  EXPECT_TRUE(at::equal(net.conv->weight, layers::to_torch(sd.at("conv.weight"))));
  EXPECT_TRUE(at::equal(net.conv->bias, at::arange(4, at::kFloat)));
}

TEST(StateDict, EveryMismatchIsReportedAndNothingIsLoaded) {
  auto sd = weights::state_dict(weights::load_torch_checkpoint(kFixtures + "state_dict.pt"));
  Net net(5);
  at::Tensor before = net.conv->weight.clone();
  try {
    layers::load_state_dict(net, sd, "state_dict.pt");
    FAIL() << "loaded a mismatched state dict";
  } catch (const stemkit::Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("state_dict.pt: mismatch: conv.weight: checkpoint [4, 2, 3] float32, model [4, 2, 5] float32"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("state_dict.pt: not in the model: view.slice"), std::string::npos) << what;
    EXPECT_NE(what.find("state_dict.pt: not in the model: bf16"), std::string::npos) << what;
    EXPECT_NE(what.find("nothing changed"), std::string::npos) << what;
  }
  EXPECT_TRUE(at::equal(net.conv->weight, before));
}

TEST(StateDict, Fp16CheckpointsLoadIntoFp32Models) {
  auto ck = weights::load_torch_checkpoint(kFixtures + "demucs_package.th");
  auto sd = weights::state_dict(ck);
  struct Enc : torch::nn::Module {
    Enc() : conv(register_module("conv", torch::nn::Conv1d(torch::nn::Conv1dOptions(4, 8, 8)))) {}
    torch::nn::Conv1d conv;
  };
  struct Top : torch::nn::Module {
    Top() {
      encoder = register_module("encoder", std::make_shared<torch::nn::Module>());
      encoder->register_module("0", std::make_shared<Enc>());
    }
    std::shared_ptr<torch::nn::Module> encoder;
  };
  Top top;
  layers::LoadOptions lenient;
  lenient.strict = false;  // the fixture has a transformer weight this small model lacks
  auto report = layers::load_state_dict(top, sd, "demucs_package.th", lenient);
  ASSERT_EQ(report.unexpected.size(), 1u);
  EXPECT_EQ(report.unexpected[0], "crosstransformer.layers.0.self_attn.in_proj_weight");
  ASSERT_EQ(report.converted.size(), 2u);
  EXPECT_EQ(report.converted[0], "encoder.0.conv.bias: float16 -> float32");
  auto loaded = top.named_parameters()["encoder.0.conv.weight"];
  EXPECT_EQ(loaded.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(loaded, layers::to_torch(sd.at("encoder.0.conv.weight")).to(at::kFloat)));
}

}  // namespace

#include "runtime/version.h"

TEST(Version, NamesThePatchSetOfThisSourceTree) {
  std::string text = stemkit::version_text();
  EXPECT_EQ(stemkit::patchset_id().size(), 16u);
  EXPECT_NE(text.find("patch set " + stemkit::patchset_id()), std::string::npos) << text;
  EXPECT_NE(stemkit::patchset_summary().find("demucs@b9ab48cad459"), std::string::npos) << text;
  EXPECT_NE(text.find("libtorch "), std::string::npos) << text;
}
