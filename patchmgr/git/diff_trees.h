// diff_trees (git.h) with flags that change how the diff is printed, not what
// differs, for the writers of patch text: GIT_DIFF_SHOW_BINARY for export.
// Rename and copy detection are diff_trees' own, so export, apply and patch-ids agree.
#pragma once

#include <git2.h>

#include "patchmgr/git/git.h"

namespace patchmgr::git {

Diff diff_trees(git_repository* repo, git_tree* old_tree, git_tree* new_tree, uint32_t extra_flags);

}  // namespace patchmgr::git
