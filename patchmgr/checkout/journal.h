// Moving a checkout from one commit to another as one step that can be undone.
//
// Every operation that changes a checkout (sync, apply, revert) describes the
// move as a Transition and hands it to `run_transition`, which first writes a
// journal to <gitdir>/patchmgr/journal.json, then moves the branch, the
// working tree, the index and HEAD, and deletes the journal last. If the
// process dies in between, the journal survives, and the next patchmgr
// command (holding the lock) calls `recover_interrupted` to put the checkout
// back exactly where it was before the interrupted command.
#pragma once

#include <git2.h>

#include <optional>
#include <string>
#include <vector>

#include "patchmgr/git/git.h"

namespace patchmgr {

struct Transition {
  std::string command;                    // "apply", "revert", "sync", for messages
  git_oid from{};                         // HEAD before
  std::optional<std::string> from_branch; // HEAD's branch before (full ref name), if not detached
  git_oid to{};                           // HEAD after
  std::optional<std::string> to_branch;   // branch to point at `to` and check out; unset: detached HEAD
  std::optional<git_oid> to_branch_old;   // that branch's value before (unset: it did not exist)
  std::string reflog_message;
};

struct JournalInfo {
  Transition transition;
  int pid = 0;
  std::string started;  // UTC time
};

// Runs the move. Throws Error(refused) listing the paths when untracked or
// modified files would be overwritten; nothing has changed then.
void run_transition(git_repository* repo, const Transition& t);

// The common move: HEAD, detached, to `target` (sync to a pin, revert to the pin).
void detach_head(git_repository* repo, const std::string& command, const git::Head& head, const git_oid& target);

// The journal of an interrupted command, if any.
std::optional<JournalInfo> read_journal(git_repository* repo);

// Undoes an interrupted command. Returns a one-line description of what it
// did, or nothing when there was nothing to recover. When files that the
// interrupted command was changing have been edited since, it refuses
// (Error(refused)) unless `rescue_edits`, in which case their contents are
// copied to <gitdir>/patchmgr/rescued/<time>/ first.
std::optional<std::string> recover_interrupted(git_repository* repo, bool rescue_edits);

// Fault injection for the tests: when PATCHMGR_TEST_KILL_AT equals `point`,
// the process kills itself with SIGKILL, as a user's Ctrl-\ or the OOM killer would.
void test_kill_point(const std::string& point);

}  // namespace patchmgr
