// Thin RAII layer over libgit2: owning handles, error checking that turns a
// libgit2 failure into a patchmgr::Error with libgit2's own message, and the
// handful of queries the checkout operations share.
#pragma once

#include <git2.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "patchmgr/util/error.h"

namespace patchmgr::git {

// Initialises libgit2 for the lifetime of the object (reference counted by libgit2).
class Library {
 public:
  Library() { git_libgit2_init(); }
  ~Library() { git_libgit2_shutdown(); }
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
};

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
template <typename T, void (*Free)(T*)>
using Handle = std::unique_ptr<T, Deleter<T, Free>>;

using Repository = Handle<git_repository, git_repository_free>;
using Commit = Handle<git_commit, git_commit_free>;
using Tree = Handle<git_tree, git_tree_free>;
using Index = Handle<git_index, git_index_free>;
using Diff = Handle<git_diff, git_diff_free>;
using Reference = Handle<git_reference, git_reference_free>;
using Remote = Handle<git_remote, git_remote_free>;
using Signature = Handle<git_signature, git_signature_free>;
using StatusList = Handle<git_status_list, git_status_list_free>;
using Revwalk = Handle<git_revwalk, git_revwalk_free>;
using Blob = Handle<git_blob, git_blob_free>;
using Object = Handle<git_object, git_object_free>;

// Throws Error(code) with "<what>: <libgit2 message>" when rc < 0.
void check(int rc, const std::string& what, ExitCode code = ExitCode::failed);

std::string to_hex(const git_oid& oid);
std::string short_hex(const git_oid& oid, size_t n = 12);
git_oid from_hex(const std::string& hex);  // caller validated the text

Repository open(const std::filesystem::path& workdir);
bool is_repository(const std::filesystem::path& workdir);

Commit lookup_commit(git_repository* repo, const git_oid& oid);
std::optional<git_oid> try_commit(git_repository* repo, const git_oid& oid);  // exists and is a commit
Tree commit_tree(const git_commit* commit);
Tree lookup_tree(git_repository* repo, const git_oid& oid);

// HEAD as the branch it points to ("refs/heads/x") or nothing when detached.
struct Head {
  std::optional<git_oid> oid;         // unset on an unborn branch
  std::optional<std::string> branch;  // full ref name when HEAD is symbolic
};
Head read_head(git_repository* repo);

std::optional<git_oid> resolve_ref(git_repository* repo, const std::string& name);

// Whether `ancestor` is reachable from `descendant` (equal counts as yes).
bool is_ancestor(git_repository* repo, const git_oid& ancestor, const git_oid& descendant);

// First-parent commits strictly after `base` up to and including `tip`, oldest first.
// Requires is_ancestor(base, tip).
std::vector<git_oid> first_parent_chain(git_repository* repo, const git_oid& base, const git_oid& tip);

// Diff between two trees (either may be null for the empty tree), with the
// options patchmgr uses everywhere so that patch-ids are comparable.
Diff diff_trees(git_repository* repo, git_tree* old_tree, git_tree* new_tree);

// Stable patch-id (git patch-id --stable) of a diff.
git_oid patch_id(git_diff* diff);

// Local modifications of the working tree and index against HEAD.
struct LocalEdit {
  std::string path;
  char code;  // 'M' modified, 'A' added, 'D' deleted, 'R' renamed, 'T' type change, '?' untracked
};
std::vector<LocalEdit> local_edits(git_repository* repo);

// Fetches `refspecs` from `url` through an anonymous remote, so a mirror
// given with --upstream fills the same refs without rewriting the clone's
// configuration. `what` names the component in errors.
void fetch(git_repository* repo, const std::string& url, const std::vector<std::string>& refspecs,
           const std::string& what);

// Content hash of a working-tree file as a blob (nullopt when it does not exist).
std::optional<git_oid> hash_workdir_file(git_repository* repo, const std::string& path);

}  // namespace patchmgr::git
