// Mel-Band RoFormer against the patched upstream (lucidrains' MelBandRoformer
// at the pin with our patches, rotary-embedding-torch, the real librosa for
// its mel filter bank) and MSST's demix: tests/fixtures/mel_band_roformer was
// made by tools/fixtures/make_mel_band_roformer_fixtures.py.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "runtime/dsp/mel_filters.h"
#include "runtime/layers/state_dict.h"
#include "runtime/models/mel_band_roformer.h"
#include "runtime/models/msst_config.h"
#include "runtime/models/separator.h"
#include "runtime/version.h"
#include "runtime/weights/checkpoint.h"
#include "tests/runtime/compare.h"
#include "tests/runtime/reference_forward.h"

namespace {

using namespace stemkit;
const std::string kDir = std::string(STEMKIT_FIXTURES) + "/mel_band_roformer/";

nlohmann::json meta(const std::string& name) {
  std::ifstream in(kDir + name + ".json");
  return nlohmann::json::parse(in);
}

// librosa.filters.mel for each recorded (sr, n_fft, n_mels): the same entries
// are zero, and the others agree to float32 rounding.
TEST(MelFilters, MatchLibrosa) {
  auto data = weights::load_safetensors(kDir + "mel_filters.safetensors");
  int cases = 0;
  for (const auto& [key, tensor] : data.tensors) {
    if (key.size() < 8 || key.compare(key.size() - 8, 8, ".nonzero") != 0) continue;
    const std::string name = key.substr(0, key.size() - 8);
    int sr = 0, n_fft = 0, n_mels = 0;
    ASSERT_EQ(std::sscanf(name.c_str(), "%d_%d_%d", &sr, &n_fft, &n_mels), 3) << name;
    at::Tensor nonzero = layers::to_torch(tensor).to(at::kLong);
    at::Tensor values = layers::to_torch(data.tensors.at(name + ".values"));
    const int64_t bins = n_fft / 2 + 1;
    at::Tensor want = at::zeros({static_cast<int64_t>(n_mels) * bins}, at::kFloat).index_put_({nonzero}, values);
    std::vector<float> fb = dsp::mel_filter_bank(sr, n_fft, n_mels);
    ASSERT_EQ(static_cast<int64_t>(fb.size()), want.numel()) << name;
    at::Tensor got = at::tensor(fb);
    // The last weight (fmax = sr / 2 is the last bin's frequency and the last mel
    // point) is 0 or ~1e-18 depending on the last bit of numpy's log and exp on
    // the platform: numpy's AVX-512 log(24) is one ulp below glibc's correctly
    // rounded one. Upstream forces it to 1 for that reason; every other entry
    // must be zero exactly where librosa's is.
    const int64_t last = got.numel() - 1;
    if ((got[last] > 0).item<bool>() != (want[last] > 0).item<bool>()) {
      std::printf("mel %s: last weight %.3g here, %.3g from librosa (forced to 1 upstream)\n", name.c_str(),
                  got[last].item<double>(), want[last].item<double>());
      EXPECT_LT(std::max(got[last].item<double>(), want[last].item<double>()), 1e-12) << name;
      got[last] = want[last];
    }
    EXPECT_TRUE(at::equal(got > 0, want > 0))
        << name << ": " << (got > 0).ne(want > 0).sum().item<int64_t>() << " entries differ in being zero";
    const double max_rel =
        ((got - want).abs() / want.abs().clamp_min(1e-30)).masked_select(want > 0).max().item<double>();
    std::printf("mel %s: %ld non-zero weights, max relative difference to librosa %.3g\n", name.c_str(),
                static_cast<long>(nonzero.numel()), max_rel);
    EXPECT_LT(max_rel, 1e-6) << name;
    ++cases;
  }
  EXPECT_GE(cases, 8);
}

// The mapping upstream builds from it, as the fixtures recorded the model's
// buffers (freq_indices with stereo interleaved, num_bands_per_freq, num_freqs_per_band).
TEST(MelFilters, BandMappingMatchesUpstream) {
  for (const std::string name : {"stereo", "mono"}) {
    auto m = meta(name);
    const auto& kw = m["kwargs"];
    dsp::MelBands bands = dsp::mel_bands(kw["sample_rate"].get<double>(), kw["stft_n_fft"], kw["num_bands"]);
    const int64_t channels = kw["stereo"].get<bool>() ? 2 : 1;
    std::vector<int64_t> indices;
    for (int64_t f : bands.freq_indices)
      for (int64_t s = 0; s < channels; ++s) indices.push_back(f * channels + s);
    EXPECT_EQ(indices, m["mapping"]["freq_indices"].get<std::vector<int64_t>>()) << name;
    EXPECT_EQ(bands.num_bands_per_freq, m["mapping"]["num_bands_per_freq"].get<std::vector<int64_t>>()) << name;
    EXPECT_EQ(bands.num_freqs_per_band, m["mapping"]["num_freqs_per_band"].get<std::vector<int64_t>>()) << name;
  }
  // Kim's configuration: every bin covered, the first and last forced in.
  dsp::MelBands kim = dsp::mel_bands(44100, 2048, 60);
  EXPECT_EQ(kim.num_freqs, 1025);
  EXPECT_EQ(kim.covers.front(), 1);
  EXPECT_EQ(kim.covers.back(), 1);
  EXPECT_THROW(dsp::mel_bands(44100, 64, 60), std::invalid_argument);  // more bands than bins: a band is empty
}

class MelBandRoformerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(MelBandRoformerParity, ForwardMatchesUpstream) {
  auto m = meta(GetParam());
  EXPECT_EQ(m["fingerprint"]["bs-roformer"].get<std::string>(), component_patchset("bs-roformer"))
      << "stale: regenerate with tools/fixtures/make_mel_band_roformer_fixtures.py";
  auto config = models::MelBandRoformerConfig::from_json(m["kwargs"], GetParam() + ".json");
  EXPECT_TRUE(config.ignored.empty());
  models::MelBandRoformer model(config);
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

