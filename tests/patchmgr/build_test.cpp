// patchmgr build: the manifest's build section (validation), the step runner
// (real shell steps: env, cwd, time limit, logs, conditions, a failing step
// with its log's tail), and `patchmgr build` on a synthetic upstream.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "patchmgr/build/steps.h"
#include "patchmgr/util/process.h"
#include "series_fixture.h"

using namespace testutil;

namespace {

// Appends top-level YAML (a build or verify section) to manifests/demo.yaml.
void append_manifest(const Project& p, const std::string& yaml) {
  fs::path file = p.root() / "manifests" / "demo.yaml";
  write(file, read(file) + yaml);
}

TEST(StepRunner, RunsInItsDirectoryWithItsEnvironmentAndLogs) {
  TempDir dir;
  fs::create_directories(dir.path() / "sub");
  patchmgr::Step s;
  s.name = "show";
  s.run = "pwd; echo \"greeting=$GREETING base=$BASE\"; echo to-stderr >&2";
  s.cwd = "sub";
  s.env = {{"GREETING", "hello world"}};
  fs::path log = dir.path() / "logs" / "01-show.log";
  auto o = patchmgr::run_step(s, dir.path(), {{"BASE", "from-caller"}}, log);
  EXPECT_EQ(o.result, patchmgr::StepOutcome::Result::ok) << o.detail;
  std::string text = read(log);
  EXPECT_NE(text.find((dir.path() / "sub").string() + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find("greeting=hello world base=from-caller"), std::string::npos) << text;
  EXPECT_NE(text.find("to-stderr"), std::string::npos) << text;
  EXPECT_NE(text.find("# patchmgr step show"), std::string::npos) << text;
}

TEST(StepRunner, AFalseConditionSkipsTheStep) {
  TempDir dir;
  patchmgr::Step s;
  s.name = "pip";
  s.when = "test -n \"$NOT_SET_ANYWHERE\"";
  s.run = "touch ran";
  auto o = patchmgr::run_step(s, dir.path(), {}, dir.path() / "pip.log");
  EXPECT_EQ(o.result, patchmgr::StepOutcome::Result::skipped);
  EXPECT_NE(o.detail.find("condition false: test -n"), std::string::npos) << o.detail;
  EXPECT_FALSE(fs::exists(dir.path() / "ran"));
  s.when = "true";
  o = patchmgr::run_step(s, dir.path(), {}, dir.path() / "pip.log");
  EXPECT_EQ(o.result, patchmgr::StepOutcome::Result::ok);
  EXPECT_TRUE(fs::exists(dir.path() / "ran"));
}

TEST(StepRunner, AFailingStepReportsItsExitCodeAndLogTail) {
  TempDir dir;
  patchmgr::Step s;
  s.name = "fails";
  s.run = "for i in $(seq 1 40); do echo line-$i; done; echo 'error: no module named setuptools' >&2; exit 3";
  fs::path log = dir.path() / "fails.log";
  auto o = patchmgr::run_step(s, dir.path(), {}, log);
  EXPECT_EQ(o.result, patchmgr::StepOutcome::Result::failed);
  EXPECT_EQ(o.detail, "exit code 3");
  std::string tail = patchmgr::log_tail(log, 5);
  EXPECT_NE(tail.find("    error: no module named setuptools\n"), std::string::npos) << tail;
  EXPECT_EQ(tail.find("line-30"), std::string::npos) << tail;
}

TEST(StepRunner, ATimeLimitKillsTheStepAndWhatItStarted) {
  TempDir dir;
  patchmgr::Step s;
  s.name = "slow";
  // A child in the background that would touch a file after the limit: the whole group goes.
  s.run = "(sleep 3; touch late) & echo started; sleep 30";
  s.timeout = 1;
  auto start = std::chrono::steady_clock::now();
  auto o = patchmgr::run_step(s, dir.path(), {}, dir.path() / "slow.log");
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(o.result, patchmgr::StepOutcome::Result::failed);
  EXPECT_NE(o.detail.find("timed out after 1 s"), std::string::npos) << o.detail;
  EXPECT_NE(o.detail.find("raise the step's timeout"), std::string::npos) << o.detail;
  EXPECT_LT(took, 8.0);
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  EXPECT_FALSE(fs::exists(dir.path() / "late")) << "the step's background child outlived the time limit";
}

TEST(StepRunner, AMissingWorkingDirectoryIsNamed) {
  TempDir dir;
  patchmgr::Step s;
  s.name = "x";
  s.run = "true";
  s.cwd = "nowhere";
  auto o = patchmgr::run_step(s, dir.path(), {}, dir.path() / "x.log");
  EXPECT_EQ(o.result, patchmgr::StepOutcome::Result::failed);
  EXPECT_NE(o.detail.find("nowhere does not exist; fix the step's cwd"), std::string::npos) << o.detail;
}

class BuildTest : public CheckoutTest {};

TEST_F(BuildTest, ManifestProblemsAreNamedWithTheirPlace) {
  append_manifest(project,
                  "build:\n"
                  "  - name: install\n"
                  "    rn: pip install -e .\n"
                  "  - name: Bad Name\n"
                  "    run: true\n"
                  "    timeout: soon\n"
                  "    cwd: ../elsewhere\n"
                  "    env: [A]\n"
                  "  - name: install\n"
                  "    run: true\n"
                  "verify:\n"
                  "  fixtures: /abs/data\n");
  CliRun r = project.run({"lint"});
  EXPECT_EQ(r.code, 2) << r.all();
  for (const char* want : {
           "demo.yaml:40:5: error: build[0] (install): unknown key \"rn\"; did you mean \"run\"?",
           "build[0] (install): missing required key \"run\"",
           "build[1] (Bad Name).name: found \"Bad Name\", expected lower-case letters, digits and '-'",
           "build[1] (Bad Name).timeout: found \"soon\", expected a time limit in seconds (600) or with a unit (90s, "
           "15m, 2h)",
           "build[1] (Bad Name).cwd: \"../elsewhere\" leaves the checkout",
           "build[1] (Bad Name).env: found a list, expected a mapping of variable names to values",
           "build[2] (install).name: duplicate step name \"install\", first used at line 39",
           "verify: missing required key \"tests\"",
           "verify.fixtures: \"/abs/data\" leaves the project root",
       })
    EXPECT_NE(r.err.find(want), std::string::npos) << want << "\n" << r.err;
}

TEST_F(BuildTest, StepsRunInOrderInThePatchedCheckout) {
  append_manifest(project,
                  "build:\n"
                  "  - name: first\n"
                  "    run: echo \"$PATCHMGR_COMPONENT $STEP_VALUE\" > built.txt; pwd >> built.txt\n"
                  "    env: {STEP_VALUE: \"42\"}\n"
                  "  - name: only-with-pip\n"
                  "    when: test \"$STEMKIT_INSTALL\" = pip\n"
                  "    run: touch pip-ran\n"
                  "  - name: second\n"
                  "    run: grep -q 'demo 42' built.txt && echo second >> built.txt\n"
                  "    timeout: 1m\n");
  CliRun refused = project.run({"build"});
  EXPECT_EQ(refused.code, 3) << refused.all();
  EXPECT_NE(
      refused.err.find(
          "demo: not building: the checkout is not the patch set of manifests/demo.yaml: no checkout at upstream/demo"),
      std::string::npos)
      << refused.err;
  sync_and_apply();
  CliRun r = project.run({"build"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("demo: step first ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("log build/logs/demo/01-first.log"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("demo: step only-with-pip skipped (condition false: test \"$STEMKIT_INSTALL\" = pip)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("demo: step second ok"), std::string::npos) << r.out;
  EXPECT_EQ(file("built.txt"), "demo 42\n" + fs::weakly_canonical(co()).string() + "\nsecond\n");
  EXPECT_FALSE(fs::exists(co() / "pip-ran"));
  EXPECT_TRUE(fs::exists(project.root() / "build/logs/demo/02-only-with-pip.log"));
  CliRun pip = project.run({"build"}, {{"STEMKIT_INSTALL", "pip"}});
  EXPECT_EQ(pip.code, 0) << pip.all();
  EXPECT_TRUE(fs::exists(co() / "pip-ran"));
}

TEST_F(BuildTest, AFailingStepStopsTheComponentAndShowsItsLog) {
  append_manifest(project,
                  "build:\n"
                  "  - name: editable-install\n"
                  "    run: |\n"
                  "      echo 'Obtaining file:///demo'\n"
                  "      echo 'ERROR: Could not find a version that satisfies setuptools' >&2\n"
                  "      exit 1\n"
                  "  - name: after\n"
                  "    run: touch after-ran\n");
  sync_and_apply();
  CliRun r = project.run({"build"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.err.find("patchmgr: demo: step editable-install (manifests/demo.yaml:39) failed: exit code 1; log "
                       "build/logs/demo/01-editable-install.log, last lines:"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("    ERROR: Could not find a version that satisfies setuptools\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("demo: the steps after it were not run"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(co() / "after-ran"));
}

TEST_F(BuildTest, AMismatchedCheckoutIsRefusedUnlessAllowed) {
  append_manifest(project, "build:\n  - name: mark\n    run: touch marked\n");
  ASSERT_EQ(project.run({"sync"}).code, 0);
  CliRun r = project.run({"build"});
  EXPECT_EQ(r.code, 3) << r.all();
  EXPECT_NE(r.err.find("pristine, none of its 2 patches applied (run patchmgr apply demo); or pass --allow-mismatch"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(co() / "marked"));
  CliRun allowed = project.run({"build", "--allow-mismatch"});
  EXPECT_EQ(allowed.code, 0) << allowed.all();
  EXPECT_NE(allowed.out.find("building a checkout that differs from its manifest (--allow-mismatch)"),
            std::string::npos)
      << allowed.out;
  EXPECT_TRUE(fs::exists(co() / "marked"));
  // An opt-in patch on top differs from the patch set too.
  ASSERT_EQ(project.run({"apply", "--with", "compile"}).code, 0);
  CliRun opt = project.run({"build"});
  EXPECT_EQ(opt.code, 3) << opt.all();
  EXPECT_NE(opt.err.find("opt-in patch compile applied, which the patch set leaves off"), std::string::npos) << opt.err;
}

TEST_F(BuildTest, StepsHoldTheLockAndAnInterruptStopsThem) {
  // A Ctrl-C (or kill) reaches the step although it runs in its own process group.
  append_manifest(project, "build:\n  - name: slow\n    run: touch started; sleep 3; touch late\n");
  sync_and_apply();
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(project.root().c_str()) != 0) _exit(126);
    int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    execl(PATCHMGR_BIN, PATCHMGR_BIN, "build", static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 100 && !fs::exists(co() / "started"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(co() / "started"));
  // While the step runs, the checkout is locked: apply cannot move it.
  CliRun apply = project.run({"apply"});
  EXPECT_EQ(apply.code, 3) << apply.all();
  EXPECT_NE(apply.err.find("is in use by patchmgr build"), std::string::npos) << apply.err;
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << status;
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  EXPECT_FALSE(fs::exists(co() / "late")) << "the step went on after patchmgr was interrupted";
}

}  // namespace
