// sync, apply, revert, status, the lock and recovery, through the patchmgr
// binary as a user runs it, on synthetic upstreams built by the fixture.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "series_fixture.h"
#include "patchmgr/checkout/lock.h"

using namespace testutil;
using patchmgr::git::to_hex;

namespace {

TEST_F(CheckoutTest, SyncClonesAndChecksOutThePin) {
  CliRun r = project.run({"sync"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("demo: cloning "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("demo: cloned into " + co().string() + ", HEAD at the pin " +
                       to_hex(project.pin()).substr(0, 12) + " (detached)"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(head(), to_hex(project.pin()));
  EXPECT_EQ(file("model/attend.py"), kBaseFiles.at("model/attend.py"));
  EXPECT_FALSE(fs::exists(co() / "CHANGELOG.md"));  // upstream's newer commit is not checked out
  // Re-running is cheap and safe: no fetch, nothing moves.
  CliRun again = project.run({"sync"});
  ASSERT_EQ(again.code, 0) << again.all();
  EXPECT_EQ(again.out, "demo: at the pin " + to_hex(project.pin()).substr(0, 12) + ", up to date\n");
}

TEST_F(CheckoutTest, SyncFetchesANewPinAndMovesThere) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  git_oid newer = project.upstream().commit({{"NEWS.md", "news\n"}}, "Newer upstream work\n", {}, 1767400000);
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  manifest.replace(manifest.find(to_hex(project.pin())), 40, to_hex(newer));
  // The old patches may not apply there; this test is about sync only.
  manifest = manifest.substr(0, manifest.find("patches:")) + "patches: []\n";
  write(project.root() / "manifests/demo.yaml", manifest);
  CliRun r = project.run({"sync"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("demo: fetching "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("demo: HEAD moved to the pin " + to_hex(newer).substr(0, 12)), std::string::npos) << r.out;
  EXPECT_EQ(head(), to_hex(newer));
  EXPECT_EQ(file("NEWS.md"), "news\n");
}

TEST_F(CheckoutTest, SyncReportsAPinThatUpstreamDoesNotHave) {
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  manifest.replace(manifest.find(to_hex(project.pin())), 40, std::string(40, 'a'));
  manifest = manifest.substr(0, manifest.find("patches:")) + "patches: []\n";
  write(project.root() / "manifests/demo.yaml", manifest);
  CliRun r = project.run({"sync"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.err.find("the pinned commit " + std::string(40, 'a') + " is not in"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(co()));  // no half-made clone left behind
}

TEST_F(CheckoutTest, UpstreamOptionOverridesTheEnvironmentAndTheManifest) {
  CliRun r = run_patchmgr(project.root(), {"--upstream", "demo=" + project.upstream().dir().string(), "sync", "demo"},
                          {{"PATCHMGR_UPSTREAM_DEMO", "/nonexistent/mirror"}});
  ASSERT_EQ(r.code, 0) << r.all();
  CliRun bad = run_patchmgr(project.root(), {"sync"},
                            {{"PATCHMGR_UPSTREAM_DEMO", "/nonexistent/mirror"}, {"HOME", "/nonexistent"}});
  // The clone exists and has the pin: nothing to fetch, so the bad mirror does not matter.
  EXPECT_EQ(bad.code, 0) << bad.all();
  CliRun fetch = run_patchmgr(project.root(), {"sync", "--fetch"}, {{"PATCHMGR_UPSTREAM_DEMO", "/nonexistent/mirror"}});
  EXPECT_EQ(fetch.code, 1) << fetch.all();
  EXPECT_NE(fetch.err.find("cannot fetch /nonexistent/mirror"), std::string::npos) << fetch.err;
}

TEST_F(CheckoutTest, ApplyCommitsEachPatchOnTheSeriesBranch) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  CliRun r = project.run({"apply"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(
      r.out.find("demo: applied 2 patches on " + to_hex(project.pin()).substr(0, 12) + " -> branch patchmgr/demo at "),
      std::string::npos)
      << r.out;
  EXPECT_EQ(file("model/attend.py"), kAttendPatched2);
  EXPECT_EQ(file("model/static.py"), kStatic);
  EXPECT_EQ(file("model/transformer.py"), kBaseFiles.at("model/transformer.py"));  // disabled patch left out

  Repo repo(co(), Repo::Existing{});
  git_reference* h = nullptr;
  ASSERT_EQ(git_reference_lookup(&h, repo.get(), "HEAD"), 0);
  EXPECT_STREQ(git_reference_symbolic_target(h), "refs/heads/patchmgr/demo");
  git_reference_free(h);
  auto tip = patchmgr::git::lookup_commit(repo.get(), repo.head());
  EXPECT_STREQ(git_commit_summary(tip.get()), "Add sdpa");
  EXPECT_STREQ(git_commit_author(tip.get())->email, "author@example.org");
  EXPECT_EQ(git_commit_author(tip.get())->when.time, 1769000000 + 2 * 3600);
  auto first = patchmgr::git::lookup_commit(repo.get(), *git_commit_parent_id(tip.get(), 0));
  EXPECT_STREQ(git_commit_summary(first.get()), "Add flash-attention");
  EXPECT_EQ(to_hex(*git_commit_parent_id(first.get(), 0)), to_hex(project.pin()));
  EXPECT_TRUE(patchmgr::git::local_edits(repo.get()).empty());

  auto st = status();
  EXPECT_EQ(st["state"], "patched");
  EXPECT_EQ(st["patches"][0]["state"], "applied");
  EXPECT_EQ(st["patches"][1]["state"], "applied");
  EXPECT_EQ(st["patches"][2]["state"], "disabled");
}

TEST_F(CheckoutTest, ApplyIsIdempotentAndReproducible) {
  sync_and_apply();
  std::string tip = head();
  std::string before = snapshot();
  CliRun again = project.run({"apply"});
  ASSERT_EQ(again.code, 0) << again.all();
  EXPECT_EQ(again.out,
            "demo: already applied (2 patches on " + to_hex(project.pin()).substr(0, 12) + "), nothing to do\n");
  EXPECT_EQ(snapshot(), before);
  // The same pin and patch files give the same commits.
  ASSERT_EQ(project.run({"revert"}).code, 0);
  ASSERT_EQ(project.run({"apply"}).code, 0);
  EXPECT_EQ(head(), tip);
}

TEST_F(CheckoutTest, ConflictRollsBackEverythingAndNamesTheHunk) {
  // The second patch was written against the pristine pin and clashes with the first.
  std::vector<std::string> entries;
  entries.push_back(
      project.make_patch({.id = "flash-attention", .files = {{"model/attend.py", kAttendPatched1}}}, 1, project.pin()));
  std::string clashing = kBaseFiles.at("model/attend.py");
  clashing.replace(clashing.find("major == 8 and minor == 0"), 25, "major == 9");
  entries.push_back(project.make_patch({.id = "hopper", .files = {{"model/attend.py", clashing}}}, 2, project.pin()));
  project.write_manifest(entries);
  ASSERT_EQ(project.run({"sync"}).code, 0);
  std::string before = snapshot();
  CliRun r = project.run({"apply"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(
      r.err.find("demo: patch 0002-hopper.patch (hopper) does not apply: model/attend.py, hunk 1 (@@ -6,7 +6,7 @@"),
      std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("nothing was changed; the checkout is as it was before this command"), std::string::npos)
      << r.err;
  EXPECT_EQ(snapshot(), before);
  auto st = status();
  EXPECT_EQ(st["state"], "pristine");
  EXPECT_EQ(st["patches"][0]["state"], "not-applied");
  EXPECT_EQ(st["patches"][1]["state"], "would-conflict");
}

TEST_F(CheckoutTest, ApplyRefusesLocalEditsAndUntrackedCollisions) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  write(co() / "model/transformer.py", "edited by hand\n");
  std::string before = snapshot();
  CliRun r = project.run({"apply"});
  EXPECT_EQ(r.code, 3) << r.all();
  EXPECT_NE(r.err.find("refusing to apply over local edits in " + co().string() + ": M model/transformer.py"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(snapshot(), before);
  write(co() / "model/transformer.py", kBaseFiles.at("model/transformer.py"));
  write(co() / "model/static.py", "my own file\n");
  before = snapshot();
  CliRun collide = project.run({"apply"});
  EXPECT_EQ(collide.code, 3) << collide.all();
  EXPECT_NE(collide.err.find("would overwrite files that are not committed in the checkout: model/static.py"),
            std::string::npos)
      << collide.err;
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(file("model/static.py"), "my own file\n");
}

TEST_F(CheckoutTest, RevertReturnsToThePristinePin) {
  sync_and_apply();
  CliRun r = project.run({"revert"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("demo: reverted to the pristine pin " + to_hex(project.pin()).substr(0, 12)), std::string::npos)
      << r.out;
  EXPECT_EQ(head(), to_hex(project.pin()));
  EXPECT_EQ(file("model/attend.py"), kBaseFiles.at("model/attend.py"));
  EXPECT_FALSE(fs::exists(co() / "model/static.py"));
  EXPECT_EQ(status()["state"], "pristine");
  CliRun again = project.run({"revert"});
  EXPECT_EQ(again.code, 0);
  EXPECT_EQ(again.out, "demo: already pristine at " + to_hex(project.pin()).substr(0, 12) + ", nothing to do\n");
}

TEST_F(CheckoutTest, RevertRefusesToLoseEditsUnlessToldToDiscard) {
  sync_and_apply();
  write(co() / "model/static.py", "class StaticSegmentModel:\n    segment = 7\n");
  std::string before = snapshot();
  CliRun r = project.run({"revert"});
  EXPECT_EQ(r.code, 3) << r.all();
  EXPECT_NE(r.err.find("uncommitted edits: M model/static.py"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("patchmgr revert --discard demo"), std::string::npos) << r.err;
  EXPECT_EQ(snapshot(), before);

  CliRun d = project.run({"revert", "--discard"});
  ASSERT_EQ(d.code, 0) << d.all();
  EXPECT_NE(d.err.find("local edits saved as stash"), std::string::npos) << d.err;
  EXPECT_EQ(head(), to_hex(project.pin()));
  EXPECT_FALSE(fs::exists(co() / "model/static.py"));
  // The edit is in the stash, not lost.
  Repo repo(co(), Repo::Existing{});
  auto stash = patchmgr::git::resolve_ref(repo.get(), "refs/stash");
  ASSERT_TRUE(stash.has_value());
  auto c = patchmgr::git::lookup_commit(repo.get(), *stash);
  auto tree = patchmgr::git::commit_tree(c.get());
  git_tree_entry* e = nullptr;
  ASSERT_EQ(git_tree_entry_bypath(&e, tree.get(), "model/static.py"), 0);
  git_blob* blob = nullptr;
  ASSERT_EQ(git_blob_lookup(&blob, repo.get(), git_tree_entry_id(e)), 0);
  EXPECT_EQ(std::string(static_cast<const char*>(git_blob_rawcontent(blob)), git_blob_rawsize(blob)),
            "class StaticSegmentModel:\n    segment = 7\n");
  git_blob_free(blob);
  git_tree_entry_free(e);
}

TEST_F(CheckoutTest, RevertRefusesCommitsThatAreNotPatches) {
  sync_and_apply();
  Repo repo(co(), Repo::Existing{});
  git_oid mine = repo.commit({{"notes.txt", "mine\n"}}, "My experiment\n");
  auto st = status();
  EXPECT_EQ(st["state"], "diverged");
  EXPECT_EQ(st["unrecorded_commits"][0]["subject"], "My experiment");
  CliRun r = project.run({"revert"});
  EXPECT_EQ(r.code, 3) << r.all();
  EXPECT_NE(r.err.find("commits that are not recorded patches: " + to_hex(mine).substr(0, 12) + " My experiment"),
            std::string::npos)
      << r.err;
  CliRun a = project.run({"apply"});
  EXPECT_EQ(a.code, 3) << a.all();
  CliRun d = project.run({"revert", "--discard"});
  ASSERT_EQ(d.code, 0) << d.all();
  EXPECT_NE(d.err.find("commits saved under refs/patchmgr/discarded/demo/"), std::string::npos) << d.err;
  EXPECT_EQ(head(), to_hex(project.pin()));
}

TEST_F(CheckoutTest, DetectsAPatchCommitChangedInTheCheckout) {
  sync_and_apply();
  // Amend the first patch's commit by hand and rebuild the second on top, as a user would.
  Repo repo(co(), Repo::Existing{});
  repo.checkout(project.pin());
  std::string changed = kAttendPatched1;
  changed.replace(changed.find("major >= 8"), 10, "major >= 7");
  auto msg = std::string(
      "Add flash-attention\n\nThis patch adds flash-attention so the tests can check the series.\n"
      "\nPatchmgr-Patch: flash-attention\nPatchmgr-Patch-Id: 0000000000000000000000000000000000000000\n");
  repo.commit({{"model/attend.py", changed}}, msg);
  auto st = status();
  EXPECT_EQ(st["state"], "diverged");
  EXPECT_EQ(st["patches"][0]["state"], "applied-but-modified");
  EXPECT_NE(st["patches"][0]["detail"].get<std::string>().find("was changed in the checkout"), std::string::npos);
  CliRun text = project.run({"status"});
  EXPECT_NE(text.out.find("0001 flash-attention              applied-but-modified: commit"), std::string::npos)
      << text.out;
  // It is user work: apply and revert protect it.
  EXPECT_EQ(project.run({"apply"}).code, 3);
  EXPECT_EQ(project.run({"revert"}).code, 3);
}

TEST_F(CheckoutTest, DetectsAnOlderPatchVersionAndApplyUpdatesIt) {
  sync_and_apply();
  // The maintainer revises patch 1; the checkout still holds the old version.
  std::string revised = kAttendPatched1;
  revised.replace(revised.find("return 'math'"), 13, "return 'mem_efficient'");
  std::vector<std::string> entries;
  entries.push_back(
      project.make_patch({.id = "flash-attention", .files = {{"model/attend.py", revised}}}, 1, project.pin()));
  project.write_manifest(entries);
  auto st = status();
  EXPECT_EQ(st["patches"][0]["state"], "applied-but-modified");
  EXPECT_NE(st["patches"][0]["detail"].get<std::string>().find("older version of 0001-flash-attention.patch"),
            std::string::npos);
  // Made by patchmgr and untouched: apply may replace it.
  CliRun a = project.run({"apply"});
  ASSERT_EQ(a.code, 0) << a.all();
  EXPECT_EQ(file("model/attend.py"), revised);
  EXPECT_FALSE(fs::exists(co() / "model/static.py"));
  EXPECT_EQ(status()["state"], "patched");
}

TEST_F(CheckoutTest, ApplyWithAnOptInPatchAndBack) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  CliRun r = project.run({"apply", "--with", "compile", "demo"});  // --with takes one id; demo stays a component
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(file("model/transformer.py"), kTransformerCompiled);
  auto st = status();
  EXPECT_EQ(st["state"], "patched");
  EXPECT_EQ(st["patches"][2]["state"], "applied");
  CliRun back = project.run({"apply"});
  ASSERT_EQ(back.code, 0) << back.all();
  EXPECT_EQ(file("model/transformer.py"), kBaseFiles.at("model/transformer.py"));
  EXPECT_EQ(status()["patches"][2]["state"], "disabled");
  CliRun bad = project.run({"apply", "--with", "nope"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--with nope: no such patch in demo.yaml"), std::string::npos) << bad.err;
}

TEST_F(CheckoutTest, PartialSeriesIsContinued) {
  sync_and_apply();
  Repo repo(co(), Repo::Existing{});
  auto tip = patchmgr::git::lookup_commit(repo.get(), repo.head());
  repo.checkout(*git_commit_parent_id(tip.get(), 0));  // as if the user dropped the last patch
  auto st = status();
  EXPECT_EQ(st["state"], "partial");
  EXPECT_EQ(st["patches"][1]["state"], "not-applied");
  CliRun r = project.run({"apply"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("demo: applied 1 patch on"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("flash-attention              already applied"), std::string::npos) << r.out;
  EXPECT_EQ(status()["state"], "patched");
}

TEST_F(CheckoutTest, StatusTellsTheTruthInText) {
  CliRun missing = project.run({"status"});
  EXPECT_EQ(missing.code, 0);
  EXPECT_NE(missing.out.find("demo: missing\n  no clone yet; run patchmgr sync\n"), std::string::npos) << missing.out;
  sync_and_apply();
  write(co() / "README.md", "edited\n");
  write(co() / "scratch.txt", "untracked\n");
  CliRun r = project.run({"status"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("demo: patched (2/2 patches applied), with local edits\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  checkout  upstream/demo\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" on patchmgr/demo\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    0001 flash-attention              applied\n"), std::string::npos) << r.out;
  EXPECT_NE(
      r.out.find("    0003 compile                      disabled (experimental; apply --with compile to apply it)\n"),
      std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("  local edits\n    M README.md\n    ? scratch.txt\n"), std::string::npos) << r.out;
}

TEST_F(CheckoutTest, LockHeldByAnotherProcessRefuses) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  std::string before = snapshot();
  {
    patchmgr::CheckoutLock held(co(), "apply");
    CliRun r = project.run({"apply"});
    EXPECT_EQ(r.code, 3) << r.all();
    EXPECT_NE(r.err.find(co().string() + " is in use by patchmgr apply (pid " + std::to_string(getpid())),
              std::string::npos)
        << r.err;
    EXPECT_EQ(snapshot(), before);
  }
  CliRun r = project.run({"apply"});
  EXPECT_EQ(r.code, 0) << r.all();
}

TEST_F(CheckoutTest, KilledWhileBuildingTheSeriesChangesNothing) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  std::string before = snapshot();
  CliRun killed = project.run({"apply"}, {{"PATCHMGR_TEST_KILL_AT", "after-patch:1"}});
  EXPECT_EQ(killed.code, 128 + SIGKILL) << killed.all();
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(status()["state"], "pristine");
  CliRun r = project.run({"apply"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(status()["state"], "patched");
}

TEST_F(CheckoutTest, KilledHalfwayThroughTheCheckoutIsRecovered) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  std::string before = snapshot();
  CliRun killed = project.run({"apply"}, {{"PATCHMGR_TEST_KILL_AT", "checkout:1"}});
  ASSERT_EQ(killed.code, 128 + SIGKILL) << killed.all();
  EXPECT_NE(snapshot(), before);  // one file written, the other not
  auto st = status();
  ASSERT_TRUE(st["interrupted"].is_object());
  EXPECT_EQ(st["interrupted"]["command"], "apply");
  CliRun text = project.run({"status"});
  EXPECT_NE(text.out.find("interrupted: patchmgr apply"), std::string::npos) << text.out;
  // The next command recognises the half-done apply, undoes it, then does its own work.
  CliRun r = project.run({"revert"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.err.find("demo: recovered from an interrupted patchmgr apply"), std::string::npos) << r.err;
  EXPECT_EQ(snapshot(), before);
  ASSERT_EQ(project.run({"apply"}).code, 0);
  EXPECT_EQ(status()["state"], "patched");
}

TEST_F(CheckoutTest, KilledAfterTheBranchMovedIsRecovered) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  std::string before = snapshot();
  CliRun killed = project.run({"apply"}, {{"PATCHMGR_TEST_KILL_AT", "branch"}});
  ASSERT_EQ(killed.code, 128 + SIGKILL) << killed.all();
  CliRun r = project.run({"apply"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.err.find("recovered from an interrupted patchmgr apply"), std::string::npos) << r.err;
  EXPECT_EQ(status()["state"], "patched");
  ASSERT_EQ(project.run({"revert"}).code, 0);
  // Back to the clone's own state: the branch from the killed run is gone too.
  Repo repo(co(), Repo::Existing{});
  EXPECT_EQ(head(), to_hex(project.pin()));
}

TEST_F(CheckoutTest, EditsAfterAnInterruptedRunAreNeverOverwritten) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  ASSERT_EQ(project.run({"apply"}, {{"PATCHMGR_TEST_KILL_AT", "checkout:1"}}).code, 128 + SIGKILL);
  write(co() / "model/attend.py", "the user's own version\n");
  CliRun r = project.run({"apply"});
  EXPECT_EQ(r.code, 3) << r.all();
  EXPECT_NE(r.err.find("these files were edited since: model/attend.py"), std::string::npos) << r.err;
  EXPECT_EQ(file("model/attend.py"), "the user's own version\n");
  CliRun d = project.run({"revert", "--discard"});
  ASSERT_EQ(d.code, 0) << d.all();
  EXPECT_NE(d.err.find("your edits to model/attend.py were copied to "), std::string::npos) << d.err;
  auto rescued = d.err.substr(d.err.find("copied to ") + 10);
  rescued = rescued.substr(0, rescued.find('\n'));
  EXPECT_EQ(read(fs::path(rescued) / "model/attend.py"), "the user's own version\n");
  EXPECT_EQ(head(), to_hex(project.pin()));
  EXPECT_EQ(file("model/attend.py"), kBaseFiles.at("model/attend.py"));
}

TEST_F(CheckoutTest, UsageErrorsExitWith2) {
  CliRun unknown = project.run({"apply", "nosuch"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("unknown component \"nosuch\""), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find("known: demo"), std::string::npos) << unknown.err;
  EXPECT_EQ(project.run({"frobnicate"}).code, 2);
  EXPECT_EQ(project.run({}).code, 2);
  CliRun noroot = run_patchmgr(fs::temp_directory_path(), {"status"});
  EXPECT_EQ(noroot.code, 2);
  EXPECT_NE(noroot.err.find("no manifests/ directory"), std::string::npos) << noroot.err;
}

TEST_F(CheckoutTest, ApplyBeforeSyncSaysWhatToDo) {
  CliRun r = project.run({"apply"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("demo: no clone at " + co().string() + "; run patchmgr sync demo first"), std::string::npos)
      << r.err;
}

}  // namespace
