// RoFormers by name, end to end: `separate -n model_bs_roformer_ep_317_sdr_12.9755
// --download` fetches the catalog entry's configuration and checkpoint (from an
// HTTP server on 127.0.0.1 through --model-mirror, standing in for
// raw.githubusercontent.com and github.com; the small BS-RoFormer of
// tests/fixtures/bs_roformer stands in for viperx's files), records their
// hashes, separates as `-n config.yaml --checkpoint x.ckpt` does, loads them
// again by name without the network, and refuses them once altered.
// --list-models lists only models that load.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "patchmgr/util/sha256.h"
#include "runtime/models/msst_config.h"
#include "runtime/models/separator.h"
#include "runtime/separate/download.h"
#include "runtime/separate/model_catalog.h"
#include "tests/separate/cli_support.h"
#include "tests/separate/http_server.h"
#include "tests/separate/test_support.h"

namespace stemkit::separate {
namespace {

namespace fs = std::filesystem;
using test::read_samples;
using test::run_separate;

// The fixture's MSST configuration: the small stereo BS-RoFormer, one target (vocals).
std::string fixture_config() {
  std::ifstream meta_in(std::string(STEMKIT_FIXTURES) + "/bs_roformer/stereo.json");
  auto kwargs = nlohmann::json::parse(meta_in)["kwargs"];
  std::string yaml = "audio:\n  chunk_size: 2944\n  num_channels: 2\n  sample_rate: 44100\nmodel:\n";
  for (const auto& [key, value] : kwargs.items()) yaml += "  " + key + ": " + value.dump() + "\n";
  yaml += "training:\n  instruments: [vocals, other]\n  target_instrument: vocals\ninference:\n  num_overlap: 2\n";
  return yaml;
}

// The path a mirror serves `url` at: "/<host>/<path>".
std::string mirror_path(const std::string& url) { return mirrored_url(url, "http://m").substr(8); }

class RoformerByName : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!download_supported()) GTEST_SKIP() << "built without libcurl";
  }
  // A proxy from the environment must not catch 127.0.0.1; a mirror from it must not apply.
  test::ScopedEnv no_proxy_{"no_proxy", "*"};
  test::ScopedEnv http_proxy_{"http_proxy", std::nullopt};
  test::ScopedEnv all_proxy_{"ALL_PROXY", std::nullopt};
  test::ScopedEnv mirror_{"STEMKIT_MODEL_MIRROR", std::nullopt};
  const CatalogModel& entry_ = require_model("model_bs_roformer_ep_317_sdr_12.9755");
  const std::string config_ = fixture_config();
  const std::string checkpoint_ = test::read_file(std::string(STEMKIT_FIXTURES) + "/bs_roformer/stereo.ckpt");
  test::TestHttpServer server_{{{mirror_path(entry_.members[0].url), {200, config_, -1}},
                                {mirror_path(entry_.members[1].url), {200, checkpoint_, -1}}}};
  test::TempDir dir_;
  fs::path cache_ = dir_ / "models";
  std::string common_ = "--model-dir " + cache_.string() + " --float32 --clip-mode none -q ";
};

