// The similarity index git prints for a rename or a copy ("similarity index
// 83%", "rename a => b (83%)"), computed as git does (estimate_similarity in
// diffcore-rename.c, diffcore_count_changes in diffcore-delta.c): libgit2
// decides which files were renamed or copied, but scores a pair its own way,
// which would make the exported header differ from git's.
#pragma once

#include <git2.h>

#include <string>

namespace patchmgr::git {

// git's score for `src` renamed or copied to `dst`, in percent (0-100).
int similarity_index(const std::string& src, const std::string& dst);

// The same for a delta's two blobs (100 when they are the same blob).
int similarity_index(git_repository* repo, const git_diff_delta& delta);

}  // namespace patchmgr::git
