// Killing apply and revert between any two of their file-system calls, and
// checking that the next command leaves the checkout exactly pristine or
// exactly patched: the tree of HEAD, `git status` empty (index clean, no
// untracked files), `git fsck` clean, no journal or lock left, and that
// apply and revert work afterwards. The kills come from kill_shim.c
// (LD_PRELOAD), so they land inside libgit2's writes of the index and the
// refs as well as inside patchmgr's own writes of the working tree.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <csignal>
#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "fixture.h"

using namespace testutil;
using patchmgr::git::to_hex;

namespace {

// Runs git (the real one) in `dir`; stdout and stderr together.
CliRun git(const fs::path& dir, const std::string& args) {
  CliRun r;
  FILE* p = ::popen(fmt::format("git -C '{}' {} 2>&1", dir.string(), args).c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r;
}

// A series that touches `n` + 4 files: patch 1 adds `n` files spread over
// nested directories; patch 2 changes model/attend.py, moves
// model/transformer.py into a new directory, rewrites every third added file
// and deletes two of them. README.md stays untouched.
std::vector<Project::PatchSpec> series_touching(int n) {
  Project::PatchSpec add{.id = "add-modules"};
  for (int i = 0; i < n; ++i)
    add.files[fmt::format("pkg/group{}/deep{}/mod{}.py", i % 3, i % 2, i)] = fmt::format("# module {}\nvalue = {}\n", i, i * i);
  Project::PatchSpec rework{.id = "rework"};
  rework.files["model/attend.py"] = kBaseFiles.at("model/attend.py") + "\n\ndef fast():\n    return True\n";
  rework.files["model/layers/transformer.py"] = kBaseFiles.at("model/transformer.py");
  rework.remove.push_back("model/transformer.py");
  for (int i = 0; i < n; i += 3)
    rework.files[fmt::format("pkg/group{}/deep{}/mod{}.py", i % 3, i % 2, i)] = fmt::format("# module {}, reworked\nvalue = -{}\n", i, i);
  rework.remove.push_back(fmt::format("pkg/group{}/deep{}/mod{}.py", 1, 1, 1));
  rework.remove.push_back(fmt::format("pkg/group{}/deep{}/mod{}.py", (n - 1) % 3, (n - 1) % 2, n - 1));
  return {add, rework};
}

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!git(fs::temp_directory_path(), "--version").out.starts_with("git version")) GTEST_SKIP() << "needs git";
  }

  // Syncs, applies once to learn the patched tree, reverts.
  void make_series(int files) {
    project.set_series(series_touching(files));
    ASSERT_EQ(project.run({"sync"}).code, 0);
    pristine_tree = git(co(), fmt::format("rev-parse {}^{{tree}}", to_hex(project.pin()))).out;
    CliRun a = project.run({"apply"});
    ASSERT_EQ(a.code, 0) << a.all();
    patched_tree = git(co(), "rev-parse HEAD^{tree}").out;
    ASSERT_EQ(git(co(), "diff --no-renames --name-only " + pristine_tree + " " + patched_tree + " | wc -l").out, std::to_string(files + 1));
    ASSERT_EQ(project.run({"revert"}).code, 0);
  }

  fs::path co() const { return project.checkout(); }

  CliRun run_killed_at(const std::string& command, long k) const {
    return project.run({command}, {{"LD_PRELOAD", PATCHMGR_KILL_SHIM}, {"PATCHMGR_KILL_AT_OP", std::to_string(k)}});
  }

  // How many file-system changes `command` makes from the current state (it runs to the end).
  long ops_of(const std::string& command) {
    TempDir tmp;
    auto file = tmp.path() / "count";
    CliRun r = project.run({command}, {{"LD_PRELOAD", PATCHMGR_KILL_SHIM}, {"PATCHMGR_OP_COUNT_FILE", file.string()}});
    EXPECT_EQ(r.code, 0) << r.all();
    return std::stol(read(file));
  }

  // The checkout is exactly `tree` with nothing else: no edits, no stray or
  // temporary files, no journal, no lock files, a sound repository.
  // `sound`: git fsck too (the slowest check).
  void expect_exactly(const std::string& tree, const std::string& where, bool sound = true) {
    SCOPED_TRACE(where);
    EXPECT_EQ(git(co(), "rev-parse HEAD^{tree}").out, tree) << (tree == patched_tree ? "expected patched" : "expected pristine");
    // Before `git status`, which would refresh the index.
    EXPECT_EQ(git(co(), "ls-files --stage --debug | grep -c 'ctime: 0:0' || true").out, "0") << "index entries without stat data";
    EXPECT_EQ(git(co(), "status --porcelain --untracked-files=all --ignored").out, "");
    if (sound) {
      CliRun fsck = git(co(), "fsck --no-dangling --no-progress");
      EXPECT_EQ(fsck.code, 0) << fsck.out;
    }
    auto gitdir = co() / ".git";
    EXPECT_FALSE(fs::exists(gitdir / "patchmgr" / "journal.json"));
    for (const auto& e : fs::recursive_directory_iterator(gitdir)) {
      std::string name = e.path().filename().string();
      EXPECT_FALSE(name.ends_with(".lock") || name.starts_with("journal.json.tmp")) << e.path();
    }
    for (const auto& e : fs::recursive_directory_iterator(co()))
      EXPECT_FALSE(e.path().filename().string().ends_with(".patchmgr-tmp")) << e.path();
  }

  // Kills `command` (apply from pristine, or revert from patched) at every k,
  // checks that the next command ends exactly at one end, and comes back to
  // where it started. Returns how many runs were killed.
  long kill_at_every_op(const std::string& command) {
    bool applying = command == "apply";
    const std::string& start = applying ? pristine_tree : patched_tree;
    const std::string& end = applying ? patched_tree : pristine_tree;
    const std::string undo = applying ? "revert" : "apply";
    EXPECT_EQ(project.run({undo}).code, 0);
    long n = ops_of(command);
    EXPECT_EQ(project.run({undo}).code, 0);
    long killed = 0;
    for (long k = 1; k <= n + 1 && !HasFailure(); ++k) {
      SCOPED_TRACE(fmt::format("{} killed before its file-system change {} of {}", command, k, n));
      CliRun r = run_killed_at(command, k);
      if (r.code == 128 + SIGKILL) ++killed;
      else EXPECT_EQ(r.code, 0) << r.all();  // k past the end (objects written by an earlier run are not written again)
      CliRun st = project.run({"status", "--json"});
      EXPECT_EQ(st.code, 0) << st.all();
      // Odd k: the same command again, which recovers then does its work;
      // even k: the opposite one, which recovers then finds nothing to do or undoes.
      const std::string next = k % 2 ? command : undo;
      CliRun again = project.run({next});
      EXPECT_EQ(again.code, 0) << again.all();
      expect_exactly(next == command ? end : start, "after " + next);
      if (next == undo) {
        CliRun redo = project.run({command});
        EXPECT_EQ(redo.code, 0) << redo.all();
        expect_exactly(end, "after " + command, false);
      }
      CliRun back = project.run({undo});
      EXPECT_EQ(back.code, 0) << back.all();
      expect_exactly(start, "after " + undo, false);
    }
    return killed;
  }

  // Kills apply at the first point where the journal exists and the files
  // are half-way; returns that point (the same on the next run from pristine).
  long kill_apply_halfway() {
    long n = ops_of("apply");
    EXPECT_EQ(project.run({"revert"}).code, 0);
    for (long k = n / 2; k <= n; ++k) {
      EXPECT_EQ(run_killed_at("apply", k).code, 128 + SIGKILL);
      // Paths are written in sorted order: model/... first, pkg/group2/... last.
      if (fs::exists(co() / ".git/patchmgr/journal.json") && fs::exists(co() / "model/layers/transformer.py") &&
          !fs::exists(co() / "pkg/group2/deep0/mod2.py"))
        return k;
      EXPECT_EQ(project.run({"revert"}).code, 0);
    }
    ADD_FAILURE() << "no kill point left apply half-way";
    return 0;
  }

  Project project;
  std::string pristine_tree, patched_tree;
};

