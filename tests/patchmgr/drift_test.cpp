// Drift classes (drift.h) on synthetic upstreams, each case checked against
// what git apply, git apply -3 and GNU patch say on the same files: the class,
// each hunk's offset and fuzz, and the patched file itself.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "fixture.h"
#include "patchmgr/checkout/drift.h"
#include "patchmgr/checkout/drift_bisect.h"
#include "patchmgr/git/patch_file.h"
#include "patchmgr/util/sha256.h"
#include "tool_agreement.h"

using namespace testutil;
using patchmgr::Drift;
using How = patchmgr::git::HunkPlacement::How;

namespace {

// 40 lines "x1 = 1" ... "x40 = 40", with `edits` (line number -> new text, or
// "" to delete it) and `before` (line number -> lines inserted before it).
std::string model(const std::map<int, std::string>& edits = {}, const std::map<int, std::string>& before = {}) {
  std::string s;
  for (int i = 1; i <= 40; ++i) {
    if (before.count(i)) s += before.at(i);
    if (!edits.count(i))
      s += fmt::format("x{} = {}\n", i, i);
    else if (!edits.at(i).empty())
      s += edits.at(i) + "\n";
  }
  return s;
}

// The patch under test: hunk 1 changes lines 10 and 14, hunk 2 changes line 30.
const std::map<int, std::string> kPatchEdits = {{10, "x10 = 'ten'"}, {14, "x14 = 'fourteen'"}, {30, "x30 = 'thirty'"}};

class DriftTest : public ::testing::Test {
 protected:
  TempDir dir, patches, tools;
  Repo repo{dir.path()};
  git_oid pin = repo.commit({{"model.py", model()}}, "Base\n", {}, 1767225600);
  git_oid tip = pin;
  long long clock = 1767225600;
  std::vector<std::unique_ptr<patchmgr::Patch>> series;

  // An upstream commit on top of the last one (branch main).
  git_oid upstream(const std::map<std::string, std::string>& files, const std::string& subject,
                   const std::vector<std::string>& remove = {}) {
    repo.checkout(tip);
    tip = repo.commit(files, subject + "\n", remove, clock += 86400);
    repo.branch("main", tip);
    return tip;
  }
  // A patch file made from a commit on top of `base` (the pin, or the previous patch).
  const patchmgr::Patch* patch(const std::string& id, const std::map<std::string, std::string>& files,
                               std::optional<git_oid> base = std::nullopt,
                               const std::vector<std::string>& remove = {}) {
    git_oid on = base ? *base : series.empty() ? pin : series_tip;
    repo.checkout(on);
    series_tip =
        repo.commit(files, "Add " + id + "\n\nThe patch under test.\n", remove, 1769000000 + series.size() * 3600);
    repo.branch("series-" + id, series_tip);
    patchmgr::git::Commit c = patchmgr::git::lookup_commit(repo.get(), series_tip);
    auto p = std::make_unique<patchmgr::Patch>();
    p->id = id;
    p->file_field = fmt::format("{:04d}-{}.patch", series.size() + 1, id);
    p->file = patches.path() / p->file_field;
    std::string text = patchmgr::git::format_patch(c.get());
    write(p->file, text);
    p->parsed = patchmgr::git::parse_patch_file(text);
    EXPECT_TRUE(p->parsed.ok());
    series.push_back(std::move(p));
    return series.back().get();
  }
  std::vector<const patchmgr::Patch*> all() const {
    std::vector<const patchmgr::Patch*> v;
    for (const auto& p : series) v.push_back(p.get());
    return v;
  }
  std::vector<patchmgr::PatchDrift> classify(const git_oid& target) {
    return patchmgr::classify_series(repo.get(), pin, target, all());
  }
  // patchmgr next to the tools, in a clone (the tools write into their working tree).
  std::vector<Agreement> agree(const git_oid& target) {
    if (!fs::exists(tools.path() / "repo"))
      EXPECT_EQ(sh(fmt::format("git clone -q --no-checkout {} {}", shell_quote(dir.path().string()),
                               shell_quote((tools.path() / "repo").string())))
                    .code,
                0);
    else
      sh(fmt::format("git -C {} fetch -q origin '+refs/heads/*:refs/remotes/origin/*'",
                     shell_quote((tools.path() / "repo").string())));
    auto rows = compare_with_tools(repo.get(), tools.path() / "repo", pin, target, all());
    for (const auto& r : rows) EXPECT_EQ(r.mismatch, "") << r.id;
    return rows;
  }

