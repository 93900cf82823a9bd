// patchmgr check: the series applied in memory against the pin, upstream's
// latest commit or any commit, with text, JSON and JUnit reports.
#include <gtest/gtest.h>

#include "reference_tools.h"
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
  EXPECT_EQ(r.out, "demo: check against pin (" + pin +
                       ")\n"
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
  EXPECT_NE(r.out.find("demo: check against latest (" + to_hex(latest).substr(0, 12) + ")"), std::string::npos)
      << r.out;
  // Upstream rewrote the very line the patch changes: no offset, fuzz or merge can place it.
  EXPECT_NE(r.out.find("  0001 flash-attention              CONFLICT: model/attend.py, hunk 1 (@@ -6,7 +6,7 @@"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("not found; the three-way merge with the pin conflicts in model/attend.py (upstream line 9): "
                       "`if (major, minor) == (8, 0):`"),
            std::string::npos)
      << r.out;
  // The next patch is checked without it, and says so.
  EXPECT_NE(
      r.out.find("  0002 sdpa                         applies (checked without flash-attention, which conflicts)"),
      std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("demo: 1 of 3 patches fail against latest (--fail-on conflict): 2 applies, 1 conflict"),
            std::string::npos)
      << r.out;
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
  EXPECT_EQ(j["patches"][1]["class"], "applies");
  CliRun bad = project.run({"check", "--against", "v1.0"});
  EXPECT_EQ(bad.code, 2) << bad.all();
  EXPECT_NE(bad.err.find("--against v1.0: expected pin, latest or a full 40-hex commit SHA"), std::string::npos)
      << bad.err;
}

TEST_F(CheckTest, JUnitReportHasOneTestCasePerPatch) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  git_oid latest = upstream_breaks_patch_one();
  CliRun r = project.run({"check", "--against", "latest", "--format", "junit", "--output", "report.xml"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.out.find("demo: 1 of 3 patches fail against latest (--fail-on conflict)"), std::string::npos)
      << r.out;  // the text summary
  std::string xml = read(project.root() / "report.xml");
  EXPECT_EQ(xml.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"patchmgr check\" tests=\"3\" "
                      "failures=\"1\" errors=\"0\" skipped=\"0\" time=\"0\">\n",
                      0),
            0u)
      << xml;
  EXPECT_NE(xml.find("<testsuite name=\"demo against latest (" + to_hex(latest).substr(0, 12) +
                     ")\" tests=\"3\" failures=\"1\""),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<testcase classname=\"patchmgr.check.demo\" name=\"0001-flash-attention\" time=\"0\">\n"
                     "      <properties><property name=\"class\" value=\"conflict\"/></properties>\n"
                     "      <failure message=\"flash-attention: conflict\">model/attend.py, hunk 1 (@@ -6,7 +6,7 @@"),
            std::string::npos)
      << xml;
  // compile applies as it is, but without patch 1 under it: the report says so.
  EXPECT_NE(xml.find("<testcase classname=\"patchmgr.check.demo\" name=\"0003-compile\" time=\"0\">\n"
                     "      <properties><property name=\"class\" value=\"applies\"/></properties>\n"
                     "      <system-out>0003 compile                      applies (checked without flash-attention, "
                     "which conflicts)</system-out>"),
            std::string::npos)
      << xml;
  EXPECT_EQ(xml.substr(xml.size() - 14), "</testsuites>\n") << xml;
  // The elements nest: every opened testcase with a body is closed.
  size_t open = 0, close = 0;
  for (size_t p = 0; (p = xml.find("\">\n      <", p)) != std::string::npos; ++p) ++open;
  for (size_t p = 0; (p = xml.find("</testcase>", p)) != std::string::npos; ++p) ++close;
  EXPECT_EQ(open, close);
}