  // The comparison is sensitive: 1% more on the rotary frequencies, a
  // transformer's output norm or one band's last mask layer, or a different
  // linear attention temperature, moves the output far past the tolerance.
  std::vector<std::pair<std::string, std::pair<double, double>>> changes = {
      {"layers.0.1.layers.0.0.rotary_embed.freqs", {1.01, 0}},
      {"layers.0.2.norm.gamma", {1.01, 0}},
      {"mask_estimators.0.to_freqs.1.0.2.weight", {1.01, 0}}};
  if (config.msst.linear_transformer_depth > 0) changes.push_back({"layers.0.0.layers.0.0.temperature", {1, 0.05}});
  for (const auto& [name, how] : changes) {
    auto state = weights::state_dict(checkpoint);
    ASSERT_TRUE(state.count(name)) << name;
    std::vector<float> keep;
    state[name] = test::changed(state.at(name), how.first, how.second, keep);
    models::MelBandRoformer other(config);
    other.load_state_dict(state, "changed");
    EXPECT_GT(test::rel_l2(other.forward(mix), want), 1e-4) << name;
  }
}

// MSST's copy of the model leaves the missing linear transformer out of its
// layer lists, so its checkpoints say layers.{i}.0 / .1 where the pin says .1 / .2.
TEST(MelBandRoformer, LoadsMsstLayout) {
  auto m = meta("mono");
  auto config = models::MelBandRoformerConfig::from_json(m["kwargs"], "mono.json");
  ASSERT_EQ(config.msst.linear_transformer_depth, 0);
  auto checkpoint = weights::load_torch_checkpoint(kDir + "mono.ckpt");
  weights::TensorMap msst;
  const std::regex layer(R"(^layers\.(\d+)\.([12])\.)");
  for (const auto& [name, tensor] : weights::state_dict(checkpoint)) {
    std::smatch s;
    std::string key = name;
    if (std::regex_search(name, s, layer))
      key = "layers." + s[1].str() + "." + std::to_string(std::stoi(s[2].str()) - 1) + "." + s.suffix().str();
    msst.emplace(key, tensor);
  }
  ASSERT_TRUE(msst.count("layers.0.0.norm.gamma"));
  models::MelBandRoformer model(config);
  model.load_state_dict(msst, "msst.ckpt");
  auto data = weights::load_safetensors(kDir + "mono.safetensors");
  EXPECT_LT(
      test::rel_l2(model.forward(layers::to_torch(data.tensors.at("mix"))), layers::to_torch(data.tensors.at("out"))),
      1e-5);
  // Strict: a missing tensor is named.
  msst.erase("layers.0.1.norm.gamma");
  try {
    model.load_state_dict(msst, "msst.ckpt");
    ADD_FAILURE() << "loaded a state dict with a tensor missing";
  } catch (const stemkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.0.2.norm.gamma"), std::string::npos) << e.what();
  }
}

// match_input_audio_length: the iSTFT to the input's length (the same samples
// first). zero_dc (MSST's, not the pin's): the DC bin of every frame zeroed
// before the iSTFT.
TEST(MelBandRoformer, InputLengthAndZeroDc) {
  auto m = meta("stereo");
  auto checkpoint = weights::load_torch_checkpoint(kDir + "stereo.ckpt");
  auto data = weights::load_safetensors(kDir + "stereo.safetensors");
  at::Tensor mix = layers::to_torch(data.tensors.at("mix"));
  auto run = [&](const char* option) {
    nlohmann::json kwargs = m["kwargs"];
    if (option) kwargs[option] = true;
    models::MelBandRoformer model(models::MelBandRoformerConfig::from_json(kwargs, "stereo.json"));
    model.load_state_dict(weights::state_dict(checkpoint), "stereo.ckpt");
    return model.forward(mix);
  };
  at::Tensor plain = run(nullptr), full = run("match_input_audio_length"), no_dc = run("zero_dc");
  ASSERT_EQ(full.size(-1), mix.size(-1));
  EXPECT_LT(test::rel_l2(full.slice(-1, 0, plain.size(-1)), plain), 1e-6);
  auto spectrum = [](const at::Tensor& y) {
    return at::stft(y.reshape({-1, y.size(-1)}), 256, 64, 256, at::hann_window(256), true, "reflect", false, true, true)
        .abs();
  };
  // What zero_dc removed is the iSTFT of the DC bins alone: a signal that moves
  // at the frame rate, whose own spectrum sits in bins 0 and 1 (Hann leakage).
  at::Tensor removed = spectrum(plain - no_dc);
  const double low = removed.slice(1, 0, 2).norm().item<double>(), high = removed.slice(1, 2).norm().item<double>();
  std::printf("zero_dc: removed %.3g of the output, spectrum bins 0-1 %.3g, bins >= 2 %.3g\n",
              test::rel_l2(no_dc, plain), low, high);
  EXPECT_GT(test::rel_l2(no_dc, plain), 1e-4);
  EXPECT_LT(high * high, 0.05 * (low * low + high * high));  // 95% of its energy (1.4% measured above bin 1)
}

// A chunk that is not a whole number of hops needs the output as long as the
// input (the msst case's demix above runs such a chunk): without
// match_input_audio_length the model's output would be shorter than a chunk,
// and MSST fails there too.
TEST(MelBandRoformer, ChunkOfPartialHopsNeedsTheInputLength) {
  models::MsstConfig config = models::load_msst_config(kDir + "stereo.yaml");
  config.chunk_size = 2950;
  config.model["match_input_audio_length"] = false;
  try {
    models::make_roformer_separator(config, kDir + "stereo.ckpt");
    ADD_FAILURE() << "a chunk of 2950 samples with hop 64 was taken";
  } catch (const stemkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("audio.chunk_size 2950 is not a multiple of model.stft_hop_length 64"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("set model.match_input_audio_length: true"), std::string::npos) << e.what();
  }
  config.model["match_input_audio_length"] = true;
  EXPECT_NO_THROW(models::make_roformer_separator(config, kDir + "stereo.ckpt"));
}

// MSST's skip_connection and mlp_expansion_factor (checked against MSST's own
// model by the msst case above) change the model: skip connections move the
// output of a checkpoint made without them, and a mask MLP of another width no
// longer fits the checkpoint, which says where.
TEST(MelBandRoformer, SkipConnectionAndMaskWidth) {
  auto m = meta("stereo");
  auto checkpoint = weights::load_torch_checkpoint(kDir + "stereo.ckpt");
  auto data = weights::load_safetensors(kDir + "stereo.safetensors");
  at::Tensor mix = layers::to_torch(data.tensors.at("mix")), want = layers::to_torch(data.tensors.at("out"));
  nlohmann::json kwargs = m["kwargs"];
  kwargs["skip_connection"] = true;
  models::MelBandRoformer skip(models::MelBandRoformerConfig::from_json(kwargs, "stereo.json"));
  skip.load_state_dict(weights::state_dict(checkpoint), "stereo.ckpt");
  EXPECT_GT(test::rel_l2(skip.forward(mix), want), 1e-4);
  kwargs = m["kwargs"];
  kwargs["mlp_expansion_factor"] = 2;
  models::MelBandRoformer narrow(models::MelBandRoformerConfig::from_json(kwargs, "stereo.json"));
  try {
    narrow.load_state_dict(weights::state_dict(checkpoint), "stereo.ckpt");
    ADD_FAILURE() << "a mask MLP of half the width loaded the checkpoint";
  } catch (const stemkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("mask_estimators.0.to_freqs.0.0.0.weight"), std::string::npos) << e.what();
  }
}

