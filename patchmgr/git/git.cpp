#include "patchmgr/git/git.h"

#include <fmt/format.h>

#include "patchmgr/git/diff_trees.h"
#include "patchmgr/util/fs.h"

namespace patchmgr::git {

// Every program that links patchmgr gets libgit2 initialised before main.
static Library the_library;

void check(int rc, const std::string& what, ExitCode code) {
  if (rc >= 0) return;
  const git_error* e = git_error_last();
  std::string msg = e && e->message ? e->message : fmt::format("libgit2 error {}", rc);
  throw Error(code, fmt::format("{}: {}", what, msg));
}

std::string to_hex(const git_oid& oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &oid);
  return buf;
}

std::string short_hex(const git_oid& oid, size_t n) { return to_hex(oid).substr(0, n); }

git_oid from_hex(const std::string& hex) {
  git_oid oid;
  check(git_oid_fromstr(&oid, hex.c_str()), fmt::format("invalid object id '{}'", hex), ExitCode::usage);
  return oid;
}

Repository open(const std::filesystem::path& workdir) {
  git_repository* r = nullptr;
  check(git_repository_open_ext(&r, workdir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr),
        fmt::format("cannot open the git checkout {}", workdir.string()));
  return Repository(r);
}

bool is_repository(const std::filesystem::path& workdir) {
  git_repository* r = nullptr;
  if (git_repository_open_ext(&r, workdir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) < 0) return false;
  git_repository_free(r);
  return true;
}

Commit lookup_commit(git_repository* repo, const git_oid& oid) {
  git_commit* c = nullptr;
  check(git_commit_lookup(&c, repo, &oid), fmt::format("cannot read commit {}", to_hex(oid)));
  return Commit(c);
}

std::optional<git_oid> try_commit(git_repository* repo, const git_oid& oid) {
  git_commit* c = nullptr;
  if (git_commit_lookup(&c, repo, &oid) < 0) return std::nullopt;
  git_commit_free(c);
  return oid;
}

Tree commit_tree(const git_commit* commit) {
  git_tree* t = nullptr;
  check(git_commit_tree(&t, commit), fmt::format("cannot read the tree of {}", to_hex(*git_commit_id(commit))));
  return Tree(t);
}

Tree lookup_tree(git_repository* repo, const git_oid& oid) {
  git_tree* t = nullptr;
  check(git_tree_lookup(&t, repo, &oid), fmt::format("cannot read tree {}", to_hex(oid)));
  return Tree(t);
}

Head read_head(git_repository* repo) {
  Head head;
  git_reference* ref = nullptr;
  int rc = git_reference_lookup(&ref, repo, "HEAD");
  check(rc, "cannot read HEAD");
  Reference holder(ref);
  if (git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC) head.branch = git_reference_symbolic_target(ref);
  git_oid oid;
  if (git_reference_name_to_id(&oid, repo, "HEAD") == 0) head.oid = oid;
  return head;
}

std::optional<git_oid> resolve_ref(git_repository* repo, const std::string& name) {
  git_oid oid;
  if (git_reference_name_to_id(&oid, repo, name.c_str()) < 0) return std::nullopt;
  return oid;
}

bool is_ancestor(git_repository* repo, const git_oid& ancestor, const git_oid& descendant) {
  if (git_oid_equal(&ancestor, &descendant)) return true;
  int rc = git_graph_descendant_of(repo, &descendant, &ancestor);
  check(rc, "cannot walk the commit graph");
  return rc == 1;
}

std::vector<git_oid> first_parent_chain(git_repository* repo, const git_oid& base, const git_oid& tip) {
  std::vector<git_oid> chain;
  git_oid cur = tip;
  while (!git_oid_equal(&cur, &base)) {
    Commit c = lookup_commit(repo, cur);
    chain.push_back(cur);
    if (git_commit_parentcount(c.get()) == 0)
      throw Error(ExitCode::failed, fmt::format("commit {} does not descend from {}", to_hex(tip), to_hex(base)));
    cur = *git_commit_parent_id(c.get(), 0);
  }
  return {chain.rbegin(), chain.rend()};
}

