// A track's stems as a set (runtime/separate/stem_set.h) and the NaN/Inf
// check of decoded inputs (sample_check.h), on real files in a temporary
// folder. The interruptions of the real binary (kills at each rename, a full
// disk) are in stem_set_cli_test.cpp.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <limits>

#include "runtime/error.h"
#include "runtime/separate/sample_check.h"
#include "runtime/separate/stem_set.h"
#include "tests/separate/test_support.h"

namespace stemkit::separate {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::write_file;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<PlannedOutput> plan_of(const fs::path& dir, std::vector<std::string> stems) {
  std::vector<PlannedOutput> plan;
  for (const auto& s : stems) plan.push_back({"/music/song.wav", s, dir / "song" / (s + ".wav")});
  return plan;
}

std::vector<const PlannedOutput*> pointers(const std::vector<PlannedOutput>& plan) {
  std::vector<const PlannedOutput*> out;
  for (const auto& p : plan) out.push_back(&p);
  return out;
}

// The temporaries of a folder, by the documented pattern.
std::vector<std::string> temporaries_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(".stemkit-tmp-") != std::string::npos || name.find(".tmp-") != std::string::npos)
      names.push_back(name);
  }
  return names;
}

// A pid that was a process and is no longer one.
long dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

void write_set(const std::vector<PlannedOutput>& plan, const nlohmann::json& settings, const std::string& content) {
  StemSetWriter set("/music/song.wav", pointers(plan), settings);
  set.make_folders();
  for (size_t i = 0; i < plan.size(); ++i) write_file(set.temporary(i), content + plan[i].stem);
  set.commit();
}

TEST(StemSet, ACommittedSetIsCompleteUntilAFileOrTheSettingsDiffer) {
  TempDir dir;
  const auto plan = plan_of(dir.path(), {"drums", "vocals"});
  const nlohmann::json settings = {{"model", "m"}, {"encoding", "pcm16"}};
  const fs::path marker = stem_set_marker("/music/song.wav", pointers(plan));
  EXPECT_EQ(marker, dir / "song" / ".song.wav.stems.json");
  std::string why;
  EXPECT_FALSE(stem_set_complete(marker, pointers(plan), settings, &why));
  EXPECT_EQ(why, "no record of a complete set");

  write_set(plan, settings, "new ");
  EXPECT_EQ(slurp(dir / "song" / "vocals.wav"), "new vocals");
  EXPECT_TRUE(stem_set_complete(marker, pointers(plan), settings, &why)) << why;
  EXPECT_TRUE(temporaries_in(dir.path()).empty());

  EXPECT_FALSE(stem_set_complete(marker, pointers(plan), {{"model", "m"}, {"encoding", "pcm24"}}, &why));
  EXPECT_NE(why.find("made with other settings"), std::string::npos) << why;
  // Another stem list (--two-stems now, say) is another set.
  const auto fewer = plan_of(dir.path(), {"drums"});
  EXPECT_FALSE(stem_set_complete(marker, pointers(fewer), settings, &why));
  // A stem replaced by another of a different size, or gone.
  write_file(dir / "song" / "drums.wav", "something else");
  EXPECT_FALSE(stem_set_complete(marker, pointers(plan), settings, &why));
  EXPECT_NE(why.find("drums.wav: 14 bytes, the set recorded 9"), std::string::npos) << why;
  fs::remove(dir / "song" / "drums.wav");
  EXPECT_FALSE(stem_set_complete(marker, pointers(plan), settings, &why));
  EXPECT_NE(why.find("drums.wav is missing"), std::string::npos) << why;
  write_file(marker, "{not json");
  EXPECT_FALSE(stem_set_complete(marker, pointers(plan), settings, &why));
  EXPECT_NE(why.find("is not a set record"), std::string::npos) << why;
}

