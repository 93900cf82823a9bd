// A whole catalog through the `separate` binary (docs/cli.md, "A whole
// catalog"): a catalog run killed (SIGKILL, through the LD_PRELOAD shim
// tests/separate/kill_shim.c) at each fsync and each rename across its
// tracks, then resumed with --skip-existing: the tracks it had finished are
// not separated again (their files untouched), none is left half written,
// and --summarize reports the catalog complete with no track separated twice.
// Also the shards' usage errors, a failing track and a shard never run in
// the report, an empty shard, and --quiet: nothing but errors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/audio/audio.h"
#include "tests/separate/test_support.h"
#include "tests/separate/cli_support.h"

namespace {

using namespace stemkit;
namespace fs = std::filesystem;
const std::string kModel = std::string(STEMKIT_FIXTURES) + "/htdemucs/small.th";
const std::vector<std::string> kTracks = {"one", "two", "three"};

using Result = separate::test::CliResult;
using separate::test::read_samples;
using separate::test::run_separate;
using separate::test::write_noise_song;

using separate::test::read_file;

std::vector<nlohmann::json> records(const fs::path& file) {
  std::vector<nlohmann::json> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// A stem's identity on disk: a track separated again gets new files (renamed into place).
std::map<std::string, ino_t> inodes(const fs::path& track_dir) {
  std::map<std::string, ino_t> out;
  if (!fs::exists(track_dir)) return out;
  for (const auto& e : fs::directory_iterator(track_dir)) {
    struct stat st {};
    if (::stat(e.path().c_str(), &st) == 0) out[e.path().filename().string()] = st.st_ino;
  }
  return out;
}

std::string catalog_args(const fs::path& music, const fs::path& out, const std::string& more = "") {
  return "-n " + kModel + " -q -j 1 -o " + out.string() + " " + more + " " + music.string();
}

TEST(SeparateCatalog, KilledAtEveryFsyncAndRenameTheResumedRunRedoesNoFinishedTrack) {
  separate::test::TempDir dir;
  const fs::path music = dir / "music";
  fs::create_directories(music);
  // Two tracks: a kill finds the first finished or not, the second not yet or half written.
  const std::vector<std::string> tracks = {"one", "two"};
  for (const auto& t : tracks) write_noise_song(music / (t + ".wav"), 0.3);
  const std::string shim = std::string("LD_PRELOAD=") + STEMKIT_KILL_SHIM;
  for (const std::string kind : {"fsync", "rename"}) {
    const fs::path counted = dir / ("count-" + kind);
    Result r = run_separate(catalog_args(music, counted, "--shard 0/1"),
                            shim + " STEMKIT_KILL_CALL=" + kind + " STEMKIT_CALL_COUNT_FILE=" + (dir / "n").string());
    ASSERT_EQ(r.code, 0) << r.output;
    const long n = std::stol(read_file(dir / "n"));
    ASSERT_GT(n, 3) << kind;
    // Every fsync (a stem's, a marker's, a record's: the boundaries between a
    // track's commit and its record), and a spread of the renames (each set's
    // renames one by one are stem_set_cli_test.cpp's).
    for (long k = 1; k <= n; k += kind == "fsync" ? 1 : 3) {
      const std::string where = kind + " " + std::to_string(k) + " of " + std::to_string(n);
      const fs::path out = dir / (kind + "-" + std::to_string(k));
      r = run_separate(catalog_args(music, out, "--shard 0/1"),
                       shim + " STEMKIT_KILL_CALL=" + kind + " STEMKIT_KILL_AT=" + std::to_string(k));
      ASSERT_EQ(r.code, -SIGKILL) << where << ": " << r.output;
      // What the killed run finished: a set with its marker.
      std::map<std::string, std::map<std::string, ino_t>> finished;
      for (const auto& t : tracks)
        if (fs::exists(out / "small" / t / ("." + t + ".wav.stems.json"))) finished[t] = inodes(out / "small" / t);
      r = run_separate("--skip-existing " + catalog_args(music, out, "--shard 0/1"));
      ASSERT_EQ(r.code, 0) << where << ": " << r.output;
      for (const auto& [t, before] : finished)
        EXPECT_EQ(inodes(out / "small" / t), before) << where << ": " << t << " was separated again";
      for (const auto& t : tracks) {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(out / "small" / t)) names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        EXPECT_EQ(names, (std::vector<std::string>{"." + t + ".wav.stems.json", "bass.wav", "drums.wav", "other.wav",
                                                   "vocals.wav"}))
            << where << ": " << t;
      }
      const fs::path summary = dir / "summary.json";
      r = run_separate("--summarize " + (out / "small").string() + " --json " + summary.string());
      EXPECT_EQ(r.code, 0) << where << ": " << r.output;
      const auto report = nlohmann::json::parse(read_file(summary));
      EXPECT_EQ(report["done"], tracks.size()) << where;
      for (const auto& t : report["tracks"]) EXPECT_LE(t["separated"].get<int>(), 1) << where << ": " << t.dump();
      fs::remove_all(out);
    }
  }
}

TEST(SeparateCatalog, RecordsSayWhatMadeEachTrack) {
  separate::test::TempDir dir;
  const fs::path music = dir / "music";
  fs::create_directories(music / "a");
  write_noise_song(music / "a" / "one.wav", 0.5);
  Result r = run_separate(catalog_args(music, dir / "out", "--record"));
  ASSERT_EQ(r.code, 0) << r.output;
  const auto lines = records(dir / "out" / "small" / "catalog.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["record"], "run");
  EXPECT_EQ(lines[0]["inputs"], nlohmann::json::array({(music / "a" / "one.wav").string()}));
  EXPECT_EQ(lines[0]["patch_set"].get<std::string>().size(), 16u);
  const auto& t = lines[1];
  EXPECT_EQ(t["record"], "track");
  EXPECT_EQ(t["run"], lines[0]["run"]);
  EXPECT_EQ(t["status"], "ok");
  EXPECT_EQ(t["size"], fs::file_size(music / "a" / "one.wav"));
  EXPECT_TRUE(t.contains("mtime_ns"));
  EXPECT_EQ(t["model"], "small");
  // The checkpoint's hash as sha256sum computes it.
  FILE* p = popen(("sha256sum " + kModel).c_str(), "r");
  std::array<char, 65> hex{};
  ASSERT_TRUE(p && fread(hex.data(), 1, 64, p) == 64);
  pclose(p);
  EXPECT_EQ(t["model_files"][0]["sha256"], std::string(hex.data()));
  EXPECT_EQ(t["precision"], "fp32");
  EXPECT_EQ(t["settings"]["encoding"], "pcm16");
  for (const char* timing : {"seconds", "decode_s", "separate_s", "encode_s"})
    EXPECT_TRUE(t.contains(timing)) << timing;
}

TEST(SeparateCatalog, AFailedTrackAndAShardNeverRunAreInTheReportUntilDone) {
  separate::test::TempDir dir;
  const fs::path music = dir / "music";
  fs::create_directories(music);
  for (const auto& t : kTracks) write_noise_song(music / (t + ".wav"), 0.5);
  std::ofstream(music / "broken.wav") << "not audio";
  const fs::path out = dir / "out", root = out / "small";
  // Each shard's share of the four files, from its run line.
  std::map<int, std::vector<std::string>> share;
  for (int i = 0; i < 2; ++i) {
    Result r = run_separate(catalog_args(music, out, "--shard " + std::to_string(i) + "/2"));
    const auto lines = records(root / ("catalog-" + std::to_string(i) + "-of-2.jsonl"));
    for (const auto& in : lines.at(0)["inputs"]) share[i].push_back(in);
    const bool has_broken = std::count(share[i].begin(), share[i].end(), (music / "broken.wav").string()) > 0;
    EXPECT_EQ(r.code, has_broken ? 1 : 0) << r.output;
    if (i == 0) {
      // Shard 1 has not run yet: its files are unknown, the shard is missing.
      r = run_separate("--summarize " + root.string());
      EXPECT_EQ(r.code, 1) << r.output;
      EXPECT_NE(r.output.find("missing: shard 1/2: no run recorded"), std::string::npos) << r.output;
    }
  }
  EXPECT_EQ(share[0].size() + share[1].size(), 4u);
  Result r = run_separate("--summarize " + root.string());
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("done:    3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("failed: " + (music / "broken.wav").string() + ": "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cannot read it as audio"), std::string::npos) << r.output;
  // The file mended, its shard run again: the catalog is complete.
  write_noise_song(music / "broken.wav", 0.5);
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(run_separate("--skip-existing " + catalog_args(music, out, "--shard " + std::to_string(i) + "/2")).code,
              0);
  r = run_separate("--summarize " + root.string());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("done:    4"), std::string::npos) << r.output;
}

