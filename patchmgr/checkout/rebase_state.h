// A rebase stopped at a conflict, recorded in <gitdir>/patchmgr/rebase.json so
// that `rebase --continue` can go on and `rebase --abort` can go back. While it
// exists, the commands that would move the checkout or write the series refuse
// (refuse_while_rebase_stopped) and `status` reports it.
#pragma once

#include <git2.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

struct StoppedRebase {
  std::string component;
  std::string onto;                               // the new base, 40 hex
  std::string old_pin;                            // upstream.commit when the rebase started
  std::string manifest_sha256;                    // of the manifest file then: nothing may have changed it since
  std::string orig_head;                          // HEAD before the rebase, 40 hex
  std::optional<std::string> orig_branch;         // its branch (full ref name), if any
  bool was_patched = false;                       // bring the checkout along, patched, at the end
  std::vector<std::string> series;                // ids of the patches carried, in order
  std::vector<std::string> old_commits;           // the series as commits on the old pin (hex), same order
  size_t stopped_at = 0;                          // index in `series` of the patch that conflicted
  std::string base;                               // the commit that patch goes on: onto plus the patches before it
  std::map<std::string, std::string> upstreamed;  // id -> upstream commit, patches found upstream so far
};

std::optional<StoppedRebase> read_stopped_rebase(git_repository* repo);
void write_stopped_rebase(git_repository* repo, const StoppedRebase& state);
void remove_stopped_rebase(git_repository* repo);

// Throws Error(refused) naming the stopped rebase and the two ways out.
void refuse_while_rebase_stopped(git_repository* repo, const Manifest& m, const std::string& command);

}  // namespace patchmgr