TEST_F(RoformerByName, DownloadedVerifiedLoadedByNameAndRefusedOnceAltered) {
  ASSERT_EQ(entry_.members[0].url,
            "https://raw.githubusercontent.com/ZFTurbo/Music-Source-Separation-Training/"
            "ccc011abf7f89dd7922bb2888d48493b575c0289/configs/viperx/model_bs_roformer_ep_317_sdr_12.9755.yaml");
  test::write_noise_song(dir_ / "song.wav", 1.0);
  const std::string song = (dir_ / "song.wav").string();
  // Without --download: nothing is fetched, and the error says how.
  auto r = run_separate("-n " + entry_.name + " --model-mirror " + server_.base_url() + " " + common_ + song);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(
      r.output.find("missing model_bs_roformer_ep_317_sdr_12.9755.yaml, model_bs_roformer_ep_317_sdr_12.9755.ckpt; "
                    "run with --download"),
      std::string::npos)
      << r.output;
  EXPECT_EQ(server_.requests(mirror_path(entry_.members[1].url)), 0);

  r = run_separate("-n " + entry_.name + " --download --model-mirror " + server_.base_url() + " " + common_ + "-o " +
                   (dir_ / "out").string() + " " + song);
  ASSERT_EQ(r.code, 0) << r.output;
  const fs::path config = cache_ / "model_bs_roformer_ep_317_sdr_12.9755.yaml";
  const fs::path ckpt = cache_ / "model_bs_roformer_ep_317_sdr_12.9755.ckpt";
  EXPECT_EQ(test::read_file(config), config_);
  EXPECT_EQ(test::read_file(ckpt), checkpoint_);
  // The hashes recorded at the first download, as sha256sum writes them.
  EXPECT_EQ(test::read_file(cache_ / "model_bs_roformer_ep_317_sdr_12.9755.ckpt.sha256"),
            patchmgr::sha256_hex(checkpoint_) + "  model_bs_roformer_ep_317_sdr_12.9755.ckpt\n");
  EXPECT_EQ(test::read_file(cache_ / "model_bs_roformer_ep_317_sdr_12.9755.yaml.sha256"),
            patchmgr::sha256_hex(config_) + "  model_bs_roformer_ep_317_sdr_12.9755.yaml\n");

  // The stems are the ones `-n config.yaml --checkpoint x.ckpt` gives, under the model's name.
  const at::Tensor mix = read_samples(dir_ / "song.wav");
  auto separator = models::make_roformer_separator(models::load_msst_config(config.string()), ckpt.string());
  const at::Tensor want = separator->separate(mix, models::SeparationOptions{});
  const fs::path stems = dir_ / "out" / entry_.name / "song";
  const at::Tensor vocals = read_samples(stems / "vocals.wav");
  EXPECT_LT((vocals - want[0]).norm().item<double>() / want[0].norm().item<double>(), 1e-6);
  EXPECT_TRUE(fs::exists(stems / "instrumental.wav"));

  // Later runs load from the cache, verified, with no request (audio-separator's .ckpt spelling too).
  for (const std::string& name : {entry_.name, entry_.name + ".ckpt"}) {
    r = run_separate("-n " + name + " " + common_ + "-o " + (dir_ / "again").string() + " " + song);
    ASSERT_EQ(r.code, 0) << name << ": " << r.output;
  }
  EXPECT_EQ(server_.requests(mirror_path(entry_.members[0].url)), 1);
  EXPECT_EQ(server_.requests(mirror_path(entry_.members[1].url)), 1);
  EXPECT_EQ(read_samples(dir_ / "again" / entry_.name / "song" / "vocals.wav").equal(vocals), true);

  // One byte of the checkpoint altered: refused before anything is separated, even with --download.
  std::string altered = checkpoint_;
  altered[altered.size() / 2] ^= 1;
  test::write_file(ckpt, altered);
  r = run_separate("-n " + entry_.name + " --download --model-mirror " + server_.base_url() + " " + common_ + "-o " +
                   (dir_ / "tampered").string() + " " + song);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(ckpt.string() + " has changed since its first download: its sha256 is " +
                          patchmgr::sha256_hex(altered)),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("recorded " + patchmgr::sha256_hex(checkpoint_)), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "tampered" / entry_.name / "song")) << r.output;
  EXPECT_EQ(test::read_file(ckpt), altered) << "the user's file is left as it is";

  // The fix the error gives: delete both and download again.
  fs::remove(ckpt);
  fs::remove(cache_ / "model_bs_roformer_ep_317_sdr_12.9755.ckpt.sha256");
  r = run_separate("-n " + entry_.name + " --download " + common_ + "-o " + (dir_ / "fixed").string() + " " + song +
                   " --model-mirror " + server_.base_url());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(test::read_file(ckpt), checkpoint_);
}

// The mirror as its environment variable; a mirror that is not an http(s) URL is a usage error.
TEST_F(RoformerByName, MirrorFromTheEnvironment) {
  test::write_noise_song(dir_ / "song.wav", 0.3);
  {
    test::ScopedEnv mirror("STEMKIT_MODEL_MIRROR", server_.base_url());
    auto r = run_separate("-n " + entry_.name + " --download " + common_ + "-o " + (dir_ / "out").string() + " " +
                          (dir_ / "song.wav").string());
    ASSERT_EQ(r.code, 0) << r.output;
  }
  EXPECT_EQ(server_.requests(mirror_path(entry_.members[1].url)), 1);
  auto r = run_separate("-n " + entry_.name + " --model-mirror ftp://x " + (dir_ / "song.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("expected an http:// or https:// URL"), std::string::npos) << r.output;
}

// Every listed model is accepted up to the model cache (its files are what it
// lacks); hdemucs_mmi, which does not run, is not listed and is refused by name.
TEST(ListModels, ShowsOnlyModelsThatRun) {
  test::TempDir dir;
  test::write_noise_song(dir / "a.wav", 0.2);
  auto r = run_separate("--list-models");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, model_list_text());
  EXPECT_EQ(r.output.find("hdemucs_mmi"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("model_bs_roformer_ep_317_sdr_12.9755 "), std::string::npos) << r.output;
  for (const auto& name : model_names()) {
    r = run_separate("-n " + name + " --model-dir " + (dir / "empty").string() + " " + (dir / "a.wav").string());
    EXPECT_EQ(r.code, 2) << name;
    EXPECT_NE(r.output.find("model " + name + " is not in the model cache"), std::string::npos) << r.output;
  }
  r = run_separate("-n hdemucs_mmi " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("model hdemucs_mmi is an HDemucs (demucs v3) model"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace stemkit::separate
