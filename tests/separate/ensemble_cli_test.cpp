// `separate -n A -n B --ensemble ALGO` end to end on the CPU with the fixture
// models: the stems equal MSST's ensemble.py run on the same models' stems
// (tests/fixtures/ensemble), a stem only some models produce is refused by
// name unless mapped, --two-stems derives from the ensembled stem, and the
// usage errors exit 2 before any work.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/audio/audio.h"
#include "tests/separate/cli_support.h"
#include "tests/separate/test_support.h"

namespace {

using namespace stemkit;
using separate::test::run_separate;
namespace fs = std::filesystem;
const fs::path kFixtures = STEMKIT_FIXTURES;
const fs::path kDir = kFixtures / "ensemble";

std::string model_args(const std::string& name) {
  if (name == "msst")
    return "-n " + (kFixtures / "mel_band_roformer" / "msst.yaml").string() + " --checkpoint " +
           (kFixtures / "mel_band_roformer" / "msst.ckpt").string();
  return "-n " + (kFixtures / "htdemucs" / (name + ".th")).string();
}

const std::string kSong = (kDir / "song.wav").string();
const std::string kExact = " --float32 --clip-mode none -q ";

TEST(EnsembleCli, EveryCaseMatchesEnsemblePy) {
  separate::test::TempDir dir;
  std::ifstream in(kDir / "ensemble.json");
  const auto cases = nlohmann::json::parse(in)["cases"];
  for (const auto& c : cases) {
    std::string args, folder = "ensemble-";
    for (const auto& m : c["models"]) {
      args += model_args(m.get<std::string>()) + " ";
      folder += m.get<std::string>() + (&m == &c["models"].back() ? "" : "+");
    }
    args += "--ensemble " + c["type"].get<std::string>();
    if (!c["weights"].is_null()) {
      std::string w;
      for (const auto& x : c["weights"]) w += (w.empty() ? "" : ",") + fmt::format("{}", x.get<double>());
      args += " --weights " + w;
    }
    const fs::path out = dir / c["output"].get<std::string>();
    const auto r =
        run_separate(args + " --two-stems vocals --other-method none" + kExact + "-o " + out.string() + " " + kSong);
    ASSERT_EQ(r.code, 0) << args << "\n" << r.output;
    const fs::path stem = out / folder / "song" / "vocals.wav";
    ASSERT_TRUE(fs::exists(stem)) << stem;
    const at::Tensor got = separate::test::read_samples(stem);
    const at::Tensor want = separate::test::read_samples(kDir / c["output"].get<std::string>());
    ASSERT_TRUE(got.sizes().equals(want.sizes())) << stem;
    EXPECT_LT((got - want).abs().max().item<double>(), 1e-6) << args;
  }
}

TEST(EnsembleCli, AStemOnlySomeModelsHaveIsRefusedUnlessMapped) {
  separate::test::TempDir dir;
  const std::string models = model_args("small") + " " + model_args("merge");
  // merge.th has guitar and piano, small.th does not.
  auto r = run_separate(models + " -o " + dir.path().string() + " " + kSong);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("guitar comes from merge (model 2) but not from small (model 1)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("piano"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--ensemble-map"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "ensemble-small+merge"));

  // Left out by place and by name: the four common stems, averaged (the default).
  r = run_separate(models + " --ensemble-map 2:guitar=- --ensemble-map merge:piano=-" + kExact + "-o " +
                   dir.path().string() + " " + kSong);
  ASSERT_EQ(r.code, 0) << r.output;
  std::vector<std::string> written;
  for (const auto& f : fs::directory_iterator(dir / "ensemble-small+merge" / "song"))
    if (f.path().filename().string()[0] != '.') written.push_back(f.path().filename().string());
  std::sort(written.begin(), written.end());
  EXPECT_EQ(written, (std::vector<std::string>{"bass.wav", "drums.wav", "other.wav", "vocals.wav"}));
  const at::Tensor vocals = separate::test::read_samples(dir / "ensemble-small+merge" / "song" / "vocals.wav");
  const at::Tensor want = separate::test::read_samples(kDir / "small+merge-avg_wave.wav");
  EXPECT_LT((vocals - want).abs().max().item<double>(), 1e-6);

  // Mapped onto another name: merge's guitar is combined with small's other.
  r = run_separate(models + " --ensemble-map 2:other=- --ensemble-map 2:guitar=other --ensemble-map 2:piano=-" +
                   kExact + "-o " + (dir / "mapped").string() + " " + kSong);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "mapped" / "ensemble-small+merge" / "song" / "other.wav"));

  // A mapping of a stem the model lacks, or onto a name it already has.
  r = run_separate(models + " --ensemble-map 1:guitar=- -o " + dir.path().string() + " " + kSong);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("model 1 (small) has no stem guitar; its stems are drums, bass, other, vocals"),
            std::string::npos)
      << r.output;
  r = run_separate(models + " --ensemble-map 2:guitar=drums -o " + dir.path().string() + " " + kSong);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("two stems named drums"), std::string::npos) << r.output;
}