// The line upstream adds above both patches' hunks (issue 20: it turned the nightly check red).
TEST_F(CheckTest, LinesAddedAboveTheHunksAreAnOffsetAndStayGreen) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  std::string attend = "import math\n" + kBaseFiles.at("model/attend.py");
  git_oid latest = project.upstream().commit({{"model/attend.py", attend}}, "Import math\n", {}, 1767500000);
  CliRun r = project.run({"check", "--against", "latest"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("  0001 flash-attention              offset: model/attend.py hunk 1 +1\n"
                       "  0002 sdpa                         offset: model/attend.py hunk 1 +1\n"
                       "  0003 compile                      applies\n"
                       "demo: no patch fails against latest (--fail-on conflict): 1 applies, 2 offset\n"),
            std::string::npos)
      << r.out;
  // git apply agrees: it applies both at one line's offset.
  Repo(co(), Repo::Existing{}).checkout(latest);
  ToolVerdict v = ask_tools(co(), project.root() / "patches/demo/0001-flash-attention.patch");
  EXPECT_TRUE(v.git_apply) << v.log;
  EXPECT_EQ(v.git_offsets.at(1), 1) << v.log;

  CliRun strict = project.run({"check", "--against", "latest", "--fail-on", "offset"});
  EXPECT_EQ(strict.code, 1) << strict.all();
  EXPECT_NE(strict.out.find("  0001 flash-attention              OFFSET: model/attend.py hunk 1 +1"), std::string::npos)
      << strict.out;
  EXPECT_NE(strict.out.find("demo: 2 of 3 patches fail against latest (--fail-on offset): 1 applies, 2 offset"),
            std::string::npos)
      << strict.out;

  CliRun json = project.run({"check", "--against", "latest", "--format", "json"});
  ASSERT_EQ(json.code, 0) << json.all();
  auto j = nlohmann::json::parse(json.out)["components"][0];
  EXPECT_EQ(j["fail_on"], "conflict");
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["patches"][0]["class"], "offset");
  EXPECT_EQ(j["patches"][0]["result"], "applies");
  EXPECT_EQ(j["patches"][0]["hunks"][0]["file"], "model/attend.py");
  EXPECT_EQ(j["patches"][0]["hunks"][0]["placement"], "offset");
  EXPECT_EQ(j["patches"][0]["hunks"][0]["offset"], 1);
  EXPECT_EQ(j["patches"][0]["hunks"][0]["line"], 7);
  EXPECT_EQ(j["patches"][0]["hunks"][0]["header"], "@@ -6,7 +6,7 @@ class Attend:");
  EXPECT_EQ(j["patches"][2]["class"], "applies");

  CliRun junit = project.run({"check", "--against", "latest", "--format", "junit"});
  EXPECT_EQ(junit.code, 0) << junit.all();
  EXPECT_NE(junit.out.find("tests=\"3\" failures=\"0\""), std::string::npos) << junit.out;
  EXPECT_NE(junit.out.find(
                "<testcase classname=\"patchmgr.check.demo\" name=\"0001-flash-attention\" time=\"0\">\n"
                "      <properties><property name=\"class\" value=\"offset\"/></properties>\n"
                "      <system-out>0001 flash-attention              offset: model/attend.py hunk 1 +1</system-out>\n"
                "    </testcase>"),
            std::string::npos)
      << junit.out;
}

