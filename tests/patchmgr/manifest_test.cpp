// Manifest validation: one test per rule. Each checks the file:line:column
// and the words a user reads to fix the problem.
#include <gtest/gtest.h>

#include <regex>

#include <fmt/format.h>

#include "fixture.h"
#include "git_cli.h"
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
  EXPECT_NE(text.find("manifests/demo.yaml:12:5: error: patches[0] (flash-attention): unknown key \"titel\"; did you "
                      "mean \"title\"?"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("missing required key \"title\""), std::string::npos) << text;
}

TEST_F(ManifestTest, UnknownTopLevelKey) {
  auto r = load_with("checkout:", "chekout:");
  EXPECT_NE(all(r, project.root())
                .find("manifests/demo.yaml:7:1: error: manifest: unknown key \"chekout\"; did you mean \"checkout\"?"),
            std::string::npos)
      << all(r, project.root());
}

TEST_F(ManifestTest, AbbreviatedCommitIsRejected) {
  std::string pin = patchmgr::git::to_hex(project.pin());
  auto r = load_with(pin, pin.substr(0, 7));
  auto text = all(r, project.root());
  EXPECT_NE(text.find(fmt::format(
                "manifests/demo.yaml:5:11: error: upstream.commit: found \"{}\", expected the full 40-hex commit SHA",
                pin.substr(0, 7))),
            std::string::npos)
      << text;
}

TEST_F(ManifestTest, BranchNameAsCommitIsRejected) {
  std::string pin = patchmgr::git::to_hex(project.pin());
  auto r = load_with(pin, "main");
  EXPECT_NE(all(r, project.root()).find("upstream.commit: found \"main\""), std::string::npos);
}

TEST_F(ManifestTest, MissingPatchFile) {
  auto r = load_with("file: 0001-flash-attention.patch", "file: 0001-flash-attn.patch");
  auto text = all(r, project.root());
  EXPECT_NE(text.find("manifests/demo.yaml:10:11: error: patches[0] (flash-attention).file: "
                      "patches/demo/0001-flash-attn.patch does not exist"),
            std::string::npos)
      << text;
}

TEST_F(ManifestTest, EditedPatchFileFailsItsSha256) {
  auto patch = project.root() / "patches/demo/0001-flash-attention.patch";
  std::string text = read(patch);
  text.insert(text.find("\n---\n"), "\nAn edit nobody recorded.");
  write(patch, text);
  auto r = patchmgr::load_manifest(manifest_path(), project.root());
  auto out = all(r, project.root());
  EXPECT_NE(out.find(fmt::format("manifests/demo.yaml:11:13: error: patches[0] (flash-attention).sha256: "
                                 "patches/demo/0001-flash-attention.patch has sha256 {}",
                                 patchmgr::sha256_hex(text))),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("the patch file was edited"), std::string::npos);
}

