// The model cache: which directory (option, environment, XDG, HOME), and
// resolving members whose files are present with the right, or a wrong, hash.
#include "runtime/separate/model_cache.h"

#include <gtest/gtest.h>

#include "patchmgr/util/sha256.h"
#include "runtime/error.h"
#include "runtime/separate/download.h"
#include "tests/separate/test_support.h"

namespace stemkit::separate {
namespace {

using test::TempDir;
using test::write_file;
namespace fs = std::filesystem;

// A member whose sha256 prefix matches `content`.
CatalogMember member_for(const std::string& signature, const std::string& content) {
  std::string prefix = patchmgr::sha256_hex(content).substr(0, 8);
  return {signature, signature + "-" + prefix + ".th", prefix, "http://127.0.0.1:9/" + signature};
}

TEST(ModelCache, Sha256KnownAnswers) {
  TempDir dir;
  write_file(dir / "abc", "abc");
  write_file(dir / "empty", "");
  EXPECT_EQ(file_sha256_hex(dir / "abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(file_sha256_hex(dir / "empty"), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_THROW(file_sha256_hex(dir / "absent"), stemkit::Error);
}

TEST(ModelCache, DirectoryPrecedence) {
  Environment env{"/env/models", "/xdg", "/home/u"};

  auto choice = choose_model_dir(fs::path("/opt/m"), env);
  EXPECT_EQ(choice.dir, "/opt/m");
  EXPECT_EQ(choice.source, "--model-dir");

  choice = choose_model_dir(std::nullopt, env);
  EXPECT_EQ(choice.dir, "/env/models");
  EXPECT_EQ(choice.source, "$STEMKIT_MODEL_DIR");
  {
    Environment empty = env;
    empty.model_dir = "";  // empty counts as unset
    choice = choose_model_dir(std::nullopt, empty);
    EXPECT_EQ(choice.dir, "/xdg/stemkit/models");
    EXPECT_EQ(choice.source, "$XDG_CACHE_HOME");
  }
  {
    Environment relative{std::nullopt, "relative/cache", "/home/u"};  // ignored, as the XDG spec says
    choice = choose_model_dir(std::nullopt, relative);
    EXPECT_EQ(choice.dir, "/home/u/.cache/stemkit/models");
    EXPECT_EQ(choice.source, "$HOME");
    relative.home.reset();
    EXPECT_THROW(choose_model_dir(std::nullopt, relative), stemkit::Error);
  }
  EXPECT_EQ(ModelCache::from_option(std::nullopt, env).dir(), "/env/models");
}

TEST(ModelCache, AbsentMemberResolvesToNothing) {
  TempDir dir;
  ModelCache cache(dir.path() / "not-created-yet");
  auto m = member_for("aaaaaaaa", "weights");
  EXPECT_EQ(cache.path_for(m), dir.path() / "not-created-yet" / m.file_name);
  EXPECT_EQ(cache.resolve(m), std::nullopt);
}

TEST(ModelCache, PresentFileWithTheRightHashResolves) {
  TempDir dir;
  auto cache = ModelCache::from_option(std::nullopt, Environment{dir.path().string(), std::nullopt, "/home/u"});
  auto m = member_for("aaaaaaaa", "good weights");
  write_file(cache.path_for(m), "good weights");
  auto path = cache.resolve(m);
  ASSERT_TRUE(path.has_value());
  EXPECT_EQ(*path, dir.path() / m.file_name);
}

TEST(ModelCache, XdgCacheHomeIsUsedWhenNothingElseIsSet) {
  TempDir dir;
  auto cache = ModelCache::from_option(std::nullopt, Environment{std::nullopt, dir.path().string(), "/home/u"});
  auto m = member_for("bbbbbbbb", "xdg weights");
  write_file(dir.path() / "stemkit" / "models" / m.file_name, "xdg weights");
  EXPECT_EQ(cache.resolve(m), dir.path() / "stemkit" / "models" / m.file_name);
}

TEST(ModelCache, PresentFileWithAWrongHashIsAnErrorThatSaysWhatToDo) {
  TempDir dir;
  ModelCache cache(dir.path());
  auto m = member_for("cccccccc", "the real weights");
  write_file(cache.path_for(m), "the real weigh");  // truncated
  std::string actual = patchmgr::sha256_hex("the real weigh").substr(0, 8);
  try {
    cache.resolve(m);
    FAIL() << "no throw";
  } catch (const stemkit::Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(cache.path_for(m).string()), std::string::npos) << what;
    EXPECT_NE(what.find("expected " + m.sha256_prefix), std::string::npos) << what;
    EXPECT_NE(what.find("starts with " + actual), std::string::npos) << what;
    EXPECT_NE(what.find("delete it and run with --download"), std::string::npos) << what;
  }
}

TEST(ModelCache, MissingListsOnlyAbsentMembers) {
  TempDir dir;
  ModelCache cache(dir.path());
  CatalogModel model;
  model.name = "bag";
  model.members = {member_for("11111111", "one"), member_for("22222222", "two")};
  write_file(cache.path_for(model.members[1]), "two");
  auto missing = cache.missing(model);
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].signature, "11111111");
}

TEST(ModelCache, EnsureWithoutDownloadNamesTheMissingFilesAndTheFix) {
  TempDir dir;
  auto cache = ModelCache::from_option(std::nullopt, Environment{dir.path().string(), std::nullopt, "/home/u"});
  CatalogModel model;
  model.name = "bag";
  model.members = {member_for("11111111", "one"), member_for("22222222", "two")};
  write_file(cache.path_for(model.members[0]), "one");
  try {
    ensure_model_files(model, cache, /*allow_download=*/false);
    FAIL() << "no throw";
  } catch (const stemkit::Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(model.members[1].file_name), std::string::npos) << what;
    EXPECT_EQ(what.find(model.members[0].file_name), std::string::npos) << what;
    EXPECT_NE(what.find(dir.path().string() + " (from $STEMKIT_MODEL_DIR)"), std::string::npos) << what;
    if (download_supported()) EXPECT_NE(what.find("run with --download"), std::string::npos) << what;
  }
  write_file(cache.path_for(model.members[1]), "two");
  auto paths = ensure_model_files(model, cache, false);
  EXPECT_EQ(paths, (std::vector<fs::path>{cache.path_for(model.members[0]), cache.path_for(model.members[1])}));
}

}  // namespace
}  // namespace stemkit::separate
