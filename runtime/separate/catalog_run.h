// A whole catalog in many runs: `--shard I/N` takes a deterministic share of
// the inputs, a catalog run appends a record of each track to a JSON Lines
// file beside the stems, and `--summarize DIR` merges the records of every
// shard into one report (done, failed with the reason, missing). Scheduling
// is left to an existing engine (Slurm's job arrays: scripts/separate-slurm.sh);
// resuming is --skip-existing's (stem_set.h). docs/cli.md, "A whole catalog",
// describes this for users.
//
// No libtorch: main.cpp gives the records what the loaded model is.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace stemkit::separate {

struct ShardSpec {
  int index = 0;  // 0 .. count-1
  int count = 1;
};

// "I/N" with 0 <= I < N. Throws stemkit::Error saying what is expected.
ShardSpec parse_shard(const std::string& text);

// The name an input is sharded by: its path relative to `root`, with '/'
// separators, both made absolute and lexically normal first (no symlinks
// resolved: a catalog mounted elsewhere on another machine shards the same).
// Throws stemkit::Error when `input` is not under `root`.
std::string shard_key(const std::filesystem::path& input, const std::filesystem::path& root);

// The shard of a key among `count`: the first 8 bytes of the SHA-256 of its
// UTF-8 bytes, big-endian, modulo `count`. A file's shard depends on its
// own key only, so adding files to the catalog moves no other file.
int shard_of(const std::string& key, int count);

struct ShardSelection {
  std::vector<std::filesystem::path> files;  // this shard's inputs, in the listing's order
  size_t listed = 0;                         // the inputs of the whole listing
};
ShardSelection select_shard(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& root,
                            const ShardSpec& shard);

// Where a catalog run's records go: OUTPUT_ROOT/catalog.jsonl, or
// OUTPUT_ROOT/catalog-I-of-N.jsonl for a shard, so that the shards' runs,
// on machines sharing a file system (where O_APPEND is not atomic across
// machines: NFS), never append to the same file at once.
std::filesystem::path catalog_record_path(const std::filesystem::path& output_root,
                                          const std::optional<ShardSpec>& shard);

// The current time as ISO 8601 UTC with milliseconds ("2026-12-07T16:20:20.123Z"):
// records sort by it.
std::string utc_now_text();

// Appends whole lines to a record file: each line is one write() to a file
// opened with O_APPEND, under an exclusive flock, then fsync'd; a write that
// fails part way (a full disk) is cut back to where the line began, so that
// the file holds whole lines only.
class RecordFile {
 public:
  // Opens (creates) `path`; throws stemkit::Error naming it and the fix.
  explicit RecordFile(std::filesystem::path path);
  ~RecordFile();
  RecordFile(const RecordFile&) = delete;
  RecordFile& operator=(const RecordFile&) = delete;
  // Throws stemkit::Error naming the file.
  void append(const nlohmann::json& record);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// One catalog run's records: a "run" line first (the shard, its root and
// every input of the shard, so that a summary knows what is missing), then a
// "track" line per input as its outcome is known. A track line is complete in
// itself: the input (path, size, mtime), the model and the sha256 of each of
// its files, the patch set, the precision, the settings that make the stems,
// the status (ok, skipped, failed with the error), the outputs and the timings.
class CatalogRecorder {
 public:
  struct Run {
    std::optional<ShardSpec> shard;
    std::filesystem::path root;                 // the shard root (the keys' base)
    std::vector<std::filesystem::path> inputs;  // this run's inputs
    size_t listed = 0;                          // the whole listing's count
    std::vector<std::string> command;           // argv, for the audit
    std::string version, patch_set;
  };
  // Opens the record file and writes the run line. Throws stemkit::Error.
  CatalogRecorder(const std::filesystem::path& path, const Run& run);
  // What every track line repeats: model, model_files ({path, sha256}),
  // precision, device, settings. Hashes `files`.
  void set_model(const std::string& name, const std::vector<std::string>& files, const std::string& precision,
                 const std::string& device, const nlohmann::json& settings);
  // The track line for one of separate_files' entries. Never throws: a
  // failure is printed once and kept for error().
  void track(const nlohmann::json& entry) noexcept;
  // The first failure to write a record, or empty.
  const std::string& error() const { return error_; }
  const std::filesystem::path& path() const { return file_.path(); }

 private:
  RecordFile file_;
  std::string run_id_;
  std::optional<ShardSpec> shard_;
  std::filesystem::path root_;
  nlohmann::json model_;
  std::string error_;
};

// Every record file of DIR (catalog.jsonl, catalog-I-of-N.jsonl) merged:
// per input, its latest track record decides (ok and skipped are done); the
// inputs of the latest run line of each shard that have no track record are
// missing, and so are the shards of N with no run line at all. Throws
// stemkit::Error when DIR holds no record file. `warnings`: lines that are
// not records (a torn last line), said and skipped.
struct CatalogReport {
  nlohmann::json json;    // {"dir", "inputs", "done", "failed", "missing", "shards_missing", "tracks": [...]}
  bool complete = false;  // nothing failed, nothing missing
};
CatalogReport summarize_catalog(const std::filesystem::path& dir, std::vector<std::string>* warnings);
// The report for people: counts, then each failed input with its reason and each missing one.
std::string catalog_report_text(const CatalogReport& report);

}  // namespace stemkit::separate