TEST_F(RecoveryTest, EveryKillPointOfApplyAndRevert) {
  make_series(6);
  long applies = kill_at_every_op("apply");
  long reverts = kill_at_every_op("revert");
  EXPECT_GT(applies, 20);
  EXPECT_GT(reverts, 20);
  std::cerr << fmt::format("[ recovery ] apply killed at {} points, revert at {} points\n", applies, reverts);
}

// 37 changed paths; a few minutes: PATCHMGR_RECOVERY_FULL=1 ctest -L recovery-full.
TEST_F(RecoveryTest, EveryKillPointOfALargeSeries) {
  if (!std::getenv("PATCHMGR_RECOVERY_FULL")) GTEST_SKIP() << "set PATCHMGR_RECOVERY_FULL=1 to run it (PATCHMGR_RECOVERY_FULL=1 ctest -L recovery-full)";
  make_series(36);
  long applies = kill_at_every_op("apply");
  long reverts = kill_at_every_op("revert");
  std::cerr << fmt::format("[ recovery ] apply killed at {} points, revert at {} points\n", applies, reverts);
}

// A recovery killed itself is run again by the next command: apply killed
// half-way, then the revert that recovers it killed at each of its
// file-system changes (every `step`-th; all with the full label).
TEST_F(RecoveryTest, ARecoveryKilledItselfFinishesNextTime) {
  make_series(6);
  long halfway = kill_apply_halfway();
  ASSERT_GT(halfway, 0);
  long n = ops_of("revert");  // the recovery, then nothing to do
  expect_exactly(pristine_tree, "after the recovery");
  long step = std::getenv("PATCHMGR_RECOVERY_FULL") ? 1 : 4;
  long killed = 0;
  for (long k = 1; k <= n && !HasFailure(); k += step) {
    SCOPED_TRACE(fmt::format("the recovering revert killed before its file-system change {} of {}", k, n));
    ASSERT_EQ(run_killed_at("apply", halfway).code, 128 + SIGKILL);
    ASSERT_TRUE(fs::exists(co() / ".git/patchmgr/journal.json"));
    CliRun r = run_killed_at("revert", k);
    if (r.code == 128 + SIGKILL) ++killed;
    CliRun again = project.run({"revert"});
    EXPECT_EQ(again.code, 0) << again.all();
    expect_exactly(pristine_tree, "after revert", k % 3 == 1);
  }
  EXPECT_GT(killed, 3);
  std::cerr << fmt::format("[ recovery ] the recovering revert killed at {} of its {} points\n", killed, n);
}