// A whole track through the Separator (the runner's path: MSST YAML, .ckpt,
// apply_msst) against MSST's demix() running the upstream model, batch size 1.
TEST_P(MelBandRoformerParity, DemixMatchesMsst) {
  auto m = meta(GetParam());
  auto config = models::load_msst_config(kDir + GetParam() + ".yaml");
  EXPECT_EQ(models::msst_model_type(config), "mel_band_roformer");
  auto separator = models::make_roformer_separator(config, kDir + GetParam() + ".ckpt");
  auto data = weights::load_safetensors(kDir + GetParam() + ".safetensors");
  at::Tensor track = layers::to_torch(data.tensors.at("track")), want = layers::to_torch(data.tensors.at("demix"));
  const auto stems = m["demix"]["stems"].get<std::vector<std::string>>();
  for (int64_t batch : {1, 3}) {
    models::SeparationOptions options;
    options.batch_size = batch;
    at::Tensor got = separator->separate(track, options);
    ASSERT_EQ(got.size(0), static_cast<int64_t>(separator->stems().size()));
    at::Tensor model_stems = got.slice(0, 0, static_cast<int64_t>(stems.size()));
    ASSERT_EQ(model_stems.sizes(), want.sizes());
    const double err = test::rel_l2(model_stems, want);
    std::printf("%s: demix batch %ld rel. L2 %.3g\n", GetParam().c_str(), static_cast<long>(batch), err);
    EXPECT_LT(err, 1e-5);
  }
}

