// The pretrained model catalog: the entries demucs lists at b9ab48c, the
// RoFormers of UVR's and MSST's lists, lookups by name, by signature and by
// checkpoint file name, what --list-models shows, mirrored URLs, and the
// did-you-mean text for unknown names.
#include "runtime/separate/model_catalog.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>

#include "runtime/error.h"

namespace stemkit::separate {
namespace {

TEST(ModelCatalog, HtdemucsIsABagOfOne) {
  const CatalogModel* m = find_model("htdemucs");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->name, "htdemucs");
  EXPECT_EQ(m->architecture, Architecture::htdemucs);
  ASSERT_EQ(m->members.size(), 1u);
  EXPECT_EQ(m->members[0].signature, "955717e8");
  EXPECT_EQ(m->members[0].file_name, "955717e8-8726e21a.th");
  EXPECT_EQ(m->members[0].sha256_prefix, "8726e21a");
  EXPECT_EQ(m->members[0].url, "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/955717e8-8726e21a.th");
  EXPECT_TRUE(m->weights.empty());
  EXPECT_FALSE(m->segment.has_value());
}

TEST(ModelCatalog, HtdemucsFtIsFourMembersEachKeptForOneSource) {
  const CatalogModel* m = find_model("htdemucs_ft");
  ASSERT_NE(m, nullptr);
  std::vector<std::string> files;
  for (const auto& member : m->members) files.push_back(member.file_name);
  EXPECT_EQ(files, (std::vector<std::string>{"f7e0c4bc-ba3fe64a.th", "d12395a8-e57c48e6.th", "92cfc3b6-ef3bcb9c.th",
                                             "04573f0d-f3cf25b2.th"}));
  std::vector<std::vector<double>> identity = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}};
  EXPECT_EQ(m->weights, identity);
  EXPECT_FALSE(m->segment.has_value());
}

TEST(ModelCatalog, SixSourcesAndHdemucsMmi) {
  const CatalogModel* six = find_model("htdemucs_6s");
  ASSERT_NE(six, nullptr);
  ASSERT_EQ(six->members.size(), 1u);
  EXPECT_EQ(six->members[0].file_name, "5c90dfd2-34c22ccb.th");

  const CatalogModel* mmi = find_model("hdemucs_mmi");
  ASSERT_NE(mmi, nullptr);
  EXPECT_EQ(mmi->architecture, Architecture::hdemucs);
  ASSERT_EQ(mmi->members.size(), 1u);
  EXPECT_EQ(mmi->members[0].file_name, "75fc33f5-1941ce65.th");
  ASSERT_TRUE(mmi->segment.has_value());
  EXPECT_EQ(*mmi->segment, 44.0);
}

TEST(ModelCatalog, EveryDemucsMemberFileNameIsSignatureDashEightHexDigits) {
  std::regex form("([0-9a-f]{8})-([0-9a-f]{8})\\.th");
  for (const auto& model : catalog()) {
    ASSERT_FALSE(model.members.empty()) << model.name;
    if (is_roformer(model)) continue;
    if (!model.weights.empty()) EXPECT_EQ(model.weights.size(), model.members.size()) << model.name;
    for (const auto& m : model.members) {
      std::smatch match;
      ASSERT_TRUE(std::regex_match(m.file_name, match, form)) << m.file_name;
      EXPECT_EQ(match[1], m.signature);
      EXPECT_EQ(match[2], m.sha256_prefix);
      EXPECT_EQ(m.url, std::string(kHybridTransformerRootUrl) + m.file_name);
      EXPECT_EQ(m.kind, FileKind::weights);
    }
  }
}

// What audio-separator's README gives as its example, with the URLs UVR and MSST publish.
TEST(ModelCatalog, ViperxBsRoformerByItsFileName) {
  const CatalogModel* m = find_model("model_bs_roformer_ep_317_sdr_12.9755");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->architecture, Architecture::bs_roformer);
  EXPECT_TRUE(runnable(*m));
  ASSERT_EQ(m->members.size(), 2u);
  EXPECT_EQ(m->members[0].kind, FileKind::msst_config);
  EXPECT_EQ(m->members[0].file_name, "model_bs_roformer_ep_317_sdr_12.9755.yaml");
  EXPECT_EQ(m->members[0].url,
            "https://raw.githubusercontent.com/ZFTurbo/Music-Source-Separation-Training/"
            "ccc011abf7f89dd7922bb2888d48493b575c0289/configs/viperx/model_bs_roformer_ep_317_sdr_12.9755.yaml");
  EXPECT_EQ(m->members[1].kind, FileKind::weights);
  EXPECT_EQ(m->members[1].file_name, "model_bs_roformer_ep_317_sdr_12.9755.ckpt");
  EXPECT_EQ(m->members[1].url,
            "https://github.com/TRvlvr/model_repo/releases/download/all_public_uvr_models/"
            "model_bs_roformer_ep_317_sdr_12.9755.ckpt");
  // audio-separator's -m spelling, the checkpoint's file name, finds it too.
  EXPECT_EQ(find_model("model_bs_roformer_ep_317_sdr_12.9755.ckpt"), m);
  const CatalogModel* mel = find_model("model_mel_band_roformer_ep_3005_sdr_11.4360");
  ASSERT_NE(mel, nullptr);
  EXPECT_EQ(mel->architecture, Architecture::mel_band_roformer);
}

