// patchmgr export: patch commits back to patch files, byte for byte.
#include <gtest/gtest.h>

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
  EXPECT_EQ(r.out, "  flash-attention              unchanged\n  sdpa                         unchanged\n"
                   "demo: exported 2 patches, 0 changed\n");
  EXPECT_EQ(read(project.root() / "patches/demo/0001-flash-attention.patch"), p1);
  EXPECT_EQ(read(project.root() / "patches/demo/0002-sdpa.patch"), p2);
  EXPECT_EQ(read(project.root() / "manifests/demo.yaml"), manifest);
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
  EXPECT_NE(r.out.find("  sdpa                         written to patches/demo/0002-sdpa.patch (sha256 " + patchmgr::sha256_hex(p2).substr(0, 16) + ")"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("demo: exported 2 patches, 1 changed; manifests/demo.yaml updated"), std::string::npos) << r.out;
  EXPECT_NE(p2.find("+        return torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=None)"), std::string::npos) << p2;
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
  Repo repo(co(), Repo::Existing{});
  git_oid mine = repo.commit({{"README.md", "edited\n"}}, "Tweak the readme\n");
  std::string before = read(project.root() / "manifests/demo.yaml");
  CliRun foreign = project.run({"export"});
  EXPECT_EQ(foreign.code, 1) << foreign.all();
  EXPECT_NE(foreign.err.find("commit " + to_hex(mine).substr(0, 12) + " \"Tweak the readme\" is not one of the series' patches"), std::string::npos) << foreign.err;
  EXPECT_EQ(read(project.root() / "manifests/demo.yaml"), before);
}

}  // namespace
