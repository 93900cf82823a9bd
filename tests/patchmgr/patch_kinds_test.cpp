// Every kind of change git writes, against git itself: a corpus of patch files
// made by `git format-patch` (tools/patch-corpus/make.sh, run here into a temp
// directory) is parsed, applied and compared with `git am`, committed and
// exported and compared byte for byte with git's file, and run through the
// patchmgr CLI as one series. Then the damaged and refused kinds.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstdio>
#include <set>

#include "fixture.h"
#include "reference_tools.h"
#include "patchmgr/checkout/apply.h"
#include "patchmgr/git/patch_file.h"
#include "patchmgr/util/sha256.h"

using namespace testutil;
using patchmgr::git::to_hex;
namespace pg = patchmgr::git;

namespace {

// The kinds, in the order make.sh commits them (patch N applies to the parent of commit N).
const std::vector<std::string> kKinds = {
    "0001-Text-change-with-LF.patch",
    "0002-Text-change-with-CRLF.patch",
    "0003-No-newline-at-end-of-file.patch",
    "0004-New-binary-file-literal.patch",
    "0005-Binary-change-delta.patch",
    "0006-New-empty-file.patch",
    "0007-Delete-a-file.patch",
    "0008-Pure-rename.patch",
    "0009-Rename-with-a-change.patch",
    "0010-Copy-with-a-change.patch",
    "0011-Mode-change-to-0755.patch",
    "0012-Mode-change-back-to-0644.patch",
    "0013-New-symlink.patch",
    "0014-Retarget-a-symlink.patch",
    "0015-File-to-symlink.patch",
    "0016-Symlink-to-file.patch",
    "0017-Paths-with-spaces.patch",
    "0018-Quoted-paths.patch",
    "0019-Rename-with-non-ASCII-and-a-space.patch",
    "0020-P-tch-the-mlauts.patch",
    "0021-A-long-subject-that-git-folds-over-more-than-one-lin.patch",
    "0022-Several-kinds-at-once.patch",
    "0023-Author-name-with-specials.patch",
    "0024-A-long-subject-with-and-that-git-writes-as-encoded-w.patch",
    "0025-Rename-with-a-mode-change.patch",
    "0026-Delete-a-binary-file-and-a-symlink.patch",
    "0027-Subjects-may-hold-x-and-a_b.patch",
    "0028-Copy-without-a-change.patch",
    "0029-Author-name-with-quotes-and-a-backslash.patch",
    "0030-A-long-author-name.patch",
    "0031-A-long-path-and-many-lines.patch",
    "0032-Rename-a-binary-file.patch",
    "0033-Rename-an-empty-file-mode-change-of-a-binary-file.patch",
    "0034-An-author-date-west-of-UTC-in-the-year-before.patch",
    "0035-Rename-a-binary-file-with-a-change.patch",
    "0036-A-text-file-becomes-binary-a-file-without-newline-is.patch",
};

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

// The git environment make.sh uses, so `git am` here sees the same configuration.
std::string git_env(const fs::path& corpus) {
  return fmt::format("HOME={} GIT_CONFIG_NOSYSTEM=1 LC_ALL=C TZ=UTC", quoted(corpus / "home"));
}

class PatchKinds : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir = new TempDir;
    ToolRun made = sh(fmt::format("{}/tools/patch-corpus/make.sh {}", STEMKIT_SOURCE_DIR, quoted(corpus())));
    ASSERT_EQ(made.code, 0) << made.out;
    ToolRun list = sh(fmt::format("git -C {} rev-list --reverse main", quoted(corpus() / "repo")));
    ASSERT_EQ(list.code, 0) << list.out;
    commits.clear();
    for (size_t s = 0; s < list.out.size();) {
      size_t nl = list.out.find('\n', s);
      commits.push_back(list.out.substr(s, nl - s));
      s = nl + 1;
    }
    ASSERT_EQ(commits.size(), kKinds.size() + 1);  // the base commit, then one commit per kind
  }
  static void TearDownTestSuite() {
    delete dir;
    dir = nullptr;
  }
  static fs::path corpus() { return dir->path() / "corpus"; }

  static TempDir* dir;
  static std::vector<std::string> commits;
};
TempDir* PatchKinds::dir = nullptr;
std::vector<std::string> PatchKinds::commits;

