// The progress of a run of several files through the `separate` binary
// (docs/cli.md, "Progress"): when stderr is not a terminal (a pipe here, as a
// log or a Slurm job's output), plain lines at --progress-interval and no
// carriage return or escape sequence; with -q nothing but the errors; on a
// terminal (a pseudo-terminal made by util-linux's script(1); skipped without
// it), the run's line above a bar per device, the per-file lines above them.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "tests/separate/cli_support.h"
#include "tests/separate/test_support.h"

namespace {

using namespace stemkit;
namespace fs = std::filesystem;
using separate::test::run_separate;
using separate::test::run_shell;
using separate::test::write_noise_song;

const std::string kModel = "-n " + (fs::path(STEMKIT_FIXTURES) / "htdemucs" / "small.th").string();

// Three songs and a broken file, third of four.
std::string inputs(const separate::test::TempDir& dir) {
  std::string out;
  for (const char* name : {"one", "two"}) {
    write_noise_song(dir / (std::string(name) + ".wav"), 0.4);
    out += " " + (dir / (std::string(name) + ".wav")).string();
  }
  separate::test::write_file(dir / "broken.wav", "not audio");
  write_noise_song(dir / "four.wav", 0.3);
  return out + " " + (dir / "broken.wav").string() + " " + (dir / "four.wav").string();
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(SeparateRunProgress, NotATerminalPlainLinesAtTheInterval) {
  separate::test::TempDir dir;
  const std::string files = inputs(dir);
  for (const std::string device : {"cpu", "cpu,cpu"}) {
    const std::string out = (dir / ("out-" + device)).string();
    auto r = run_separate(kModel + " -d " + device + " -j 2 --progress-interval 0 -o " + out + files);
    EXPECT_EQ(r.code, 1) << r.output;  // the broken file
    EXPECT_EQ(r.output.find('\r'), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find('\x1b'), std::string::npos) << r.output;
    // A line after each file's outcome, counting up; the failure among them.
    for (int done = 1; done <= 4; ++done)
      EXPECT_EQ(count(r.output, "separate: " + std::to_string(done) + " of 4 files done"), 1u)
          << device << ": " << done << "\n"
          << r.output;
    EXPECT_NE(r.output.find("separate: 4 of 4 files done (1 failed), 1.1 s of audio, "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(", ETA 0:00\n"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("broken.wav: "), std::string::npos) << r.output;
    // The default interval (a minute): none in a run this short.
    r = run_separate(kModel + " -d " + device + " -j 2 -o " + out + "-default" + files);
    EXPECT_EQ(r.output.find("files done"), std::string::npos) << r.output;
  }
}

TEST(SeparateRunProgress, QuietSaysOnlyTheErrors) {
  separate::test::TempDir dir;
  const std::string files = inputs(dir);
  for (const std::string device : {"cpu", "cpu,cpu"}) {
    const auto r = run_separate(kModel + " -q -d " + device + " -j 2 --progress-interval 0 -o " +
                                (dir / ("out-" + device)).string() + files);
    EXPECT_EQ(r.code, 1) << r.output;
    // Two lines: the file that failed, and the count.
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 2) << r.output;
    EXPECT_NE(r.output.find("broken.wav: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("separate: 1 of 4 files failed"), std::string::npos) << r.output;
  }
}

TEST(SeparateRunProgress, OnATerminalTheRunsLineAboveABarPerDevice) {
  if (run_shell("command -v script").code != 0) GTEST_SKIP() << "skipped: no script(1) (util-linux) to make a terminal";
  separate::test::TempDir dir;
  const std::string files = inputs(dir);
  const std::string separate = STEMKIT_SEPARATE;
  const auto r = run_shell("script -qec '" + separate + " " + kModel + " -d cpu,cpu -j 2 -o " + (dir / "out").string() +
                           files + "' /dev/null");
  EXPECT_EQ(r.code, 1) << r.output;
  // The block, redrawn in place: erased from its first line, written again.
  EXPECT_NE(r.output.find("\x1b[J"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("separate [....................] 0/4 files"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cpu#0 one ["), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cpu#1 two ["), std::string::npos) << r.output;
  // Each file's line printed where the block began, whole.
  for (const char* name : {"one", "two", "four"})
    EXPECT_NE(r.output.find("\x1b[Jseparate: " + (dir / (std::string(name) + ".wav")).string() + ": 0."),
              std::string::npos)
        << name << "\n"
        << r.output;
  // The run's last frame stays: every file, the failure counted.
  EXPECT_NE(r.output.find("separate [####################] 4/4 files, 1 failed, 1.1 s of audio"), std::string::npos)
      << r.output;
  // With -q, on a terminal too: nothing but the errors.
  const auto q = run_shell("script -qec '" + separate + " " + kModel + " -q -d cpu,cpu -j 2 -o " +
                           (dir / "quiet").string() + files + "' /dev/null");
  EXPECT_EQ(q.output.find('\x1b'), std::string::npos) << q.output;
  EXPECT_EQ(q.output.find("separate ["), std::string::npos) << q.output;
}

}  // namespace
