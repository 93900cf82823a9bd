// A track's stems as one set on disk: written under temporary names, renamed
// into place only when every stem is complete, and recorded last in a small
// marker file, so that a set is complete exactly when its marker matches the
// files. A failure before the renames (a full disk, an encoder error) removes
// the new files and leaves the old set and its marker as they were; a kill
// during the renames leaves a set without a marker, which --skip-existing
// redoes. docs/cli.md ("Stems as a set") describes this for users.
//
// Names (only these are ever removed as leftovers):
//   stem        DIR/vocals.wav
//   temporary   DIR/.vocals.stemkit-tmp-<pid>-<8 hex>.wav  (and that name
//               + ".tmp-<pid>": audio::write_audio's own temporary)
//   marker      DIR/.<input file name>.stems.json, DIR the first stem's folder
//               (a name over 120 characters: its first 120, '~' and a hash)
//
// No libtorch: the runner writes each stem to temporary(i) with write_stem.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/separate/naming.h"

namespace stemkit::separate {

// The marker of the set of `input` whose stems are `outputs` (plan order, at
// least one).
std::filesystem::path stem_set_marker(const std::filesystem::path& input,
                                      const std::vector<const PlannedOutput*>& outputs);

// Whether `marker` records exactly `outputs` (same stems, same paths, each
// file there with the recorded size) made with `settings`. When not, `why`
// says what differs ("no record of a complete set", "vocals.wav: 1234 bytes,
// the set recorded 5678", "made with other settings: ...").
bool stem_set_complete(const std::filesystem::path& marker, const std::vector<const PlannedOutput*>& outputs,
                       const nlohmann::json& settings, std::string* why = nullptr);

// Writes one track's set. Construct, write every stem to temporary(i),
// then commit(); destroying it uncommitted (an exception on the way) removes
// the temporaries and the folders it made, and leaves the old set whole.
class StemSetWriter {
 public:
  StemSetWriter(std::filesystem::path input, std::vector<const PlannedOutput*> outputs, nlohmann::json settings);
  ~StemSetWriter();
  StemSetWriter(const StemSetWriter&) = delete;
  StemSetWriter& operator=(const StemSetWriter&) = delete;

  // Makes the stems' folders (those that do not exist yet are removed again
  // if the set is abandoned).
  void make_folders();
  const std::filesystem::path& temporary(size_t i) const { return temporaries_[i]; }
  // Every temporary written and flushed to disk: the old marker goes, each
  // stem is renamed into place, the new marker is written. Throws
  // stemkit::Error naming the file that could not be renamed.
  void commit();
  // Removes the temporaries (and folders this writer made, when empty).
  void abandon() noexcept;

 private:
  std::filesystem::path input_, marker_;
  std::vector<const PlannedOutput*> outputs_;
  nlohmann::json settings_;
  std::vector<std::filesystem::path> temporaries_;
  std::vector<std::filesystem::path> made_folders_;  // deepest last
  bool done_ = false;
};

// The temporary name of `path` for this process: see the header's comment.
std::filesystem::path stem_set_temporary(const std::filesystem::path& path);

// Removes what killed runs left in the folders `outputs` go to: files named
// as this file's temporaries (of any stem), whose process is no longer
// running, and the `<stem>.tmp-<pid>` files of earlier versions beside
// `outputs`' own paths. Only those folders, not recursively. Returns the
// paths removed.
std::vector<std::filesystem::path> remove_stale_temporaries(const std::vector<PlannedOutput>& outputs);

// Before any separation: every folder the stems go to can be made and
// written (a file is created and removed in the nearest existing folder),
// no stem's path is a folder, and no stem's temporary name is too long for
// its file system. Throws stemkit::Error naming the path and the fix.
void check_outputs_writable(const std::vector<PlannedOutput>& outputs);

}  // namespace stemkit::separate
