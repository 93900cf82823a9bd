// The model cache: which directory (option, environment, XDG, HOME), and
// resolving members whose files are present with the right, or a wrong, hash:
// the published prefix, or for a file without one the hash recorded at its
// first use (checked with the real sha256sum too).
#include "runtime/separate/model_cache.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>

#include <functional>

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

// A RoFormer checkpoint's member: no published hash.
CatalogMember unhashed(const std::string& file_name) {
  return {"", file_name, "", "https://example.invalid/" + file_name, FileKind::weights};
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const stemkit::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no throw";
  return "";
}

TEST(ModelCacheTrustOnFirstUse, TheFirstUseRecordsTheHashInSha256sumsFormat) {
  TempDir dir;
  ModelCache cache(dir.path());
  auto m = unhashed("model.ckpt");
  EXPECT_EQ(cache.recorded_sha256(m), std::nullopt);
  EXPECT_EQ(cache.recorded_hash_path(m), dir.path() / "model.ckpt.sha256");
  write_file(cache.path_for(m), "weights put here by hand");
  EXPECT_EQ(cache.resolve(m), cache.path_for(m));
  const std::string sha = patchmgr::sha256_hex("weights put here by hand");
  EXPECT_EQ(cache.recorded_sha256(m), sha);
  EXPECT_EQ(test::read_file(cache.recorded_hash_path(m)), sha + "  model.ckpt\n");
  EXPECT_EQ(cache.resolve(m), cache.path_for(m));  // and again: it matches

  // The record is what GNU sha256sum writes and checks.
  std::string command = "cd '" + dir.path().string() + "' && sha256sum -c model.ckpt.sha256 2>&1";
  std::array<char, 512> buf{};
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  ASSERT_NE(p, nullptr);
  while (fgets(buf.data(), buf.size(), p)) out += buf.data();
  EXPECT_EQ(pclose(p), 0) << out;
  EXPECT_EQ(out, "model.ckpt: OK\n");
}

TEST(ModelCacheTrustOnFirstUse, AChangedFileIsRefusedNamingBothHashesAndTheFix) {
  TempDir dir;
  ModelCache cache(dir.path());
  auto m = unhashed("model.ckpt");
  write_file(cache.path_for(m), "the weights");
  cache.record_sha256(m, patchmgr::sha256_hex("the weights"));
  write_file(cache.path_for(m), "the weightz");
  std::string what = error_of([&] { cache.resolve(m); });
  EXPECT_NE(what.find(cache.path_for(m).string() + " has changed since its first download"), std::string::npos) << what;
  EXPECT_NE(what.find(patchmgr::sha256_hex("the weightz")), std::string::npos) << what;
  EXPECT_NE(what.find(patchmgr::sha256_hex("the weights")), std::string::npos) << what;
  EXPECT_NE(what.find("run with --download"), std::string::npos) << what;
  EXPECT_NE(what.find("delete " + cache.recorded_hash_path(m).string() + " to trust the new file"), std::string::npos)
      << what;
  // The record is kept: the refusal repeats until the user chooses.
  EXPECT_EQ(cache.recorded_sha256(m), patchmgr::sha256_hex("the weights"));
  EXPECT_THROW(cache.resolve(m), stemkit::Error);
}

TEST(ModelCacheTrustOnFirstUse, ABadRecordIsNamed) {
  TempDir dir;
  ModelCache cache(dir.path());
  auto m = unhashed("model.ckpt");
  write_file(cache.path_for(m), "w");
  const std::string sha = patchmgr::sha256_hex("w");
  for (const std::string& bad : {std::string("garbage\n"), sha + "  other.ckpt\n", sha.substr(1) + "  model.ckpt\n",
                                 std::string(64, 'A') + "  model.ckpt\n", std::string()}) {
    write_file(cache.recorded_hash_path(m), bad);
    std::string what = error_of([&] { cache.resolve(m); });
    EXPECT_NE(what.find(cache.recorded_hash_path(m).string() + " is not a sha256 record of model.ckpt"),
              std::string::npos)
        << bad << ": " << what;
  }
  write_file(cache.recorded_hash_path(m), sha + " *model.ckpt\n");  // sha256sum -b's line
  EXPECT_EQ(cache.resolve(m), cache.path_for(m));
}

TEST(ModelCacheTrustOnFirstUse, AnUnwritableCacheSaysHowToRecordByHand) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes anywhere";
  TempDir dir;
  ModelCache cache(dir.path());
  auto m = unhashed("model.ckpt");
  write_file(cache.path_for(m), "w");
  fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec);
  std::string what = error_of([&] { cache.resolve(m); });
  fs::permissions(dir.path(), fs::perms::owner_all);
  EXPECT_NE(what.find("sha256sum model.ckpt > model.ckpt.sha256"), std::string::npos) << what;
}

TEST(ModelCache, GemmAlgorithmsAreKeptBesideTheModels) {
  EXPECT_EQ(gemm_algorithm_dir({std::nullopt, "/xdg", "/home/u"}), fs::path("/xdg/stemkit/gemm"));
  EXPECT_EQ(gemm_algorithm_dir({"/models", "relative", "/home/u"}), fs::path("/home/u/.cache/stemkit/gemm"));
  EXPECT_EQ(gemm_algorithm_dir({std::nullopt, "", ""}), fs::path());  // nowhere to keep them: timed in each run
}

}  // namespace
}  // namespace stemkit::separate
