// patchmgr export: patch commits back to patch files, byte for byte.
#include <gtest/gtest.h>

#include "git_cli.h"
#include "patchmgr/util/sha256.h"
#include "series_fixture.h"

using namespace testutil;

namespace {

TEST_F(CheckoutTest, ApplyThenExportIsByteIdentical) {
  sync_and_apply();
  std::string p1 = read(project.root() / "patches/demo/0001-flash-attention.patch");
  std::string p2 = read(project.root() / "patches/demo/0002-sdpa.patch");
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  CliRun r = project.run({"export"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(r.out,
            "  flash-attention              unchanged\n  sdpa                         unchanged\n"
            "demo: exported 2 patches, 0 changed\n");
  EXPECT_EQ(read(project.root() / "patches/demo/0001-flash-attention.patch"), p1);
  EXPECT_EQ(read(project.root() / "patches/demo/0002-sdpa.patch"), p2);
  EXPECT_EQ(read(project.root() / "manifests/demo.yaml"), manifest);
}

// A file an older patchmgr wrote through libgit2 (its subject on one line, its
// diffstat unscaled, libgit2's version and "-- patchmgr" as signature) records the
// same patch as git's form: export leaves it, and its sha256, as they are.
TEST_F(CheckoutTest, AFileInAnOlderFormIsNotRewrittenForItsFormAlone) {
  fs::path file = project.root() / "patches/demo/0001-flash-attention.patch";
  std::string git_form = read(file);
  std::string old_form = git_form + "--\nlibgit2 1.5.1\n\n-- \npatchmgr\n";
  write(file, old_form);
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  manifest.replace(manifest.find(patchmgr::sha256_hex(git_form)), 64, patchmgr::sha256_hex(old_form));
  write(project.root() / "manifests/demo.yaml", manifest);
  ASSERT_EQ(project.run({"lint"}).code, 0);
  sync_and_apply();
  CliRun r = project.run({"export"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("  flash-attention              unchanged\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("demo: exported 2 patches, 0 changed"), std::string::npos) << r.out;
  EXPECT_EQ(read(file), old_form);
  EXPECT_EQ(read(project.root() / "manifests/demo.yaml"), manifest);
  // A real change to the patch is written, in git's form.
  Repo repo(co(), Repo::Existing{});
  auto tip = patchmgr::git::lookup_commit(repo.get(), repo.head());
  auto first = patchmgr::git::lookup_commit(repo.get(), *git_commit_parent_id(tip.get(), 0));
  std::string message = git_commit_message(first.get());
  message.replace(message.find("\n\n") + 2, 0, "Also on Hopper.\n\n");
  repo.checkout(project.pin());
  std::string attend = kAttendPatched1;
  repo.commit({{"model/attend.py", attend}}, message, {}, 1767225600);
  CliRun again = project.run({"export"});
  ASSERT_EQ(again.code, 0) << again.all();
  EXPECT_NE(again.out.find("  flash-attention              written to"), std::string::npos) << again.out;
  std::string written = read(file);
  EXPECT_NE(written.find("Also on Hopper."), std::string::npos) << written;
  EXPECT_EQ(written.find("libgit2"), std::string::npos) << written;
}

TEST_F(CheckoutTest, AnAmendedPatchCommitIsWrittenBackWithItsHash) {
  sync_and_apply();
  // The user amends the last patch commit: same message, a better change.
  Repo repo(co(), Repo::Existing{});
  auto tip = patchmgr::git::lookup_commit(repo.get(), repo.head());
  std::string message = git_commit_message(tip.get());
  repo.checkout(*git_commit_parent_id(tip.get(), 0));
  std::string improved = kAttendPatched2;
  improved.replace(improved.find("(q, k, v)\n"), 10, "(q, k, v, scale=None)\n");
  repo.commit({{"model/attend.py", improved}, {"model/static.py", kStatic}}, message, {}, 1769007200);
  EXPECT_EQ(status()["patches"][1]["state"], "applied-but-modified");

  std::string manifest = read(project.root() / "manifests/demo.yaml");
  CliRun r = project.run({"export"});
  ASSERT_EQ(r.code, 0) << r.all();
  std::string p2 = read(project.root() / "patches/demo/0002-sdpa.patch");
  EXPECT_NE(r.out.find("  sdpa                         written to patches/demo/0002-sdpa.patch (sha256 " +
                       patchmgr::sha256_hex(p2).substr(0, 16) + ")"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("demo: exported 2 patches, 1 changed; manifests/demo.yaml updated"), std::string::npos) << r.out;
  EXPECT_NE(p2.find("+        return torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=None)"),
            std::string::npos)
      << p2;
  EXPECT_EQ(p2.find("Patchmgr-Patch"), std::string::npos) << p2;  // trailers stay in the checkout
  EXPECT_NE(p2.find("Subject: [PATCH] Add sdpa\n"), std::string::npos) << p2;
  // Only the sha256 of that patch changed in the manifest.
  std::string updated = read(project.root() / "manifests/demo.yaml");
  EXPECT_NE(updated, manifest);
  EXPECT_NE(updated.find("sha256: " + patchmgr::sha256_hex(p2) + "\n"), std::string::npos);
  EXPECT_EQ(updated.size(), manifest.size());
  EXPECT_EQ(project.run({"lint"}).code, 0);
  EXPECT_EQ(status()["state"], "patched");
  // And the new files round-trip: apply from scratch, export, nothing changes.
  ASSERT_EQ(project.run({"revert"}).code, 0);
  ASSERT_EQ(project.run({"apply"}).code, 0);
  CliRun again = project.run({"export"});
  EXPECT_NE(again.out.find("demo: exported 2 patches, 0 changed"), std::string::npos) << again.all();
  EXPECT_EQ(read(project.root() / "patches/demo/0002-sdpa.patch"), p2);
}

TEST_F(CheckoutTest, ExportRefusesWhatItCannotPlace) {
  sync_and_apply();
  write(co() / "README.md", "edited\n");
  CliRun dirty = project.run({"export"});
  EXPECT_EQ(dirty.code, 3) << dirty.all();
  EXPECT_NE(dirty.err.find("the checkout has uncommitted edits"), std::string::npos) << dirty.err;
  // A commit below a patch commit has no place in the series.
  ShellRun moved = sh(co(),
                      "git checkout -q -- README.md && sdpa=$(git rev-parse HEAD) && git reset -q --hard HEAD~1 && "
                      "echo edited >> README.md && git commit -q -a -m 'Tweak the readme' -m 'Say more.' && "
                      "git rev-parse HEAD && git cherry-pick $sdpa >/dev/null");
  ASSERT_EQ(moved.code, 0) << moved.out;
  std::string mine = moved.out.substr(0, 40);
  std::string before = read(project.root() / "manifests/demo.yaml");
  CliRun foreign = project.run({"export"});
  EXPECT_EQ(foreign.code, 1) << foreign.all();
  EXPECT_NE(foreign.err.find("commit " + mine.substr(0, 12) +
                             " \"Tweak the readme\" is not one of the series' patches and sits below patch sdpa; a new "
                             "patch goes on top of the series"),
            std::string::npos)
      << foreign.err;
  EXPECT_EQ(read(project.root() / "manifests/demo.yaml"), before);
}

// Issue 21: amend a patch commit, export, revert, apply; no command takes what
// export recorded for unrecorded work, and apply gives back the amended tree.
TEST_F(CheckoutTest, AmendExportRevertApplyWithTheGitCli) {
  sync_and_apply();
  std::string attend = file("model/attend.py");
  attend.replace(attend.find("(q, k, v)\n"), 10, "(q, k, v, scale=None)\n");
  write(co() / "model/attend.py", attend);
  ShellRun amend = sh(co(), "git commit -q -a --amend --no-edit && git rev-parse HEAD^{tree}");
  ASSERT_EQ(amend.code, 0) << amend.out;
  std::string tree = amend.out.substr(0, 40);

  CliRun e = project.run({"export"});
  ASSERT_EQ(e.code, 0) << e.all();
  EXPECT_NE(e.out.find("demo: exported 2 patches, 1 changed"), std::string::npos) << e.out;
  // The branch and the series agree: HEAD is on patchmgr/demo, with the commit apply makes from the files.
  auto st = status();
  EXPECT_EQ(st["state"], "patched");
  EXPECT_EQ(st["branch"], "refs/heads/patchmgr/demo");
  EXPECT_TRUE(st["unrecorded_commits"].empty());
  EXPECT_EQ(sh(co(), "git rev-parse HEAD^{tree}").out.substr(0, 40), tree);
  EXPECT_EQ(sh(co(), "git status --porcelain").out, "");
  CliRun same = project.run({"apply"});
  EXPECT_EQ(same.code, 0) << same.all();
  EXPECT_NE(same.out.find("already applied"), std::string::npos) << same.out;

  CliRun r = project.run({"revert"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(status()["state"], "pristine");
  CliRun a = project.run({"apply"});
  ASSERT_EQ(a.code, 0) << a.all();
  EXPECT_EQ(sh(co(), "git rev-parse HEAD^{tree}").out.substr(0, 40), tree);
  EXPECT_EQ(file("model/attend.py"), attend);
  EXPECT_EQ(status()["state"], "patched");
  CliRun again = project.run({"export"});
  EXPECT_NE(again.out.find("demo: exported 2 patches, 0 changed"), std::string::npos) << again.all();
  EXPECT_EQ(project.run({"lint"}).code, 0);
}

// Issue 20 item 6: a commit on top of the series becomes a new patch through
// export; lint names the placeholders until a person writes them.
TEST_F(CheckoutTest, ANewCommitOnThePatchBranchBecomesANewPatch) {
  sync_and_apply();
  std::string readme = file("README.md") + "\nRuns on ROCm too.\n";
  write(co() / "README.md", readme);
  write(co() / "model/rocm.py", "ROCM = True\n");
  ShellRun c = sh(co(),
                  "git add -A && git commit -q -m 'Add a ROCm note: it works' -m 'Say that the model runs on ROCm.' && "
                  "git rev-parse HEAD^{tree}");
  ASSERT_EQ(c.code, 0) << c.out;
  std::string tree = c.out.substr(c.out.size() - 41, 40);

  CliRun e = project.run({"export"});
  ASSERT_EQ(e.code, 0) << e.all();
  EXPECT_NE(e.out.find("  add-a-rocm-note-it-works     new: patches/demo/0004-add-a-rocm-note-it-works.patch"),
            std::string::npos)
      << e.out;
  EXPECT_NE(e.out.find("demo: exported 3 patches (1 new), 1 changed; manifests/demo.yaml updated"), std::string::npos)
      << e.out;
  EXPECT_NE(
      e.out.find("demo: now write the purpose and upstream_status of add-a-rocm-note-it-works in manifests/demo.yaml"),
      std::string::npos)
      << e.out;
  std::string text = read(project.root() / "patches/demo/0004-add-a-rocm-note-it-works.patch");
  EXPECT_NE(text.find("Subject: [PATCH] Add a ROCm note: it works\n"), std::string::npos) << text;
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  EXPECT_NE(
      manifest.find("  - id: add-a-rocm-note-it-works\n    file: 0004-add-a-rocm-note-it-works.patch\n    sha256: " +
                    patchmgr::sha256_hex(text) + "\n    title: \"Add a ROCm note: it works\"\n"),
      std::string::npos)
      << manifest;
  EXPECT_NE(manifest.find("    files: [README.md, model/rocm.py]\n"), std::string::npos) << manifest;
  // Every other command runs: the manifest loads; status says patched, on the branch.
  auto st = status();
  EXPECT_EQ(st["state"], "patched");
  EXPECT_EQ(st["patches"][3]["state"], "applied");

  CliRun lint = project.run({"lint"});
  EXPECT_EQ(lint.code, 2) << lint.all();
  int purpose_line = 0, upstream_line = 0, n = 1;
  for (size_t pos = 0; pos < manifest.size(); pos = manifest.find('\n', pos) + 1, ++n) {
    if (manifest.compare(pos, 13, "    purpose: ") == 0 && manifest.compare(pos + 13, 5, "\"TODO") == 0)
      purpose_line = n;
    if (manifest.compare(pos, 21, "    upstream_status: ") == 0) upstream_line = n;
    if (manifest.find('\n', pos) == std::string::npos) break;
  }
  EXPECT_NE(
      lint.err.find(fmt::format("manifests/demo.yaml:{}:14: error: patches[3] (add-a-rocm-note-it-works).purpose: a "
                                "placeholder left by patchmgr export; say why the patch exists",
                                purpose_line)),
      std::string::npos)
      << lint.err;
  EXPECT_NE(lint.err.find(
                fmt::format("manifests/demo.yaml:{}:22: error: patches[3] (add-a-rocm-note-it-works).upstream_status: "
                            "a placeholder left by patchmgr export; write one of pending",
                            upstream_line)),
            std::string::npos)
      << lint.err;
  EXPECT_NE(lint.err.find("2 placeholders to write in the manifests"), std::string::npos) << lint.err;

  // The user writes them, as the messages say.
  size_t p = manifest.find("\"TODO: why this patch exists");
  manifest.replace(p, manifest.find('\n', p) - p, "Tell ROCm users that the model runs for them.");
  p = manifest.find("upstream_status: TODO");
  manifest.replace(p, manifest.find('\n', p) - p,
                   "upstream_status: submitted\n    upstream_url: https://example.invalid/demo/pull/7");
  write(project.root() / "manifests/demo.yaml", manifest);
  CliRun fixed = project.run({"lint"});
  EXPECT_EQ(fixed.code, 0) << fixed.all();

  ASSERT_EQ(project.run({"revert"}).code, 0);
  CliRun a = project.run({"apply"});
  ASSERT_EQ(a.code, 0) << a.all();
  EXPECT_EQ(sh(co(), "git rev-parse HEAD^{tree}").out.substr(0, 40), tree);
  EXPECT_EQ(file("model/rocm.py"), "ROCM = True\n");
  EXPECT_EQ(project.run({"check"}).code, 0);
}

TEST_F(CheckoutTest, ANewCommitMustSitOnTheWholeSeries) {
  sync_and_apply();
  // Only patch 1 under the new commit: as the last patch, apply would put it after patch 2.
  Repo repo(co(), Repo::Existing{});
  auto tip = patchmgr::git::lookup_commit(repo.get(), repo.head());
  repo.checkout(*git_commit_parent_id(tip.get(), 0));
  repo.commit({{"model/rocm.py", "ROCM = True\n"}}, "Add rocm\n\nA file.\n");
  std::string before = read(project.root() / "manifests/demo.yaml");
  CliRun e = project.run({"export"});
  EXPECT_EQ(e.code, 1) << e.all();
  EXPECT_NE(
      e.err.find(
          "would become a new patch at the end of the series, but the checkout lacks the enabled patch sdpa before it"),
      std::string::npos)
      << e.err;
  EXPECT_EQ(read(project.root() / "manifests/demo.yaml"), before);
}

// Issue 20: patches put by hand on a newer upstream commit. Export says the pin
// must move and how; doing that works.
TEST_F(CheckoutTest, ExportOnANewerUpstreamSaysToMoveThePin) {
  sync_and_apply();
  ShellRun moved = sh(co(),
                      "flash=$(git rev-parse HEAD~1) && sdpa=$(git rev-parse HEAD) && git checkout -q origin/main && "
                      "git cherry-pick $flash $sdpa >/dev/null && git rev-parse origin/main");
  ASSERT_EQ(moved.code, 0) << moved.out;
  std::string newer = moved.out.substr(0, 40);
  std::string before = read(project.root() / "manifests/demo.yaml");
  CliRun e = project.run({"export"});
  EXPECT_EQ(e.code, 1) << e.all();
  EXPECT_NE(e.err.find("demo: commit " + newer.substr(0, 12) +
                       " \"Start a changelog\" is upstream's (origin/main has it), not a patch: "
                       "the series sits on a newer upstream commit than the pin " +
                       to_hex(project.pin()).substr(0, 12) + ". Move the pin there with patchmgr rebase --onto " +
                       newer + " demo"),
            std::string::npos)
      << e.err;
  EXPECT_EQ(read(project.root() / "manifests/demo.yaml"), before);
  CliRun r = project.run({"rebase", "--onto", newer, "demo"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("demo: pin moved to " + newer.substr(0, 12)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("demo: the checkout has local work, so it stays where it is; run patchmgr sync demo and "
                       "patchmgr apply demo when ready"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(project.run({"lint"}).code, 0);
  EXPECT_EQ(project.run({"sync", "demo"}).code, 0);
  CliRun a = project.run({"apply", "demo"});
  EXPECT_EQ(a.code, 0) << a.all();
  EXPECT_EQ(status()["state"], "patched");
  CliRun again = project.run({"export"});
  EXPECT_EQ(again.code, 0) << again.all();
  EXPECT_NE(again.out.find("demo: exported 2 patches, 0 changed"), std::string::npos) << again.out;
}

}  // namespace
