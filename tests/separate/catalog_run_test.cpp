// The catalog's pieces without the model (catalog_run.h): shares chosen by a
// hash of each path, checked against Python's hashlib; shares that do not
// move when files are added; record files that hold whole lines only, with
// writers in several processes and on a full disk; and the summary of
// records: the latest record decides, failed with the reason, missing inputs
// and missing shards, a torn line skipped.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include "runtime/error.h"
#include "runtime/separate/catalog_run.h"
#include "tests/separate/test_support.h"

namespace {

using namespace stemkit::separate;
namespace fs = std::filesystem;

std::vector<nlohmann::json> read_lines(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));  // throws on a torn line
  return out;
}

using test::error_of;

TEST(CatalogShard, ParsesIOfNAndSaysWhatItExpects) {
  EXPECT_EQ(parse_shard("0/1").count, 1);
  EXPECT_EQ(parse_shard("2/3").index, 2);
  for (const char* bad : {"3/3", "1/0", "a/b", "-1/2", "1", "1/2/3", " 0/2"})
    EXPECT_NE(error_of([&] { parse_shard(bad); }).find("--shard"), std::string::npos) << bad;
  EXPECT_NE(error_of([] { parse_shard("3/3"); }).find("0 <= I < N"), std::string::npos);
}

TEST(CatalogShard, TheKeyIsThePathUnderTheRootWhereverTheRootIs) {
  EXPECT_EQ(shard_key("/data/music/rock/a.flac", "/data/music"), "rock/a.flac");
  EXPECT_EQ(shard_key("/data/music/./rock/../rock/a.flac", "/data/music/"), "rock/a.flac");
  EXPECT_EQ(shard_key("/mnt/other/music/rock/a.flac", "/mnt/other/music"), "rock/a.flac");
  const std::string e = error_of([] { shard_key("/elsewhere/a.flac", "/data/music"); });
  EXPECT_NE(e.find("/elsewhere/a.flac is not under the shard root /data/music"), std::string::npos) << e;
  EXPECT_NE(e.find("--shard-root"), std::string::npos) << e;
}

// int(hashlib.sha256(key.encode()).hexdigest()[:16], 16) % n, computed with Python 3.
TEST(CatalogShard, SharesAreSha256OfTheKeyAsPythonComputesIt) {
  EXPECT_EQ(shard_of("a/song1.wav", 3), 1);
  EXPECT_EQ(shard_of("a/song2.wav", 3), 2);
  EXPECT_EQ(shard_of("b/song5.wav", 3), 0);
  EXPECT_EQ(shard_of("b/song6.wav", 3), 0);
  EXPECT_EQ(shard_of("anything", 1), 0);
}

TEST(CatalogShard, SharesPartitionTheListingAndAddingFilesMovesNoOther) {
  std::vector<fs::path> before, after;
  for (int i = 0; i < 1000; ++i)
    before.push_back(fs::path("/c/artist" + std::to_string(i % 37)) / (std::to_string(i) + ".flac"));
  after = before;
  for (int i = 0; i < 300; ++i) after.insert(after.begin() + i * 3, fs::path("/c/new") / (std::to_string(i) + ".mp3"));
  const int n = 4;
  std::map<fs::path, int> share;
  for (int i = 0; i < n; ++i) {
    const ShardSelection s = select_shard(before, "/c", {i, n});
    EXPECT_EQ(s.listed, before.size());
    EXPECT_GT(s.files.size(), 200u) << "share " << i;  // about a quarter each
    EXPECT_LT(s.files.size(), 300u) << "share " << i;
    for (const auto& f : s.files) EXPECT_TRUE(share.emplace(f, i).second) << f << " in two shares";
  }
  EXPECT_EQ(share.size(), before.size());
  for (int i = 0; i < n; ++i)
    for (const auto& f : select_shard(after, "/c", {i, n}).files)
      if (share.count(f)) EXPECT_EQ(share[f], i) << f << " moved when files were added";
}

