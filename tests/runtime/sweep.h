// The configuration sweep (tests/fixtures/sweep, made by
// tools/fixtures/make_sweep_fixtures.py): the patched upstream HTDemucs,
// BSRoformer and MelBandRoformer on configurations that each change one constructor argument from
// a small base. One case is run here on a device, through the plan that device
// gets (fast paths) and through the reference forwards, each against upstream.
#pragma once

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/layers/state_dict.h"
#include "runtime/models/bs_roformer.h"
#include "runtime/models/htdemucs.h"
#include "runtime/models/mel_band_roformer.h"
#include "runtime/plan/execution_plan.h"
#include "runtime/version.h"
#include "runtime/weights/checkpoint.h"
#include "tests/runtime/compare.h"

namespace stemkit::test {

// The cases of one model ("htdemucs", "bs_roformer", "mel_band_roformer") in `dir`, by name, sorted.
inline std::vector<std::string> sweep_cases(const std::string& dir, const std::string& model) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/" + model, ec))
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

// gtest names allow letters, digits and underscores only.
inline std::string sweep_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

// Runs case `name` of `model` from `dir` on `device` in fp32, through the plan
// that device gets and through the reference forwards, and expects both
// within `tolerance` (relative L2) of upstream's output in the case.
inline void expect_sweep_case_matches(const std::string& dir, const std::string& model, const std::string& name,
                                      const at::Device& device, double tolerance) {
  const std::string base = dir + "/" + model + "/" + name;
  std::ifstream meta_in(base + ".json");
  ASSERT_TRUE(meta_in) << base << ".json is missing";
  const auto meta = nlohmann::json::parse(meta_in);
  const std::string component = model == "htdemucs" ? "demucs" : "bs-roformer";
  EXPECT_EQ(meta["fingerprint"][component].get<std::string>(), component_patchset(component))
      << "stale: regenerate with tools/fixtures/make_sweep_fixtures.py";
  auto data = weights::load_safetensors(base + ".safetensors");
  const at::Tensor in = layers::to_torch(data.tensors.at("in")).to(device);
  const at::Tensor want = layers::to_torch(data.tensors.at("out"));
  plan::KernelPlan fast = plan::decide_kernels(device, at::kFloat, {}), reference = fast, fast_blocks = fast;
  reference.reference_forward = true;
  // HTDemucs' fast paths also where the device's plan does not pick them (the CPU), so that they stay swept.
  fast_blocks.htdemucs_fast_blocks = true;
  double fast_err = 0, reference_err = 0;
  // The model through the device's plan, then through the reference forwards.
  auto run_both = [&](auto& m) {
    m.to(device, at::kFloat, fast);
    fast_err = rel_l2(m.forward(in), want);
    m.to(device, at::kFloat, reference);
    reference_err = rel_l2(m.forward(in), want);
  };
  auto run_roformer = [&](auto m) {
    m.load_state_dict(weights::state_dict(weights::load_torch_checkpoint(base + ".ckpt")), base + ".ckpt");
    run_both(m);
  };
  if (model == "htdemucs") {
    models::HTDemucs m = models::load_htdemucs(base + ".th");
    run_both(m);
    if (!fast.htdemucs_fast_blocks) {
      m.to(device, at::kFloat, fast_blocks);
      const double err = rel_l2(m.forward(in), want);
      std::printf("%s %s on %s: rel. L2 %.3g (HTDemucs' fast paths, which this device's plan leaves out)\n",
                  model.c_str(), name.c_str(), device.str().c_str(), err);
      EXPECT_LT(err, tolerance) << model << " " << name << ", HTDemucs' fast paths";
    }
  } else if (model == "mel_band_roformer") {
    run_roformer(models::MelBandRoformer(models::MelBandRoformerConfig::from_json(meta["kwargs"], base + ".json")));
  } else {
    run_roformer(models::BSRoformer(models::BSRoformerConfig::from_json(meta["kwargs"], base + ".json")));
  }
  std::printf("%s %s on %s: rel. L2 %.3g (fast paths), %.3g (reference forwards) against upstream on %s\n",
              model.c_str(), name.c_str(), device.str().c_str(), fast_err, reference_err,
              meta["device"].get<std::string>().c_str());
  EXPECT_LT(fast_err, tolerance) << model << " " << name << ", fast paths";
  EXPECT_LT(reference_err, tolerance) << model << " " << name << ", reference forwards";
}

}  // namespace stemkit::test
