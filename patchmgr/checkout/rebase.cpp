#include "patchmgr/checkout/rebase.h"

#include <fmt/format.h>

#include "patchmgr/checkout/apply.h"
#include "patchmgr/checkout/export.h"
#include "patchmgr/checkout/inspect.h"
#include "patchmgr/checkout/journal.h"
#include "patchmgr/checkout/lock.h"
#include "patchmgr/checkout/sync.h"
#include "patchmgr/checkout/upstream.h"
#include "patchmgr/git/patch_file.h"

namespace patchmgr {
namespace {

using MergeResult = git::Handle<git_merge_file_result, git_merge_file_result_free>;

// Where a conflicted file clashes, as ranges of upstream's new version of the file.
std::string describe_conflict(git_repository* repo, const git_index_entry* ancestor, const git_index_entry* ours,
                              const git_index_entry* theirs) {
  const char* path = ours ? ours->path : theirs ? theirs->path : ancestor->path;
  if (!ours) return fmt::format("{} (deleted upstream, changed by the patch)", path);
  if (!theirs) return fmt::format("{} (changed upstream, deleted by the patch)", path);
  git_merge_file_result raw{};
  git_merge_file_options opts = GIT_MERGE_FILE_OPTIONS_INIT;
  if (git_merge_file_from_index(&raw, repo, ancestor, ours, theirs, &opts) < 0) return path;
  std::string merged(raw.ptr ? raw.ptr : "", raw.len);
  git_merge_file_result_free(&raw);
  std::vector<std::string> ranges;
  int upstream_line = 0, start = 0;
  enum { outside, in_ours, in_theirs } where = outside;
  size_t pos = 0;
  while (pos < merged.size()) {
    size_t nl = merged.find('\n', pos);
    std::string line = merged.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? merged.size() : nl + 1;
    if (where == outside && line.rfind("<<<<<<<", 0) == 0) where = in_ours, start = upstream_line + 1;
    else if (where == in_ours && line.rfind("=======", 0) == 0) where = in_theirs;
    else if (where == in_theirs && line.rfind(">>>>>>>", 0) == 0) {
      where = outside;
      ranges.push_back(upstream_line > start ? fmt::format("{}-{}", start, upstream_line) : fmt::format("{}", start));
    } else if (where != in_theirs) ++upstream_line;
  }
  if (ranges.empty()) return path;
  bool one = ranges.size() == 1 && ranges[0].find('-') == std::string::npos;
  return fmt::format("{} (upstream line{} {})", path, one ? "" : "s", fmt::join(ranges, ", "));
}

}  // namespace

void rebase(const Context& ctx, const Manifest& m, const RebaseOptions& options) {
  auto& out = *ctx.out;
  bool bring_checkout = false, was_patched = false;
  std::string onto_hex;
  {
    LockedCheckout checkout(ctx, m, "rebase");
    git_repository* repo = checkout.repo();
    if (options.onto == "pin") throw Error(ExitCode::usage, fmt::format("{}: --onto pin: the series is already on the pin; give latest or a commit", m.name));
    git_oid onto = resolve_upstream_commit(ctx, repo, m, options.onto, "--onto");
    onto_hex = git::to_hex(onto);
    git_oid pin = git::from_hex(m.commit);
    if (git_oid_equal(&onto, &pin)) {
      out << fmt::format("{}: the pin is already {}, nothing to do\n", m.name, onto_hex.substr(0, 12));
      return;
    }

    // The series as commits on the current pin (every source patch that is not upstreamed).
    std::vector<const Patch*> series;
    for (const Patch* p : m.source_patches())
      if (p->status != PatchStatus::upstreamed) series.push_back(p);
    std::vector<git_oid> old_commits;
    git_oid tip = pin;
    for (const Patch* p : series) {
      git::Commit c = git::lookup_commit(repo, tip);
      TreeApply r = apply_patch_to_tree(repo, git::commit_tree(c.get()).get(), *p);
      if (!r.tree)
        throw Error(ExitCode::failed, fmt::format("{}: patch {} does not apply on the current pin ({}); fix the series there first "
                                                  "(patchmgr check {})",
                                                  m.name, p->file_field, r.describe(), m.name));
      tip = commit_patch(repo, tip, *r.tree, *p);
      old_commits.push_back(tip);
    }

    // Cherry-pick each onto the new base: a three-way merge per file.
    std::vector<PatchFileUpdate> updates;
    git_oid base = onto;
    for (size_t i = 0; i < series.size(); ++i) {
      const Patch& p = *series[i];
      git::Commit pick = git::lookup_commit(repo, old_commits[i]);
      git::Commit ours = git::lookup_commit(repo, base);
      git_merge_options merge = GIT_MERGE_OPTIONS_INIT;
      git_index* raw = nullptr;
      git::check(git_cherrypick_commit(&raw, repo, pick.get(), ours.get(), 0, &merge),
                 fmt::format("{}: cannot merge patch {}", m.name, p.id));
      git::Index index(raw);
      if (git_index_has_conflicts(raw)) {
        std::vector<std::string> files;
        git_index_conflict_iterator* it = nullptr;
        git::check(git_index_conflict_iterator_new(&it, raw), "cannot list conflicts");
        const git_index_entry *a = nullptr, *o = nullptr, *t = nullptr;
        while (git_index_conflict_next(&a, &o, &t, it) == 0) files.push_back(describe_conflict(repo, a, o, t));
        git_index_conflict_iterator_free(it);
        throw Error(ExitCode::failed,
                    fmt::format("{}: rebase onto {} stopped: patch {} ({}) conflicts with upstream in {}\n"
                                "{}: nothing was changed: the manifest, the patch files and the checkout are as they were. "
                                "Resolve it by hand: check out {} in the checkout, apply the series up to that patch, fix "
                                "the conflict, commit, then patchmgr export",
                                m.name, onto_hex.substr(0, 12), p.file_field, p.id, fmt::join(files, "; "), m.name,
                                onto_hex.substr(0, 12)));
      }
      git_oid tree;
      git::check(git_index_write_tree_to(&tree, raw, repo), "cannot write the merged tree");
      git::Commit base_commit = git::lookup_commit(repo, base);
      if (git_oid_equal(&tree, git_commit_tree_id(base_commit.get())))
        throw Error(ExitCode::failed, fmt::format("{}: patch {} changes nothing on {}: upstream already has it. Set its status "
                                                  "to upstreamed in {} and rebase again",
                                                  m.name, p.id, onto_hex.substr(0, 12), m.path.filename().string()));
      base = commit_patch(repo, base, tree, p);
      git::Commit made = git::lookup_commit(repo, base);
      updates.push_back({&p, git::format_patch(made.get())});
    }

    Inspection in = inspect(repo, m, false);
    was_patched = in.state == CheckoutState::patched;
    bring_checkout = (was_patched || in.state == CheckoutState::pristine) && !in.has_tracked_edits();
    out << fmt::format("{}: rebased {} patch{} from {} onto {}\n", m.name, series.size(), series.size() == 1 ? "" : "es",
                       m.commit.substr(0, 12), onto_hex.substr(0, 12));
    write_series_files(ctx, m, updates, onto_hex);
    out << fmt::format("{}: pin moved to {} in {}\n", m.name, onto_hex.substr(0, 12), m.path.filename().string());
  }  // the lock is released: sync and apply below take it again

  if (!bring_checkout) {
    out << fmt::format("{}: the checkout has local work, so it stays where it is; run patchmgr sync {} and patchmgr apply {} when ready\n",
                       m.name, m.name, m.name);
    return;
  }
  LoadResult reloaded = load_manifest(m.path, ctx.root);
  if (!reloaded.diagnostics.empty())
    throw Error(ExitCode::failed, fmt::format("{}: the rewritten manifest does not load: {}", m.name, reloaded.diagnostics[0].to_string(ctx.root)));
  sync(ctx, reloaded.manifests[0], {});
  if (was_patched) apply(ctx, reloaded.manifests[0], {});
}

}  // namespace patchmgr