TEST(ModelCatalog, EveryRoformerIsAConfigAndACheckpointTrustedOnFirstUse) {
  int roformers = 0;
  for (const auto& model : catalog()) {
    if (!is_roformer(model)) continue;
    ++roformers;
    SCOPED_TRACE(model.name);
    EXPECT_TRUE(runnable(model));
    ASSERT_EQ(model.members.size(), 2u);
    const CatalogMember &config = model.members[0], &checkpoint = model.members[1];
    EXPECT_EQ(config.kind, FileKind::msst_config);
    EXPECT_EQ(config.file_name, model.name + ".yaml");
    EXPECT_EQ(checkpoint.kind, FileKind::weights);
    EXPECT_EQ(checkpoint.file_name, model.name + ".ckpt");
    for (const auto& member : model.members) {
      EXPECT_TRUE(member.signature.empty());
      EXPECT_TRUE(member.sha256_prefix.empty()) << "the publishers give no hashes";
      EXPECT_EQ(member.url.rfind("https://", 0), 0u) << member.url;
      EXPECT_EQ(member.url.find(' '), std::string::npos) << member.url;
    }
    // A configuration is fetched from the commit it was checked at, not from a branch.
    EXPECT_TRUE(std::regex_search(config.url, std::regex("^https://raw\\.githubusercontent\\.com/[^/]+/[^/]+/"
                                                         "[0-9a-f]{40}/.+\\.yaml$")))
        << config.url;
    EXPECT_FALSE(model.description.empty());
    EXPECT_FALSE(model.source.empty());
    EXPECT_NE(model.verified.find("parsed by load_msst_config"), std::string::npos);
  }
  EXPECT_GE(roformers, 9);
}

TEST(ModelCatalog, NamesAndCacheFilesAreUnique) {
  std::set<std::string> names, files;
  for (const auto& model : catalog()) {
    EXPECT_TRUE(names.insert(model.name).second) << model.name;
    for (const auto& m : model.members) {
      // Each file has one name in the cache, and each name one URL.
      EXPECT_TRUE(files.insert(m.file_name).second) << m.file_name;
      if (!m.signature.empty()) EXPECT_TRUE(names.insert(m.signature).second) << m.signature;
    }
  }
  // A RoFormer's checkpoint file name, which find_model takes too, names no other model.
  for (const auto& model : catalog())
    if (is_roformer(model)) {
      const CatalogModel* found = find_model(model.members[1].file_name);
      EXPECT_EQ(found, &model) << model.name;
      EXPECT_EQ(names.count(model.members[1].file_name), 0u);
    }
}

TEST(ModelCatalog, NamesAreSortedRunnableAndExcludeSignatures) {
  std::vector<std::string> names = model_names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(std::count(names.begin(), names.end(), "htdemucs"), 1);
  EXPECT_EQ(std::count(names.begin(), names.end(), "model_bs_roformer_ep_317_sdr_12.9755"), 1);
  EXPECT_EQ(std::count(names.begin(), names.end(), "hdemucs_mmi"), 0) << "known, but not run";
  EXPECT_EQ(std::count(names.begin(), names.end(), "955717e8"), 0);
  size_t runnable_models = 0;
  for (const auto& m : catalog()) runnable_models += runnable(m);
  EXPECT_EQ(names.size(), runnable_models);
}

TEST(ModelCatalog, ListShowsOnlyRunnableModels) {
  const std::string text = model_list_text();
  EXPECT_EQ(text.find("hdemucs_mmi"), std::string::npos) << text;
  std::istringstream lines(text);
  std::string line;
  std::vector<std::string> listed;
  size_t column = std::string::npos;
  while (std::getline(lines, line)) {
    listed.push_back(line.substr(0, line.find(' ')));
    // The descriptions start in one column.
    size_t description = line.find_first_not_of(' ', line.find(' '));
    if (column == std::string::npos) column = description;
    EXPECT_EQ(description, column) << line;
  }
  std::vector<std::string> sorted = listed;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, model_names());
  EXPECT_EQ(listed.front(), "htdemucs");  // catalog order: demucs' models first
}

