// patchmgr rebase: the series carried onto a new upstream commit by a
// three-way merge; all or nothing.
#include <gtest/gtest.h>

#include "git_cli.h"
#include "series_fixture.h"

using namespace testutil;

namespace {

std::string pin_of(const fs::path& manifest) {
  std::string text = read(manifest);
  auto pos = text.find("commit: ") + 8;
  return text.substr(pos, 40);
}

TEST_F(CheckoutTest, RebaseMergesWhereAPlainApplyFails) {
  sync_and_apply();
  // Upstream edits a context line of patch 1's hunk: git apply (no fuzz) fails, a three-way merge does not.
  std::string attend = kBaseFiles.at("model/attend.py");
  attend.replace(attend.find("self.flash = flash"), 18, "self.flash = bool(flash)");
  git_oid latest = project.upstream().commit({{"model/attend.py", attend}}, "Coerce flash to bool\n", {}, 1767500000);
  // check calls that fuzz: green by default, red from --fail-on fuzz.
  ASSERT_EQ(project.run({"check", "--against", "latest"}).code, 0);
  ASSERT_EQ(project.run({"check", "--against", "latest", "--fail-on", "fuzz"}).code, 1);
  std::string old_p3 = read(project.root() / "patches/demo/0003-compile.patch");

  CliRun r = project.run({"rebase", "--onto", "latest"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("demo: rebased 3 patches from " + to_hex(project.pin()).substr(0, 12) + " onto " +
                       to_hex(latest).substr(0, 12)),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("  flash-attention              written to patches/demo/0001-flash-attention.patch"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("  compile                      unchanged"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("demo: pin moved to " + to_hex(latest).substr(0, 12) + " in demo.yaml"), std::string::npos)
      << r.out;
  EXPECT_EQ(pin_of(project.root() / "manifests/demo.yaml"), to_hex(latest));
  EXPECT_EQ(read(project.root() / "patches/demo/0003-compile.patch"), old_p3);
  EXPECT_NE(read(project.root() / "patches/demo/0001-flash-attention.patch").find(" self.flash = bool(flash)"),
            std::string::npos);
  EXPECT_EQ(project.run({"lint"}).code, 0);
  EXPECT_EQ(project.run({"check"}).code, 0);
  // The checkout came along: patched on the new pin, with upstream's change and the patches.
  auto st = status();
  EXPECT_EQ(st["state"], "patched");
  EXPECT_EQ(st["upstream"]["commit"], to_hex(latest));
  EXPECT_NE(file("model/attend.py").find("self.flash = bool(flash)"), std::string::npos);
  EXPECT_NE(file("model/attend.py").find("if major >= 8:"), std::string::npos);
  EXPECT_NE(file("model/attend.py").find("scaled_dot_product_attention"), std::string::npos);
}

// snapshot() without the remote-tracking refs, which fetching `latest` adds.
std::string local_state(const std::string& snapshot) {
  std::string out;
  size_t pos = 0;
  while (pos < snapshot.size()) {
    size_t nl = snapshot.find('\n', pos);
    std::string line = snapshot.substr(pos, nl - pos + 1);
    if (line.rfind("refs/remotes/", 0) != 0) out += line;
    pos = nl == std::string::npos ? snapshot.size() : nl + 1;
  }
  return out;
}

// Upstream rewrites the line patch 1 changes: a real conflict.
git_oid conflicting_upstream(Project& project) {
  std::string attend = kBaseFiles.at("model/attend.py");
  attend.replace(attend.find("if major == 8 and minor == 0:"), 29, "if major == 9:");
  return project.upstream().commit({{"model/attend.py", attend}}, "Hopper only\n", {}, 1767500000);
}

TEST_F(CheckoutTest, RebaseConflictWithLocalWorkChangesNothing) {
  sync_and_apply();
  git_oid latest = conflicting_upstream(project);
  write(co() / "README.md", "my notes\n");
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  std::string p1 = read(project.root() / "patches/demo/0001-flash-attention.patch");
  std::string before = snapshot();
  CliRun r = project.run({"rebase", "--onto", to_hex(latest)});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.err.find("demo: rebase onto " + to_hex(latest).substr(0, 12) +
                       " stopped: patch 0001-flash-attention.patch (flash-attention) conflicts with upstream in "
                       "model/attend.py (upstream line 9)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("nothing was changed: the manifest, the patch files and the checkout are as they were. The "
                       "checkout holds local work"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(read(project.root() / "manifests/demo.yaml"), manifest);
  EXPECT_EQ(read(project.root() / "patches/demo/0001-flash-attention.patch"), p1);
  EXPECT_EQ(local_state(snapshot()), local_state(before));
}

// Issue 20 item 5: stop at the conflict in the checkout, resolve, continue.
TEST_F(CheckoutTest, RebaseStopsAtAConflictAndContinuesAfterTheResolution) {
  sync_and_apply();
  git_oid latest = conflicting_upstream(project);
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  CliRun r = project.run({"rebase", "--onto", to_hex(latest)});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.err.find("demo: rebase onto " + to_hex(latest).substr(0, 12) +
                       " stopped: patch 0001-flash-attention.patch (flash-attention) conflicts with upstream in "
                       "model/attend.py (upstream line 9)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("demo: upstream/demo is now at " + to_hex(latest).substr(0, 12) +
                       " with no patch of the series applied yet, and conflict markers in the files above."),
            std::string::npos)
      << r.err;
  EXPECT_NE(
      r.err.find(
          "  to resolve: edit the files there, git add them (or git commit), then run patchmgr rebase --continue demo"),
      std::string::npos)
      << r.err;
  // Where it says: the new base, the markers; nothing written yet; other commands refuse.
  EXPECT_EQ(head(), to_hex(latest));
  EXPECT_NE(file("model/attend.py").find("<<<<<<< "), std::string::npos) << file("model/attend.py");
  EXPECT_EQ(read(project.root() / "manifests/demo.yaml"), manifest);
  EXPECT_EQ(status()["rebase"]["stopped_at"], "flash-attention");
  CliRun text = project.run({"status"});
  EXPECT_NE(text.out.find("  rebase    onto " + to_hex(latest).substr(0, 12) +
                          " stopped at patch flash-attention (conflict)"),
            std::string::npos)
      << text.out;
  for (const char* cmd : {"apply", "revert", "export", "sync"}) {
    CliRun refused = project.run({cmd});
    EXPECT_EQ(refused.code, 3) << cmd << refused.all();
    EXPECT_NE(refused.err.find("a rebase onto " + to_hex(latest).substr(0, 12) +
                               " stopped at patch flash-attention with a conflict; resolve it in"),
              std::string::npos)
        << cmd << refused.err;
  }
  CliRun early = project.run({"rebase", "--continue"});
  EXPECT_EQ(early.code, 1) << early.all();
  EXPECT_NE(early.err.find("still has conflicts in model/attend.py; edit them, git add them"), std::string::npos)
      << early.err;

  // The resolution: the patch's flash condition on upstream's new file, staged.
  std::string resolved = kBaseFiles.at("model/attend.py");
  resolved.replace(resolved.find("if major == 8 and minor == 0:"), 29, "if major >= 9:");
  write(co() / "model/attend.py", "half a resolution\n");
  ASSERT_EQ(sh(co(), "git add model/attend.py").code, 0);
  write(co() / "model/attend.py", resolved);  // the real one, not staged yet
  CliRun unstaged = project.run({"rebase", "--continue"});
  EXPECT_EQ(unstaged.code, 1) << unstaged.all();
  EXPECT_NE(unstaged.err.find("demo: changes in model/attend.py are not staged; git add them (or git checkout -- "
                              "them), then run patchmgr rebase --continue demo again"),
            std::string::npos)
      << unstaged.err;
  ASSERT_EQ(sh(co(), "git add model/attend.py").code, 0);
  CliRun c = project.run({"rebase", "--continue"});
  ASSERT_EQ(c.code, 0) << c.all();
  EXPECT_NE(c.out.find("demo: patch flash-attention resolved"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("demo: rebased 3 patches from " + to_hex(project.pin()).substr(0, 12) + " onto " +
                       to_hex(latest).substr(0, 12)),
            std::string::npos)
      << c.out;
  EXPECT_EQ(pin_of(project.root() / "manifests/demo.yaml"), to_hex(latest));
  std::string p1 = read(project.root() / "patches/demo/0001-flash-attention.patch");
  EXPECT_NE(p1.find("-        if major == 9:\n+        if major >= 9:\n"), std::string::npos) << p1;
  EXPECT_EQ(project.run({"lint"}).code, 0);
  EXPECT_EQ(project.run({"check"}).code, 0);
  auto st = status();
  EXPECT_EQ(st["state"], "patched");
  EXPECT_TRUE(st["rebase"].is_null());
  EXPECT_NE(file("model/attend.py").find("if major >= 9:"), std::string::npos);
  EXPECT_NE(file("model/attend.py").find("scaled_dot_product_attention"), std::string::npos);
  EXPECT_EQ(sh(co(), "git status --porcelain").out, "");
  CliRun again = project.run({"apply"});
  EXPECT_NE(again.out.find("already applied"), std::string::npos) << again.all();
}

TEST_F(CheckoutTest, RebaseContinueStopsAgainAtTheNextConflict) {
  sync_and_apply();
  std::string attend = kBaseFiles.at("model/attend.py");
  attend.replace(attend.find("if major == 8 and minor == 0:"), 29, "if major == 9:");
  attend.replace(attend.find("sim.softmax(-1)"), 15, "sim.softmax(dim=-1)");
  git_oid latest = project.upstream().commit({{"model/attend.py", attend}}, "Hopper only, named dim\n", {}, 1767500000);
  ASSERT_EQ(project.run({"rebase", "--onto", "latest"}).code, 1);
  std::string resolved = attend;
  resolved.replace(resolved.find("if major == 9:"), 14, "if major >= 9:");
  write(co() / "model/attend.py", resolved);
  ASSERT_EQ(sh(co(), "git add model/attend.py").code, 0);
  CliRun second = project.run({"rebase", "--continue"});
  EXPECT_EQ(second.code, 1) << second.all();
  EXPECT_NE(second.out.find("demo: patch flash-attention resolved"), std::string::npos) << second.out;
  EXPECT_NE(second.err.find("stopped: patch 0002-sdpa.patch (sdpa) conflicts with upstream in model/attend.py"),
            std::string::npos)
      << second.err;
  EXPECT_NE(second.err.find("with the 1 patch before it applied"), std::string::npos) << second.err;
  EXPECT_EQ(status()["rebase"]["stopped_at"], "sdpa");
  EXPECT_EQ(file("model/static.py"), kStatic);  // the part of the patch that merged is there
  resolved.replace(resolved.find("        scale = q.shape"), std::string::npos,
                   "        return torch.nn.functional.scaled_dot_product_attention(q, k, v)\n");
  write(co() / "model/attend.py", resolved);
  ASSERT_EQ(sh(co(), "git add model/attend.py").code, 0);
  CliRun done = project.run({"rebase", "--continue"});
  ASSERT_EQ(done.code, 0) << done.all();
  EXPECT_EQ(pin_of(project.root() / "manifests/demo.yaml"), to_hex(latest));
  EXPECT_EQ(project.run({"lint"}).code, 0);
  EXPECT_EQ(project.run({"check"}).code, 0);
  EXPECT_EQ(status()["state"], "patched");
  EXPECT_EQ(file("model/attend.py"), resolved);
}

TEST_F(CheckoutTest, RebaseContinueTakesACommittedResolution) {
  sync_and_apply();
  git_oid latest = conflicting_upstream(project);
  ASSERT_EQ(project.run({"rebase", "--onto", "latest"}).code, 1);
  std::string resolved = kBaseFiles.at("model/attend.py");
  resolved.replace(resolved.find("if major == 8 and minor == 0:"), 29, "if major >= 9:");
  write(co() / "model/attend.py", resolved);
  ShellRun committed = sh(co(), "git commit -q -a --no-edit");
  ASSERT_EQ(committed.code, 0) << committed.out;
  CliRun c = project.run({"rebase", "--continue", "demo"});
  ASSERT_EQ(c.code, 0) << c.all();
  EXPECT_EQ(pin_of(project.root() / "manifests/demo.yaml"), to_hex(latest));
  EXPECT_EQ(project.run({"lint"}).code, 0);
  EXPECT_EQ(status()["state"], "patched");
  EXPECT_EQ(file("model/attend.py").find("<<<<<<<"), std::string::npos);
}

TEST_F(CheckoutTest, RebaseAbortPutsEverythingBack) {
  sync_and_apply();
  git_oid latest = conflicting_upstream(project);
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  std::string p1 = read(project.root() / "patches/demo/0001-flash-attention.patch");
  std::string before = snapshot();
  ASSERT_EQ(project.run({"rebase", "--onto", to_hex(latest)}).code, 1);
  write(co() / "model/attend.py", "half a resolution\n");
  CliRun a = project.run({"rebase", "--abort"});
  ASSERT_EQ(a.code, 0) << a.all();
  EXPECT_NE(a.out.find("demo: rebase onto " + to_hex(latest).substr(0, 12) + " aborted: the checkout is back at"),
            std::string::npos)
      << a.out;
  EXPECT_EQ(local_state(snapshot()), local_state(before));
  EXPECT_EQ(read(project.root() / "manifests/demo.yaml"), manifest);
  EXPECT_EQ(read(project.root() / "patches/demo/0001-flash-attention.patch"), p1);
  EXPECT_TRUE(status()["rebase"].is_null());
  EXPECT_EQ(sh(co(), "git status --porcelain").out, "");
  EXPECT_EQ(project.run({"apply"}).code, 0);
}

// Issue 20: a patch upstream already has leaves the series by itself, with where upstream has it.
class UpstreamedTest : public CheckoutTest {
 protected:
  void SetUp() override {
    std::string scaled = kAttendPatched2;
    scaled.replace(scaled.find("(q, k, v)\n"), 10, "(q, k, v, scale=None)\n");
    project.set_series({
        {.id = "flash-attention", .files = {{"model/attend.py", kAttendPatched1}}},
        {.id = "sdpa", .files = {{"model/attend.py", kAttendPatched2}, {"model/static.py", kStatic}}},
        {.id = "sdpa-scale", .files = {{"model/attend.py", scaled}}},
    });
    // Upstream takes patch 2 (on its own base), then moves on.
    std::string attend = kBaseFiles.at("model/attend.py");
    attend.replace(attend.find("        scale = q.shape"), std::string::npos,
                   "        return torch.nn.functional.scaled_dot_product_attention(q, k, v)\n");
    sdpa_upstream = project.upstream().commit({{"model/attend.py", attend}, {"model/static.py", kStatic}}, "Use SDPA\n",
                                              {}, 1767500000);
    latest = project.upstream().commit({{"NEWS.md", "sdpa\n"}}, "News\n", {}, 1767600000);
  }
  void expect_healthy_after() {
    EXPECT_EQ(pin_of(project.root() / "manifests/demo.yaml"), to_hex(latest));
    CliRun lint = project.run({"lint"});
    EXPECT_EQ(lint.code, 0) << lint.all();
    CliRun check = project.run({"check"});
    EXPECT_EQ(check.code, 0) << check.all();
    auto st = status();
    EXPECT_EQ(st["state"], "patched") << st.dump(2);
    EXPECT_EQ(st["patches"][1]["status"], "upstreamed");
    EXPECT_EQ(st["patches"][1]["state"], "disabled");
    EXPECT_EQ(st["patches"][2]["state"], "applied");
    EXPECT_NE(file("model/attend.py").find("scaled_dot_product_attention(q, k, v, scale=None)"), std::string::npos)
        << file("model/attend.py");
    EXPECT_NE(file("model/attend.py").find("if major >= 8:"), std::string::npos);
    ASSERT_EQ(project.run({"revert"}).code, 0);
    CliRun apply = project.run({"apply"});
    EXPECT_EQ(apply.code, 0) << apply.all();
  }
  git_oid sdpa_upstream{}, latest{};
};

TEST_F(UpstreamedTest, RebaseDropsAPatchUpstreamHasAndGoesOn) {
  sync_and_apply();
  CliRun r = project.run({"rebase", "--onto", "latest"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("demo: patch sdpa changes nothing on " + to_hex(latest).substr(0, 12) + ": upstream has it (" +
                       to_hex(sdpa_upstream).substr(0, 12) + "); it leaves the series as upstreamed"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("demo: rebased 2 patches from " + to_hex(project.pin()).substr(0, 12) + " onto " +
                       to_hex(latest).substr(0, 12) + " (1 found upstream)"),
            std::string::npos)
      << r.out;
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  EXPECT_NE(manifest.find("    status: upstreamed\n    upstream_status: accepted\n    upstream_commit: " +
                          to_hex(sdpa_upstream) + "\n"),
            std::string::npos)
      << manifest;
  expect_healthy_after();
}

// What the message of older versions said to do: mark it upstreamed, rebase again. It must work.
TEST_F(UpstreamedTest, MarkingItUpstreamedByHandThenRebasingWorks) {
  sync_and_apply();
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  size_t at = manifest.find("status: implemented", manifest.find("id: sdpa\n"));
  manifest.replace(at, 19, "status: upstreamed");
  write(project.root() / "manifests/demo.yaml", manifest);
  ASSERT_EQ(project.run({"lint"}).code, 0);
  CliRun r = project.run({"rebase", "--onto", "latest"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("demo: rebased 2 patches"), std::string::npos) << r.out;
  expect_healthy_after();
}

}  // namespace
