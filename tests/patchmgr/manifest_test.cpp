// Manifest validation: one test per rule. Each checks the file:line:column
// and the words a user reads to fix the problem.
#include <gtest/gtest.h>

#include <regex>

#include <fmt/format.h>

#include "fixture.h"
#include "patchmgr/manifest/manifest.h"
#include "patchmgr/util/sha256.h"

using namespace testutil;

namespace {

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    project.set_series({{.id = "flash-attention", .files = {{"model/attend.py", "import torch\n# flash\n"}}}});
    good = read(manifest_path());
  }
  fs::path manifest_path() const { return project.root() / "manifests" / "demo.yaml"; }

  // Loads the manifest after replacing `from` with `to` in its text.
  patchmgr::LoadResult load_with(const std::string& from, const std::string& to) {
    std::string text = good;
    auto pos = text.find(from);
    EXPECT_NE(pos, std::string::npos) << "fixture lacks: " << from;
    if (pos != std::string::npos) text.replace(pos, from.size(), to);
    write(manifest_path(), text);
    return patchmgr::load_manifest(manifest_path(), project.root());
  }
  static std::string all(const patchmgr::LoadResult& r, const fs::path& root) {
    std::string s;
    for (const auto& d : r.diagnostics) s += d.to_string(root) + "\n";
    return s;
  }

  Project project;
  std::string good;
};

TEST_F(ManifestTest, ValidManifestLoads) {
  auto r = patchmgr::load_manifest(manifest_path(), project.root());
  ASSERT_TRUE(r.diagnostics.empty()) << all(r, project.root());
  ASSERT_EQ(r.manifests.size(), 1u);
  const auto& m = r.manifests[0];
  EXPECT_EQ(m.name, "demo");
  EXPECT_EQ(m.track, "main");
  EXPECT_EQ(m.checkout, fs::weakly_canonical(project.root() / "upstream/demo"));
  ASSERT_EQ(m.patches.size(), 1u);
  EXPECT_EQ(m.patches[0].id, "flash-attention");
  EXPECT_TRUE(m.patches[0].enabled);
  EXPECT_EQ(m.patches[0].parsed.subject, "Add flash-attention");
  EXPECT_EQ(m.patches[0].parsed.author_email, "author@example.org");
}

TEST_F(ManifestTest, UnknownKeySuggestsTheRightOne) {
  auto r = load_with("    title:", "    titel:");
  auto text = all(r, project.root());
  EXPECT_NE(text.find("manifests/demo.yaml:12:5: error: patches[0] (flash-attention): unknown key \"titel\"; did you mean \"title\"?"), std::string::npos) << text;
  EXPECT_NE(text.find("missing required key \"title\""), std::string::npos) << text;
}

TEST_F(ManifestTest, UnknownTopLevelKey) {
  auto r = load_with("checkout:", "chekout:");
  EXPECT_NE(all(r, project.root()).find("manifests/demo.yaml:7:1: error: manifest: unknown key \"chekout\"; did you mean \"checkout\"?"), std::string::npos)
      << all(r, project.root());
}

TEST_F(ManifestTest, AbbreviatedCommitIsRejected) {
  std::string pin = patchmgr::git::to_hex(project.pin());
  auto r = load_with(pin, pin.substr(0, 7));
  auto text = all(r, project.root());
  EXPECT_NE(text.find(fmt::format("manifests/demo.yaml:5:11: error: upstream.commit: found \"{}\", expected the full 40-hex commit SHA", pin.substr(0, 7))), std::string::npos) << text;
}

TEST_F(ManifestTest, BranchNameAsCommitIsRejected) {
  std::string pin = patchmgr::git::to_hex(project.pin());
  auto r = load_with(pin, "main");
  EXPECT_NE(all(r, project.root()).find("upstream.commit: found \"main\""), std::string::npos);
}

TEST_F(ManifestTest, MissingPatchFile) {
  auto r = load_with("file: 0001-flash-attention.patch", "file: 0001-flash-attn.patch");
  auto text = all(r, project.root());
  EXPECT_NE(text.find("manifests/demo.yaml:10:11: error: patches[0] (flash-attention).file: patches/demo/0001-flash-attn.patch does not exist"), std::string::npos) << text;
}

TEST_F(ManifestTest, EditedPatchFileFailsItsSha256) {
  auto patch = project.root() / "patches/demo/0001-flash-attention.patch";
  std::string text = read(patch);
  text.insert(text.find("\n---\n"), "\nAn edit nobody recorded.");
  write(patch, text);
  auto r = patchmgr::load_manifest(manifest_path(), project.root());
  auto out = all(r, project.root());
  EXPECT_NE(out.find(fmt::format("manifests/demo.yaml:11:13: error: patches[0] (flash-attention).sha256: patches/demo/0001-flash-attention.patch has sha256 {}", patchmgr::sha256_hex(text))), std::string::npos) << out;
  EXPECT_NE(out.find("the patch file was edited"), std::string::npos);
}

TEST_F(ManifestTest, MalformedSha256) {
  auto r = load_with("sha256: ", "sha256: abc");
  EXPECT_NE(all(r, project.root()).find("expected 64 lower-case hex digits"), std::string::npos) << all(r, project.root());
}

TEST_F(ManifestTest, DuplicateIds) {
  std::string entry = good.substr(good.find("  - id:"));
  std::string twice = good + entry;
  write(manifest_path(), twice);
  auto r = patchmgr::load_manifest(manifest_path(), project.root());
  auto text = all(r, project.root());
  EXPECT_NE(text.find("duplicate id \"flash-attention\", first used at line 9"), std::string::npos) << text;
}

