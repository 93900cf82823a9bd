// MSST's YAML model configurations: the format of viperx's BS-RoFormer config
// (python tuples, YAML 1.1 booleans, comments), read into the model's kwargs.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "runtime/error.h"
#include "runtime/models/bs_roformer.h"
#include "runtime/models/msst_config.h"

namespace {

using namespace stemkit;

std::string write_temp(const std::string& text) {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("msst-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()) + ".yaml"))
                         .string();
  std::ofstream(path) << text;
  return path;
}

const char* kViperxLike = R"(audio:
  chunk_size: 352800
  dim_t: 801 # don't work (use in model)
  hop_length: 441
  num_channels: 2
  sample_rate: 44100
model:
  dim: 512
  depth: 12
  stereo: true
  num_stems: 1
  time_transformer_depth: 1
  freq_transformer_depth: 1
  linear_transformer_depth: 0
  freqs_per_bands: !!python/tuple
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 2
    - 4
    - 4
    - 4
    - 4
    - 4
    - 4
    - 4
    - 4
    - 4
    - 4
    - 4
    - 4
    - 12
    - 12
    - 12
    - 12
    - 12
    - 12
    - 12
    - 12
    - 24
    - 24
    - 24
    - 24
    - 24
    - 24
    - 24
    - 24
    - 48
    - 48
    - 48
    - 48
    - 48
    - 48
    - 48
    - 48
    - 128
    - 129
  dim_head: 64
  heads: 8
  attn_dropout: 0.1
  flash_attn: true
  stft_n_fft: 2048
  stft_hop_length: 441
  stft_win_length: 2048
  stft_normalized: false
  mask_estimator_depth: 2
  multi_stft_resolutions_window_sizes: !!python/tuple
  - 4096
  - 256
  multi_stft_normalized: False
training:
  instruments:
  - vocals
  - other
  lr: 1.0e-05
  target_instrument: vocals
inference:
  batch_size: 4
  num_overlap: 2
)";

TEST(MsstConfig, ReadsAViperxStyleConfig) {
  const std::string path = write_temp(kViperxLike);
  models::MsstConfig c = models::load_msst_config(path);
  EXPECT_EQ(c.chunk_size, 352800);
  EXPECT_EQ(c.sample_rate, 44100);
  EXPECT_EQ(c.num_channels, 2);
  EXPECT_EQ(c.batch_size, 4);
  EXPECT_EQ(c.num_overlap, 2);
  EXPECT_FALSE(c.normalize);  // not named: MSST's default
  EXPECT_TRUE(c.use_amp);     // not named: MSST's default (fp16 autocast on a GPU)
  EXPECT_EQ(c.model_stems(), std::vector<std::string>{"vocals"});
  EXPECT_EQ(c.model["multi_stft_normalized"], false);
  EXPECT_EQ(c.model["attn_dropout"], 0.1);
  auto m = models::BSRoformerConfig::from_json(c.model, path);
  EXPECT_EQ(m.dim, 512);
  EXPECT_EQ(m.depth, 12);
  EXPECT_TRUE(m.stereo);
  EXPECT_EQ(m.freqs_per_bands.size(), 62u);
  EXPECT_EQ(m.stft_hop_length, 441);
  EXPECT_EQ(m.msst.linear_transformer_depth, 0);  // MSST's option, named by the file
  EXPECT_TRUE(m.ignored.empty());
  std::filesystem::remove(path);
}

TEST(MsstConfig, ReadsUseAmp) {
  const std::string path =
      write_temp("audio: {chunk_size: 10}\nmodel: {dim: 8}\ntraining:\n  instruments: [a]\n  use_amp: false\n");
  EXPECT_FALSE(models::load_msst_config(path).use_amp);
  std::filesystem::remove(path);
}

// MSST's demix: `if 'chunk_size' in config.inference: chunk_size = config.inference.chunk_size`.
TEST(MsstConfig, InferenceChunkSizeOverridesAudios) {
  std::string path = write_temp("audio: {chunk_size: 10}\nmodel: {dim: 8}\ntraining: {instruments: [a]}\n");
  EXPECT_EQ(models::load_msst_config(path).chunk_size, 10);
  std::filesystem::remove(path);
  path = write_temp(
      "audio: {chunk_size: 10}\nmodel: {dim: 8}\ntraining: {instruments: [a]}\ninference: {chunk_size: 48}\n");
  EXPECT_EQ(models::load_msst_config(path).chunk_size, 48);
  std::filesystem::remove(path);
}

TEST(MsstConfig, ProblemsNameTheFileAndTheKey) {
  auto message = [](const std::string& text) {
    const std::string path = write_temp(text);
    std::string m = "no error";
    try {
      models::load_msst_config(path);
    } catch (const stemkit::Error& e) {
      m = e.what();
    }
    std::filesystem::remove(path);
    return m;
  };
  EXPECT_NE(message("audio: {chunk_size: 10}\n").find("no `model:` section"), std::string::npos);
  EXPECT_NE(message("model: {dim: 8}\ntraining: {instruments: [a]}\n").find("`audio.chunk_size` is missing"),
            std::string::npos);
  EXPECT_NE(message("audio:\n  chunk_size: lots\nmodel: {dim: 8}\ntraining: {instruments: [a]}\n")
                .find(":2: `audio.chunk_size` must be a positive integer, not lots"),
            std::string::npos);
  EXPECT_NE(message("model: [unclosed\n").find("not valid YAML"), std::string::npos);
  EXPECT_NE(
      message(
          "audio: {chunk_size: 10}\nmodel: {dim: 8}\ntraining: {instruments: [a]}\ninference:\n  normalize: maybe\n")
          .find(":5: `inference.normalize` must be true or false, not \"maybe\""),
      std::string::npos);
  EXPECT_EQ(
      message("audio: {chunk_size: 10}\nmodel: {dim: 8}\ntraining: {instruments: [a]}\ninference: {normalize: True}\n"),
      "no error");
  EXPECT_NE(message("audio: {chunk_size: 10}\nmodel: {dim: 8}\ntraining:\n  instruments: [a]\n  use_amp: 1\n")
                .find(":5: `training.use_amp` must be true or false, not 1"),
            std::string::npos);
  EXPECT_NE(message("audio: {chunk_size: 10}\nmodel: {dim: 8}\n").find("names no stems"), std::string::npos);
  EXPECT_NE(
      [] {
        try {
          models::load_msst_config("/nonexistent/config.yaml");
        } catch (const stemkit::Error& e) {
          return std::string(e.what());
        }
        return std::string();
      }()
          .find("/nonexistent/config.yaml: cannot read"),
      std::string::npos);
}

}  // namespace
