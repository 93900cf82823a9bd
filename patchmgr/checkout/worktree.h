// Writing a tree's version of some paths into the working tree and the index
// so that a process killed at any instant leaves every path either as it was
// or as it should be, never half-written.
//
// libgit2's checkout writes files in place (open, truncate, write), so a kill
// in the middle leaves a file that matches neither side, and recovery could
// not tell it from an edit of the user's. Here each file is written to a
// temporary file beside it, `.<name>.patchmgr-tmp`, then renamed over the old
// one: rename(2) is atomic, so a reader (and recovery) sees the old content or
// the new one. A temporary file that survives a kill is ours by its name, and
// `remove_partial_writes` deletes it. Directories are created before their
// first file and removed once empty.
//
// No fsync: this protects against the process dying (kill -9, Ctrl-C, the OOM
// killer), where the kernel still writes what was written. A power cut is out
// of scope, as it is for libgit2's own checkout.
#pragma once

#include <git2.h>

#include <optional>
#include <string>
#include <vector>

namespace patchmgr {

// The suffix of the temporary files: `dir/.name.patchmgr-tmp` while `dir/name` is written.
inline constexpr const char* kPartialWriteSuffix = ".patchmgr-tmp";

// The paths whose content or mode differ between `from` and `to` (both sides
// of a rename), sorted. Only these paths are ever written, by a move or by its recovery.
std::vector<std::string> changed_paths(git_repository* repo, git_tree* from, git_tree* to);

// What a working-tree path holds, compared with the blob a tree has there.
enum class PathState {
  absent,     // nothing there
  directory,  // a directory
  blob,       // a file or symlink whose content (as `git add` would store it) is the blob `oid`
  other,      // something that cannot be read, a device, a socket
};
struct WorktreeFile {
  PathState state = PathState::absent;
  git_oid oid{};
};
WorktreeFile look_at(git_repository* repo, const std::string& path);

// Whether the working tree's `file` is what `tree` has at `path`: its blob,
// or no file where the tree has none (a directory counts as no file).
bool holds(const WorktreeFile& file, git_tree* tree, const std::string& path);

// Paths that moving from `from` to `to` would overwrite without them holding
// `from`'s or `to`'s version: untracked files in the way of new ones, a file
// where a directory must be created, edited files. Empty: the move is safe.
std::vector<std::string> move_conflicts(git_repository* repo, git_tree* from, git_tree* to,
                                        const std::vector<std::string>& paths);

// Makes the working tree hold `target`'s version of each of `paths`: paths
// that `target` lacks are removed first (and directories left empty), then
// the others are written, each one atomically. A path that already holds its
// target content (and mode) is left alone, so running it again after a kill
// is cheap and correct. `after_each` runs after each path written or removed
// (fault injection for the tests).
void write_worktree(git_repository* repo, git_tree* target, const std::vector<std::string>& paths,
                    void (*after_each)(size_t done) = nullptr);

// Deletes the temporary files that an interrupted `write_worktree` of `paths` left.
void remove_partial_writes(git_repository* repo, const std::vector<std::string>& paths);

// Sets the index entries of `paths` to `target`'s (removed where it has none),
// keeping the others, and writes the index (libgit2 writes index.lock and
// renames it over the index: atomic too).
void write_index(git_repository* repo, git_tree* target, const std::vector<std::string>& paths);

}  // namespace patchmgr
