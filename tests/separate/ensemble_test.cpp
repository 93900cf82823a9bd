// runtime/separate/ensemble.cpp against MSST's ensemble.py itself: every
// algorithm, two and three models, and the weights, on the fixture models'
// vocals (tests/fixtures/ensemble, made by tools/fixtures/make_ensemble_fixtures.py
// with upstream's script and librosa 0.11).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "runtime/audio/audio.h"
#include "runtime/separate/ensemble.h"

namespace {

using namespace stemkit;
namespace fs = std::filesystem;
const fs::path kDir = fs::path(STEMKIT_FIXTURES) / "ensemble";

at::Tensor read(const fs::path& path) {
  audio::Audio a = audio::read_audio(path.string());
  return at::from_blob(a.data.data(), {a.channels, a.frames}, at::kFloat).clone();
}

nlohmann::json cases() {
  std::ifstream in(kDir / "ensemble.json");
  return nlohmann::json::parse(in)["cases"];
}

TEST(Ensemble, EveryAlgorithmMatchesEnsemblePy) {
  const nlohmann::json all = cases();
  ASSERT_EQ(all.size(), 18u);
  double worst = 0;
  for (const auto& c : all) {
    std::vector<at::Tensor> tracks;
    for (const auto& m : c["models"]) tracks.push_back(read(kDir / m.get<std::string>() / "vocals.wav"));
    std::vector<double> weights(tracks.size(), 1.0);
    if (!c["weights"].is_null()) weights = c["weights"].get<std::vector<double>>();
    const auto algorithm = separate::parse_ensemble_algorithm(c["type"].get<std::string>());
    ASSERT_TRUE(algorithm) << c["type"];
    const at::Tensor got = separate::average_waveforms(tracks, weights, *algorithm);
    const at::Tensor want = read(kDir / c["output"].get<std::string>());
    ASSERT_TRUE(got.sizes().equals(want.sizes())) << c["output"];
    const double err = (got - want).abs().max().item<double>();
    EXPECT_LT(err, 1e-6) << c["output"];
    // Not one model's stem as it is: the models differ, and the ensemble is made of several.
    for (const auto& t : tracks) EXPECT_GT((got - t).abs().max().item<double>(), 1e-4) << c["output"];
    worst = std::max(worst, err);
  }
  std::printf("largest difference from ensemble.py: %.3g\n", worst);
}

TEST(Ensemble, WeightsChangeTheAverage) {
  std::vector<at::Tensor> tracks;
  for (const char* m : {"small", "merge", "msst"}) tracks.push_back(read(kDir / m / "vocals.wav"));
  for (auto algorithm : {separate::EnsembleAlgorithm::avg_wave, separate::EnsembleAlgorithm::avg_fft}) {
    const at::Tensor even = separate::average_waveforms(tracks, {1, 1, 1}, algorithm);
    const at::Tensor weighted = separate::average_waveforms(tracks, {2, 1, 0.5}, algorithm);
    const at::Tensor scaled = separate::average_waveforms(tracks, {4, 2, 1}, algorithm);
    EXPECT_GT((even - weighted).abs().max().item<double>(), 1e-3);
    EXPECT_LT((weighted - scaled).abs().max().item<double>(), 1e-6);  // only their ratios count
  }
  // The others ignore weights, as upstream.
  const at::Tensor a = separate::average_waveforms(tracks, {1, 1, 1}, separate::EnsembleAlgorithm::median_wave);
  const at::Tensor b = separate::average_waveforms(tracks, {5, 1, 1}, separate::EnsembleAlgorithm::median_wave);
  EXPECT_TRUE(at::equal(a, b));
}

TEST(Ensemble, NamesAndBadShapes) {
  EXPECT_EQ(separate::ensemble_algorithm_names().size(), 8u);
  for (const auto& name : separate::ensemble_algorithm_names())
    EXPECT_EQ(separate::ensemble_algorithm_name(*separate::parse_ensemble_algorithm(name)), name);
  EXPECT_FALSE(separate::parse_ensemble_algorithm("mean_wave"));
  const at::Tensor a = at::zeros({2, 5000}), b = at::zeros({2, 4999});
  EXPECT_THROW(separate::average_waveforms({a, b}, {1, 1}, separate::EnsembleAlgorithm::avg_wave),
               std::invalid_argument);
  EXPECT_THROW(separate::average_waveforms({a, a}, {1}, separate::EnsembleAlgorithm::avg_wave), std::invalid_argument);
  // A track shorter than one STFT hop still has its centred frame.
  const at::Tensor s = at::randn({2, 300});
  EXPECT_LT((separate::average_waveforms({s, s}, {1, 1}, separate::EnsembleAlgorithm::avg_fft) - s)
                .abs()
                .max()
                .item<double>(),
            1e-5);
}

}  // namespace
