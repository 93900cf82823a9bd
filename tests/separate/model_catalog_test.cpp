// The pretrained model catalog: the entries demucs lists at b9ab48c, lookups by
// name and by signature, and the did-you-mean text for unknown names.
#include "runtime/separate/model_catalog.h"

#include <gtest/gtest.h>

#include <regex>

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

TEST(ModelCatalog, EveryMemberFileNameIsSignatureDashEightHexDigits) {
  std::regex form("([0-9a-f]{8})-([0-9a-f]{8})\\.th");
  for (const auto& model : catalog()) {
    ASSERT_FALSE(model.members.empty()) << model.name;
    if (!model.weights.empty()) EXPECT_EQ(model.weights.size(), model.members.size()) << model.name;
    for (const auto& m : model.members) {
      std::smatch match;
      ASSERT_TRUE(std::regex_match(m.file_name, match, form)) << m.file_name;
      EXPECT_EQ(match[1], m.signature);
      EXPECT_EQ(match[2], m.sha256_prefix);
      EXPECT_EQ(m.url, std::string(kHybridTransformerRootUrl) + m.file_name);
    }
  }
}

TEST(ModelCatalog, NamesAreSortedAndExcludeSignatures) {
  EXPECT_EQ(model_names(), (std::vector<std::string>{"hdemucs_mmi", "htdemucs", "htdemucs_6s", "htdemucs_ft"}));
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
  EXPECT_EQ(unknown_model_message("htdemcs"),
            "unknown model 'htdemcs': did you mean 'htdemucs'? Known: hdemucs_mmi, htdemucs, htdemucs_6s, "
            "htdemucs_ft; or give a path to a .th file");
  EXPECT_EQ(unknown_model_message("banana"),
            "unknown model 'banana'. Known: hdemucs_mmi, htdemucs, htdemucs_6s, htdemucs_ft; or give a path to a .th "
            "file");
  EXPECT_NE(unknown_model_message("mdx_extra_q").find("demucs v3 model"), std::string::npos);
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