TEST(EnsembleCli, TwoStemsMinusIsTheMixMinusTheEnsembledStem) {
  separate::test::TempDir dir;
  // No mapping needed: only vocals is combined.
  auto r = run_separate(model_args("small") + " " + model_args("merge") +
                        " --ensemble avg_fft --two-stems vocals --other-method minus" + kExact + "-o " +
                        dir.path().string() + " " + kSong);
  ASSERT_EQ(r.code, 0) << r.output;
  const fs::path folder = dir / "ensemble-small+merge" / "song";
  const at::Tensor vocals = separate::test::read_samples(folder / "vocals.wav");
  const at::Tensor rest = separate::test::read_samples(folder / "minus_vocals.wav");
  const at::Tensor mix = separate::test::read_samples(kSong);
  EXPECT_LT((vocals - separate::test::read_samples(kDir / "small+merge-avg_fft.wav")).abs().max().item<double>(), 1e-6);
  EXPECT_LT((rest - (mix - vocals)).abs().max().item<double>(), 1e-6);
}

TEST(EnsembleCli, SkipExistingRedoesATrackMadeByAnotherEnsemble) {
  separate::test::TempDir dir;
  const std::string run = model_args("small") + " " + model_args("merge") +
                          " --two-stems vocals --other-method minus --skip-existing -o " + dir.path().string() + " ";
  auto r = run_separate(run + "--ensemble avg_wave --weights 2,1 " + kSong);
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_separate(run + "--ensemble avg_wave --weights 2,1 " + kSong);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("complete, skipped"), std::string::npos) << r.output;
  r = run_separate(run + "--ensemble avg_wave --weights 1,1 " + kSong);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("made with other settings"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("separated in"), std::string::npos) << r.output;
}

TEST(EnsembleCli, OneModelAtATimeWritesTheSameStems) {
  separate::test::TempDir dir;
  separate::test::write_noise_song(dir / "second.wav", 0.5);
  const std::string run = model_args("small") + " " + model_args("msst") +
                          " --ensemble median_fft --two-stems vocals --other-method minus" + kExact + kSong + " " +
                          (dir / "second.wav").string() + " -o ";
  auto r = run_separate(run + (dir / "together").string());
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_separate(run + (dir / "apart").string() + " --ensemble-one-at-a-time --json " + (dir / "s.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* track : {"song", "second"})
    for (const char* stem : {"vocals.wav", "minus_vocals.wav"}) {
      const fs::path a = dir / "together" / "ensemble-small+msst" / track / stem;
      const fs::path b = dir / "apart" / "ensemble-small+msst" / track / stem;
      // The samples (a float WAV's PEAK chunk holds the time it was written).
      EXPECT_TRUE(at::equal(separate::test::read_samples(a), separate::test::read_samples(b))) << b;
    }
  std::ifstream in(dir / "s.json");
  const auto summary = nlohmann::json::parse(in);
  EXPECT_EQ(summary["ensemble"]["one_at_a_time"], true);
  EXPECT_EQ(summary["ensemble"]["members"][1]["stems"], (std::vector<std::string>{"vocals", "drums"}));
}

TEST(EnsembleCli, UsageErrorsExit2BeforeAnyWork) {
  separate::test::TempDir dir;
  const std::string two = model_args("small") + " " + model_args("merge") + " -o " + dir.path().string() + " ";
  struct Case {
    std::string args, says;
  };
  const std::vector<Case> cases{
      {model_args("small") + " --ensemble avg_wave", "--ensemble combines two or more models"},
      {model_args("small") + " --weights 1,2", "--weights"},
      {model_args("small") + " --ensemble-one-at-a-time", "--ensemble-one-at-a-time combines two or more"},
      {two + "--ensemble mean_wave", "mean_wave"},
      {two + "--weights 1,2,3", "--weights 1,2,3: 3 weights for 2 models"},
      {two + "--weights 1,-2", "positive"},
      {two + "--ensemble median_wave --weights 2,1", "median_wave does not use weights"},
      {two + "--explain", "--explain"},
      {two + "--bench", "--bench"},
      {two + "--ensemble-map 3:vocals=-", "the models are 1 to 2"},
      {two + "--ensemble-map vocals", "expected MODEL:STEM=NAME"},
      {two + "--ensemble-map 2:guitar=../x", "../x cannot name a stem"},
      {two + "--ensemble-map 2:guitar=", "no NAME after '='"},
      {two + "--ensemble-map small+merge:guitar=-", "no model named small+merge; the models are small, merge"},
      {two + "--checkpoint x.ckpt", "--checkpoint has no meaning for any model of the ensemble"},
      {"-n " + (kFixtures / "mel_band_roformer" / "msst.yaml").string() + " " + two,
       "--checkpoint: 0 given for 1 MSST configuration"},
  };
  for (const auto& c : cases) {
    const auto r = run_separate(c.args + " " + kSong);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << c.args << "\n" << r.output;
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

}  // namespace
