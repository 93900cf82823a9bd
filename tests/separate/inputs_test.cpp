// The inputs of a run (runtime/separate/inputs.h): files, folders walked for
// audio files in a stable order, list files and stdin, every file once
// whatever its names, and every problem reported at once. On real folders,
// symlinks and hard links in a temporary directory.
#include "runtime/separate/inputs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <unistd.h>

#include "runtime/error.h"
#include "tests/separate/test_support.h"

namespace stemkit::separate {
namespace {

using test::TempDir;
using test::write_file;
namespace fs = std::filesystem;
using Paths = std::vector<fs::path>;

using test::contains;
using test::error_of;

InputSet collect(const std::vector<std::string>& arguments, const std::optional<std::string>& list = std::nullopt,
                 const std::string& standard_input = "") {
  std::istringstream in(standard_input);
  return collect_inputs(arguments, list, in);
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

TEST(Inputs, AudioExtensionsInAnyCase) {
  for (const char* name : {"a.wav", "a.FLAC", "b.Mp3", "c.m4a", "d.opus", "e.ogg", "f.aiff", "g.mp4", "h.mkv", "i.webm",
                           "j.aac", "k.tar.wav"})
    EXPECT_TRUE(has_audio_extension(name)) << name;
  for (const char* name : {"a.txt", "cover.jpg", "a.cue", "wav", ".wav", "a.wav.part", "notes"})
    EXPECT_FALSE(has_audio_extension(name)) << name;
}

TEST(Inputs, AFolderGivesItsAudioFilesRecursivelySortedByPath) {
  TempDir dir;
  const fs::path m = dir / "music";
  for (const char* name : {"b.flac", "a.wav", "B.mp3", "cover.jpg", "notes.txt", "Disc 2/02.m4a", "Disc 2/01.opus",
                           "Disc 1/01.FLAC", "Disc 1/sub/x.ogg", ".hidden.wav", "._a.wav", ".git/x.wav", "empty/x.cue"})
    write_file(m / name, "");
  const InputSet set = collect({m.string()});
  // Byte order of the names: upper case before lower case, "Disc 1" before "a.wav".
  EXPECT_EQ(set.files, (Paths{m / "B.mp3", m / "Disc 1/01.FLAC", m / "Disc 1/sub/x.ogg", m / "Disc 2/01.opus",
                              m / "Disc 2/02.m4a", m / "a.wav", m / "b.flac"}));
  EXPECT_EQ(joined(set.folders), m.string() + ": 7 audio files, 3 other files skipped\n");
  EXPECT_TRUE(set.duplicates.empty());
  // The same walk gives the same order (directory_iterator's order is the file system's).
  EXPECT_EQ(collect({m.string()}).files, set.files);
}

TEST(Inputs, ArgumentsKeepTheirOrderAndAFileIsTakenWhateverItsExtension) {
  TempDir dir;
  write_file(dir / "z.wav", "");
  write_file(dir / "song.weird", "");
  write_file(dir / "f" / "a.wav", "");
  const InputSet set = collect({(dir / "z.wav").string(), (dir / "f").string(), (dir / "song.weird").string()});
  EXPECT_EQ(set.files, (Paths{dir / "z.wav", dir / "f" / "a.wav", dir / "song.weird"}));
  EXPECT_EQ(joined(set.folders), (dir / "f").string() + ": 1 audio file\n");
}

TEST(Inputs, OneFileUnderTwoNamesIsSeparatedOnceAndSaidOnce) {
  TempDir dir;
  write_file(dir / "music" / "a.wav", "");
  write_file(dir / "music" / "b.wav", "");
  fs::create_symlink(dir / "music" / "a.wav", dir / "link.wav");
  fs::create_hard_link(dir / "music" / "b.wav", dir / "hard.wav");
  fs::create_directory_symlink(dir / "music", dir / "alias");
  const std::string a = (dir / "music" / "a.wav").string();
  const std::string dotted = (dir / "music" / "." / "a.wav").string();
  const InputSet set = collect({a, a, dotted, (dir / "link.wav").string(), (dir / "music").string(),
                                (dir / "hard.wav").string(), (dir / "alias").string()});
  EXPECT_EQ(set.files, (Paths{a, dir / "music" / "b.wav"}));
  const std::string said = joined(set.duplicates);
  EXPECT_EQ(set.duplicates.size(), 6u) << said;
  // Given as it is, and found again when the folder is walked.
  EXPECT_EQ(std::count(set.duplicates.begin(), set.duplicates.end(), a + " is given twice: separated once"), 2) << said;
  EXPECT_TRUE(contains(said, dotted + " is the same file as " + a + ": separated once\n")) << said;
  EXPECT_TRUE(contains(said, (dir / "link.wav").string() + " is the same file as " + a)) << said;
  EXPECT_TRUE(contains(said, (dir / "hard.wav").string() + " is the same file as " + (dir / "music/b.wav").string()))
      << said;
  EXPECT_TRUE(contains(said, (dir / "alias").string() + " is the same folder as " + (dir / "music").string() +
                                 ": its files are separated once"))
      << said;
}

TEST(Inputs, ManyDuplicatesAreCountedInOneLine) {
  TempDir dir;
  for (int i = 0; i < 15; ++i) write_file(dir / "m" / (std::to_string(100 + i) + ".wav"), "");
  std::vector<std::string> args = {(dir / "m").string()};
  for (int i = 0; i < 15; ++i) args.push_back((dir / "m" / (std::to_string(100 + i) + ".wav")).string());
  const InputSet set = collect(args);
  EXPECT_EQ(set.files.size(), 15u);
  ASSERT_EQ(set.duplicates.size(), 11u);
  EXPECT_EQ(set.duplicates.back(), "... and 5 more: each separated once");
}

TEST(Inputs, SymlinkLoopsAreWalkedOnce) {
  TempDir dir;
  write_file(dir / "m" / "sub" / "a.wav", "");
  fs::create_directory_symlink(dir / "m", dir / "m" / "sub" / "up");
  fs::create_directory_symlink(dir / "m" / "sub", dir / "m" / "again");
  fs::create_symlink(dir / "m" / "nothing.wav", dir / "m" / "dangling.wav");
  const InputSet set = collect({(dir / "m").string()});
  EXPECT_EQ(set.files, (Paths{dir / "m" / "again" / "a.wav"}));  // "again" sorts before "sub"
  EXPECT_TRUE(set.duplicates.empty()) << joined(set.duplicates);
}

TEST(Inputs, EveryProblemIsReportedAtOnce) {
  TempDir dir;
  write_file(dir / "ok.wav", "");
  write_file(dir / "docs" / "readme.txt", "");
  fs::create_directories(dir / "empty");
  const std::string e = error_of([&] {
    collect({(dir / "ok.wav").string(), (dir / "missing.wav").string(), (dir / "docs").string(),
             (dir / "empty").string(), (dir / "ok.wav" / "x.wav").string()});
  });
  EXPECT_TRUE(contains(e, "4 inputs cannot be read:\n")) << e;
  EXPECT_TRUE(contains(e, (dir / "missing.wav").string() + ": no such file or folder")) << e;
  EXPECT_TRUE(contains(e, (dir / "docs").string() + ": no audio files in this folder or below it (1 file with other "
                                                    "extensions) (taken by extension: 3gp aac"))
      << e;
  EXPECT_TRUE(contains(e, (dir / "empty").string() + ": no audio files in this folder or below it (taken by")) << e;
  EXPECT_TRUE(contains(e, (dir / "ok.wav" / "x.wav").string() + ": no such file or folder")) << e;
  // One problem alone is the message.
  EXPECT_EQ(error_of([&] { collect({(dir / "missing.wav").string()}); }),
            (dir / "missing.wav").string() + ": no such file or folder");
}

TEST(Inputs, AnUnreadableFolderIsNamed) {
  TempDir dir;
  write_file(dir / "m" / "locked" / "a.wav", "");
  fs::permissions(dir / "m" / "locked", fs::perms::none);
  if (::access((dir / "m" / "locked").c_str(), R_OK) == 0) GTEST_SKIP() << "root reads any folder";
  const std::string e = error_of([&] { collect({(dir / "m").string()}); });
  fs::permissions(dir / "m" / "locked", fs::perms::owner_all);
  EXPECT_TRUE(contains(e, (dir / "m" / "locked").string() + ": cannot list the folder: Permission denied")) << e;
}

TEST(Inputs, ListReadsPathsRelativeToTheListAndWalksFolders) {
  TempDir dir;
  write_file(dir / "lists" / "a.wav", "");
  write_file(dir / "music" / "b c.flac", "");
  write_file(dir / "abs.mp3", "");
  write_file(dir / "album" / "2.wav", "");
  write_file(dir / "album" / "1.wav", "");
  write_file(dir / "lists" / "inputs.txt",
             "\xEF\xBB\xBF"
             "a.wav\r\n"
             "\n"
             "# a comment\n"
             "   # an indented comment\n"
             "  ../music/b c.flac  \n" +
                 (dir / "abs.mp3").string() + "\n../album\n");
  write_file(dir / "first.wav", "");
  const InputSet set = collect({(dir / "first.wav").string()}, (dir / "lists" / "inputs.txt").string());
  EXPECT_EQ(set.files, (Paths{dir / "first.wav", dir / "lists" / "a.wav", dir / "lists" / "../music/b c.flac",
                              dir / "abs.mp3", dir / "lists/../album" / "1.wav", dir / "lists/../album" / "2.wav"}));
  EXPECT_EQ(joined(set.folders), "../album (" + (dir / "lists/../album").string() + "): 2 audio files\n");
}

TEST(Inputs, ListReportsEveryMissingFileWithItsLine) {
  TempDir dir;
  write_file(dir / "ok.wav", "");
  fs::create_directories(dir / "folder");
  fs::path list = dir / "list.txt";
  write_file(list, "ok.wav\nmissing.wav\n# gone.wav\nfolder\n\nalso-missing.mp3\n");
  std::string e = error_of([&] { collect({}, list.string()); });
  EXPECT_TRUE(contains(e, "3 inputs cannot be read")) << e;
  EXPECT_TRUE(contains(e, list.string() + ":2: missing.wav (" + (dir / "missing.wav").string() + ") does not exist"))
      << e;
  EXPECT_TRUE(contains(
      e, list.string() + ":4: folder (" + (dir / "folder").string() + "): no audio files in this folder or below it"))
      << e;
  EXPECT_TRUE(contains(e, list.string() + ":6: also-missing.mp3")) << e;
  EXPECT_FALSE(contains(e, "gone.wav")) << e;
}

TEST(Inputs, ListThatIsAbsentOrEmpty) {
  TempDir dir;
  EXPECT_TRUE(contains(error_of([&] { collect({}, (dir / "none.txt").string()); }),
                       "cannot read the input list " + (dir / "none.txt").string() + ": No such file or directory"));
  write_file(dir / "empty.txt", "# nothing yet\n\n");
  EXPECT_TRUE(contains(error_of([&] { collect({}, (dir / "empty.txt").string()); }),
                       "the input list " + (dir / "empty.txt").string() + " lists no files"));
}

TEST(Inputs, DashReadsAListFromStdinRelativeToTheCurrentFolder) {
  TempDir dir;
  write_file(dir / "a.wav", "");
  write_file(dir / "b.flac", "");
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path());
  const InputSet set = collect({"a.wav", "-"}, std::nullopt, "# found by find\n./b.flac\na.wav\n");
  const std::string twice = error_of([&] { collect({"-"}, "-", "a.wav\n"); });
  const std::string empty = error_of([&] { collect({"-"}, std::nullopt, ""); });
  const std::string missing = error_of([&] { collect({"-"}, std::nullopt, "a.wav\nnot-here.wav\n"); });
  fs::current_path(cwd);
  EXPECT_EQ(set.files, (Paths{"a.wav", "./b.flac"}));
  EXPECT_EQ(joined(set.duplicates), "a.wav is given twice: separated once\n");
  EXPECT_EQ(twice, "'-' (the list on stdin) is given twice; stdin can be read once");
  EXPECT_TRUE(contains(empty, "the input list <stdin> lists no files")) << empty;
  EXPECT_EQ(missing, "<stdin>:2: not-here.wav does not exist");
}

}  // namespace
}  // namespace stemkit::separate