TEST_F(PatchKinds, TheCorpusHoldsEveryKind) {
  std::set<std::string> found;
  for (const auto& e : fs::directory_iterator(corpus()))
    if (e.path().extension() == ".patch") found.insert(e.path().filename().string());
  EXPECT_EQ(found, std::set<std::string>(kKinds.begin(), kKinds.end()));
}

// (a) parse, (b) apply == git am, (c) commit and export == git format-patch, byte for byte.
TEST_F(PatchKinds, EachKindParsesAppliesAsGitAmAndExportsAsGitFormatPatch) {
  Repo repo(corpus() / "repo", Repo::Existing{});
  for (size_t k = 0; k < kKinds.size(); ++k)
    [&] {
      SCOPED_TRACE(kKinds[k]);
      fs::path file = corpus() / kKinds[k];
      std::string text = read(file);
      patchmgr::Patch patch;
      patch.id = kKinds[k].substr(5, kKinds[k].size() - 11);
      patch.parsed = pg::parse_patch_file(text);
      ASSERT_TRUE(patch.parsed.ok()) << "line " << patch.parsed.problems[0].line << ": "
                                     << patch.parsed.problems[0].message;

      git_oid parent = pg::from_hex(commits[k]);
      auto base = pg::commit_tree(pg::lookup_commit(repo.get(), parent).get());
      patchmgr::TreeApply applied = patchmgr::apply_patch_to_tree(repo.get(), base.get(), patch);
      ASSERT_TRUE(applied.tree) << applied.describe();

      fs::path am = dir->path() / ("am-" + std::to_string(k));
      ToolRun git_am =
          sh(fmt::format("{0} git clone -q {1} {2} && cd {2} && git checkout -q --detach {3} && "
                         "git am --keep-cr -q {4} && git rev-parse 'HEAD^{{tree}}' && git log -1 --format=%an%n%ae%n%B",
                         git_env(corpus()), quoted(corpus() / "repo"), quoted(am), commits[k], quoted(file)));
      ASSERT_EQ(git_am.code, 0) << git_am.out;
      // git am's tree, author and message (decoded from RFC 2047, unfolded) are patchmgr's. Except one
      // author: git 2.39's am reads the From header it folded itself with the email as the name;
      // patchmgr unfolds it (RFC 2822) and keeps the name, which export folds back the same way.
      std::string name =
          kKinds[k] == "0030-A-long-author-name.patch" ? patch.parsed.author_email : patch.parsed.author_name;
      EXPECT_EQ(pg::to_hex(*applied.tree) + "\n" + name + "\n" + patch.parsed.author_email + "\n" +
                    patch.parsed.message() + "\n",
                git_am.out);

      git_oid made = patchmgr::commit_patch(repo.get(), parent, *applied.tree, patch);
      std::string exported = pg::format_patch(pg::lookup_commit(repo.get(), made).get());
      EXPECT_EQ(exported, text);
    }();
}

}  // namespace

namespace {

// A YAML double-quoted string, for paths with quotes, tabs and non-ASCII bytes.
std::string yaml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\t') {
      out += "\\t";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

// A project "corpus" whose series is the whole corpus, pinned at the base commit.
struct CorpusProject {
  TempDir root;
  fs::path upstream;