TEST(SeparateCatalog, AShareWithNoFileOfTheCatalogRecordsItsRun) {
  separate::test::TempDir dir;
  const fs::path music = dir / "music";
  fs::create_directories(music);
  write_noise_song(music / "one.wav", 0.5);
  int empty = -1;
  for (int i = 0; i < 8; ++i) {
    Result r = run_separate(catalog_args(music, dir / "out", "--shard " + std::to_string(i) + "/8"));
    ASSERT_EQ(r.code, 0) << r.output;
    if (records(dir / "out" / "small" / ("catalog-" + std::to_string(i) + "-of-8.jsonl"))[0]["inputs"].empty())
      empty = i;
  }
  ASSERT_GE(empty, 0);
  Result r = run_separate("--summarize " + (dir / "out" / "small").string());
  EXPECT_EQ(r.code, 0) << r.output;
}

TEST(SeparateCatalog, ShardUsageErrorsComeBeforeAnyWork) {
  separate::test::TempDir dir;
  fs::create_directories(dir / "music");
  write_noise_song(dir / "music" / "one.wav", 0.5);
  write_noise_song(dir / "elsewhere.wav", 0.5);
  const std::string m = (dir / "music").string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--shard 2/2 " + m, "--shard 2/2: expected 0 <= I < N"},
      {"--shard x " + m, "--shard x: expected I/N"},
      {"--shard-root " + m + " " + m, "--shard-root goes with --shard"},
      {"--shard 0/2 --shard-root " + m + " " + m + " " + (dir / "elsewhere.wav").string(),
       "is not under the shard root"},
      {"--shard 0/2 --shard-root " + (dir / "none").string() + " " + m, "not a folder"},
      {"--summarize " + m + " " + m, "it takes no inputs"},
      {"--summarize " + m, "no catalog records there"},
      {"--record --explain", "--record is for separating a catalog"},
  };
  for (const auto& [args, expect] : cases) {
    Result r = run_separate("-n " + kModel + " -o " + (dir / "out").string() + " " + args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.output;
    EXPECT_NE(r.output.find(expect), std::string::npos) << args << ": " << r.output;
  }
  EXPECT_FALSE(fs::exists(dir / "out" / "small" / "one")) << "work was done before a usage error";
}

TEST(SeparateCatalog, QuietSaysNothingButErrors) {
  separate::test::TempDir dir;
  const fs::path music = dir / "music";
  fs::create_directories(music);
  for (const auto& t : kTracks) write_noise_song(music / (t + ".wav"), 0.5);
  const fs::path root = dir / "out" / "small";
  Result r = run_separate(catalog_args(music, dir / "out", "--shard 0/1"));  // catalog_args has -q
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.output, "");
  r = run_separate("--skip-existing " + catalog_args(music, dir / "out", "--shard 0/1"));
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.output, "");
  r = run_separate("-q --summarize " + root.string());
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.output, "");
  std::ofstream(music / "broken.wav") << "not audio";
  r = run_separate(catalog_args(music, dir / "out", "--shard 0/1 --skip-existing"));
  EXPECT_EQ(r.code, 1);
  // Only the file's error and the count of failures.
  std::istringstream lines(r.output);
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n)
    EXPECT_TRUE(line.find("broken.wav: ") != std::string::npos || line == "separate: 1 of 4 files failed") << line;
  EXPECT_EQ(n, 2) << r.output;
  r = run_separate("-q --summarize " + root.string());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.output.rfind("separate: failed: " + (music / "broken.wav").string() + ": ", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

}  // namespace
