// Moving a checkout from one commit to another as one step that can be undone.
//
// Every operation that changes a checkout (sync, apply, revert) describes the
// move as a Transition and hands it to `run_transition`, which first checks
// that no path in the way holds anything but the old version (a refusal then
// changes nothing), writes a journal to <gitdir>/patchmgr/journal.json, then
// moves the working tree, the index, the branch and HEAD, and deletes the
// journal last. If the process dies in between, the journal survives, and
// the next patchmgr command that changes the checkout (holding the lock)
// calls `recover_interrupted`, which puts it back exactly where it was
// before the interrupted command; `status` reports it meanwhile.
//
// What makes that always possible, wherever the process died:
// - Only the paths that differ between the two commits are written, and each
//   is replaced whole (worktree.h: a temporary `.<name>.patchmgr-tmp` beside
//   it, renamed into place). So every such path holds its old version or its
//   new one, or is absent where one side lacks it; anything else is the
//   user's edit since, and is never overwritten without being copied aside.
// - The index, refs and HEAD are written by libgit2 as `<file>.lock` renamed
//   over `<file>`: each is old or new. A `.lock` left by the kill would block
//   every later write, so recovery deletes those of the files a move writes.
// - Recovery does the same steps towards the old commit, each safe to repeat,
//   and deletes the journal last: killed itself, it is simply run again.
//
// Two steps that libgit2 does itself, in place, get a record of their own,
// written before them and deleted after, and `recover_interrupted` (which
// every changing command calls) finishes or undoes them first:
// - `stash_edits` (revert --discard): git_stash_save writes the stash
//   commits, appends to refs/stash's reflog, renames refs/stash.lock over
//   refs/stash, then resets the index and the edited files to HEAD in place
//   (index.lock; files truncated and rewritten, so a kill can leave one
//   half-written). <gitdir>/patchmgr/stash.json names HEAD and refs/stash's
//   value before. Recovery deletes the step's locks (index, refs/stash and
//   its reflog). If refs/stash moved, the edits are safe in the new stash:
//   every path that the stash records as changed is restored to HEAD whole
//   (worktree.h) and its index entry too, and one that holds neither HEAD's
//   version nor the stash's (an edit made since the kill) is copied to
//   <gitdir>/patchmgr/rescued/<time>/ first. If refs/stash did not move, the
//   reset had not begun: the files are left as they are, and a reflog line
//   appended for a stash that never landed is dropped. If HEAD moved since,
//   or refs/stash holds a stash that is not of HEAD, someone else changed
//   the checkout meanwhile: the record is dropped and the files left alone.
// - `fetch_recorded` (sync): libgit2's fetch writes the pack as
//   objects/pack/pack_git2_* and each ref, FETCH_HEAD and packed-refs as
//   `<file>.lock`, renamed into place. <gitdir>/patchmgr/fetch.json says a
//   fetch was running; recovery deletes such lock and temporary files that
//   are not older than it (so not those of a `git` the user runs meanwhile
//   that began before), then the record. The objects and refs that did land
//   are whole, and the next fetch simply brings the rest.
#pragma once

#include <git2.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "patchmgr/git/git.h"

namespace patchmgr {

struct Transition {
  std::string command;                     // "apply", "revert", "sync", for messages
  git_oid from{};                          // HEAD before
  std::optional<std::string> from_branch;  // HEAD's branch before (full ref name), if not detached
  git_oid to{};                            // HEAD after
  std::optional<std::string> to_branch;    // branch to point at `to` and check out; unset: detached HEAD
  std::optional<git_oid> to_branch_old;    // that branch's value before (unset: it did not exist)
  std::string reflog_message;
};

struct JournalInfo {
  Transition transition;
  int pid = 0;
  std::string started;  // UTC time
};

// Runs the move. Throws Error(refused) listing the paths when untracked or
// modified files would be overwritten; nothing has changed then. The caller
// has made sure the index and the working tree hold `from` (no tracked edits).
void run_transition(git_repository* repo, const Transition& t);

// The common move: HEAD, detached, to `target` (sync to a pin, revert to the pin).
void detach_head(git_repository* repo, const std::string& command, const git::Head& head, const git_oid& target);

// The other common move: `branch` (a full ref name; `branch_old` its value
// before, unset if new) set to `target` and checked out (apply, export).
void move_to_branch(git_repository* repo, const std::string& command, const git::Head& head, const git_oid& target,
                    const std::string& branch, const std::optional<git_oid>& branch_old,
                    const std::string& reflog_message);

// The journal of an interrupted command, if any.
std::optional<JournalInfo> read_journal(git_repository* repo);

// The working-tree paths that differ from HEAD only by the interrupted
// move's own doing: those it was changing that hold its old or its new
// version, and its temporary files. status does not list them as local edits.
std::set<std::string> written_by_interrupted_move(git_repository* repo, const JournalInfo& journal);

// Undoes an interrupted command: back to its `from` commit and branch (the
// working tree's changed paths, the index, the branch it moved, HEAD).
// Returns a one-line description of what it did, or nothing when there was
// nothing to recover. When files that the interrupted command was changing
// have been edited since (they hold neither version), it refuses
// (Error(refused)) naming them, unless `rescue_edits`, in which case their
// contents are copied to <gitdir>/patchmgr/rescued/<time>/ first (a file the
// user deleted has nothing to copy, and is restored).
std::optional<std::string> recover_interrupted(git_repository* repo, bool rescue_edits);

// Saves the tracked edits (index and working tree) as a new stash, like
// `git stash push`, and returns its commit; the index and the edited files
// then hold HEAD. Recorded as said above, so a kill anywhere inside it is
// finished or undone by the next `recover_interrupted`.
git_oid stash_edits(git_repository* repo, const git_signature* who, const std::string& message);

// Fetches `refspecs` from `url` (git::fetch), recorded as said above so that
// a kill leaves no lock that would make the next fetch fail.
void fetch_recorded(git_repository* repo, const std::string& url, const std::vector<std::string>& refspecs,
                    const std::string& what);

// Fault injection for the tests: when PATCHMGR_TEST_KILL_AT equals `point`,
// the process kills itself with SIGKILL, as a user's Ctrl-\ or the OOM killer would.
void test_kill_point(const std::string& point);

}  // namespace patchmgr