  CorpusProject(const fs::path& corpus, const std::string& base, const std::vector<std::string>& kinds)
      : upstream(corpus / "repo") {
    fs::create_directories(root.path() / "manifests");
    fs::create_directories(root.path() / "patches" / "corpus");
    std::string yaml = fmt::format(
        "schema: 1\nname: corpus\nupstream:\n  url: https://example.invalid/corpus.git\n  commit: {}\n"
        "  track: main\ncheckout: upstream/corpus\npatches:\n",
        base);
    for (const auto& kind : kinds) {
      std::string text = read(corpus / kind);
      std::string name;
      for (char c : kind) name += c == '_' ? '-' : char(std::tolower(static_cast<unsigned char>(c)));  // a slug
      std::string id = name.substr(5, name.size() - 11);
      write(root.path() / "patches" / "corpus" / name, text);
      auto parsed = pg::parse_patch_file(text);
      std::string files;
      for (const auto& f : parsed.touched_files) files += "      - " + yaml_string(f) + "\n";
      yaml += fmt::format(
          "  - id: {}\n    file: {}\n    sha256: {}\n    title: {}\n    purpose: One kind of change git writes.\n"
          "    status: implemented\n    since: 2026-01-25\n    files:\n{}",
          id, name, patchmgr::sha256_hex(text), id, files);
    }
    write(root.path() / "manifests" / "corpus.yaml", yaml);
  }
  CliRun run(const std::vector<std::string>& args) const {
    return run_patchmgr(root.path(), args, {{"PATCHMGR_UPSTREAM_CORPUS", upstream.string()}});
  }
  std::string patches() const {
    std::string all;
    for (const auto& e : fs::directory_iterator(root.path() / "patches" / "corpus"))
      all += e.path().filename().string() + "\n" + read(e.path());
    return all;
  }
};

// (d) The CLI on one project holding every kind: sync, apply, export (unchanged), revert, apply.
TEST_F(PatchKinds, TheCliAppliesExportsAndRevertsEveryKindAsOneSeries) {
  CorpusProject project(corpus(), commits[0], kKinds);
  std::string before = project.patches();
  std::string manifest = read(project.root.path() / "manifests/corpus.yaml");
  CliRun lint = project.run({"lint"});
  ASSERT_EQ(lint.code, 0) << lint.all();
  CliRun sync = project.run({"sync"});
  ASSERT_EQ(sync.code, 0) << sync.all();
  CliRun apply = project.run({"apply"});
  ASSERT_EQ(apply.code, 0) << apply.all();
  // The patched tree is git's: the tip of the corpus repository.
  Repo co(project.root.path() / "upstream/corpus", Repo::Existing{});
  auto tip = pg::lookup_commit(co.get(), co.head());
  ToolRun git_tree = sh(fmt::format("git -C {} rev-parse 'main^{{tree}}'", quoted(corpus() / "repo")));
  EXPECT_EQ(pg::to_hex(*git_commit_tree_id(tip.get())) + "\n", git_tree.out);
  CliRun exported = project.run({"export"});
  ASSERT_EQ(exported.code, 0) << exported.all();
  EXPECT_NE(exported.out.find(fmt::format("corpus: exported {} patches, 0 changed", kKinds.size())), std::string::npos)
      << exported.all();
  EXPECT_EQ(project.patches(), before);
  EXPECT_EQ(read(project.root.path() / "manifests/corpus.yaml"), manifest);
  CliRun revert = project.run({"revert"});
  ASSERT_EQ(revert.code, 0) << revert.all();
  CliRun again = project.run({"apply"});
  ASSERT_EQ(again.code, 0) << again.all();
  EXPECT_EQ(to_hex(Repo(project.root.path() / "upstream/corpus", Repo::Existing{}).head()), to_hex(co.head()));
}

struct Bad {
  std::string what;
  std::string text;
  int line;             // where the problem is reported
  std::string message;  // part of the message
};

std::string replace_line(const std::string& text, int line, const std::string& with) {
  size_t start = 0;
  for (int l = 1; l < line; ++l) start = text.find('\n', start) + 1;
  size_t end = text.find('\n', start);
  return text.substr(0, start) + with + text.substr(end);
}

int line_of(const std::string& text, const std::string& needle) {
  size_t at = text.find(needle);
  if (at == std::string::npos) return 0;
  return int(std::count(text.begin(), text.begin() + long(at), '\n')) + 1;
}

std::vector<Bad> bad_inputs(const fs::path& corpus) {
  std::vector<Bad> bad;
  std::string binary = read(corpus / "0004-New-binary-file-literal.patch");
  int literal = line_of(binary, "literal 300\n");
  // Truncated: the file ends inside the data.
  {
    size_t cut = 0;
    for (int l = 0; l < literal + 2; ++l) cut = binary.find('\n', cut) + 1;
    std::string text = binary.substr(0, cut);
    bad.push_back({"truncated binary patch", text, literal + 2, "the binary patch is truncated"});
  }
  // A data line lost: the rest decodes, but does not inflate to 300 bytes.
  {
    std::string text = replace_line(binary, literal + 3, "");
    text.erase(text.find("\n\n", text.find("literal 300")), 1);
    bad.push_back({"binary patch missing a line", text, literal, "does not inflate to 300 bytes"});
  }
  // Corrupt base85: a character outside git's alphabet.
  {
    std::string text = binary;
    size_t data = text.find('\n', text.find("literal 300")) + 1;
    text[data + 10] = '"';
    bad.push_back({"corrupt base85", text, literal + 1, "'\"' is not a base85 character"});
  }
  std::string submodule = read(corpus / "bad/0001-Add-a-submodule.patch");
  bad.push_back(
      {"submodule", submodule, line_of(submodule, "new file mode 160000"), "sub: a submodule pointer change"});
  std::string quoted = read(corpus / "0018-Quoted-paths.patch");
  {
    int l = line_of(quoted, "+++ \"b/na\\303\\257ve.txt\"");
    bad.push_back(
        {"malformed quoted path", replace_line(quoted, l, "+++ \"b/na\\303\\257ve.txt"), l, "malformed quoted path"});
  }
  {
    int l = line_of(quoted, "diff --git \"a/tab\\there.txt\"");
    bad.push_back({"unknown escape", replace_line(quoted, l, "diff --git \"a/tab\\qhere.txt\" \"b/tab\\there.txt\""), l,
                   "malformed quoted path"});
  }
  {
    // Found by the fuzzer: two headers merged into one (libgit2 1.5 keeps one "rename to" and leaks the other).
    std::string rename = read(corpus / "0008-Pure-rename.patch");
    std::string text = rename + "similarity index 100%\nrename to moved.txt\n";
    bad.push_back(
        {"a header line twice", text, line_of(rename, "diff --git") + 4, "a second \"similarity index\" line"});
  }
  std::string text = read(corpus / "0001-Text-change-with-LF.patch");
  bad.push_back({"binary without data",
                 text.substr(0, text.find("--- a/")) + "Binary files a/text.txt and b/text.txt differ\n",
                 line_of(text, "--- a/"), "the binary change has no data"});
  {
    std::string extra = text + "+a line the hunk does not count\n";
    bad.push_back({"hunk counts", extra, line_of(extra, "+a line the hunk"), "unexpected text after the diff"});
  }
  return bad;
}

TEST_F(PatchKinds, DamagedAndRefusedKindsNameTheirLine) {
  for (const auto& b : bad_inputs(corpus())) {
    SCOPED_TRACE(b.what);
    auto p = pg::parse_patch_file(b.text);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.problems[0].line, b.line) << p.problems[0].message;
    EXPECT_NE(p.problems[0].message.find(b.message), std::string::npos) << p.problems[0].message;
  }
}

