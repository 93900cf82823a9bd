// write_series_files: export and rebase write the patch files and the manifest
// together or not at all, and never a manifest that does not load.
#include <gtest/gtest.h>

#include "git_cli.h"
#include "series_fixture.h"

using namespace testutil;

namespace {

class SeriesFilesTest : public CheckoutTest {
 protected:
  // Every file under patches/ and manifests/, to prove that nothing changed.
  std::string project_files() const {
    std::string s;
    for (const char* dir : {"manifests", "patches"})
      for (const auto& e : fs::recursive_directory_iterator(project.root() / dir))
        if (e.is_regular_file())
          s += e.path().lexically_relative(project.root()).string() + ":" + read(e.path()) + "\n";
    return s;
  }
  // The user amends patch 2 with the real git: a better sdpa call.
  void amend_sdpa(const std::string& message_option = "--no-edit") {
    std::string attend = file("model/attend.py");
    attend.replace(attend.find("(q, k, v)\n"), 10, "(q, k, v, scale=None)\n");
    write(co() / "model/attend.py", attend);
    ShellRun r = sh(co(), "git commit -q -a --amend " + message_option);
    ASSERT_EQ(r.code, 0) << r.out;
  }
};

TEST_F(SeriesFilesTest, AFailureBetweenRenamesPutsEveryFileBack) {
  sync_and_apply();
  amend_sdpa();
  std::string before = project_files();
  std::string checkout_before = snapshot();
  for (const char* point : {"series:written", "series:renamed:1", "series:renamed:2"}) {
    CliRun r = project.run({"export"}, {{"PATCHMGR_TEST_FAIL_AT", point}});
    EXPECT_EQ(r.code, 1) << point << "\n" << r.all();
    EXPECT_NE(r.err.find(std::string("injected failure at ") + point), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("demo: nothing was written: the manifest and the patch files are as they were"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(project_files(), before) << point;  // no new file, no temporary left behind, no old one replaced
    EXPECT_EQ(snapshot(), checkout_before) << point;
    EXPECT_EQ(project.run({"lint"}).code, 0) << point;
  }
  // Without the failure the same export goes through.
  CliRun ok = project.run({"export"});
  ASSERT_EQ(ok.code, 0) << ok.all();
  EXPECT_NE(project_files(), before);
  EXPECT_EQ(project.run({"lint"}).code, 0);
}

TEST_F(SeriesFilesTest, ContentThatDoesNotLoadIsNeverWritten) {
  sync_and_apply();
  // The amended commit loses its description: its patch file would not load.
  // (Its trailers stay: they say which patch the commit is.)
  amend_sdpa("-F- <<EOF\nAdd sdpa\n\n$(git log -1 --format='%(trailers)')\nEOF");
  std::string before = project_files();
  CliRun r = project.run({"export"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.err.find("demo: the rewritten series would not load:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("patches/demo/0002-sdpa.patch:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("missing a description"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("demo: nothing was written"), std::string::npos) << r.err;
  EXPECT_EQ(project_files(), before);
  EXPECT_EQ(project.run({"lint"}).code, 0);
  // The fix the message points at: a description, then export.
  ShellRun fix = sh(co(),
                    "git commit -q --amend -F- <<EOF\nAdd sdpa\n\nSDPA picks the fastest kernel.\n\n$(git log -1 "
                    "--format='%(trailers)')\nEOF");
  ASSERT_EQ(fix.code, 0) << fix.out;
  CliRun ok = project.run({"export"});
  ASSERT_EQ(ok.code, 0) << ok.all();
  EXPECT_EQ(project.run({"lint"}).code, 0);
}

TEST_F(SeriesFilesTest, RebaseThatFailsWhileWritingMovesNothing) {
  sync_and_apply();
  std::string attend = kBaseFiles.at("model/attend.py");
  attend.replace(attend.find("self.flash = flash"), 18, "self.flash = bool(flash)");
  project.upstream().commit({{"model/attend.py", attend}}, "Coerce flash to bool\n", {}, 1767500000);
  std::string before = project_files();
  std::string checkout_before = snapshot();
  CliRun r = project.run({"rebase", "--onto", "latest"}, {{"PATCHMGR_TEST_FAIL_AT", "series:renamed:1"}});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.err.find("demo: nothing was written"), std::string::npos) << r.err;
  EXPECT_EQ(project_files(), before);
  std::string after = snapshot();
  EXPECT_EQ(after.substr(after.find("HEAD ->")), checkout_before.substr(checkout_before.find("HEAD ->")));
  EXPECT_EQ(project.run({"lint"}).code, 0);
  EXPECT_EQ(status()["state"], "patched");
}

// A write killed between its renames is finished or undone by the next command.
TEST_F(SeriesFilesTest, AKilledWriteIsRepairedByTheNextCommand) {
  sync_and_apply();
  amend_sdpa();
  std::string before = project_files();
  CliRun killed = project.run({"export"}, {{"PATCHMGR_TEST_KILL_AT", "series:renamed:1"}});
  EXPECT_EQ(killed.code, 128 + 9) << killed.all();
  CliRun lint = project.run({"lint"});
  EXPECT_EQ(lint.code, 0) << lint.all();
  EXPECT_NE(lint.err.find("demo: patchmgr (pid "), std::string::npos) << lint.err;
  EXPECT_NE(
      lint.err.find(
          "was killed while writing the series; the manifest and the patch files are back as they were before it"),
      std::string::npos)
      << lint.err;
  EXPECT_EQ(project_files(), before);

  // Killed after the manifest went in: the new series stays, the copies go.
  CliRun late = project.run({"export"}, {{"PATCHMGR_TEST_KILL_AT", "series:renamed:2"}});
  EXPECT_EQ(late.code, 128 + 9) << late.all();
  CliRun after = project.run({"lint"});
  EXPECT_EQ(after.code, 0) << after.all();
  EXPECT_NE(after.err.find("was killed after writing the series; removed its copies of the old files"),
            std::string::npos)
      << after.err;
  EXPECT_NE(project_files(), before);
  EXPECT_EQ(project_files().find(".patchmgr-"), std::string::npos) << project_files();
  EXPECT_EQ(project.run({"export"}).code, 0);
}

}  // namespace