TEST_F(ManifestTest, FileLeavingPatchesDirectory) {
  auto r = load_with("file: 0001-flash-attention.patch", "file: ../../manifests/demo.yaml");
  auto text = all(r, project.root());
  EXPECT_NE(text.find("file: \"../../manifests/demo.yaml\" leaves patches/demo/"), std::string::npos) << text;
  auto abs = load_with("file: 0001-flash-attention.patch", "file: /etc/passwd");
  EXPECT_NE(all(abs, project.root()).find("\"/etc/passwd\" leaves patches/demo/"), std::string::npos);
}

TEST_F(ManifestTest, PatchFileNameMustBeNumbered) {
  auto r = load_with("file: 0001-flash-attention.patch", "file: flash.patch");
  EXPECT_NE(all(r, project.root()).find("expected a file name NNNN-slug.patch"), std::string::npos);
}

TEST_F(ManifestTest, BadStatusAndDate) {
  write(manifest_path(), std::regex_replace(good, std::regex("status: implemented"), "status: done"));
  std::string text = read(manifest_path());
  text = std::regex_replace(text, std::regex("since: 2026-01-25"), "since: 2026-02-30");
  write(manifest_path(), text);
  auto r = patchmgr::load_manifest(manifest_path(), project.root());
  auto out = all(r, project.root());
  EXPECT_NE(out.find("status: found \"done\", expected one of implemented, experimental, disabled, upstreamed"), std::string::npos) << out;
  EXPECT_NE(out.find("since: found \"2026-02-30\", expected a date YYYY-MM-DD"), std::string::npos) << out;
}

TEST_F(ManifestTest, FilesMustMatchThePatch) {
  auto r = load_with("      - model/attend.py", "      - model/other.py");
  EXPECT_NE(all(r, project.root()).find("lists [model/other.py], but 0001-flash-attention.patch touches [model/attend.py]"), std::string::npos)
      << all(r, project.root());
}

TEST_F(ManifestTest, RuntimePatchHasNoFile) {
  std::string runtime =
      "  - id: attention-policy\n    kind: runtime\n    file: 0002-x.patch\n    title: T\n    purpose: P\n"
      "    status: implemented\n    since: 2026-01-25\n    files: [model/attend.py]\n";
  write(manifest_path(), good + runtime);
  auto r = patchmgr::load_manifest(manifest_path(), project.root());
  EXPECT_NE(all(r, project.root()).find("a runtime patch has no patch file"), std::string::npos) << all(r, project.root());
  write(manifest_path(), good + std::regex_replace(runtime, std::regex("    file: 0002-x.patch\n"), ""));
  auto ok = patchmgr::load_manifest(manifest_path(), project.root());
  ASSERT_TRUE(ok.diagnostics.empty()) << all(ok, project.root());
  EXPECT_EQ(ok.manifests[0].patches[1].kind, patchmgr::PatchKind::runtime);
}

TEST_F(ManifestTest, SyntaxErrorHasPosition) {
  write(manifest_path(), "schema: 1\nname: demo\nupstream: [unclosed\n");
  auto r = patchmgr::load_manifest(manifest_path(), project.root());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_NE(all(r, project.root()).find("manifests/demo.yaml:"), std::string::npos);
  EXPECT_NE(all(r, project.root()).find("YAML syntax error"), std::string::npos);
}

TEST_F(ManifestTest, NameMustMatchFileName) {
  auto r = load_with("name: demo", "name: other");
  EXPECT_NE(all(r, project.root()).find("name: found \"other\", but the file is demo.yaml"), std::string::npos);
}

TEST_F(ManifestTest, PatchWithoutDescriptionIsRejected) {
  auto patch = project.root() / "patches/demo/0001-flash-attention.patch";
  std::string text = read(patch);
  auto start = text.find("This patch adds");
  text.erase(start, text.find("\n---\n") - start);
  write(patch, text);
  std::string edited = std::regex_replace(good, std::regex("sha256: [0-9a-f]+"), "sha256: " + patchmgr::sha256_hex(text));
  write(manifest_path(), edited);
  auto r = patchmgr::load_manifest(manifest_path(), project.root());
  EXPECT_NE(all(r, project.root()).find("patches/demo/0001-flash-attention.patch:"), std::string::npos) << all(r, project.root());
  EXPECT_NE(all(r, project.root()).find("missing a description"), std::string::npos) << all(r, project.root());
}

TEST_F(ManifestTest, EveryProblemIsReportedAtOnce) {
  std::string text = good;
  text = std::regex_replace(text, std::regex("track: main"), "trak: main");
  text = std::regex_replace(text, std::regex("status: implemented"), "status: shipped");
  text = std::regex_replace(text, std::regex("schema: 1"), "schema: 2");
  write(manifest_path(), text);
  auto r = patchmgr::load_manifest(manifest_path(), project.root());
  EXPECT_GE(r.diagnostics.size(), 4u) << all(r, project.root());  // schema, trak unknown, track missing, status
  EXPECT_TRUE(r.manifests.empty());
}

TEST_F(ManifestTest, CliReportsManifestErrorsWithExitCode2) {
  load_with("    title:", "    titel:");
  CliRun r = project.run({"status"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("manifests/demo.yaml:12:5: error:"), std::string::npos) << r.all();
  EXPECT_NE(r.err.find("in the manifests; nothing was done"), std::string::npos) << r.all();
}

}  // namespace
