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
    add.files[fmt::format("pkg/group{}/deep{}/mod{}.py", i % 3, i % 2, i)] =
        fmt::format("# module {}\nvalue = {}\n", i, i * i);
  Project::PatchSpec rework{.id = "rework"};
  rework.files["model/attend.py"] = kBaseFiles.at("model/attend.py") + "\n\ndef fast():\n    return True\n";
  rework.files["model/layers/transformer.py"] = kBaseFiles.at("model/transformer.py");
  rework.remove.push_back("model/transformer.py");
  for (int i = 0; i < n; i += 3)
    rework.files[fmt::format("pkg/group{}/deep{}/mod{}.py", i % 3, i % 2, i)] =
        fmt::format("# module {}, reworked\nvalue = -{}\n", i, i);
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
    ASSERT_EQ(git(co(), "diff --no-renames --name-only " + pristine_tree + " " + patched_tree + " | wc -l").out,
              std::to_string(files + 1));
    ASSERT_EQ(project.run({"revert"}).code, 0);
  }

  fs::path co() const { return project.checkout(); }

  CliRun run_killed_at(const std::string& command, long k) const { return run_args_killed_at({command}, k); }
  CliRun run_args_killed_at(const std::vector<std::string>& args, long k) const {
    return project.run(args, {{"LD_PRELOAD", PATCHMGR_KILL_SHIM}, {"PATCHMGR_KILL_AT_OP", std::to_string(k)}});
  }

  // How many file-system changes `command` makes from the current state (it runs to the end).
  long ops_of(const std::string& command) { return ops_of_args({command}); }
  long ops_of_args(const std::vector<std::string>& args) {
    TempDir tmp;
    auto file = tmp.path() / "count";
    CliRun r = project.run(args, {{"LD_PRELOAD", PATCHMGR_KILL_SHIM}, {"PATCHMGR_OP_COUNT_FILE", file.string()}});
    EXPECT_EQ(r.code, 0) << r.all();
    return std::stol(read(file));
  }

  // The checkout is exactly `tree` with nothing else: no edits, no stray or
  // temporary files, no journal, no lock files, a sound repository.
  // `sound`: git fsck too (the slowest check).
  void expect_exactly(const std::string& tree, const std::string& where, bool sound = true) {
    SCOPED_TRACE(where);
    EXPECT_EQ(git(co(), "rev-parse HEAD^{tree}").out, tree)
        << (tree == patched_tree ? "expected patched" : "expected pristine");
    // Before `git status`, which would refresh the index.
    EXPECT_EQ(git(co(), "ls-files --stage --debug | grep -c 'ctime: 0:0' || true").out, "0")
        << "index entries without stat data";
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
      if (r.code == 128 + SIGKILL)
        ++killed;
      else
        EXPECT_EQ(r.code, 0) << r.all();  // k past the end (objects written by an earlier run are not written again)
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
  if (!std::getenv("PATCHMGR_RECOVERY_FULL"))
    GTEST_SKIP() << "set PATCHMGR_RECOVERY_FULL=1 to run it (PATCHMGR_RECOVERY_FULL=1 ctest -L recovery-full)";
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
  EXPECT_EQ(edits,
            nlohmann::json::parse(
                R"([{"path": "model/attend.py", "code": "M"}, {"path": "pkg/group0/deep0/mod0.py", "code": "?"}])"));
  CliRun a = project.run({"apply"});
  EXPECT_EQ(a.code, 3) << a.all();
  EXPECT_NE(a.err.find("these files were edited since: model/attend.py, pkg/group0/deep0/mod0.py; "), std::string::npos)
      << a.err;
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
  fs::remove_all(
      dir);  // inside .git, where `git status` does not look; removed so expect_exactly's walk is only about the move
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

// The local edits that revert --discard sets aside, on the patched checkout:
// a tracked file the series leaves alone, one it changes, one it adds
// (deleted here), a new file staged with git add, and an untracked file,
// which git stash leaves where it is.
void make_local_edits(const fs::path& co) {
  write(co / "README.md", "my notes\n");
  write(co / "model/attend.py", "the user's own attend\n");
  fs::remove(co / "pkg/group0/deep0/mod0.py");
  write(co / "staged.txt", "staged by the user\n");
  ASSERT_EQ(git(co, "add staged.txt").code, 0);
  write(co / "notes/untracked.txt", "untracked notes\n");
}

// The edits of make_local_edits are in the newest stash, exactly, and in no other.
void expect_edits_stashed(const fs::path& co) {
  EXPECT_EQ(git(co, "stash list | wc -l").out, "1") << git(co, "stash list").out;
  EXPECT_EQ(git(co, "show stash@{0}:README.md").out, "my notes");
  EXPECT_EQ(git(co, "show stash@{0}:model/attend.py").out, "the user's own attend");
  EXPECT_NE(git(co, "cat-file -e stash@{0}:pkg/group0/deep0/mod0.py").code, 0) << "the deletion is not in the stash";
  EXPECT_EQ(git(co, "show stash@{0}^2:staged.txt").out, "staged by the user") << "the stash's index";
  EXPECT_EQ(git(co, "show stash@{0}:staged.txt").out, "staged by the user");
}

// revert --discard with local edits on the patched checkout, killed before
// each of its file-system calls (the stash, libgit2's reset of the files
// and the index included, then the move): the next revert --discard ends
// pristine at the pin with the edits in the stash (once), whether the
// killed one had saved them or not; the untracked file stays where it was.
TEST_F(RecoveryTest, EveryKillPointOfRevertDiscardWithLocalEdits) {
  make_series(3);
  ASSERT_EQ(project.run({"apply"}).code, 0);
  make_local_edits(co());
  long n = ops_of_args({"revert", "--discard"});
  expect_edits_stashed(co());
  long step = std::getenv("PATCHMGR_RECOVERY_FULL") ? 1 : 2;
  long killed = 0, saved_by_the_killed_run = 0;
  for (long k = 1; k <= n + 1 && !HasFailure(); k += step) {
    SCOPED_TRACE(fmt::format("revert --discard killed before its file-system change {} of {}", k, n));
    ASSERT_EQ(git(co(), "stash clear").code, 0);
    fs::remove_all(co() / ".git/patchmgr/rescued");
    fs::remove_all(co() / "notes");
    CliRun a = project.run({"apply"});
    ASSERT_EQ(a.code, 0) << a.all();
    ASSERT_EQ(git(co(), "rev-parse HEAD^{tree}").out, patched_tree);
    make_local_edits(co());
    CliRun r = run_args_killed_at({"revert", "--discard"}, k);
    if (r.code == 128 + SIGKILL) {
      ++killed;
      if (git(co(), "rev-parse -q --verify refs/stash").code == 0) ++saved_by_the_killed_run;
    } else {
      EXPECT_EQ(r.code, 0) << r.all();  // k past the end (objects written by an earlier run are not written again)
    }
    CliRun st = project.run({"status", "--json"});
    EXPECT_EQ(st.code, 0) << st.all();
    CliRun again = project.run({"revert", "--discard"});
    EXPECT_EQ(again.code, 0) << again.all();
    expect_edits_stashed(co());
    EXPECT_EQ(read(co() / "notes/untracked.txt"), "untracked notes\n");
    EXPECT_FALSE(fs::exists(co() / ".git/patchmgr/stash.json"));
    fs::remove_all(co() / "notes");
    fs::remove_all(co() / ".git/patchmgr/rescued");
    expect_exactly(pristine_tree, "after revert --discard", k % 5 == 1);
  }
  EXPECT_GT(killed, 20);
  EXPECT_GT(saved_by_the_killed_run, 3) << "no kill landed after the stash was saved";
  EXPECT_GT(killed - saved_by_the_killed_run, 3) << "no kill landed before the stash was saved";
  std::cerr << fmt::format(
      "[ recovery ] revert --discard killed at {} of its {} points, {} after the stash was saved\n", killed, n,
      saved_by_the_killed_run);
}

// A stash that landed before the kill, then the user moved HEAD with git
// itself: the recovery must not reset the user's files to the old HEAD.
TEST_F(RecoveryTest, AnInterruptedStashLeavesFilesAloneWhenHeadMovedSince) {
  make_series(3);
  ASSERT_EQ(project.run({"apply"}).code, 0);
  make_local_edits(co());
  long n = ops_of_args({"revert", "--discard"});
  long landed = 0;
  for (long k = 1; k <= n && !landed; ++k) {
    ASSERT_EQ(git(co(), "stash clear").code, 0);
    fs::remove_all(co() / "notes");
    ASSERT_EQ(project.run({"apply"}).code, 0);
    make_local_edits(co());
    ASSERT_EQ(run_args_killed_at({"revert", "--discard"}, k).code, 128 + SIGKILL);
    if (fs::exists(co() / ".git/patchmgr/stash.json") && git(co(), "rev-parse -q --verify refs/stash").code == 0)
      landed = k;
    else
      ASSERT_EQ(project.run({"revert", "--discard"}).code, 0);
  }
  ASSERT_GT(landed, 0) << "no kill left a stash saved and its record";
  fs::remove(co() / ".git/index.lock");
  ASSERT_EQ(git(co(), "checkout -q -f --detach " + to_hex(project.pin())).code, 0);
  write(co() / "README.md", "edited after the kill\n");
  CliRun s = project.run({"sync"});
  EXPECT_EQ(s.code, 0) << s.all();
  EXPECT_NE(s.err.find("was left as it is: HEAD or refs/stash changed since"), std::string::npos) << s.err;
  EXPECT_EQ(read(co() / "README.md"), "edited after the kill\n");
  EXPECT_FALSE(fs::exists(co() / ".git/patchmgr/stash.json"));
  EXPECT_EQ(git(co(), "show stash@{0}:README.md").out, "my notes");
}

// sync --fetch killed before each of its file-system calls (libgit2 writing
// the pack, the refs, FETCH_HEAD): the next sync and sync --fetch succeed,
// the new upstream branch arrives, and no lock or temporary file is left.
TEST_F(RecoveryTest, EveryKillPointOfSyncFetch) {
  make_series(3);
  auto new_upstream_work = [&](long i) {
    git_oid oid =
        project.upstream().commit({{fmt::format("upstream/file{}.txt", i), fmt::format("upstream work {}\n", i)}},
                                  fmt::format("upstream work {}", i), {}, 1767225600 + i);
    project.upstream().branch(fmt::format("work{}", i), oid);
    return to_hex(oid);
  };
  new_upstream_work(0);
  long n = ops_of_args({"sync", "--fetch"});
  long step = std::getenv("PATCHMGR_RECOVERY_FULL") ? 1 : 2;
  long killed = 0;
  for (long k = 1; k <= n + 1 && !HasFailure(); k += step) {
    SCOPED_TRACE(fmt::format("sync --fetch killed before its file-system change {} of {}", k, n));
    std::string tip = new_upstream_work(k);
    CliRun r = run_args_killed_at({"sync", "--fetch"}, k);
    if (r.code == 128 + SIGKILL)
      ++killed;
    else
      EXPECT_EQ(r.code, 0) << r.all();
    // Odd k: a plain sync first (it recovers, fetches nothing); then a fetch, which a stale lock would fail.
    if (k % 2) {
      CliRun s = project.run({"sync"});
      EXPECT_EQ(s.code, 0) << s.all();
    }
    CliRun again = project.run({"sync", "--fetch"});
    EXPECT_EQ(again.code, 0) << again.all();
    EXPECT_EQ(git(co(), fmt::format("rev-parse refs/remotes/origin/work{}", k)).out, tip);
    EXPECT_FALSE(fs::exists(co() / ".git/patchmgr/fetch.json"));
    for (const auto& e : fs::directory_iterator(co() / ".git/objects/pack"))
      EXPECT_FALSE(e.path().filename().string().starts_with("pack_git2_")) << e.path();
    expect_exactly(pristine_tree, "after sync --fetch", k % 5 == 1);
  }
  EXPECT_GT(killed, 10);
  std::cerr << fmt::format("[ recovery ] sync --fetch killed at {} of its {} points\n", killed, n);
}

}  // namespace
