// Several devices in one run (--device cpu,cpu: two models on the CPU, the
// case a machine without GPUs can run; docs/cli.md, "Several devices")
// through the `separate` binary: each file's stems are those of a run on one
// device with the same threads per model, the --json entries and the --record
// records stay in input order when files finish out of it, a failing file
// fails alone, --skip-existing skips as before, ensembles spread too, and a
// bad device list is a usage error (exit 2) before any work.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/separate/cli_support.h"
#include "tests/separate/test_support.h"

namespace {

using namespace stemkit;
namespace fs = std::filesystem;
using separate::test::read_file;
using separate::test::read_samples;
using separate::test::run_separate;
using separate::test::write_noise_song;

const fs::path kFixtures = STEMKIT_FIXTURES;
const std::string kModel = "-n " + (kFixtures / "htdemucs" / "small.th").string();
const std::vector<std::string> kStems = {"drums", "bass", "other", "vocals"};

nlohmann::json read_json(const fs::path& path) { return nlohmann::json::parse(read_file(path)); }

std::vector<nlohmann::json> read_records(const fs::path& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

ino_t inode(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

// The songs, of different lengths so that the two models finish out of step.
std::vector<fs::path> songs(const fs::path& dir, const std::vector<double>& seconds) {
  std::vector<fs::path> out;
  for (size_t i = 0; i < seconds.size(); ++i) {
    out.push_back(dir / ("song" + std::to_string(i) + ".wav"));
    write_noise_song(out.back(), seconds[i]);
  }
  return out;
}

std::string join(const std::vector<fs::path>& paths) {
  std::string out;
  for (const auto& p : paths) out += " " + p.string();
  return out;
}

TEST(SeparateDevices, CpuCpuWritesTheStemsOfOneDeviceBitForBit) {
  separate::test::TempDir dir;
  const auto inputs = songs(dir.path(), {1.5, 0.4, 2.0, 0.7, 0.3});
  // The same threads per model: libtorch's CPU kernels may sum in another
  // order with another thread count, so `-d cpu -j 1` is what each of
  // `-d cpu,cpu -j 2`'s models runs like.
  const std::string exact = kModel + " --float32 --clip-mode none -q";
  auto r = run_separate(exact + " -d cpu -j 1 -o " + (dir / "one").string() + join(inputs));
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_separate(exact + " -d cpu,cpu -j 2 -o " + (dir / "two").string() + " --json " + (dir / "two.json").string() +
                   join(inputs));
  ASSERT_EQ(r.code, 0) << r.output;
  for (const auto& in : inputs)
    for (const auto& stem : kStems) {
      const fs::path rel = fs::path("small") / in.stem() / (stem + ".wav");
      ASSERT_TRUE(fs::exists(dir / "two" / rel)) << rel;
      // The samples: a float WAV's PEAK chunk holds the time it was written.
      EXPECT_TRUE(at::equal(read_samples(dir / "one" / rel), read_samples(dir / "two" / rel))) << rel;
    }
  const auto summary = read_json(dir / "two.json");
  EXPECT_EQ(summary["device"], "cpu,cpu");
  ASSERT_EQ(summary["devices"].size(), 2u);
  EXPECT_EQ(summary["plan"]["devices"]["value"], "cpu, cpu");
  EXPECT_NE(summary["plan"]["devices"]["reason"].get<std::string>().find("1 CPU thread each (-j 2 shared"),
            std::string::npos)
      << summary["plan"].dump();
  ASSERT_EQ(summary["files"].size(), inputs.size());
  std::set<int> workers;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto& f = summary["files"][i];
    EXPECT_EQ(f["input"], inputs[i].string());
    EXPECT_EQ(f["status"], "ok");
    EXPECT_EQ(f["device"], "cpu");
    workers.insert(f["worker"].get<int>());
  }
  EXPECT_EQ(workers, (std::set<int>{0, 1})) << "each model starts with a file of its own";
}

TEST(SeparateDevices, RecordsAndJsonStayInInputOrderWhenFilesFinishOutOfIt) {
  separate::test::TempDir dir;
  // The first song is long: model 0 is still on it while model 1 does the second (and
  // others, but for the one model 0 took ahead).
  const auto inputs = songs(dir.path(), {8.0, 0.3, 0.3, 0.3, 0.3});
  const auto r = run_separate(kModel + " -d cpu,cpu -j 2 --record -o " + (dir / "out").string() + " --json " +
                              (dir / "s.json").string() + join(inputs));
  ASSERT_EQ(r.code, 0) << r.output;
  // Finished out of order: the per-file lines, printed as each one ends, name a later song first.
  const size_t first_done = r.output.find("song0.wav: 8.0 s of audio");
  const size_t later_done = r.output.find("song1.wav: 0.3 s of audio");
  ASSERT_NE(first_done, std::string::npos) << r.output;
  ASSERT_NE(later_done, std::string::npos) << r.output;
  EXPECT_LT(later_done, first_done) << "the long song did not finish last; the order below proves nothing\n"
                                    << r.output;
  const auto summary = read_json(dir / "s.json");
  const auto records = read_records(dir / "out" / "small" / "catalog.jsonl");
  ASSERT_EQ(records.size(), inputs.size() + 1);
  EXPECT_EQ(records[0]["record"], "run");
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ(summary["files"][i]["input"], inputs[i].string());
    EXPECT_EQ(records[i + 1]["input"], inputs[i].string());
    EXPECT_EQ(records[i + 1]["status"], "ok");
    EXPECT_EQ(records[i + 1]["device"], "cpu");  // the file's device, not the run's list
    EXPECT_EQ(records[i + 1]["worker"], summary["files"][i]["worker"]);
  }
  // Each model starts with a file of its own; which takes which next is the queue's.
  EXPECT_EQ(summary["files"][0]["worker"], 0);
  EXPECT_EQ(summary["files"][1]["worker"], 1);
}

TEST(SeparateDevices, AFailingFileFailsAloneOnEitherDevice) {
  separate::test::TempDir dir;
  auto inputs = songs(dir.path(), {0.5, 0.3, 0.4});
  separate::test::write_file(dir / "broken.wav", "RIFF, but not a WAV file");
  inputs.insert(inputs.begin() + 1, dir / "broken.wav");
  separate::test::write_file(dir / "broken2.wav", "nor this");
  inputs.push_back(dir / "broken2.wav");
  const auto r = run_separate(kModel + " -d cpu,cpu -j 2 -q --record -o " + (dir / "out").string() + " --json " +
                              (dir / "s.json").string() + join(inputs));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("broken.wav: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 of 5 files failed"), std::string::npos) << r.output;
  const auto summary = read_json(dir / "s.json");
  const auto records = read_records(dir / "out" / "small" / "catalog.jsonl");
  ASSERT_EQ(records.size(), inputs.size() + 1);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const bool broken = inputs[i].stem().string().rfind("broken", 0) == 0;
    const auto& f = summary["files"][i];
    EXPECT_EQ(f["input"], inputs[i].string());
    EXPECT_EQ(f["status"], broken ? "failed" : "ok") << f.dump();
    EXPECT_EQ(records[i + 1]["status"], f["status"]);
    EXPECT_TRUE(f.contains("worker")) << f.dump();
    EXPECT_EQ(fs::exists(dir / "out" / "small" / inputs[i].stem() / "vocals.wav"), !broken) << inputs[i];
  }
  EXPECT_FALSE(fs::exists(dir / "out" / "small" / "broken")) << "a failed file leaves no folder";
}