TEST_F(ManifestTest, MalformedSha256) {
  auto r = load_with("sha256: ", "sha256: abc");
  EXPECT_NE(all(r, project.root()).find("expected 64 lower-case hex digits"), std::string::npos)
      << all(r, project.root());
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
  EXPECT_NE(out.find("status: found \"done\", expected one of implemented, experimental, disabled, upstreamed"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("since: found \"2026-02-30\", expected a date YYYY-MM-DD"), std::string::npos) << out;
}

TEST_F(ManifestTest, FilesMustMatchThePatch) {
  auto r = load_with("      - model/attend.py", "      - model/other.py");
  EXPECT_NE(
      all(r, project.root()).find("lists [model/other.py], but 0001-flash-attention.patch touches [model/attend.py]"),
      std::string::npos)
      << all(r, project.root());
}

TEST_F(ManifestTest, RuntimePatchHasNoFile) {
  std::string runtime =
      "  - id: attention-policy\n    kind: runtime\n    file: 0002-x.patch\n    title: T\n    purpose: P\n"
      "    status: implemented\n    since: 2026-01-25\n    files: [model/attend.py]\n";
  write(manifest_path(), good + runtime);
  auto r = patchmgr::load_manifest(manifest_path(), project.root());
  EXPECT_NE(all(r, project.root()).find("a runtime patch has no patch file"), std::string::npos)
      << all(r, project.root());
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
  std::string edited =
      std::regex_replace(good, std::regex("sha256: [0-9a-f]+"), "sha256: " + patchmgr::sha256_hex(text));
  write(manifest_path(), edited);
  auto r = patchmgr::load_manifest(manifest_path(), project.root());
  EXPECT_NE(all(r, project.root()).find("patches/demo/0001-flash-attention.patch:"), std::string::npos)
      << all(r, project.root());
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

// upstream_status (docs/manifest.md, "Upstream status"): what each value needs.
TEST_F(ManifestTest, UpstreamStatusNeedsWhatItsValueSays) {
  struct Case {
    std::string keys;
    std::string expected;  // "" when it loads
  };
  const std::vector<Case> cases = {
      {"    upstream_status: pending\n", ""},
      {"    upstream_status: submitted\n    upstream_url: https://github.com/o/r/pull/3\n", ""},
      {"    upstream_status: accepted\n    upstream_commit: " + std::string(40, 'a') + "\n", ""},
      {"    upstream_status: inappropriate\n    upstream_reason: tunes kernels for our GPUs only\n", ""},
      {"    upstream_status: submitted\n",
       "manifests/demo.yaml:15:22: error: patches[0] (flash-attention).upstream_status: submitted needs upstream_url: "
       "the pull request or the mail"},
      {"    upstream_status: accepted\n",
       "manifests/demo.yaml:15:22: error: patches[0] (flash-attention).upstream_status: accepted needs "
       "upstream_commit: the full SHA"},
      {"    upstream_status: backport\n",
       "manifests/demo.yaml:15:22: error: patches[0] (flash-attention).upstream_status: backport needs "
       "upstream_commit"},
      {"    upstream_status: denied\n",
       "manifests/demo.yaml:15:22: error: patches[0] (flash-attention).upstream_status: denied needs upstream_reason: "
       "why upstream said no"},
      {"    upstream_status: inappropriate\n",
       "manifests/demo.yaml:15:22: error: patches[0] (flash-attention).upstream_status: inappropriate needs "
       "upstream_reason: why upstream is not the place for it"},
      {"    upstream_status: merged\n",
       "manifests/demo.yaml:15:22: error: patches[0] (flash-attention).upstream_status: found \"merged\", expected one "
       "of pending (not offered yet), submitted (with upstream_url)"},
      {"    upstream_status: accepted\n    upstream_commit: abc123\n",
       "manifests/demo.yaml:16:22: error: patches[0] (flash-attention).upstream_commit: found \"abc123\", expected the "
       "full 40-hex SHA"},
      {"    upstream_stat: pending\n",
       "manifests/demo.yaml:15:5: error: patches[0] (flash-attention): unknown key \"upstream_stat\"; did you mean "
       "\"upstream_status\"?"},
  };
  for (const auto& c : cases) {
    auto r = load_with("    status: implemented\n", "    status: implemented\n" + c.keys);
    std::string text = all(r, project.root());
    if (c.expected.empty()) {
      EXPECT_TRUE(r.diagnostics.empty()) << c.keys << text;
      EXPECT_TRUE(r.unfinished.empty()) << c.keys;
    } else {
      EXPECT_NE(text.find(c.expected), std::string::npos) << c.keys << text;
    }
  }
  auto r =
      load_with("    status: implemented\n",
                "    status: implemented\n    upstream_status: submitted\n    upstream_url: https://x.invalid/pr/1\n");
  ASSERT_EQ(r.manifests.size(), 1u);
  EXPECT_EQ(r.manifests[0].patches[0].upstream_status, patchmgr::UpstreamStatus::submitted);
  EXPECT_EQ(r.manifests[0].patches[0].upstream_url, "https://x.invalid/pr/1");
  auto up = load_with("    status: implemented\n", "    status: upstreamed\n    upstream_status: pending\n");
  EXPECT_NE(all(up, project.root())
                .find("upstream_status: found pending, but status is upstreamed; set upstream_status: accepted with "
                      "upstream_commit"),
            std::string::npos)
      << all(up, project.root());
}

// Placeholders load (every command runs) but lint rejects them.
TEST_F(ManifestTest, PlaceholdersLoadButLintRejectsThem) {
  auto r =
      load_with("    purpose: Exercise patchmgr with flash-attention.\n    status: implemented\n",
                "    purpose: \"TODO: why this patch exists\"\n    status: implemented\n    upstream_status: TODO\n");
  EXPECT_TRUE(r.diagnostics.empty()) << all(r, project.root());
  ASSERT_EQ(r.manifests.size(), 1u);
  ASSERT_EQ(r.unfinished.size(), 2u);
  EXPECT_EQ(r.unfinished[0].to_string(project.root()).substr(0, 30), "manifests/demo.yaml:13:14: err");
  CliRun lint = project.run({"lint"});
  EXPECT_EQ(lint.code, 2) << lint.all();
  EXPECT_NE(lint.err.find("manifests/demo.yaml:13:14: error: patches[0] (flash-attention).purpose: a placeholder left "
                          "by patchmgr export; say why the patch exists"),
            std::string::npos)
      << lint.err;
  EXPECT_NE(lint.err.find("manifests/demo.yaml:15:22: error: patches[0] (flash-attention).upstream_status: a "
                          "placeholder left by patchmgr export; write one of pending"),
            std::string::npos)
      << lint.err;
  EXPECT_EQ(project.run({"status"}).code, 0);
}

// A patch file named by git format-patch itself loads as it is.
TEST_F(ManifestTest, GitFormatPatchFileNamesAreAccepted) {
  TempDir repo;
  ShellRun made = sh(repo.path(),
                     "git init -q . && mkdir model && printf 'import torch\\n' > model/attend.py && git add -A && "
                     "git commit -q -m Base && printf 'import torch\\n# flash\\n' > model/attend.py && "
                     "git commit -q -a -m 'Add flash attention' -m 'Use flash attention on every GPU that has it.' && "
                     "git format-patch -q -1 -o out && ls out");
  ASSERT_EQ(made.code, 0) << made.out;
  EXPECT_EQ(made.out, "0001-Add-flash-attention.patch\n");
  std::string text = read(repo.path() / "out/0001-Add-flash-attention.patch");
  fs::remove(project.root() / "patches/demo/0001-flash-attention.patch");
  write(project.root() / "patches/demo/0001-Add-flash-attention.patch", text);
  std::string manifest = good;
  manifest.replace(manifest.find("0001-flash-attention.patch"), 26, "0001-Add-flash-attention.patch");
  size_t sha = manifest.find("sha256: ") + 8;
  manifest.replace(sha, 64, patchmgr::sha256_hex(text));
  write(manifest_path(), manifest);
  auto r = patchmgr::load_manifest(manifest_path(), project.root());
  EXPECT_TRUE(r.diagnostics.empty()) << all(r, project.root());
  EXPECT_EQ(project.run({"lint"}).code, 0);
}

}  // namespace
