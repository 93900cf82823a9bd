// Reading the truth out of a checkout: where HEAD is relative to the pin,
// which commits on top of the pin are which patches (by patch-id), which
// files are edited, and whether a command was interrupted. status prints it;
// sync, apply and revert decide from it.
#pragma once

#include <git2.h>

#include <optional>
#include <string>
#include <vector>

#include "patchmgr/checkout/journal.h"
#include "patchmgr/checkout/rebase_state.h"
#include "patchmgr/git/git.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

enum class CheckoutState {
  missing,   // no clone at the checkout path
  pristine,  // HEAD is the pin
  patched,   // HEAD is the pin plus every enabled patch, unmodified, in order
  partial,   // HEAD is the pin plus some of the enabled patches, unmodified, in order
  diverged,  // anything else: other commits, modified patches, another base
};
const char* to_string(CheckoutState state);  // for people: "partially patched"
const char* to_key(CheckoutState state);     // for JSON: "partial"

enum class PatchState {
  applied,   // a commit on top of the pin has the patch file's patch-id
  modified,  // the patch's commit no longer matches the patch file ("applied-but-modified")
  not_applied,
  would_conflict,  // not applied, and would not apply on top of HEAD
  disabled,        // not applied and not enabled by the manifest
  runtime,         // applied by the runtime at load time, not a source diff
};
const char* to_string(PatchState state);  // for people: "would conflict"
const char* to_key(PatchState state);     // for JSON: "would-conflict"

// What a commit between the pin and HEAD is.
enum class CommitKind {
  patch,        // exactly one of the manifest's patches
  old_version,  // made by patchmgr from an earlier version of a patch file, untouched since
  edited,       // made by patchmgr, then changed in the checkout (user work)
  foreign,      // not a patchmgr commit (user work)
};

struct ChainCommit {
  git_oid oid{};
  std::string subject;
  CommitKind kind = CommitKind::foreign;
  const Patch* patch = nullptr;  // the patch it is (patch) or was made from (old_version, edited)
  std::string recorded_id;       // the Patchmgr-Patch trailer, if any
};

struct PatchReport {
  const Patch* patch = nullptr;
  PatchState state = PatchState::not_applied;
  std::optional<git_oid> commit;
  std::string detail;  // why modified / where it conflicts
};

struct Inspection {
  CheckoutState state = CheckoutState::missing;
  std::string detail;  // one line explaining diverged / missing
  bool pin_present = false;
  git::Head head;
  bool based_on_pin = false;                    // HEAD descends from the pin
  std::vector<ChainCommit> chain;               // pin..HEAD, oldest first (when based_on_pin)
  std::vector<PatchReport> patches;             // manifest order
  std::vector<git::LocalEdit> edits;            // tracked changes and untracked files
  std::optional<JournalInfo> interrupted;       // a command died half-way
  std::optional<StoppedRebase> stopped_rebase;  // a rebase waits for a conflict to be resolved
  std::vector<std::string> applied_ids;         // ids of the chain's exact patch commits, in order

  bool has_tracked_edits() const;
  // Commits that are not recorded patches: user work that revert/apply/sync must not drop.
  std::vector<const ChainCommit*> unrecorded_commits() const;
};

// The trailers patchmgr writes into the commits it makes.
inline constexpr const char* kPatchTrailer = "Patchmgr-Patch";
inline constexpr const char* kPatchIdTrailer = "Patchmgr-Patch-Id";

// The patch-id of a patch file's diff.
git_oid patch_file_id(const Patch& patch);

// Inspects `repo` (null: the checkout does not exist). With `check_conflicts`,
// patches that are not applied are trial-applied in memory on top of HEAD.
Inspection inspect(git_repository* repo, const Manifest& manifest, bool check_conflicts);

// Commits reachable from `tip` that no other ref holds and that patchmgr did
// not make (user work that moving HEAD or `branch` away from `tip` would orphan).
std::vector<git_oid> orphaned_work(git_repository* repo, const git_oid& tip, const std::string& except_ref);

}  // namespace patchmgr