// --decode-ahead N: N files decoded at once while one is separated (the
// default on this machine's few cores is 1). Every file's stems are those of
// one-ahead decoding, the records stay in input order, and a file that cannot
// be read fails alone, wherever it is in the queue.
TEST(SeparateDevices, DecodingFilesAheadChangesNoStemAndNoOrder) {
  separate::test::TempDir dir;
  auto inputs = songs(dir.path(), {0.9, 0.3, 0.6, 0.2, 0.5});
  separate::test::write_file(dir / "broken.wav", "RIFF, but not a WAV file");
  inputs.insert(inputs.begin() + 2, dir / "broken.wav");
  const std::string exact = kModel + " --float32 --clip-mode none -q";
  auto r = run_separate(exact + " -d cpu -j 1 --decode-ahead 1 -o " + (dir / "one").string() + join(inputs));
  ASSERT_EQ(r.code, 1) << r.output;
  for (const std::string& devices : {"cpu -j 1 --decode-ahead 4", "cpu,cpu -j 2 --decode-ahead 3"}) {
    const std::string name = "ahead-" + std::to_string(devices.size());
    const fs::path out = dir / name, json = dir / (name + ".json");
    r = run_separate(exact + " -d " + devices + " -o " + out.string() + " --json " + json.string() + join(inputs));
    ASSERT_EQ(r.code, 1) << devices << "\n" << r.output;
    EXPECT_NE(r.output.find("broken.wav: "), std::string::npos) << r.output;
    const auto summary = read_json(json);
    ASSERT_EQ(summary["files"].size(), inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      const bool broken = inputs[i].stem() == "broken";
      EXPECT_EQ(summary["files"][i]["input"], inputs[i].string());
      EXPECT_EQ(summary["files"][i]["status"], broken ? "failed" : "ok") << summary["files"][i].dump();
      if (broken) continue;
      for (const auto& stem : kStems) {
        const fs::path rel = fs::path("small") / inputs[i].stem() / (stem + ".wav");
        EXPECT_TRUE(at::equal(read_samples(dir / "one" / rel), read_samples(out / rel))) << devices << ": " << rel;
      }
    }
  }
  r = run_separate(kModel + " --decode-ahead 0 " + inputs.front().string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--decode-ahead"), std::string::npos) << r.output;
}

TEST(SeparateDevices, SkipExistingSkipsCompleteSetsAndRedoesTheRest) {
  separate::test::TempDir dir;
  const auto inputs = songs(dir.path(), {0.4, 0.3, 0.5});
  const std::string run = kModel + " -d cpu,cpu -j 2 -q --skip-existing -o " + (dir / "out").string() + " --json " +
                          (dir / "s.json").string() + join(inputs);
  auto r = run_separate(run);
  ASSERT_EQ(r.code, 0) << r.output;
  const fs::path track = dir / "out" / "small";
  const ino_t kept = inode(track / "song0" / "bass.wav");
  fs::remove(track / "song1" / "drums.wav");  // song1's set is no longer complete
  r = run_separate(run);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto summary = read_json(dir / "s.json");
  EXPECT_EQ(summary["files"][0]["status"], "skipped");
  EXPECT_EQ(summary["files"][1]["status"], "ok");
  EXPECT_EQ(summary["files"][2]["status"], "skipped");
  EXPECT_EQ(inode(track / "song0" / "bass.wav"), kept) << "a skipped track was written again";
  EXPECT_TRUE(fs::exists(track / "song1" / "drums.wav"));
}

TEST(SeparateDevices, AnEnsembleSpreadsToo) {
  separate::test::TempDir dir;
  const auto inputs = songs(dir.path(), {0.6, 0.4, 0.3});
  const std::string run = kModel + " -n " + (kFixtures / "htdemucs" / "merge.th").string() +
                          " --ensemble median_wave --two-stems vocals --other-method minus --float32 --clip-mode none "
                          "-q" +
                          join(inputs);
  auto r = run_separate(run + " -d cpu -j 1 -o " + (dir / "one").string());
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_separate(run + " -d cpu,cpu -j 2 -o " + (dir / "two").string());
  ASSERT_EQ(r.code, 0) << r.output;
  for (const auto& in : inputs)
    for (const char* stem : {"vocals.wav", "minus_vocals.wav"}) {
      const fs::path rel = fs::path("ensemble-small+merge") / in.stem() / stem;
      EXPECT_TRUE(at::equal(read_samples(dir / "one" / rel), read_samples(dir / "two" / rel))) << rel;
    }
}

TEST(SeparateDevices, ExplainShowsTheDevices) {
  const auto r = run_separate(kModel + " -d cpu,cpu -j 4 --explain");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("devices: cpu, cpu (--device cpu,cpu: a model on each"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 CPU threads each (-j 4 shared between 2 models)"), std::string::npos) << r.output;
}

TEST(SeparateDevices, BadDeviceListsAreUsageErrorsBeforeAnyWork) {
  separate::test::TempDir dir;
  write_noise_song(dir / "song.wav", 0.3);
  const bool gpu = at::hasCUDA() && at::detail::getCUDAHooks().getNumGPUs() > 0;
  struct Case {
    std::string device, says;
  };
  std::vector<Case> cases{
      {"cpu,", "--device cpu,: the list ends with a comma"},
      {",cpu", "--device ,cpu: an empty item in the list"},
      {"cpu,,cpu", "an empty item"},
      {"auto,cpu", "auto picks one device; list the devices instead"},
      {"cpu,xpu", "--device cpu,xpu: xpu: expected cpu, cuda, cuda:N or auto"},
      // No GPU: this libtorch sees none; with GPUs: there is no 99th.
      {"cuda:0,cuda:99", gpu ? "--device cuda:0,cuda:99: cuda:99: this machine has" : "sees no CUDA or ROCm GPU"},
      {"cpu,cuda:0", gpu ? "one kind of device per run" : "--device cpu,cuda:0: cuda:0: this libtorch"},
  };
  if (!gpu) cases.push_back({"cuda:all", "--device cuda:all: cuda:all means every GPU, and this libtorch"});
  const fs::path out = dir / "out";
  for (const auto& c : cases) {
    const auto r = run_separate(kModel + " -d " + c.device + " -o " + out.string() + " " + (dir / "song.wav").string());
    EXPECT_EQ(r.code, 2) << c.device << "\n" << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << c.device << "\n" << r.output;
  }
  const auto r = run_separate(kModel + " -d cpu,cpu --bench --bench-seconds 1");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--bench measures one device"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