Diff diff_trees(git_repository* repo, git_tree* old_tree, git_tree* new_tree) {
  return diff_trees(repo, old_tree, new_tree, 0);
}

Diff diff_trees(git_repository* repo, git_tree* old_tree, git_tree* new_tree, uint32_t extra_flags) {
  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  // git enables the indent heuristic by default; so must we, or hunks built by
  // `git format-patch` and by libgit2 would split differently.
  opts.flags |= GIT_DIFF_INDENT_HEURISTIC | extra_flags;
  git_diff* d = nullptr;
  check(git_diff_tree_to_tree(&d, repo, old_tree, new_tree, &opts), "cannot diff trees");
  Diff diff(d);
  git_diff_find_options find = GIT_DIFF_FIND_OPTIONS_INIT;
  find.flags = GIT_DIFF_FIND_RENAMES | GIT_DIFF_FIND_COPIES;
  check(git_diff_find_similar(diff.get(), &find), "cannot detect renames");
  return diff;
}

git_oid patch_id(git_diff* diff) {
  git_oid id;
  check(git_diff_patchid(&id, diff, nullptr), "cannot compute patch-id");
  return id;
}

std::vector<LocalEdit> local_edits(git_repository* repo) {
  git_status_options opts = GIT_STATUS_OPTIONS_INIT;
  opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
  opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
               GIT_STATUS_OPT_RENAMES_HEAD_TO_INDEX | GIT_STATUS_OPT_SORT_CASE_SENSITIVELY;
  git_status_list* l = nullptr;
  check(git_status_list_new(&l, repo, &opts), "cannot read the status of the checkout");
  StatusList list(l);
  std::vector<LocalEdit> edits;
  size_t n = git_status_list_entrycount(l);
  for (size_t i = 0; i < n; ++i) {
    const git_status_entry* e = git_status_byindex(l, i);
    const git_diff_delta* d = e->head_to_index ? e->head_to_index : e->index_to_workdir;
    if (!d) continue;
    const char* path = d->new_file.path ? d->new_file.path : d->old_file.path;
    unsigned s = e->status;
    char code = 'M';
    if (s == GIT_STATUS_WT_NEW)
      code = '?';
    else if (s & (GIT_STATUS_INDEX_NEW))
      code = 'A';
    else if (s & (GIT_STATUS_INDEX_DELETED | GIT_STATUS_WT_DELETED))
      code = 'D';
    else if (s & (GIT_STATUS_INDEX_RENAMED | GIT_STATUS_WT_RENAMED))
      code = 'R';
    else if (s & (GIT_STATUS_INDEX_TYPECHANGE | GIT_STATUS_WT_TYPECHANGE))
      code = 'T';
    else if (s & GIT_STATUS_IGNORED)
      continue;
    else if (s & GIT_STATUS_CONFLICTED)
      code = 'U';
    edits.push_back({path, code});
  }
  return edits;
}

void fetch(git_repository* repo, const std::string& url, const std::vector<std::string>& refspecs,
           const std::string& what) {
  git_remote* r = nullptr;
  check(git_remote_create_anonymous(&r, repo, url.c_str()), fmt::format("{}: bad upstream URL {}", what, url));
  Remote remote(r);
  std::vector<char*> specs;
  std::vector<std::string> storage = refspecs;
  for (auto& s : storage) specs.push_back(s.data());
  git_strarray array{specs.data(), specs.size()};
  git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
  check(git_remote_fetch(r, &array, &opts, "patchmgr fetch"), fmt::format("{}: cannot fetch {}", what, url));
}

std::optional<git_oid> hash_workdir_file(git_repository* repo, const std::string& path) {
  auto full = std::filesystem::path(git_repository_workdir(repo)) / path;
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(full, ec))) return std::nullopt;
  git_oid oid;
  // git_repository_hashfile applies the repository's filters (autocrlf...), as
  // `git add` would, so the hash is comparable with the blob in a tree.
  check(git_repository_hashfile(&oid, repo, full.c_str(), GIT_OBJECT_BLOB, nullptr),
        fmt::format("cannot hash {}", full.string()));
  return oid;
}

}  // namespace patchmgr::git
