// How far a patch is from applying on an upstream commit: its drift class,
// and per hunk where it was found. In memory only (trees and blobs; no
// working tree), so `check` can classify a series at many commits.
//
// The classes, from best to worst, with what the user should do:
//
//   applies           exactly, at the recorded lines (libgit2's apply).   Nothing.
//   offset            every hunk with its full context, N lines away, as
//                     `git apply` places it.                               Nothing; rebase when convenient.
//   fuzz              only with up to 2 context lines dropped, as
//                     `patch -F2` would (or in a file upstream already
//                     renamed, which patch follows). Never applied silently. Rebase and review the hunks.
//   3-way             a three-way merge (base: the file at the pin; theirs:
//                     the pin with the series; ours: the target) is clean,
//                     as `git apply -3`.                                    Rebase (patchmgr rebase).
//   already upstream  every hunk's result is already there.               Drop the patch / mark it upstreamed.
//   partly upstream   some hunks are there, the others still apply.       Shrink the patch to what is left.
//   conflict          none of the above: the file, the hunk and the
//                     upstream lines that clash are named.                 Port the patch by hand.
//
// `partly upstream` ranks with `conflict` for --fail-on: someone must edit the patch.
#pragma once

#include <git2.h>

#include <optional>
#include <string>
#include <vector>

#include "patchmgr/git/hunk_locator.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

enum class Drift { applies, offset, fuzz, three_way, upstream, partly_upstream, conflict };

// "applies", "offset", "fuzz", "3-way", "already upstream", "partly upstream", "conflict".
const char* to_string(Drift d);
// The order --fail-on compares: applies < offset < fuzz < 3-way < already upstream < conflict
// (partly upstream = conflict).
int severity(Drift d);
// --fail-on's values: "offset", "fuzz", "3-way", "upstream", "conflict"; nullopt otherwise.
std::optional<Drift> parse_fail_on(const std::string& text);

// One hunk of the patch and where it was found on the target.
struct HunkDrift {
  std::string file;    // the path the hunk changes (the new path of a rename)
  int number = 0;      // 1-based within its file
  std::string header;  // "@@ -60,11 +60,19 @@ class Attend(nn.Module):"
  git::HunkPlacement placement;
};

struct PatchDrift {
  Drift drift = Drift::conflict;
  std::vector<HunkDrift> hunks;              // every hunk of every text file, in patch order
  std::string detail;                        // why (conflict: file, hunk, upstream lines; 3-way: what merged)
  std::optional<git_oid> tree;               // the target with the patch applied (located or merged); unset on conflict
  std::vector<std::string> checked_without;  // earlier patches of the series left out because they conflict
  std::string summary() const;               // "model/attend.py hunk 1 +3, hunk 2 +3 (fuzz 1)"
};

// Where a file of a three-way merge's conflicted index clashes, for people:
// "model/attend.py (upstream line 10): `if (major, minor) == (8, 0):`" (the ranges
// are lines of upstream's version, `ours`; the quote is the first clashing upstream
// line), or "(deleted upstream, changed by the patch)" and the like. check and
// rebase both say it this way.
std::string describe_conflict(git_repository* repo, const git_index_entry* ancestor, const git_index_entry* ours,
                              const git_index_entry* theirs);

// Classifies `patch` on `target` (the upstream tree with the earlier patches
// applied). `base` is the pin's tree with the earlier patches applied exactly,
// the three-way merge's ancestor; null when the series does not apply on the
// pin, and then no 3-way is tried. Throws Error only when git objects cannot be read.
PatchDrift classify_patch(git_repository* repo, git_tree* target, git_tree* base, const Patch& patch);

// Classifies each patch of `series` on top of the ones before it, at `target`
// (a commit), with the pin as the three-way base. A patch that conflicts is
// left out of the tree the later ones are checked on (and they say so).
std::vector<PatchDrift> classify_series(git_repository* repo, const git_oid& pin, const git_oid& target,
                                        const std::vector<const Patch*>& series);

}  // namespace patchmgr