TEST(StemSet, ASetAcrossFoldersIsRecordedInTheFirstStemsFolder) {
  // --filename '{stem}/{track}.{ext}': each stem in a folder of its own.
  TempDir dir;
  std::vector<PlannedOutput> plan;
  for (const char* s : {"drums", "vocals"}) plan.push_back({"in/song.wav", s, dir / s / "song.wav"});
  write_set(plan, {{"model", "m"}}, "x ");
  const fs::path marker = stem_set_marker("in/song.wav", pointers(plan));
  EXPECT_EQ(marker, dir / "drums" / ".song.wav.stems.json");
  const auto record = nlohmann::json::parse(slurp(marker));
  EXPECT_EQ(record["stems"][1]["file"], "../vocals/song.wav");
  EXPECT_TRUE(stem_set_complete(marker, pointers(plan), {{"model", "m"}}));
  EXPECT_EQ(slurp(dir / "vocals" / "song.wav"), "x vocals");
}

TEST(StemSet, ALongInputNameGivesARecordNameThatFits) {
  TempDir dir;
  const std::string input = "/music/" + std::string(250, 'x') + ".wav";  // 254 characters: the stems can fit
  std::vector<PlannedOutput> plan = {{input, "drums", dir / "t" / "drums.wav"}};
  const fs::path marker = stem_set_marker(input, pointers(plan));
  EXPECT_EQ(marker.filename().string().substr(0, 122), "." + std::string(120, 'x') + "~");
  EXPECT_EQ(marker.filename().string().size(), 1u + 120 + 1 + 16 + 11);
  EXPECT_NE(marker, stem_set_marker("/music/" + std::string(250, 'x') + ".flac", pointers(plan)));
  StemSetWriter set(input, pointers(plan), {{"model", "m"}});
  set.make_folders();
  write_file(set.temporary(0), "d");
  set.commit();
  EXPECT_TRUE(stem_set_complete(marker, pointers(plan), {{"model", "m"}}));
}

TEST(StemSet, AnAbandonedSetLeavesTheOldOneWholeAndNoFolderItMade) {
  TempDir dir;
  const auto plan = plan_of(dir.path(), {"drums", "vocals"});
  const nlohmann::json settings = {{"model", "m"}};
  write_set(plan, settings, "old ");
  const fs::path marker = stem_set_marker("/music/song.wav", pointers(plan));
  const std::string old_marker = slurp(marker);
  {
    StemSetWriter set("/music/song.wav", pointers(plan), {{"model", "other"}});
    set.make_folders();
    write_file(set.temporary(0), "new drums");  // then a failure: the writer goes out of scope uncommitted
  }
  EXPECT_EQ(slurp(dir / "song" / "drums.wav"), "old drums");
  EXPECT_EQ(slurp(dir / "song" / "vocals.wav"), "old vocals");
  EXPECT_EQ(slurp(marker), old_marker);
  EXPECT_TRUE(temporaries_in(dir.path()).empty());

  // Folders made for a set that fails go again; folders that were there stay.
  std::vector<PlannedOutput> deep;
  for (const char* s : {"a", "b"})
    deep.push_back({"/music/x.wav", s, dir / "new" / "deeper" / (std::string(s) + ".wav")});
  {
    StemSetWriter set("/music/x.wav", pointers(deep), settings);
    set.make_folders();
    EXPECT_TRUE(fs::is_directory(dir / "new" / "deeper"));
    write_file(set.temporary(1), "b");
    set.abandon();
  }
  EXPECT_FALSE(fs::exists(dir / "new"));
  EXPECT_TRUE(fs::is_directory(dir.path()));
}

