// `patchmgr apply`: the enabled patches, in order, on top of the pin, each as
// its own commit, on the branch patchmgr/<name>; all or nothing.
#pragma once

#include <git2.h>

#include <optional>
#include <string>
#include <vector>

#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

struct ApplyOptions {
  std::vector<std::string> with;  // ids of patches that are not enabled by default, to apply as well
};

// Applies the series for `manifest`; returns what happened as printable lines.
// Throws Error: failed (a patch does not apply: nothing changed), refused
// (local edits, unrecorded commits, lock held), usage (unknown --with id).
void apply(const Context& ctx, const Manifest& manifest, const ApplyOptions& options);

// The branch a component's patch series lives on.
std::string patch_branch(const Manifest& manifest);

// Records `tree` as the commit of patch `p` on top of `parent`: the patch
// file's author, date and message, patchmgr's trailers, committer patchmgr.
git_oid commit_patch(git_repository* repo, const git_oid& parent, const git_oid& tree, const Patch& p);

// Result of applying one patch file to a tree, in memory.
struct TreeApply {
  std::optional<git_oid> tree;   // the new tree, when the patch applied
  std::string failed_file;       // otherwise: the file,
  std::string failed_hunk;       // the hunk header ("@@ -12,7 +12,9 @@"),
  int failed_hunk_number = 0;    // its number within the file (1-based),
  std::string message;           // and libgit2's reason
  std::string describe() const;  // "demucs/transformer.py, hunk 2 (@@ ... @@): reason"
};
TreeApply apply_patch_to_tree(git_repository* repo, git_tree* base, const Patch& patch);

}  // namespace patchmgr
