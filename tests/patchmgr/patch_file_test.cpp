// The pieces under the manifest: SHA-256 and the format-patch reader.
#include <gtest/gtest.h>

#include "fixture.h"
#include "patchmgr/git/patch_file.h"
#include "patchmgr/util/sha256.h"

namespace {

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(patchmgr::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(patchmgr::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(patchmgr::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(patchmgr::sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // 55 and 56 bytes straddle the one-block/two-block padding boundary.
  EXPECT_EQ(patchmgr::sha256_hex(std::string(55, 'a')),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(patchmgr::sha256_hex(std::string(56, 'a')),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
}

const char* kPatch =
    "From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001\n"
    "From: Kim Example <kim@example.org>\n"
    "Date: Sun, 25 Jan 2026 10:00:00 +0100\n"
    "Subject: [PATCH 2/3] Route attention through\n"
    " scaled_dot_product_attention\n"
    "\n"
    "Flash kernels on ROCm and on NVIDIA SM 8.x or newer.\n"
    "\n"
    "Second paragraph.\n"
    "---\n"
    " model/attend.py | 2 +-\n"
    " 1 file changed, 1 insertion(+), 1 deletion(-)\n"
    "\n"
    "diff --git a/model/attend.py b/model/attend.py\n"
    "index 1111111..2222222 100644\n"
    "--- a/model/attend.py\n"
    "+++ b/model/attend.py\n"
    "@@ -1,3 +1,3 @@\n"
    " import torch\n"
    "-x = 1\n"
    "+x = 2\n"
    " y = 3\n"
    "-- \n"
    "2.39.5\n"
    "\n";

TEST(PatchFile, ParsesFormatPatch) {
  auto p = patchmgr::git::parse_patch_file(kPatch);
  ASSERT_TRUE(p.ok()) << p.problems[0].message;
  EXPECT_EQ(p.author_name, "Kim Example");
  EXPECT_EQ(p.author_email, "kim@example.org");
  EXPECT_EQ(p.subject, "Route attention through scaled_dot_product_attention");
  EXPECT_EQ(p.description, "Flash kernels on ROCm and on NVIDIA SM 8.x or newer.\n\nSecond paragraph.");
  EXPECT_EQ(p.date.time, 1769331600);  // 2026-01-25T09:00:00Z
  EXPECT_EQ(p.date.offset, 60);
  EXPECT_EQ(p.diff_line, 14);
  EXPECT_EQ(p.touched_files, std::vector<std::string>{"model/attend.py"});
  EXPECT_EQ(p.diff_text.find("2.39.5"), std::string::npos);
}

TEST(PatchFile, ReportsMissingPieces) {
  std::string text = kPatch;
  text.replace(text.find("Subject: [PATCH 2/3] Route attention through\n scaled_dot_product_attention\n"),
               std::string("Subject: [PATCH 2/3] Route attention through\n scaled_dot_product_attention\n").size(), "");
  auto p = patchmgr::git::parse_patch_file(text);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.problems[0].message.find("missing a Subject"), std::string::npos);
  auto bad_date = patchmgr::git::parse_patch_file(
      std::string(kPatch).replace(std::string(kPatch).find("Sun, 25 Jan"), 11, "yesterday"));
  ASSERT_FALSE(bad_date.ok());
  EXPECT_EQ(bad_date.problems[0].line, 3);
  // Fields out of range below as well as above (fuzz_patch_file found "-1530494976:00:00" overflowing the seconds).
  for (const char* time : {"-1530494976:00:00", "10:-5:00", "10:00:-1", "24:00:00"}) {
    std::string text = std::string(kPatch).replace(std::string(kPatch).find("10:00:00"), 8, time);
    auto p = patchmgr::git::parse_patch_file(text);
    ASSERT_FALSE(p.ok()) << time;
    EXPECT_EQ(p.problems[0].line, 3) << time;
    EXPECT_NE(p.problems[0].message.find("Date: expected an RFC 2822 date"), std::string::npos)
        << p.problems[0].message;
  }
  auto no_diff = patchmgr::git::parse_patch_file(std::string(kPatch).substr(0, std::string(kPatch).find("diff --git")));
  ASSERT_FALSE(no_diff.ok());
  EXPECT_NE(no_diff.problems.back().message.find("no diff found"), std::string::npos);
}

TEST(PatchFile, FormatPatchRoundTrips) {
  testutil::TempDir dir;
  testutil::Repo repo(dir.path());
  repo.commit({{"a.txt", "one\ntwo\n"}}, "Base\n");
  git_oid oid =
      repo.commit({{"a.txt", "one\n2\n"}, {"b.txt", "new\n"}}, "Change things\n\nBecause the tests say so.\n");
  auto c = patchmgr::git::lookup_commit(repo.get(), oid);
  auto p = patchmgr::git::parse_patch_file(patchmgr::git::format_patch(c.get()));
  ASSERT_TRUE(p.ok()) << p.problems[0].message;
  EXPECT_EQ(p.subject, "Change things");
  EXPECT_EQ(p.description, "Because the tests say so.");
  EXPECT_EQ(p.author_name, "Upstream Author");
  EXPECT_EQ(p.date.time, 1767225600);
  EXPECT_EQ((p.touched_files), (std::vector<std::string>{"a.txt", "b.txt"}));
}

}  // namespace