TEST(StemSet, RemovesOnlyItsOwnLeftoversOfRunsThatAreGone) {
  TempDir dir;
  const auto plan = plan_of(dir.path(), {"drums", "vocals"});
  const fs::path song = dir / "song";
  const std::string dead = std::to_string(dead_pid()), alive = std::to_string(::getppid());
  const std::vector<std::string> stale = {
      ".vocals.stemkit-tmp-" + dead + "-0123abcd.wav",                      // a set's temporary
      ".vocals.stemkit-tmp-" + dead + "-0123abcd.wav.tmp-" + dead,          // write_audio's, inside it
      ".other.stemkit-tmp-" + dead + "-89abcdef.flac",                      // another stem's (an earlier --two-stems)
      "..song.wav.stems.stemkit-tmp-" + dead + "-00000000.json",            // the marker's
      "drums.wav.tmp-" + dead,                                              // an earlier version's, beside its stem
      ".drums.stemkit-tmp-" + std::to_string(::getpid()) + "-0123abcd.wav"  // our pid: not ours yet, so stale
  };
  const std::vector<std::string> kept = {
      ".vocals.stemkit-tmp-" + alive + "-0123abcd.wav",  // a run still going may be writing it
      "notes.wav.tmp-" + dead,                           // beside no stem of this plan
      "vocals.wav.tmp-abc",                              // not a pid
      "vocals.stemkit-tmp-" + dead + "-0123abcd.wav",    // not hidden: not ours
      ".vocals.stemkit-tmp-" + dead + "-0123.wav",       // no 8-digit nonce
      "vocals.wav",
  };
  for (const auto& n : stale) write_file(song / n, "x");
  for (const auto& n : kept) write_file(song / n, "x");
  write_file(dir / "elsewhere" / stale[0], "x");  // not a folder of this plan
  const auto removed = remove_stale_temporaries(plan);
  EXPECT_EQ(removed.size(), stale.size());
  for (const auto& n : stale) EXPECT_FALSE(fs::exists(song / n)) << n;
  for (const auto& n : kept) EXPECT_TRUE(fs::exists(song / n)) << n;
  EXPECT_TRUE(fs::exists(dir / "elsewhere" / stale[0]));
  // A plan whose folders do not exist yet: nothing to do.
  EXPECT_TRUE(remove_stale_temporaries(plan_of(dir / "nowhere", {"a"})).empty());
}

TEST(StemSet, OutputsAreCheckedWritableBeforeAnyWork) {
  TempDir dir;
  check_outputs_writable(plan_of(dir / "not" / "yet", {"drums"}));  // made later, in a writable folder
  EXPECT_FALSE(fs::exists(dir / "not")) << "the check makes no folder";
  EXPECT_TRUE(temporaries_in(dir.path()).empty()) << "nor leaves its probe";
  write_file(dir / "file", "x");
  try {
    check_outputs_writable(plan_of(dir / "file" / "sub", {"drums"}));
    FAIL() << "a path below a file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("file is not a folder"), std::string::npos) << e.what();
  }
  fs::create_directories(dir / "song" / "vocals.wav");
  try {
    check_outputs_writable(plan_of(dir.path(), {"drums", "vocals"}));
    FAIL() << "a stem's path is a folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocals.wav is a folder"), std::string::npos) << e.what();
  }
  // A name that fits the file system but its temporary name would not.
  const std::string long_stem(240, 's');
  try {
    check_outputs_writable(plan_of(dir / "long", {long_stem}));
    FAIL() << "a temporary name over NAME_MAX";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the name is too long to write it safely"), std::string::npos) << e.what();
  }
}

TEST(SampleCheck, NamesTheFirstBadSampleAndSanitizeReplacesThemAll) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const int64_t frames = 44100 * 70;  // past a minute, across many blocks
  std::vector<float> data(2 * static_cast<size_t>(frames), 0.25f);
  EXPECT_EQ(check_samples("ok.wav", data.data(), 2, frames, 44100, false), 0);
  data[frames + 44100 * 61 + 22050] = -inf;  // channel 2, 1:01.5
  data[frames + 44100 * 65] = nan;
  data[44100 * 62] = nan;  // channel 1, later
  try {
    check_samples("bad.wav", data.data(), 2, frames, 44100, false);
    FAIL() << "NaN and Inf accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "bad.wav: sample 2712150 of channel 2 (at 1:01.500) is -Inf (and 2 more NaN or infinite samples): the "
              "file is damaged or was exported wrongly; export it again, or pass --sanitize to replace such samples "
              "with silence");
  }
  EXPECT_EQ(check_samples("bad.wav", data.data(), 2, frames, 44100, true), 3);
  for (float v : data) ASSERT_TRUE(std::isfinite(v));
  EXPECT_EQ(data[frames + 44100 * 61 + 22050], 0.0f);
  EXPECT_EQ(data[1], 0.25f);
}

}  // namespace
}  // namespace stemkit::separate
