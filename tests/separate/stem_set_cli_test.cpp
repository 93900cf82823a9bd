// The `separate` binary interrupted for real: killed (SIGKILL, through the
// LD_PRELOAD shim tests/separate/kill_shim.c) before each rename, each fsync
// and a spread of writes while it replaces a set of stems, and run out of
// disk (RLIMIT_FSIZE, and a small tmpfs where the test may mount one). After
// each: every stem is the old file or the new one, never a mix under a
// record that says complete, and the next run removes the leftovers and
// completes the set. Also bad audio (NaN/Inf samples, --sanitize), a
// package's duplicate sources, and outputs that cannot be written.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "runtime/audio/audio.h"
#include "tests/separate/test_support.h"
#include "tests/separate/cli_support.h"

namespace {

using namespace stemkit;
namespace fs = std::filesystem;
const std::string kModel = std::string(STEMKIT_FIXTURES) + "/htdemucs/small.th";
const std::vector<std::string> kStems = {"drums", "bass", "other", "vocals"};

using Result = separate::test::CliResult;
using separate::test::read_samples;
using separate::test::run_separate;
using separate::test::write_noise_song;

using separate::test::read_file;

// The stems of `song` under an output root, by name; absent ones empty.
std::map<std::string, std::string> stems_in(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& s : kStems) out[s] = read_file(root / "small" / "song" / (s + ".wav"));
  return out;
}

fs::path marker_in(const fs::path& root) { return root / "small" / "song" / ".song.wav.stems.json"; }

std::vector<std::string> temporaries_in(const fs::path& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(".stemkit-tmp-") != std::string::npos || name.find(".tmp-") != std::string::npos)
      names.push_back(name);
  }
  return names;
}

std::string args_for(const fs::path& dir, const fs::path& out, const std::string& more = "") {
  return "-n " + kModel + " -q -o " + out.string() + " " + more + " " + (dir / "song.wav").string();
}

// After an interruption: each stem is the old file or the new one, and a
// record, if there is one, describes the files there.
void expect_old_or_new(const fs::path& root, const std::map<std::string, std::string>& old_stems,
                       const std::map<std::string, std::string>& new_stems, const std::string& where) {
  const auto got = stems_in(root);
  for (const auto& s : kStems)
    EXPECT_TRUE(got.at(s) == old_stems.at(s) || got.at(s) == new_stems.at(s))
        << where << ": " << s << ".wav is neither the old stem nor the new one (" << got.at(s).size() << " bytes)";
  if (!fs::exists(marker_in(root))) return;
  const auto record = nlohmann::json::parse(read_file(marker_in(root)));
  const auto& want = record["settings"]["encoding"] == "pcm24" ? old_stems : new_stems;
  for (const auto& s : kStems)
    EXPECT_EQ(got.at(s) == want.at(s), true) << where << ": the record says complete, but " << s << ".wav is not of it";
}

// Then the next run (--skip-existing, as a user resumes a batch) removes the
// leftovers and completes the set.
void expect_resumed(const fs::path& dir, const fs::path& root, const std::map<std::string, std::string>& new_stems,
                    const std::string& where) {
  Result r = run_separate("--skip-existing " + args_for(dir, root));
  ASSERT_EQ(r.code, 0) << where << ": " << r.output;
  EXPECT_EQ(stems_in(root), new_stems) << where;
  EXPECT_TRUE(fs::exists(marker_in(root))) << where;
  EXPECT_EQ(temporaries_in(root), std::vector<std::string>{}) << where;
}

TEST(SeparateStemSet, KilledAtEveryRenameAndFsyncAndAcrossTheWritesTheNextRunCompletes) {
  separate::test::TempDir dir;
  write_noise_song(dir / "song.wav", 1.0);
  // The old set: 24-bit. The new one, as the interrupted run would write it: 16-bit.
  ASSERT_EQ(run_separate(args_for(dir.path(), dir / "old", "--int24")).code, 0);
  ASSERT_EQ(run_separate(args_for(dir.path(), dir / "new")).code, 0);
  const auto old_stems = stems_in(dir / "old"), new_stems = stems_in(dir / "new");
  for (const auto& s : kStems) ASSERT_NE(old_stems.at(s), new_stems.at(s));
  const std::string shim = std::string("LD_PRELOAD=") + STEMKIT_KILL_SHIM;

  for (const std::string kind : {"rename", "fsync", "write", "unlink"}) {
    const fs::path counted = dir / ("count-" + kind);
    fs::copy(dir / "old", counted, fs::copy_options::recursive);
    Result r = run_separate(args_for(dir.path(), counted),
                            shim + " STEMKIT_KILL_CALL=" + kind + " STEMKIT_CALL_COUNT_FILE=" + (dir / "n").string());
    ASSERT_EQ(r.code, 0) << r.output;
    const long n = std::stol(read_file(dir / "n"));
    ASSERT_GT(n, 0) << kind;
    std::set<long> at;
    if (kind == "write") {
      for (long q = 0; q <= 4; ++q) at.insert(std::max(1L, n * q / 4));  // the first, the last and between
    } else {
      for (long k = 1; k <= n; ++k) at.insert(k);
    }
    for (long k : at) {
      const std::string where = kind + " " + std::to_string(k) + " of " + std::to_string(n);
      const fs::path root = dir / (kind + "-" + std::to_string(k));
      fs::copy(dir / "old", root, fs::copy_options::recursive);
      r = run_separate(args_for(dir.path(), root),
                       shim + " STEMKIT_KILL_CALL=" + kind + " STEMKIT_KILL_AT=" + std::to_string(k));
      ASSERT_EQ(r.code, -SIGKILL) << where << ": " << r.output;
      expect_old_or_new(root, old_stems, new_stems, where);
      expect_resumed(dir.path(), root, new_stems, where);
      fs::remove_all(root);
    }
  }
}

