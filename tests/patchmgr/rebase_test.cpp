// patchmgr rebase: the series carried onto a new upstream commit by a
// three-way merge; all or nothing.
#include <gtest/gtest.h>

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
  EXPECT_NE(r.out.find("demo: rebased 3 patches from " + to_hex(project.pin()).substr(0, 12) + " onto " + to_hex(latest).substr(0, 12)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  flash-attention              written to patches/demo/0001-flash-attention.patch"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  compile                      unchanged"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("demo: pin moved to " + to_hex(latest).substr(0, 12) + " in demo.yaml"), std::string::npos) << r.out;
  EXPECT_EQ(pin_of(project.root() / "manifests/demo.yaml"), to_hex(latest));
  EXPECT_EQ(read(project.root() / "patches/demo/0003-compile.patch"), old_p3);
  EXPECT_NE(read(project.root() / "patches/demo/0001-flash-attention.patch").find(" self.flash = bool(flash)"), std::string::npos);
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

TEST_F(CheckoutTest, RebaseConflictChangesNothingAndNamesTheLines) {
  sync_and_apply();
  std::string attend = kBaseFiles.at("model/attend.py");
  attend.replace(attend.find("if major == 8 and minor == 0:"), 29, "if major == 9:");
  git_oid latest = project.upstream().commit({{"model/attend.py", attend}}, "Hopper only\n", {}, 1767500000);
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  std::string p1 = read(project.root() / "patches/demo/0001-flash-attention.patch");
  std::string before = snapshot();
  CliRun r = project.run({"rebase", "--onto", to_hex(latest)});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.err.find("demo: rebase onto " + to_hex(latest).substr(0, 12) + " stopped: patch 0001-flash-attention.patch (flash-attention) conflicts with upstream in model/attend.py (upstream line 9)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nothing was changed: the manifest, the patch files and the checkout are as they were"), std::string::npos) << r.err;
  EXPECT_EQ(read(project.root() / "manifests/demo.yaml"), manifest);
  EXPECT_EQ(read(project.root() / "patches/demo/0001-flash-attention.patch"), p1);
  std::string after = snapshot();
  EXPECT_EQ(after.substr(after.find("HEAD ->")), before.substr(before.find("HEAD ->")));
  EXPECT_EQ(head(), before.substr(0, 40));
}

TEST_F(CheckoutTest, RebaseSaysWhenUpstreamAlreadyHasAPatch) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  git_oid latest = project.upstream().commit({{"model/transformer.py", kTransformerCompiled}}, "Compile upstream\n", {}, 1767500000);
  CliRun r = project.run({"rebase", "--onto", to_hex(latest)});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.err.find("demo: patch compile changes nothing on " + to_hex(latest).substr(0, 12) + ": upstream already has it. Set its status to upstreamed"), std::string::npos) << r.err;
  EXPECT_EQ(project.run({"rebase"}).code, 2);  // --onto is required
}

}  // namespace