  git_oid series_tip{};
};

TEST_F(DriftTest, OnThePinEveryPatchApplies) {
  patch("values", {{"model.py", model(kPatchEdits)}});
  auto d = classify(pin);
  EXPECT_EQ(d[0].drift, Drift::applies);
  ASSERT_EQ(d[0].hunks.size(), 2u);
  EXPECT_EQ(d[0].hunks[0].placement.how, How::exact);
  EXPECT_EQ(agree(pin)[0].tools, "applies");
}

TEST_F(DriftTest, LinesAddedAboveAHunkAreAnOffsetAsGitApplyFindsIt) {
  patch("values", {{"model.py", model(kPatchEdits)}});
  git_oid target = upstream({{"model.py", model({}, {{1, "import os\nimport sys\n"}})}}, "Add imports");
  auto d = classify(target);
  EXPECT_EQ(d[0].drift, Drift::offset);
  EXPECT_EQ(d[0].hunks[0].placement.offset, 2);
  EXPECT_EQ(d[0].hunks[1].placement.offset, 2);
  EXPECT_EQ(d[0].summary(), "model.py hunk 1 +2, hunk 2 +2");
  auto rows = agree(target);
  EXPECT_EQ(rows[0].tools, "offset");
  EXPECT_EQ(rows[0].verdict.git_offsets.at(1), 2);
}

TEST_F(DriftTest, EarlierHunksOffsetCarriesToTheNext) {
  patch("values", {{"model.py", model(kPatchEdits)}});
  // Three lines go between the hunks: hunk 1 stays, hunk 2 moves 3 down.
  git_oid target = upstream({{"model.py", model({}, {{22, "a = 1\nb = 2\nc = 3\n"}})}}, "Add constants");
  auto d = classify(target);
  EXPECT_EQ(d[0].drift, Drift::offset);
  EXPECT_EQ(d[0].hunks[0].placement.how, How::exact);
  EXPECT_EQ(d[0].hunks[1].placement.offset, 3);
  agree(target);
}

TEST_F(DriftTest, ChangedOuterContextIsFuzzAsGnuPatchFindsIt) {
  patch("values", {{"model.py", model(kPatchEdits)}});
  // Line 8 is hunk 1's second line of leading context: patch needs fuzz 2.
  git_oid target = upstream({{"model.py", model({{8, "x8 = 'eight'"}}, {{1, "# header\n"}})}}, "Rename x8");
  auto d = classify(target);
  EXPECT_EQ(d[0].drift, Drift::fuzz);
  EXPECT_EQ(d[0].hunks[0].placement.how, How::fuzz);
  EXPECT_EQ(d[0].hunks[0].placement.fuzz, 2);
  EXPECT_EQ(d[0].hunks[0].placement.offset, 1);
  EXPECT_EQ(d[0].hunks[1].placement.how, How::offset);
  auto rows = agree(target);
  EXPECT_EQ(rows[0].tools, "fuzz");
  EXPECT_FALSE(rows[0].verdict.patch_f0);
  EXPECT_EQ(rows[0].verdict.patch_hunks.at(1), (std::pair<int, int>{2, 1}));
}

TEST_F(DriftTest, AChangeInsideAHunkThatMergesIsThreeWay) {
  patch("values", {{"model.py", model(kPatchEdits)}});
  // Line 12 sits between hunk 1's two changes: no fuzz can drop it, the merge is clean.
  git_oid target = upstream({{"model.py", model({{12, "x12 = 'twelve'"}})}}, "Rename x12");
  auto d = classify(target);
  EXPECT_EQ(d[0].drift, Drift::three_way);
  EXPECT_EQ(d[0].hunks[0].placement.how, How::missing);
  EXPECT_EQ(d[0].hunks[1].placement.how, How::exact);
  auto rows = agree(target);
  EXPECT_EQ(rows[0].tools, "3-way");
  EXPECT_FALSE(rows[0].verdict.patch_f2);
}

TEST_F(DriftTest, TheSameLineChangedIsAConflictNamingTheUpstreamLines) {
  patch("values", {{"model.py", model(kPatchEdits)}});
  git_oid target = upstream({{"model.py", model({{14, "x14 = 14.0"}}, {{1, "# header\n"}})}}, "Make x14 a float");
  auto d = classify(target);
  EXPECT_EQ(d[0].drift, Drift::conflict);
  EXPECT_FALSE(d[0].tree);
  EXPECT_NE(d[0].detail.find("model.py, hunk 1 (@@ -7,11 +7,11 @@"), std::string::npos) << d[0].detail;
  EXPECT_NE(d[0].detail.find("the three-way merge with the pin conflicts in model.py (upstream line 15): `x14 = 14.0`"),
            std::string::npos)
      << d[0].detail;
  EXPECT_EQ(agree(target)[0].tools, "conflict");
}

TEST_F(DriftTest, AChangeUpstreamAlreadyHasIsAlreadyUpstream) {
  patch("values", {{"model.py", model(kPatchEdits)}});
  git_oid target = upstream({{"model.py", model(kPatchEdits, {{1, "# merged upstream\n"}})}}, "Take the values patch");
  auto d = classify(target);
  EXPECT_EQ(d[0].drift, Drift::upstream);
  EXPECT_EQ(d[0].hunks[0].placement.how, How::upstream);
  EXPECT_EQ(d[0].hunks[1].placement.how, How::upstream);
  auto rows = agree(target);
  EXPECT_TRUE(rows[0].verdict.reverse);
}

TEST_F(DriftTest, SomeHunksUpstreamIsPartlyUpstream) {
  patch("values", {{"model.py", model(kPatchEdits)}});
  git_oid target = upstream({{"model.py", model({{30, "x30 = 'thirty'"}})}}, "Take hunk 2 only");
  auto d = classify(target);
  EXPECT_EQ(d[0].drift, Drift::partly_upstream);
  EXPECT_EQ(d[0].hunks[0].placement.how, How::exact);
  EXPECT_EQ(d[0].hunks[1].placement.how, How::upstream);
  EXPECT_EQ(patchmgr::severity(Drift::partly_upstream), patchmgr::severity(Drift::conflict));
  auto rows = agree(target);
  EXPECT_FALSE(rows[0].verdict.git_apply);
  EXPECT_FALSE(rows[0].verdict.reverse);
}

// git apply holds a hunk recorded at line 1 to the top of the file; GNU patch
// lets it move (with full leading context) or fuzzes it (with less).
TEST_F(DriftTest, AHunkAtTheTopOfTheFileMovesOnlyAsFuzz) {
  patch("top", {{"model.py", model({{4, "x4 = 'four'"}, {2, "x2 = 'two'"}})}});
  // Hunk 1 (@@ -1,7 +1,7 @@) changes lines 2 and 4: one line of leading context, three trailing.
  git_oid target = upstream({{"model.py", model({}, {{1, "#!/usr/bin/env python3\n"}})}}, "Shebang");
  auto d = classify(target);
  EXPECT_EQ(d[0].drift, Drift::fuzz);
  EXPECT_EQ(d[0].hunks[0].placement.fuzz, 2);
  EXPECT_EQ(d[0].hunks[0].placement.offset, 1);
  auto rows = agree(target);
  EXPECT_FALSE(rows[0].verdict.git_apply);
  EXPECT_FALSE(rows[0].verdict.patch_f0);
}

TEST_F(DriftTest, FullLeadingContextAtTheTopIsFuzzZeroForPatchButNotAnOffsetForGit) {
  patch("top", {{"model.py", model({{4, "x4 = 'four'"}})}});  // @@ -1,7 +1,7 @@, three lines of context each side
  git_oid target = upstream({{"model.py", model({}, {{1, "#!/usr/bin/env python3\n"}})}}, "Shebang");
  auto d = classify(target);
  EXPECT_EQ(d[0].drift, Drift::fuzz);
  EXPECT_EQ(d[0].hunks[0].placement.fuzz, 0);
  EXPECT_EQ(d[0].hunks[0].placement.offset, 1);
  auto rows = agree(target);
  EXPECT_FALSE(rows[0].verdict.git_apply);
  EXPECT_TRUE(rows[0].verdict.patch_f0);
}

TEST_F(DriftTest, ALastLineWithoutNewlineIsFoundAtAnOffset) {
  std::string base = model();
  base.pop_back();  // "x40 = 40" without a newline
  pin = tip = upstream({{"model.py", base}}, "No newline at the end");
  std::string patched = base;
  patched.replace(patched.rfind("x40 = 40"), 8, "x40 = 'forty'");
  patch("last", {{"model.py", patched}}, pin);
  git_oid target = upstream({{"model.py", "import os\n" + base}}, "Import os");
  auto d = classify(target);
  EXPECT_EQ(d[0].drift, Drift::offset);
  EXPECT_EQ(d[0].hunks[0].placement.offset, 1);
  agree(target);
}

TEST_F(DriftTest, NewFilesAndDeletions) {
  patch("files", {{"extra.py", "print('extra')\n"}}, std::nullopt, {"model.py"});
  EXPECT_EQ(classify(pin)[0].drift, Drift::applies);
  // Upstream adds the same file: the deletion still applies, the new file is already there.
  git_oid same = upstream({{"extra.py", "print('extra')\n"}}, "Add extra");
  EXPECT_EQ(classify(same)[0].drift, Drift::partly_upstream);
  git_oid both = upstream({}, "Remove model", {"model.py"});
  EXPECT_EQ(classify(both)[0].drift, Drift::upstream);
  agree(both);
  // The file exists with other content: that is a conflict that names it.
  git_oid other = upstream({{"extra.py", "print('other')\n"}, {"model.py", model()}}, "Other extra");
  auto d = classify(other);
  EXPECT_EQ(d[0].drift, Drift::conflict);
  EXPECT_NE(d[0].detail.find("extra.py"), std::string::npos) << d[0].detail;
  agree(other);
}

TEST_F(DriftTest, ARenameWithChangesIsLocatedInTheOldFile) {
  patch("move", {{"layers.py", model(kPatchEdits)}}, std::nullopt, {"model.py"});
  ASSERT_NE(series[0]->parsed.diff_text.find("rename from model.py"), std::string::npos) << series[0]->parsed.diff_text;
  git_oid target = upstream({{"model.py", model({}, {{1, "import os\n"}})}}, "Import os");
  auto d = classify(target);
  EXPECT_EQ(d[0].drift, Drift::offset);
  EXPECT_EQ(d[0].summary(), "layers.py hunk 1 +1, hunk 2 +1");
  agree(target);
  // Upstream made the same move: the changes are found in the new file, as GNU
  // patch finds them ("already renamed"); git apply gives up, so it is fuzz.
  git_oid moved = upstream({{"layers.py", model({}, {{1, "import os\n"}})}}, "Move to layers.py", {"model.py"});
  d = classify(moved);
  EXPECT_EQ(d[0].drift, Drift::fuzz);
  EXPECT_EQ(d[0].detail, "layers.py hunk 1 +1, hunk 2 +1; upstream already renamed model.py to layers.py");
  agree(moved);
}

TEST_F(DriftTest, TheSecondPatchIsCheckedOnTopOfTheFirstWhereItDrifted) {
  patch("values", {{"model.py", model(kPatchEdits)}});
  // Patch 2 edits line 31, right after patch 1's line 30: its context holds patch 1's line.
  auto e = kPatchEdits;
  e[31] = "x31 = 'thirty-one'";
  patch("more", {{"model.py", model(e)}});
  git_oid target = upstream({{"model.py", model({}, {{1, "import os\n"}, {20, "y = 0\n"}})}}, "Two more lines");
  auto d = classify(target);
  EXPECT_EQ(d[0].drift, Drift::offset);
  EXPECT_EQ(d[1].drift, Drift::offset);
  EXPECT_EQ(d[1].hunks[0].placement.offset, 2);
  EXPECT_TRUE(d[1].checked_without.empty());
  auto rows = agree(target);
  EXPECT_EQ(rows[1].tools, "offset");

  // When patch 1 conflicts, patch 2 is checked without it, and says so.
  git_oid broken = upstream({{"model.py", model({{10, "x10 = 10.0"}})}}, "Float x10");
  d = classify(broken);
  EXPECT_EQ(d[0].drift, Drift::conflict);
  EXPECT_EQ(d[1].checked_without, std::vector<std::string>{"values"});
  agree(broken);
}

TEST_F(DriftTest, BisectNamesTheCommitThatBrokeThePatch) {
  patch("values", {{"model.py", model(kPatchEdits)}});
  std::vector<git_oid> history;
  history.push_back(upstream({{"README.md", "readme\n"}}, "Add a readme"));
  history.push_back(upstream({{"model.py", model({}, {{1, "import os\n"}})}}, "Import os"));  // offset from here
  history.push_back(upstream({{"LICENSE", "MIT\n"}}, "Add a license"));
  history.push_back(upstream({{"docs.md", "docs\n"}}, "Add docs"));
  history.push_back(upstream({{"model.py", model({{12, "x12 = 12.0"}}, {{1, "import os\n"}})}}, "Float x12"));  // 3-way
  history.push_back(upstream({{"docs.md", "more docs\n"}}, "More docs"));
  history.push_back(upstream({{"model.py", model({{10, "x10 = 10.0"}, {12, "x12 = 12.0"}}, {{1, "import os\n"}})}},
                             "Float x10"));  // conflict
  history.push_back(upstream({{"CHANGELOG.md", "1.0\n"}}, "Changelog"));
  history.push_back(upstream({{"setup.py", "setup()\n"}}, "Packaging"));
  history.push_back(upstream({{"CHANGELOG.md", "1.1\n"}}, "Changelog 1.1"));
  auto d = classify(tip);
  ASSERT_EQ(d[0].drift, Drift::conflict);
  patchmgr::DriftChange b = patchmgr::bisect_drift(repo.get(), pin, tip, all(), 0, d[0].drift);
  EXPECT_EQ(b.error, "");
  EXPECT_EQ(b.commit, patchmgr::git::to_hex(history[6]));
  EXPECT_EQ(b.subject, "Float x10");
  EXPECT_EQ(b.before, Drift::three_way);
  EXPECT_EQ(b.after, Drift::conflict);
  EXPECT_EQ(b.commits, 10);
  EXPECT_LE(b.classifications, 5);  // log2(10) rounded up, plus the pin
  // Where the class is only 3-way, the commit is the one that made it 3-way.
  b = patchmgr::bisect_drift(repo.get(), pin, history[5], all(), 0, Drift::three_way);
  EXPECT_EQ(b.commit, patchmgr::git::to_hex(history[4]));
  EXPECT_EQ(b.before, Drift::offset);
}

TEST_F(DriftTest, BisectWalksBackFromThePinToAnOlderTarget) {
  // The pin is the third commit; the patch's context holds a line commit 2 added.
  git_oid c1 = upstream({{"model.py", model({{11, "x11 = 'eleven'"}})}}, "Name x11");
  git_oid c2 = upstream({{"README.md", "readme\n"}}, "Readme");
  pin = upstream({{"LICENSE", "MIT\n"}}, "License");
  auto edits = kPatchEdits;
  edits[11] = "x11 = 'eleven'";
  patch("values", {{"model.py", model(edits)}}, pin);
  git_oid root = *git_commit_parent_id(patchmgr::git::lookup_commit(repo.get(), c1).get(), 0);
  auto d = classify(root);
  ASSERT_EQ(d[0].drift, Drift::conflict);
  patchmgr::DriftChange b = patchmgr::bisect_drift(repo.get(), pin, root, all(), 0, d[0].drift);
  EXPECT_TRUE(b.backwards);
  EXPECT_EQ(b.commit, patchmgr::git::to_hex(c1));
  EXPECT_EQ(b.after, Drift::applies);
  EXPECT_EQ(b.before, Drift::conflict);
  (void)c2;
  // A commit off the pin's line is an error, not a guess.
  repo.checkout(root);
  git_oid side = repo.commit({{"side.txt", "x\n"}}, "Side\n", {}, clock += 86400);
  b = patchmgr::bisect_drift(repo.get(), pin, side, all(), 0, Drift::conflict);
  EXPECT_NE(b.error.find("neither descends from the pin"), std::string::npos) << b.error;
}

}  // namespace
