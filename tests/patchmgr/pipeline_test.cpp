// patchmgr pipeline: sync, apply, build, build runtime, verify and check
// against latest over a synthetic upstream, with one JUnit report; and
// `build runtime`'s refusals (no runtime sources, checkouts not the patch set),
// which come before any cmake run.
#include <gtest/gtest.h>

#include "series_fixture.h"

using namespace testutil;

namespace {

class PipelineTest : public CheckoutTest {
 protected:
  void add_build(const std::string& steps) {
    fs::path file = project.root() / "manifests/demo.yaml";
    write(file, read(file) + "build:\n" + steps);
  }
};

TEST_F(PipelineTest, EveryStageRunsAndTheJUnitReportHasThemAll) {
  add_build("  - name: install\n    run: echo installed > installed.txt\n");
  CliRun r = project.run({"pipeline", "--junit", "report.xml"});
  EXPECT_EQ(r.code, 0) << r.all();
  for (const char* want : {"== sync ==", "== apply ==", "== build ==", "== build runtime ==", "== verify ==",
                           "== check against latest ==", "demo: step install ok", "pipeline summary", "pipeline: ok"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  EXPECT_NE(r.out.find("runtime  runtime        skipped"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("has no runtime/ to build"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("verify   demo           skipped"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(co() / "installed.txt"));
  std::string xml = read(project.root() / "report.xml");
  for (const char* want :
       {"<testsuites name=\"patchmgr pipeline\" tests=\"6\" failures=\"0\" errors=\"0\" skipped=\"2\"",
        "<testsuite name=\"pipeline sync\"", "<testcase classname=\"patchmgr.pipeline.apply\" name=\"demo\"",
        "<testcase classname=\"patchmgr.pipeline.build\" name=\"demo\"",
        "<testcase classname=\"patchmgr.pipeline.runtime\" name=\"runtime\"",
        "<testcase classname=\"patchmgr.pipeline.check\" name=\"demo\""})
    EXPECT_NE(xml.find(want), std::string::npos) << want << "\n" << xml;
  // Again: everything is already in place, and it still passes.
  CliRun again = project.run({"pipeline"});
  EXPECT_EQ(again.code, 0) << again.all();
}

TEST_F(PipelineTest, AFailingStageSkipsTheComponentsLaterStagesAndFailsTheRun) {
  add_build("  - name: broken\n    run: echo 'no compiler' >&2; exit 2\n");
  CliRun r = project.run({"pipeline", "--junit", "report.xml"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.err.find("demo: step broken (manifests/demo.yaml:"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("build    demo           FAILED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pipeline: 1 stage failed"), std::string::npos) << r.out;
  std::string xml = read(project.root() / "report.xml");
  EXPECT_NE(xml.find("<failure message=\"demo: step broken"), std::string::npos) << xml;
  EXPECT_NE(xml.find("    no compiler\n"), std::string::npos) << xml;
}

TEST_F(PipelineTest, UpstreamBreakingAPatchFailsTheCheckStage) {
  ASSERT_EQ(project.run({"sync"}).code, 0);
  std::string attend = kBaseFiles.at("model/attend.py");
  attend.replace(attend.find("if major == 8 and minor == 0:"), 29, "if (major, minor) == (8, 0):");
  project.upstream().commit({{"model/attend.py", attend}}, "Refactor the capability test\n", {}, 1767500000);
  CliRun r = project.run({"pipeline"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.out.find("check    demo           FAILED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 patch no longer applies against latest"), std::string::npos) << r.out;
  CliRun pin = project.run({"pipeline", "--against", "pin"});
  EXPECT_EQ(pin.code, 0) << pin.all();
}

TEST_F(PipelineTest, BuildRuntimeRefusesBeforeRunningCMake) {
  CliRun none = project.run({"build", "runtime"});
  EXPECT_EQ(none.code, 2) << none.all();
  EXPECT_NE(none.err.find("has no runtime to build (no CMakeLists.txt and runtime/CMakeLists.txt)"), std::string::npos)
      << none.err;
  // A tree with runtime sources, and a checkout that is not the patch set.
  write(project.root() / "CMakeLists.txt", "this is never configured\n");
  write(project.root() / "runtime/CMakeLists.txt", "\n");
  ASSERT_EQ(project.run({"sync"}).code, 0);
  CliRun r = project.run({"build", "runtime"});
  EXPECT_EQ(r.code, 3) << r.all();
  EXPECT_NE(r.err.find("runtime: not building: the checkouts are not the patch set"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("  demo: pristine, none of its 2 patches applied (run patchmgr apply demo)"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("or build anyway with --allow-mismatch"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(project.root() / "build"));
  // With the checkout patched, a libtorch that is not there is named before cmake runs.
  ASSERT_EQ(project.run({"apply"}).code, 0);
  CliRun lt = project.run({"build", "runtime", "--libtorch", (project.root() / "no-libtorch").string()});
  EXPECT_EQ(lt.code, 2) << lt.all();
  EXPECT_NE(lt.err.find("no-libtorch (from --libtorch) does not exist"), std::string::npos) << lt.err;
  EXPECT_FALSE(fs::exists(project.root() / "build"));
}

}  // namespace