TEST_F(CheckTest, FailOnSetsTheClassThatTurnsTheCheckRed) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  // Upstream edits line 6, the first context line of patch 1's hunk: only patch -F1 places it.
  std::string attend = kBaseFiles.at("model/attend.py");
  attend.replace(attend.find("self.flash = flash"), 18, "self.flash = bool(flash)");
  project.upstream().commit({{"model/attend.py", attend}}, "Coerce flash\n", {}, 1767500000);
  CliRun r = project.run({"check", "--against", "latest"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("  0001 flash-attention              fuzz: model/attend.py hunk 1 fuzz 1 at +0"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(project.run({"check", "--against", "latest", "--fail-on", "3-way"}).code, 0);
  EXPECT_EQ(project.run({"check", "--against", "latest", "--fail-on", "fuzz"}).code, 1);
  EXPECT_EQ(project.run({"check", "--against", "latest", "--fail-on", "offset"}).code, 1);
  CliRun bad = project.run({"check", "--fail-on", "sometimes"});
  EXPECT_EQ(bad.code, 2) << bad.all();
  EXPECT_NE(bad.err.find("--fail-on"), std::string::npos) << bad.err;

  // Upstream takes patch 1: reported, green by default, red from --fail-on upstream.
  std::string taken = attend;
  taken.replace(taken.find("if major == 8 and minor == 0:"), 29, "if major >= 8:");
  project.upstream().commit({{"model/attend.py", taken}}, "Flash on every Ampere and later\n", {}, 1767600000);
  r = project.run({"check", "--against", "latest"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("  0001 flash-attention              already upstream: drop it (patchmgr rebase marks it "
                       "upstreamed), or set its status to upstreamed"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(project.run({"check", "--against", "latest", "--fail-on", "upstream"}).code, 1);
  EXPECT_EQ(project.run({"check", "--against", "latest", "--fail-on", "conflict"}).code, 0);

  // The manifest records where upstream took it (upstream_status accepted): check names that commit.
  git_oid took = project.upstream().head();
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  size_t entry = manifest.find("    status: implemented\n");
  ASSERT_NE(entry, std::string::npos) << manifest;
  manifest.insert(entry, "    upstream_status: accepted\n    upstream_commit: " + to_hex(took) + "\n");
  write(project.root() / "manifests/demo.yaml", manifest);
  ASSERT_EQ(project.run({"lint"}).code, 0) << project.run({"lint"}).all();
  r = project.run({"check", "--against", "latest", "--format", "json"});
  EXPECT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out)["components"][0]["patches"][0];
  EXPECT_EQ(j["class"], "already upstream") << r.out;
  EXPECT_EQ(j["upstream_commit"], to_hex(took)) << r.out;
  r = project.run({"check", "--against", "latest"});
  EXPECT_NE(r.out.find("  0001 flash-attention              already upstream: accepted upstream in " +
                       to_hex(took).substr(0, 12) + ": drop it (patchmgr rebase marks it upstreamed)"),
            std::string::npos)
      << r.out;
}

TEST_F(CheckTest, BisectNamesTheUpstreamCommitThatBrokeAPatch) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  project.upstream().commit({{"NEWS.md", "news\n"}}, "News\n", {}, 1767400000);
  std::string attend = "import math\n" + kBaseFiles.at("model/attend.py");
  project.upstream().commit({{"model/attend.py", attend}}, "Import math\n", {}, 1767500000);
  project.upstream().commit({{"NEWS.md", "more news\n"}}, "More news\n", {}, 1767600000);
  attend.replace(attend.find("if major == 8 and minor == 0:"), 29, "if (major, minor) == (8, 0):");
  git_oid breaking =
      project.upstream().commit({{"model/attend.py", attend}}, "Refactor the capability test\n", {}, 1767700000);
  project.upstream().commit({{"NEWS.md", "even more news\n"}}, "Even more news\n", {}, 1767800000);
  CliRun r = project.run({"check", "--against", "latest", "--bisect"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.out.find("bisect: conflict since " + to_hex(breaking).substr(0, 12) +
                       " (2026-01-06, Upstream Author: Refactor the capability test); offset before (6 commits, "),
            std::string::npos)
      << r.out;
  CliRun json = project.run({"check", "--against", "latest", "--bisect", "--format", "json"});
  auto j = nlohmann::json::parse(json.out)["components"][0]["patches"];
  EXPECT_EQ(j[0]["bisect"]["commit"], to_hex(breaking));
  EXPECT_EQ(j[0]["bisect"]["before"], "offset");
  EXPECT_EQ(j[0]["bisect"]["after"], "conflict");
  EXPECT_LE(j[0]["bisect"]["classifications"].get<int>(), 4);
  // sdpa only moved: the commit that moved it is named; compile did not change.
  EXPECT_EQ(j[1]["class"], "offset");
  EXPECT_EQ(j[1]["bisect"]["subject"], "Import math");
  EXPECT_EQ(j[1]["bisect"]["before"], "applies");
  EXPECT_FALSE(j[2].contains("bisect")) << j[2];
}

TEST_F(CheckTest, ABrokenManifestIsAFailingTestCase) {
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  manifest.replace(manifest.find("    title: The sdpa patch"), 10, "    titel:");
  write(project.root() / "manifests/demo.yaml", manifest);
  CliRun r = project.run({"check", "--format", "junit"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.out.find("<testcase classname=\"patchmgr.check.demo\" name=\"check\" time=\"0\">"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("unknown key &quot;titel&quot;"), std::string::npos) << r.out;
}

TEST_F(CheckTest, NoCloneIsReportedNotCrashed) {
  CliRun r = project.run({"check"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.out.find("  ERROR no clone at " + co().string() + "; run patchmgr sync demo first"), std::string::npos)
      << r.out;
}

}  // namespace