TEST(SeparateStemSet, AFullDiskLeavesTheOldSetWhole) {
  separate::test::TempDir dir;
  write_noise_song(dir / "song.wav", 1.0);
  const fs::path root = dir / "out";
  ASSERT_EQ(run_separate(args_for(dir.path(), root)).code, 0);  // 16-bit: 176 kB a stem
  const auto old_stems = stems_in(root);
  const std::string old_record = read_file(marker_in(root));
  // At most 200 kB per file (RLIMIT_FSIZE, and SIGXFSZ ignored so that the
  // write fails with EFBIG instead of killing): every float stem fails.
  Result r = run_separate(args_for(dir.path(), root, "--float32"), "ulimit -f 200; trap '' XFSZ;");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("song.wav: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the track's earlier stems, if any, are as they were"), std::string::npos) << r.output;
  EXPECT_EQ(stems_in(root), old_stems);
  EXPECT_EQ(read_file(marker_in(root)), old_record);
  EXPECT_EQ(temporaries_in(root), std::vector<std::string>{});
  // --skip-existing checks the set it would write: 16-bit is there and complete, float is not.
  r = run_separate("--skip-existing " + args_for(dir.path(), root));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(stems_in(root), old_stems);
  r = run_separate("--skip-existing " + args_for(dir.path(), root, "--float32"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_GT(stems_in(root).at("vocals").size(), 350000u);
}

TEST(SeparateStemSet, ARealFullFileSystemLeavesTheOldSetWhole) {
  separate::test::TempDir dir;
  const fs::path disk = dir / "disk";
  fs::create_directories(disk);
  // 0.5 s: the old 16-bit set takes 353 kB, the new float one 706 kB beside it: over 960 kB.
  if (::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=960k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno)
                 << "; needs root with CAP_SYS_ADMIN): the full-disk case is covered by RLIMIT_FSIZE only";
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{disk};
  write_noise_song(dir / "song.wav", 0.5);
  ASSERT_EQ(run_separate(args_for(dir.path(), disk)).code, 0);
  const auto old_stems = stems_in(disk);
  const std::string old_record = read_file(marker_in(disk));
  Result r = run_separate(args_for(dir.path(), disk, "--float32"));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("the track's earlier stems, if any, are as they were"), std::string::npos) << r.output;
  EXPECT_EQ(stems_in(disk), old_stems);
  EXPECT_EQ(read_file(marker_in(disk)), old_record);
  EXPECT_EQ(temporaries_in(disk), std::vector<std::string>{});
  // Room for a 16-bit set beside the old one: the next run completes.
  r = run_separate(args_for(dir.path(), disk, "--clip-mode clamp"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(temporaries_in(disk), std::vector<std::string>{});
}

TEST(SeparateStemSet, NanAndInfSamplesAreAnErrorOrSanitized) {
  separate::test::TempDir dir;
  audio::Audio a;
  a.samplerate = 44100;
  a.channels = 2;
  a.frames = 44100;
  a.data.assign(2 * a.frames, 0.1f);
  a.data[a.frames + 22050] = std::numeric_limits<float>::quiet_NaN();  // channel 2 at 0.5 s
  a.data[30000] = std::numeric_limits<float>::infinity();
  audio::write_audio((dir / "song.wav").string(), a, audio::Encoding::float32);
  {
    const audio::Audio back = audio::read_audio((dir / "song.wav").string());
    ASSERT_TRUE(std::isnan(back.data[back.frames + 22050])) << "the test file holds a NaN";
  }
  write_noise_song(dir / "good.wav", 0.5);
  Result r = run_separate("-n " + kModel + " -q -o " + (dir / "out").string() + " " + (dir / "song.wav").string() +
                          " " + (dir / "good.wav").string());
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("song.wav: sample 22050 of channel 2 (at 0:00.500) is NaN (and 1 more NaN or infinite "
                          "samples): the file is damaged"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("--sanitize"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "out" / "small" / "song"));
  EXPECT_TRUE(fs::exists(dir / "out" / "small" / "good" / "vocals.wav")) << "the other files are done";

  // Resuming the batch with --sanitize does the bad file and skips the good one.
  r = run_separate("-n " + kModel + " --skip-existing --sanitize -o " + (dir / "out").string() + " " +
                   (dir / "song.wav").string() + " " + (dir / "good.wav").string());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("good.wav: its set of stems is complete, skipped"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(dir / "out" / "small" / "song" / "vocals.wav"));

  r = run_separate("-n " + kModel + " -q --sanitize --float32 -o " + (dir / "float").string() + " --json " +
                   (dir / "s.json").string() + " " + (dir / "song.wav").string());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("song.wav: 2 NaN or infinite samples replaced with 0 (--sanitize)"), std::string::npos)
      << r.output;
  EXPECT_EQ(nlohmann::json::parse(read_file(dir / "s.json"))["files"][0]["sanitized_samples"], 2);
  for (const auto& s : kStems) {
    const audio::Audio stem = audio::read_audio((dir / "float" / "small" / "song" / (s + ".wav")).string());
    for (float v : stem.data) ASSERT_TRUE(std::isfinite(v)) << s;
  }
}

TEST(SeparateStemSet, APackagesDuplicateSourcesAreNamedAsSuch) {
  separate::test::TempDir dir;
  std::ifstream meta_in(std::string(STEMKIT_FIXTURES) + "/bs_roformer/stereo.json");
  auto kwargs = nlohmann::json::parse(meta_in)["kwargs"];
  std::string yaml = "audio:\n  chunk_size: 2944\n  num_channels: 2\n  sample_rate: 44100\nmodel:\n";
  for (const auto& [key, value] : kwargs.items()) yaml += "  " + key + ": " + value.dump() + "\n";
  yaml += "training:\n  instruments:\n  - vocals\n  - vocals\n";
  { std::ofstream(dir / "config.yaml") << yaml; }
  write_noise_song(dir / "song.wav", 0.5);
  Result r = run_separate("-n " + (dir / "config.yaml").string() + " --checkpoint " + std::string(STEMKIT_FIXTURES) +
                          "/bs_roformer/stereo.ckpt -o " + (dir / "out").string() + " " + (dir / "song.wav").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("config.yaml:" + std::to_string(kwargs.size() + 9) +
                          ": `training.instruments` names 'vocals' twice; each stem needs its own name"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("given twice"), std::string::npos) << "the input is not to blame: " << r.output;
}

TEST(SeparateStemSet, AnAllocationFailureIsOneLineOfAdvice) {
  // A package whose sizes are absurd: a BS-RoFormer of dim 10^7 asks for a
  // weight of 1.6 PB, more than any address space, so the allocation fails at
  // once whatever the machine's overcommit policy.
  separate::test::TempDir dir;
  std::ifstream meta_in(std::string(STEMKIT_FIXTURES) + "/bs_roformer/stereo.json");
  auto kwargs = nlohmann::json::parse(meta_in)["kwargs"];
  kwargs["dim"] = 10000000;
  std::string yaml = "audio:\n  chunk_size: 2944\n  num_channels: 2\n  sample_rate: 44100\nmodel:\n";
  for (const auto& [key, value] : kwargs.items()) yaml += "  " + key + ": " + value.dump() + "\n";
  yaml += "training:\n  instruments: [vocals, other]\n  target_instrument: vocals\n";
  { std::ofstream(dir / "huge.yaml") << yaml; }
  write_noise_song(dir / "song.wav", 0.5);
  Result r = run_separate("-n " + (dir / "huge.yaml").string() + " --checkpoint " + std::string(STEMKIT_FIXTURES) +
                          "/bs_roformer/stereo.ckpt --device cpu -o " + (dir / "out").string() + " " +
                          (dir / "song.wav").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(r.output.rfind("separate: out of memory (1600000.0 GB asked for at once): use a smaller --batch-size", 0),
            0u)
      << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << "one line, no backtrace: " << r.output;
}

TEST(SeparateStemSet, OutputsThatCannotBeWrittenAreFoundBeforeAnySeparation) {
  separate::test::TempDir dir;
  write_noise_song(dir / "song.wav", 0.5);
  { std::ofstream(dir / "file") << "x"; }
  Result r =
      run_separate("-n " + kModel + " -o " + (dir / "file" / "sub").string() + " " + (dir / "song.wav").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("file is not a folder"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("realtime"), std::string::npos) << "nothing separated: " << r.output;
  fs::create_directories(dir / "out" / "small" / "song" / "bass.wav");
  r = run_separate("-n " + kModel + " -o " + (dir / "out").string() + " " + (dir / "song.wav").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("bass.wav is a folder"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("realtime"), std::string::npos) << "nothing separated: " << r.output;
  // A track name whose stem name fits NAME_MAX but whose temporary name would not.
  const std::string long_name(240, 'x');
  write_noise_song(dir / (long_name + ".wav"), 0.5);
  r = run_separate("-n " + kModel + " --filename '{track}-{stem}.{ext}' -o " + (dir / "long").string() + " " +
                   (dir / (long_name + ".wav")).string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("the name is too long to write it safely"), std::string::npos) << r.output;
}

}  // namespace