TEST_F(PatchKinds, LintRejectsDamagedAndRefusedKinds) {
  for (const auto& b : bad_inputs(corpus())) {
    SCOPED_TRACE(b.what);
    CorpusProject project(corpus(), commits[0], {"0001-Text-change-with-LF.patch"});
    fs::path file = project.root.path() / "patches/corpus/0001-text-change-with-lf.patch";
    write(file, b.text);
    std::string manifest = read(project.root.path() / "manifests/corpus.yaml");
    size_t sha = manifest.find("sha256: ") + 8;
    write(project.root.path() / "manifests/corpus.yaml", manifest.replace(sha, 64, patchmgr::sha256_hex(b.text)));
    CliRun lint = project.run({"lint"});
    EXPECT_NE(lint.code, 0) << lint.all();
    EXPECT_NE(lint.all().find(fmt::format("patches/corpus/0001-text-change-with-lf.patch:{}:", b.line)),
              std::string::npos)
        << lint.all();
    EXPECT_NE(lint.all().find(b.message), std::string::npos) << lint.all();
  }
}

}  // namespace

namespace {

TEST_F(PatchKinds, ExportRefusesASubmoduleChange) {
  Repo repo(corpus() / "repo", Repo::Existing{});
  ToolRun tip = sh(fmt::format("git -C {} rev-parse submodule", quoted(corpus() / "repo")));
  ASSERT_EQ(tip.code, 0) << tip.out;
  auto commit = pg::lookup_commit(repo.get(), pg::from_hex(tip.out.substr(0, 40)));
  try {
    pg::format_patch(commit.get());
    ADD_FAILURE() << "format_patch wrote a submodule change";
  } catch (const patchmgr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("sub: a submodule pointer change cannot be written as a patch file"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