TEST_F(RecoveryTest, AUserEditToAFileTheMoveDidNotTouchSurvives) {
  make_series(6);
  kill_apply_halfway();
  write(co() / "README.md", "my notes\n");
  CliRun st = project.run({"status", "--json"});
  ASSERT_EQ(st.code, 0) << st.all();
  auto component = nlohmann::json::parse(st.out)["components"][0];
  EXPECT_TRUE(component["interrupted"].is_object()) << st.out;
  // The files the killed apply was writing are not the user's edits; README.md is.
  EXPECT_EQ(component["local_edits"], nlohmann::json::parse(R"([{"path": "README.md", "code": "M"}])")) << st.out;
  // revert recovers first, then refuses to drop the edit.
  CliRun r = project.run({"revert"});
  EXPECT_EQ(r.code, 3) << r.all();
  EXPECT_NE(r.err.find("recovered from an interrupted patchmgr apply"), std::string::npos) << r.err;
  EXPECT_EQ(read(co() / "README.md"), "my notes\n");
  EXPECT_EQ(git(co(), "status --porcelain --untracked-files=all").out, " M README.md");
  EXPECT_EQ(git(co(), "rev-parse HEAD^{tree}").out, pristine_tree);
}

TEST_F(RecoveryTest, AUserEditToAFileTheMoveTouchedIsRescued) {
  make_series(6);
  kill_apply_halfway();
  write(co() / "model/attend.py", "the user's own attend\n");
  fs::remove(co() / "model/layers/transformer.py");  // written by the move, deleted by the user: nothing to rescue
  write(co() / "pkg/group0/deep0/mod0.py", "the user's own module\n");
  auto edits = nlohmann::json::parse(project.run({"status", "--json"}).out)["components"][0]["local_edits"];
  EXPECT_EQ(edits, nlohmann::json::parse(R"([{"path": "model/attend.py", "code": "M"}, {"path": "pkg/group0/deep0/mod0.py", "code": "?"}])"));
  CliRun a = project.run({"apply"});
  EXPECT_EQ(a.code, 3) << a.all();
  EXPECT_NE(a.err.find("these files were edited since: model/attend.py, pkg/group0/deep0/mod0.py; "), std::string::npos) << a.err;
  EXPECT_EQ(read(co() / "model/attend.py"), "the user's own attend\n");

  CliRun d = project.run({"revert", "--discard"});
  ASSERT_EQ(d.code, 0) << d.all();
  const std::string said = "your edits to model/attend.py, pkg/group0/deep0/mod0.py were copied to ";
  auto at = d.err.find(said);
  ASSERT_NE(at, std::string::npos) << d.err;
  std::string dir = d.err.substr(at + said.size());
  dir = dir.substr(0, dir.find_first_of(";\n"));
  EXPECT_EQ(read(fs::path(dir) / "model/attend.py"), "the user's own attend\n");
  EXPECT_EQ(read(fs::path(dir) / "pkg/group0/deep0/mod0.py"), "the user's own module\n");
  fs::remove_all(dir);  // inside .git, where `git status` does not look; removed so expect_exactly's walk is only about the move
  expect_exactly(pristine_tree, "after revert --discard");
  ASSERT_EQ(project.run({"apply"}).code, 0);
  expect_exactly(patched_tree, "after apply");
}

TEST_F(RecoveryTest, AUserDeletingATouchedFileIsNoInternalError) {
  make_series(6);
  kill_apply_halfway();
  fs::remove(co() / "model/attend.py");  // both sides have it: deleting it is an edit
  fs::remove_all(co() / "pkg");
  CliRun d = project.run({"revert", "--discard"});
  ASSERT_EQ(d.code, 0) << d.all();
  EXPECT_NE(d.err.find("model/attend.py (deleted since) restored"), std::string::npos) << d.err;
  expect_exactly(pristine_tree, "after revert --discard");
}

}  // namespace