TEST(CatalogRecordFile, WritersInSeveralProcessesAppendWholeLines) {
  test::TempDir dir;
  const fs::path file = dir / "catalog.jsonl";
  const int writers = 4, lines = 100;
  std::vector<pid_t> children;
  for (int w = 0; w < writers; ++w) {
    const pid_t pid = fork();
    if (pid == 0) {
      RecordFile f(file);
      // Lines longer than PIPE_BUF: whole only because of the lock and the single write.
      for (int i = 0; i < lines; ++i) f.append({{"writer", w}, {"i", i}, {"pad", std::string(9000, 'a' + w)}});
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const auto got = read_lines(file);
  ASSERT_EQ(got.size(), static_cast<size_t>(writers * lines));
  std::map<int, int> next;
  for (const auto& j : got) {
    EXPECT_EQ(j["i"].get<int>(), next[j["writer"].get<int>()]++);  // each writer's lines in its order
    EXPECT_EQ(j["pad"].get<std::string>(), std::string(9000, 'a' + j["writer"].get<int>()));
  }
}

TEST(CatalogRecordFile, AFullDiskLeavesWholeLinesAndSaysSo) {
  test::TempDir dir;
  const fs::path file = dir / "catalog.jsonl";
  RecordFile(file).append({{"first", 1}});
  const auto size = fs::file_size(file);
  const pid_t pid = fork();
  if (pid == 0) {
    // The file may grow by 100 bytes more: the next line (1000 bytes) is written in part.
    signal(SIGXFSZ, SIG_IGN);
    rlimit limit{static_cast<rlim_t>(size + 100), static_cast<rlim_t>(size + 100)};
    setrlimit(RLIMIT_FSIZE, &limit);
    RecordFile f(file);
    const std::string e = error_of([&] { f.append({{"second", std::string(1000, 'x')}}); });
    _exit(e.find("cannot append to the catalog record") != std::string::npos &&
                  e.find("--skip-existing") != std::string::npos
              ? 0
              : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "no error, or not the expected one";
  EXPECT_EQ(fs::file_size(file), size) << "half a line left in the record";
  RecordFile(file).append({{"third", 3}});
  EXPECT_EQ(read_lines(file).size(), 2u);
}

TEST(CatalogRecordFile, AFolderThatCannotBeWrittenIsAnErrorNamingIt) {
  test::TempDir dir;
  std::ofstream(dir / "file") << "x";
  const std::string e = error_of([&] { RecordFile f(dir / "file" / "catalog.jsonl"); });
  EXPECT_NE(e.find("cannot open the catalog record"), std::string::npos) << e;
  EXPECT_NE(e.find("-o"), std::string::npos) << e;
}

nlohmann::json run_line(const std::string& time, int index, int count, const std::vector<std::string>& inputs) {
  return {{"record", "run"}, {"time", time}, {"shard_index", index}, {"shard_count", count}, {"inputs", inputs}};
}
nlohmann::json track_line(const std::string& time, const std::string& input, const std::string& status,
                          const std::string& error = "") {
  nlohmann::json j = {{"record", "track"}, {"time", time}, {"input", input}, {"status", status}};
  if (!error.empty()) j["error"] = error;
  return j;
}

TEST(CatalogSummary, TheLatestRecordDecidesAndMissingInputsAndShardsAreNamed) {
  test::TempDir dir;
  {
    RecordFile a(dir / "catalog-0-of-3.jsonl");
    a.append(run_line("2026-01-01T00:00:00.000Z", 0, 3, {"/m/a.wav", "/m/b.wav", "/m/c.wav"}));
    a.append(track_line("2026-01-01T00:00:01.000Z", "/m/a.wav", "ok"));
    a.append(track_line("2026-01-01T00:00:02.000Z", "/m/b.wav", "failed", "/m/b.wav: cannot read it as audio"));
    // c.wav: the run was killed before it.
    a.append(run_line("2026-01-02T00:00:00.000Z", 0, 3, {"/m/a.wav", "/m/b.wav", "/m/c.wav"}));
    a.append(track_line("2026-01-02T00:00:01.000Z", "/m/a.wav", "skipped"));
    RecordFile b(dir / "catalog-1-of-3.jsonl");
    b.append(run_line("2026-01-01T00:00:00.000Z", 1, 3, {"/m/d.wav", "/m/e.wav"}));
    b.append(track_line("2026-01-01T00:00:03.000Z", "/m/d.wav", "failed", "out of memory"));
    b.append(track_line("2026-01-01T00:00:04.000Z", "/m/e.wav", "ok"));
    b.append(track_line("2026-01-03T00:00:01.000Z", "/m/d.wav", "ok"));  // a later run did it
  }
  std::ofstream(dir / "catalog-1-of-3.jsonl", std::ios::app) << "{\"record\":\"tra";  // a torn last line
  std::ofstream(dir / "notes.jsonl") << "not a record file\n";
  std::vector<std::string> warnings;
  const CatalogReport r = summarize_catalog(dir.path(), &warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("catalog-1-of-3.jsonl:5: not a record"), std::string::npos) << warnings[0];
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(r.json["inputs"], 5);
  EXPECT_EQ(r.json["done"], 3);  // a (ok, then skipped), d (failed, then ok), e
  EXPECT_EQ(r.json["failed"], 1);
  EXPECT_EQ(r.json["missing"], 1);
  EXPECT_EQ(r.json["shards_missing"], nlohmann::json::array({2}));
  std::map<std::string, nlohmann::json> by_input;
  for (const auto& t : r.json["tracks"]) by_input[t["input"]] = t;
  EXPECT_EQ(by_input["/m/a.wav"]["separated"], 1);
  EXPECT_EQ(by_input["/m/b.wav"]["error"], "/m/b.wav: cannot read it as audio");
  EXPECT_EQ(by_input["/m/c.wav"]["status"], "missing");
  const std::string text = catalog_report_text(r);
  EXPECT_NE(text.find("failed: /m/b.wav: /m/b.wav: cannot read it as audio"), std::string::npos) << text;
  EXPECT_NE(text.find("missing: /m/c.wav"), std::string::npos) << text;
  EXPECT_NE(text.find("missing: shard 2/3: no run recorded"), std::string::npos) << text;
}

TEST(CatalogSummary, AFolderWithoutRecordsIsAnError) {
  test::TempDir dir;
  const std::string e = error_of([&] { summarize_catalog(dir.path(), nullptr); });
  EXPECT_NE(e.find("no catalog records there"), std::string::npos) << e;
}

}  // namespace
