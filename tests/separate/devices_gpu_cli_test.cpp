// Several models on one GPU (--device cuda:0,cuda:0: the case a machine with
// one GPU can run; docs/cli.md, "Several devices") through the `separate`
// binary, CUDA graphs on: each file's stems are those of `--device cuda:0`,
// bit for bit in fp32, although the two models' threads capture and replay
// their graphs while the other one runs. Needs a GPU (label "gpu"): skipped,
// saying so, without one.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <csignal>
#include <execinfo.h>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/separate/cli_support.h"
#include "tests/separate/test_support.h"

namespace {

// Where a crash of this binary happened, on stderr (the GPU machine has no debugger).
void on_crash(int signal) {
  void* frames[64];
  backtrace_symbols_fd(frames, backtrace(frames, 64), 2);
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}
const bool crash_handler = (std::signal(SIGSEGV, on_crash), true);

using namespace stemkit;
namespace fs = std::filesystem;
using separate::test::read_file;
using separate::test::read_samples;
using separate::test::run_separate;
using separate::test::write_noise_song;

const fs::path kFixtures = STEMKIT_FIXTURES;
const std::string kModel = "-n " + (kFixtures / "htdemucs" / "small.th").string();
const std::vector<std::string> kStems = {"drums", "bass", "other", "vocals"};

TEST(SeparateDevicesGpu, OneGpuTwiceWritesTheStemsOfOneDeviceBitForBit) {
  if (!at::hasCUDA()) GTEST_SKIP() << "skipped: no GPU (this test runs separate --device cuda:0,cuda:0)";
  separate::test::TempDir dir;
  // Different lengths, so that the models finish out of step and capture the
  // shapes of their last, shorter batches while the other one separates.
  std::string inputs;
  std::vector<fs::path> songs;
  for (double seconds : {9.0, 2.0, 14.0, 5.5, 3.0, 11.0}) {
    songs.push_back(dir / ("song" + std::to_string(songs.size()) + ".wav"));
    write_noise_song(songs.back(), seconds);
    inputs += " " + songs.back().string();
  }
  // The GEMM algorithms timed by the first run are the second's (the same kernels in both).
  const std::string env = "XDG_CACHE_HOME=" + (dir / "cache").string();
  const std::string exact = kModel + " --float32 --clip-mode none -q --precision fp32 -b 2";
  auto r = run_separate(
      exact + " -d cuda:0 -o " + (dir / "one").string() + " --json " + (dir / "one.json").string() + inputs, env);
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_separate(
      exact + " -d cuda:0,cuda:0 -o " + (dir / "two").string() + " --json " + (dir / "two.json").string() + inputs,
      env);
  ASSERT_EQ(r.code, 0) << r.output;
  for (const auto& in : songs)
    for (const auto& stem : kStems) {
      const fs::path rel = fs::path("small") / in.stem() / (stem + ".wav");
      ASSERT_TRUE(fs::exists(dir / "two" / rel)) << rel;
      EXPECT_TRUE(at::equal(read_samples(dir / "one" / rel), read_samples(dir / "two" / rel))) << rel;
    }
  const auto one = nlohmann::json::parse(read_file(dir / "one.json"));
  const auto two = nlohmann::json::parse(read_file(dir / "two.json"));
  ASSERT_TRUE(one["plan"]["graphs"]["value"].get<bool>()) << one["plan"].dump();
  EXPECT_TRUE(two["plan"]["graphs"]["value"].get<bool>()) << two["plan"].dump();
  std::set<int> workers;
  for (const auto& f : two["files"]) {
    EXPECT_EQ(f["status"], "ok") << f.dump();
    // The graph runner's status: replaying, not "eager: capture failed: ...".
    EXPECT_EQ(f["graphs"].get<std::string>().rfind("replaying", 0), 0u) << f.dump();
    workers.insert(f["worker"].get<int>());
  }
  EXPECT_EQ(workers, (std::set<int>{0, 1})) << "each model takes files";
}

}  // namespace
