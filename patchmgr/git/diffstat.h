// The diffstat and summary of a patch mail, as `git format-patch` writes them
// (git's `--stat=72 --summary`): one line per file, the totals line, then
// create/delete/rename/copy/mode-change lines.
#pragma once

#include <git2.h>

#include <string>
#include <vector>

namespace patchmgr::git {

struct StatEntry {
  std::string old_path, new_path;
  git_delta_t status = GIT_DELTA_MODIFIED;  // ADDED, DELETED, MODIFIED, RENAMED or COPIED
  uint32_t old_mode = 0, new_mode = 0;
  int similarity = 0;  // renames and copies, 0-100, as git computes it (similarity.h)
  bool binary = false;
  size_t added = 0;    // lines; for a binary file, the new size in bytes
  size_t deleted = 0;  // lines; for a binary file, the old size in bytes
};

// The entries of `diff`, one per file pair as git counts them: a type change
// (file <-> symlink), which the diff shows as a deletion and a creation of one
// path, is one entry with a mode change, as in git's diffstat.
std::vector<StatEntry> stat_entries(git_repository* repo, git_diff* diff);

// " path | 2 +-\n ... 1 file changed, 1 insertion(+), 1 deletion(-)\n" and the summary lines.
std::string format_diffstat(const std::vector<StatEntry>& entries);

}  // namespace patchmgr::git