// msst: made by MSST's own copy of the model with linear attention, skip
// connections, a 2x mask MLP, the DC filter and the input's length.
INSTANTIATE_TEST_SUITE_P(Configs, MelBandRoformerParity, ::testing::Values("stereo", "mono", "msst"));

TEST(MelBandRoformerConfig, ProblemsAreNamed) {
  auto message = [](const nlohmann::json& kwargs) {
    try {
      models::MelBandRoformerConfig::from_json(kwargs, "model.yaml");
    } catch (const stemkit::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"depth", 2}}).find("model.yaml: MelBandRoformer needs `dim`"), std::string::npos);
  EXPECT_NE(
      message({{"dim", 8}, {"depth", 1}, {"skip_connection", 1}}).find("skip_connection=1: expected true or false"),
      std::string::npos);
  EXPECT_NE(message({{"dim", 8}, {"depth", 1}, {"mlp_expansion_factor", 0}})
                .find("mlp_expansion_factor=0: expected a positive"),
            std::string::npos);
  EXPECT_NE(message({{"dim", 8}, {"depth", 1}, {"use_pope", true}}).find("use_pope=true"), std::string::npos);
  EXPECT_NE(message({{"dim", 8}, {"depth", 1}, {"num_bands", 60}, {"stft_n_fft", 64}, {"stft_win_length", 64}})
                .find("num_bands 60"),
            std::string::npos);
  EXPECT_NE(message({{"dim", 8}, {"depth", 1}, {"stft_win_length", 1024}}).find("stft_win_length 1024"),
            std::string::npos);
  EXPECT_EQ(message({{"dim", 8}, {"depth", 1}, {"mlp_expansion_factor", 2}, {"skip_connection", true}}), "no error");
  // Kim's vocal model section: everything known, MSST's default of no linear attention.
  auto kim =
      models::MelBandRoformerConfig::from_json({{"dim", 384},
                                                {"depth", 6},
                                                {"stereo", true},
                                                {"num_stems", 1},
                                                {"time_transformer_depth", 1},
                                                {"freq_transformer_depth", 1},
                                                {"num_bands", 60},
                                                {"dim_head", 64},
                                                {"heads", 8},
                                                {"attn_dropout", 0},
                                                {"ff_dropout", 0},
                                                {"flash_attn", true},
                                                {"dim_freqs_in", 1025},
                                                {"sample_rate", 44100},
                                                {"stft_n_fft", 2048},
                                                {"stft_hop_length", 441},
                                                {"stft_win_length", 2048},
                                                {"stft_normalized", false},
                                                {"mask_estimator_depth", 2},
                                                {"multi_stft_resolution_loss_weight", 1.0},
                                                {"multi_stft_resolutions_window_sizes", {4096, 2048, 1024, 512, 256}},
                                                {"multi_stft_hop_size", 147},
                                                {"multi_stft_normalized", false},
                                                {"some_new_option", 1}},
                                               "kim.yaml");
  EXPECT_EQ(kim.msst.linear_transformer_depth, 0);
  EXPECT_EQ(kim.ignored, std::vector<std::string>{"some_new_option"});
}

// MSST names the architecture on its command line; here the model section says
// it, or a top-level model_type does.
TEST(MelBandRoformerConfig, ArchitectureFromTheMsstConfig) {
  models::MsstConfig c;
  c.path = "x.yaml";
  c.model = {{"dim", 8}, {"num_bands", 60}};
  EXPECT_EQ(models::msst_model_type(c), "mel_band_roformer");
  c.model = {{"dim", 8}, {"freqs_per_bands", {2, 3}}};
  EXPECT_EQ(models::msst_model_type(c), "bs_roformer");
  c.model = {{"dim", 8}};
  EXPECT_EQ(models::msst_model_type(c), "bs_roformer");
  c.model = {{"dim", 8}, {"sample_rate", 44100}};
  EXPECT_EQ(models::msst_model_type(c), "mel_band_roformer");
  c.model = {{"dim", 8}, {"num_bands", 60}, {"freqs_per_bands", {2, 3}}};
  EXPECT_THROW(models::msst_model_type(c), stemkit::Error);
  c.model_type = "bs_roformer";
  EXPECT_EQ(models::msst_model_type(c), "bs_roformer");
  c.model_type = "htdemucs";
  EXPECT_THROW(models::msst_model_type(c), stemkit::Error);
}

}  // namespace