TEST(ModelCatalog, MirroredUrls) {
  const std::string url = "https://github.com/TRvlvr/model_repo/releases/download/all_public_uvr_models/x.ckpt";
  EXPECT_EQ(mirrored_url(url, ""), url);
  EXPECT_EQ(mirrored_url(url, "http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/github.com/TRvlvr/model_repo/releases/download/all_public_uvr_models/x.ckpt");
  EXPECT_EQ(mirrored_url("http://example.org/a/b.th", "https://mirror.example/m/"),
            "https://mirror.example/m/example.org/a/b.th");
  CatalogModel m = with_mirror(*find_model("htdemucs_ft"), "http://m");
  for (const auto& member : m.members)
    EXPECT_EQ(member.url, "http://m/dl.fbaipublicfiles.com/demucs/hybrid_transformer/" + member.file_name);
}

TEST(ModelCatalog, AMemberSignatureIsABagOfOne) {
  const CatalogModel* m = find_model("d12395a8");
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(m->members.size(), 1u);
  EXPECT_EQ(m->members[0].file_name, "d12395a8-e57c48e6.th");
  EXPECT_TRUE(m->weights.empty());
}

TEST(ModelCatalog, LookupIsExact) {
  EXPECT_EQ(find_model("HTDemucs"), nullptr);
  EXPECT_EQ(find_model(""), nullptr);
  EXPECT_EQ(find_model("htdemucs "), nullptr);
  EXPECT_EQ(find_model("mdx_extra_q"), nullptr);
  EXPECT_EQ(find_model("model_bs_roformer_ep_317_sdr_12.9755.yaml"), nullptr);
  EXPECT_EQ(find_model("htdemucs.ckpt"), nullptr);
}

TEST(ModelCatalog, SuggestsTheClosestName) {
  EXPECT_EQ(suggest_model("htdemcs"), "htdemucs");
  EXPECT_EQ(suggest_model("htdemucs-ft"), "htdemucs_ft");
  EXPECT_EQ(suggest_model("HTDEMUCS_6S"), "htdemucs_6s");
  EXPECT_EQ(suggest_model("htdemucs_6"), "htdemucs_6s");
  EXPECT_EQ(suggest_model("hdemucs"), "htdemucs");
  EXPECT_EQ(suggest_model("htdemucs_tf"), "htdemucs_ft");  // swapped letters are one edit
  EXPECT_EQ(suggest_model("banana"), std::nullopt);
  EXPECT_EQ(suggest_model("x"), std::nullopt);
}

TEST(ModelCatalog, UnknownNameMessage) {
  const std::string known = "separate --list-models lists the " + std::to_string(model_names().size()) +
                            " models it knows; or give a path to a .th file or an MSST .yaml configuration";
  EXPECT_EQ(unknown_model_message("htdemcs"), "unknown model 'htdemcs': did you mean 'htdemucs'? " + known);
  EXPECT_EQ(unknown_model_message("banana"), "unknown model 'banana'; " + known);
  EXPECT_NE(unknown_model_message("mdx_extra_q").find("demucs v3 model"), std::string::npos);
  EXPECT_EQ(suggest_model("model_bs_roformer_ep_317_sdr_12.975"), "model_bs_roformer_ep_317_sdr_12.9755");
  EXPECT_EQ(suggest_model("hdemucs_mmi"), std::nullopt) << "not suggested: it does not run";
}

TEST(ModelCatalog, RequireModelThrowsTheMessage) {
  EXPECT_EQ(require_model("htdemucs_ft").name, "htdemucs_ft");
  try {
    require_model("htdemucs_tf");
    FAIL() << "no throw";
  } catch (const stemkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'htdemucs_ft'?"), std::string::npos) << e.what();
  }
}

TEST(ModelCatalog, PathsAreNotNames) {
  EXPECT_TRUE(looks_like_model_path("model.th"));
  EXPECT_TRUE(looks_like_model_path("./htdemucs"));
  EXPECT_TRUE(looks_like_model_path("/models/x.ckpt"));
  EXPECT_TRUE(looks_like_model_path("x.safetensors"));
  EXPECT_FALSE(looks_like_model_path("htdemucs"));
  EXPECT_FALSE(looks_like_model_path("955717e8"));
}

// The kind decides which options mean something (options.cpp's scopes) and how load_model reads the model.
TEST(ModelCatalog, ModelKindFromHowItIsNamed) {
  EXPECT_EQ(model_kind("htdemucs"), ModelKind::demucs_name);
  EXPECT_EQ(model_kind("955717e8"), ModelKind::demucs_name);
  EXPECT_EQ(model_kind("model.th"), ModelKind::demucs_file);
  EXPECT_EQ(model_kind("./htdemucs"), ModelKind::demucs_file);
  EXPECT_EQ(model_kind("config_vocals.yaml"), ModelKind::msst_config);
  EXPECT_EQ(model_kind("/models/x.yml"), ModelKind::msst_config);
}

}  // namespace
}  // namespace stemkit::separate
