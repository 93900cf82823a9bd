// patchmgr check: the series applied in memory against the pin, upstream's
// latest commit or any commit, with text, JSON and JUnit reports.
#include <gtest/gtest.h>

#include "series_fixture.h"

using namespace testutil;

namespace {

class CheckTest : public CheckoutTest {
 protected:
  // Upstream changes the line the first patch edits, after the pin.
  git_oid upstream_breaks_patch_one() {
    std::string attend = kBaseFiles.at("model/attend.py");
    attend.replace(attend.find("if major == 8 and minor == 0:"), 29, "if (major, minor) == (8, 0):");
    return project.upstream().commit({{"model/attend.py", attend}}, "Refactor the capability test\n", {}, 1767500000);
  }
};

TEST_F(CheckTest, EverySeriesPatchAppliesOnThePin) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  CliRun r = project.run({"check"});
  ASSERT_EQ(r.code, 0) << r.all();
  std::string pin = to_hex(project.pin()).substr(0, 12);
  EXPECT_EQ(r.out, "demo: check against pin (" + pin + ")\n"
                   "  0001 flash-attention              applies\n"
                   "  0002 sdpa                         applies\n"
                   "  0003 compile                      applies\n"
                   "demo: all 3 patches apply against pin\n");
}

TEST_F(CheckTest, LatestIsFetchedAndAFailureNamesTheHunk) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  git_oid latest = upstream_breaks_patch_one();
  std::string before = snapshot();
  CliRun r = project.run({"check", "--against", "latest"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.out.find("demo: check against latest (" + to_hex(latest).substr(0, 12) + ")"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  0001 flash-attention              FAILS: model/attend.py, hunk 1 (@@ -6,7 +6,7 @@"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("demo: 1 of 3 patches fail against latest"), std::string::npos) << r.out;
  // The checkout is untouched; only refs/remotes/origin/main moved.
  std::string after = snapshot();
  EXPECT_EQ(after.substr(after.find("HEAD ->")), before.substr(before.find("HEAD ->")));
  // Against the pin it still passes.
  EXPECT_EQ(project.run({"check", "--against", "pin"}).code, 0);
}

TEST_F(CheckTest, AnyCommitByShaIsFetchedWhenMissing) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  git_oid newer = project.upstream().commit({{"NEWS.md", "news\n"}}, "Unrelated upstream work\n", {}, 1767500000);
  CliRun r = project.run({"check", "--against", to_hex(newer), "--format", "json"});
  ASSERT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out)["components"][0];
  EXPECT_EQ(j["target"], to_hex(newer));
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["patches"][1]["result"], "applies");
  CliRun bad = project.run({"check", "--against", "v1.0"});
  EXPECT_EQ(bad.code, 2) << bad.all();
  EXPECT_NE(bad.err.find("--against v1.0: expected pin, latest or a full 40-hex commit SHA"), std::string::npos) << bad.err;
}

TEST_F(CheckTest, JUnitReportHasOneTestCasePerPatch) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  git_oid latest = upstream_breaks_patch_one();
  CliRun r = project.run({"check", "--against", "latest", "--format", "junit", "--output", "report.xml"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.out.find("demo: 1 of 3 patches fail against latest"), std::string::npos) << r.out;  // the text summary
  std::string xml = read(project.root() / "report.xml");
  EXPECT_EQ(xml.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"patchmgr check\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"0\">\n", 0), 0u) << xml;
  EXPECT_NE(xml.find("<testsuite name=\"demo against latest (" + to_hex(latest).substr(0, 12) + ")\" tests=\"3\" failures=\"1\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("<testcase classname=\"patchmgr.check.demo\" name=\"0001-flash-attention\" time=\"0\">\n      <failure message=\"flash-attention does not apply\">model/attend.py, hunk 1 (@@ -6,7 +6,7 @@"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<testcase classname=\"patchmgr.check.demo\" name=\"0003-compile\" time=\"0\"/>"), std::string::npos) << xml;
  EXPECT_EQ(xml.substr(xml.size() - 14), "</testsuites>\n") << xml;
  // The elements nest: every opened testcase with a body is closed.
  size_t open = 0, close = 0;
  for (size_t p = 0; (p = xml.find("\">\n      <", p)) != std::string::npos; ++p) ++open;
  for (size_t p = 0; (p = xml.find("</testcase>", p)) != std::string::npos; ++p) ++close;
  EXPECT_EQ(open, close);
}

TEST_F(CheckTest, ABrokenManifestIsAFailingTestCase) {
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  manifest.replace(manifest.find("    title: The sdpa patch"), 10, "    titel:");
  write(project.root() / "manifests/demo.yaml", manifest);
  CliRun r = project.run({"check", "--format", "junit"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.out.find("<testcase classname=\"patchmgr.check.demo\" name=\"check\" time=\"0\">"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unknown key &quot;titel&quot;"), std::string::npos) << r.out;
}

TEST_F(CheckTest, NoCloneIsReportedNotCrashed) {
  CliRun r = project.run({"check"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.out.find("  ERROR no clone at " + co().string() + "; run patchmgr sync demo first"), std::string::npos) << r.out;
}

}  // namespace
