#include "patchmgr/checkout/rebase.h"

#include <fmt/format.h>

#include "patchmgr/checkout/apply.h"
#include "patchmgr/checkout/drift.h"
#include "patchmgr/checkout/export.h"
#include "patchmgr/checkout/inspect.h"
#include "patchmgr/checkout/journal.h"
#include "patchmgr/checkout/lock.h"
#include "patchmgr/checkout/rebase_state.h"
#include "patchmgr/checkout/sync.h"
#include "patchmgr/checkout/upstream.h"
#include "patchmgr/git/patch_file.h"
#include "patchmgr/util/fs.h"
#include "patchmgr/util/sha256.h"

namespace patchmgr {
namespace {

// HEAD, detached, the index and the working tree to `oid`. Only for a checkout
// whose changes the rebase has already taken into a commit (or drops on abort).
void reset_detached(git_repository* repo, const git_oid& oid, const Manifest& m) {
  git::Commit c = git::lookup_commit(repo, oid);
  git::check(git_repository_set_head_detached(repo, &oid), fmt::format("{}: cannot move HEAD", m.name));
  git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
  co.checkout_strategy = GIT_CHECKOUT_FORCE;
  git::check(git_reset(repo, reinterpret_cast<git_object*>(c.get()), GIT_RESET_HARD, &co),
             fmt::format("{}: cannot reset the checkout", m.name));
}

// Keeps the series' commits on the old pin alive while a rebase is stopped.
std::string old_series_ref(const Manifest& m) { return "refs/patchmgr/rebase/" + m.name; }

// The first commit after `old_pin` up to `onto` whose change is the patch's
// (same patch-id); else `onto` itself. Cheap: one diff per commit, at most 1000.
std::string commit_that_has(git_repository* repo, const Patch& p, const std::string& old_pin, const git_oid& onto) {
  git_oid wanted = patch_file_id(p);
  git_revwalk* raw = nullptr;
  git::check(git_revwalk_new(&raw, repo), "cannot walk the history");
  git::Revwalk walk(raw);
  git_revwalk_sorting(raw, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
  git::check(git_revwalk_push(raw, &onto), "cannot walk the history");
  git_oid pin = git::from_hex(old_pin);
  git_revwalk_hide(raw, &pin);
  git_oid oid;
  for (int n = 0; n < 1000 && git_revwalk_next(&oid, raw) == 0; ++n) {
    git::Commit c = git::lookup_commit(repo, oid);
    if (git_commit_parentcount(c.get()) != 1) continue;
    git::Commit parent = git::lookup_commit(repo, *git_commit_parent_id(c.get(), 0));
    git::Tree a = git::commit_tree(parent.get()), b = git::commit_tree(c.get());
    git::Diff d = git::diff_trees(repo, a.get(), b.get());
    git_oid id = git::patch_id(d.get());
    if (git_oid_equal(&id, &wanted)) return git::to_hex(oid);
  }
  return git::to_hex(onto);
}

// Carries state.series[from...] onto state.base, in memory. Returns true when
// the whole series is through (state.base is then the new series' tip); false
// when patch state.stopped_at conflicts, with `conflicts` describing where.
bool carry(git_repository* repo, const Manifest& m, StoppedRebase& state, size_t from,
           std::vector<std::string>& conflicts, std::ostream& out) {
  git_oid onto = git::from_hex(state.onto);
  for (size_t i = from; i < state.series.size(); ++i) {
    const Patch& p = *m.find(state.series[i]);
    git::Commit pick = git::lookup_commit(repo, git::from_hex(state.old_commits[i]));
    git_oid base = git::from_hex(state.base);
    git::Commit ours = git::lookup_commit(repo, base);
    git_merge_options merge = GIT_MERGE_OPTIONS_INIT;
    git_index* raw = nullptr;
    git::check(git_cherrypick_commit(&raw, repo, pick.get(), ours.get(), 0, &merge),
               fmt::format("{}: cannot merge patch {}", m.name, p.id));
    git::Index index(raw);
    if (git_index_has_conflicts(raw)) {
      git_index_conflict_iterator* it = nullptr;
      git::check(git_index_conflict_iterator_new(&it, raw), "cannot list conflicts");
      const git_index_entry *a = nullptr, *o = nullptr, *t = nullptr;
      while (git_index_conflict_next(&a, &o, &t, it) == 0) conflicts.push_back(describe_conflict(repo, a, o, t));
      git_index_conflict_iterator_free(it);
      state.stopped_at = i;
      return false;
    }
    git_oid tree;
    git::check(git_index_write_tree_to(&tree, raw, repo), "cannot write the merged tree");
    if (git_oid_equal(&tree, git_commit_tree_id(ours.get()))) {
      // Upstream already has the change: drop it from the series and say where it is.
      std::string commit = commit_that_has(repo, p, state.old_pin, onto);
      state.upstreamed[p.id] = commit;
      out << fmt::format(
          "{}: patch {} changes nothing on {}: upstream has it ({}); it leaves the series as upstreamed\n", m.name,
          p.id, state.onto.substr(0, 12), commit.substr(0, 12));
      continue;
    }
    state.base = git::to_hex(commit_patch(repo, base, tree, p));
  }
  return true;
}

// The series on the pin as commits, in memory: every patch that is not
// upstreamed, and the upstreamed ones that still apply there (the patches after
// them were made on top of them). The carried ones go to state.series and
// state.old_commits.
void build_on_pin(git_repository* repo, const Manifest& m, StoppedRebase& state) {
  git_oid tip = git::from_hex(m.commit);
  for (const Patch* p : m.source_patches()) {
    git::Commit c = git::lookup_commit(repo, tip);
    TreeApply r = apply_patch_to_tree(repo, git::commit_tree(c.get()).get(), *p);
    if (p->status == PatchStatus::upstreamed) {
      if (r.tree) tip = commit_patch(repo, tip, *r.tree, *p);
      continue;  // the pin has it already, or it never applied there: either way it is not carried
    }
    if (!r.tree)
      throw Error(ExitCode::failed,
                  fmt::format("{}: patch {} does not apply on the current pin ({}); fix the series there first "
                              "(patchmgr check {})",
                              m.name, p->file_field, r.describe(), m.name));
    tip = commit_patch(repo, tip, *r.tree, *p);
    state.series.push_back(p->id);
    state.old_commits.push_back(git::to_hex(tip));
  }
}

// Puts the checkout on state.base (detached) and the conflicting patch into
// the working tree with conflict markers, records the state, and says what to do.
// "no patch of the series applied yet", "the 1 patch before it applied", "the 2 patches ...".
std::string applied_before(size_t n) {
  if (n == 0) return "no patch of the series applied yet";
  return fmt::format("the {} patch{} before it applied", n, n == 1 ? "" : "es");
}

[[noreturn]] void stop(git_repository* repo, const Manifest& m, const StoppedRebase& state, const git::Head& from,
                       const std::vector<std::string>& conflicts, const Context& ctx) {
  const Patch& p = *m.find(state.series[state.stopped_at]);
  git_oid base = git::from_hex(state.base);
  write_stopped_rebase(repo, state);
  git_oid old_tip = git::from_hex(state.old_commits.back());
  git::check(git_reference_create(nullptr, repo, old_series_ref(m).c_str(), &old_tip, 1,
                                  "patchmgr rebase: the series on the old pin"),
             fmt::format("{}: cannot keep the old series", m.name));
  if (!from.oid || !git_oid_equal(&*from.oid, &base) || from.branch) detach_head(repo, "rebase", from, base);
  git::Commit pick = git::lookup_commit(repo, git::from_hex(state.old_commits[state.stopped_at]));
  git_cherrypick_options opts = GIT_CHERRYPICK_OPTIONS_INIT;
  opts.checkout_opts.checkout_strategy = GIT_CHECKOUT_SAFE | GIT_CHECKOUT_ALLOW_CONFLICTS;
  git::check(git_cherrypick(repo, pick.get(), &opts),
             fmt::format("{}: cannot put patch {} into the checkout", m.name, p.id));
  std::string co = display_path(m.checkout, ctx.root);
  throw Error(
      ExitCode::failed,
      fmt::format(
          "{}: rebase onto {} stopped: patch {} ({}) conflicts with upstream in {}\n"
          "{}: {} is now at {} with {}, and conflict markers in the files above.\n"
          "  to resolve: edit the files there, git add them (or git commit), then run patchmgr rebase --continue {}\n"
          "  to give up: patchmgr rebase --abort {} puts the checkout back where it was\n"
          "The manifest and the patch files are written when the whole series is through; until then they are "
          "unchanged.",
          m.name, state.onto.substr(0, 12), p.file_field, p.id, fmt::join(conflicts, "; "), m.name, co,
          state.onto.substr(0, 12), applied_before(state.stopped_at), m.name, m.name));
}

// The whole series is through: write the patch files, the manifest and the pin
// at once. Returns the manifest as it loads now.
Manifest finish(const Context& ctx, git_repository* repo, const Manifest& m, const StoppedRebase& state) {
  auto& out = *ctx.out;
  git_oid onto = git::from_hex(state.onto), tip = git::from_hex(state.base);
  SeriesEdit edit;
  for (const auto& oid : git::first_parent_chain(repo, onto, tip)) {
    git::Commit c = git::lookup_commit(repo, oid);
    std::string msg = git_commit_message(c.get());
    std::string key = std::string("\n") + kPatchTrailer + ": ";
    size_t at = msg.rfind(key);
    std::string id = msg.substr(at + key.size(), msg.find('\n', at + key.size()) - at - key.size());
    edit.updates.push_back({m.find(id), git::format_patch(c.get())});
  }
  for (const auto& [id, commit] : state.upstreamed) edit.upstreamed.push_back({m.find(id), commit});
  edit.new_pin = state.onto;
  size_t carried = edit.updates.size();
  out << fmt::format("{}: rebased {} patch{} from {} onto {}{}\n", m.name, carried, carried == 1 ? "" : "es",
                     state.old_pin.substr(0, 12), state.onto.substr(0, 12),
                     state.upstreamed.empty() ? "" : fmt::format(" ({} found upstream)", state.upstreamed.size()));
  SeriesWrite written = write_series_files(ctx, m, edit);
  out << fmt::format("{}: pin moved to {} in {}\n", m.name, state.onto.substr(0, 12), m.path.filename().string());
  return written.manifest;
}

void start(const Context& ctx, const Manifest& m, const RebaseOptions& options) {
  auto& out = *ctx.out;
  bool bring_checkout = false, was_patched = false;
  std::optional<Manifest> reloaded;
  {
    LockedCheckout checkout(ctx, m, "rebase");
    git_repository* repo = checkout.repo();
    refuse_while_rebase_stopped(repo, m, "start another rebase");
    if (options.onto == "pin")
      throw Error(ExitCode::usage,
                  fmt::format("{}: --onto pin: the series is already on the pin; give latest or a commit", m.name));
    git_oid onto = resolve_upstream_commit(ctx, repo, m, options.onto, "--onto");
    std::string onto_hex = git::to_hex(onto);
    if (onto_hex == m.commit) {
      out << fmt::format("{}: the pin is already {}, nothing to do\n", m.name, onto_hex.substr(0, 12));
      return;
    }

    StoppedRebase state;
    state.component = m.name;
    state.onto = onto_hex;
    state.old_pin = m.commit;
    state.manifest_sha256 = sha256_hex(read_file(m.path));
    state.base = onto_hex;
    build_on_pin(repo, m, state);

    Inspection in = inspect(repo, m, false);
    was_patched = in.state == CheckoutState::patched;
    bring_checkout = (was_patched || in.state == CheckoutState::pristine) && !in.has_tracked_edits();
    state.orig_head = in.head.oid ? git::to_hex(*in.head.oid) : "";
    state.orig_branch = in.head.branch;
    state.was_patched = was_patched;

    std::vector<std::string> conflicts;
    if (!carry(repo, m, state, 0, conflicts, out)) {
      const Patch& p = *m.find(state.series[state.stopped_at]);
      // The conflict is resolved in the checkout, which must hold nothing that moving it would lose.
      if (!bring_checkout || !in.unrecorded_commits().empty())
        throw Error(
            ExitCode::failed,
            fmt::format("{}: rebase onto {} stopped: patch {} ({}) conflicts with upstream in {}\n"
                        "{}: nothing was changed: the manifest, the patch files and the checkout are as they were. The "
                        "checkout holds local work, so the rebase cannot stop there for you to resolve the conflict: "
                        "commit or stash it (patchmgr status shows it), then run patchmgr rebase --onto {} {} again",
                        m.name, onto_hex.substr(0, 12), p.file_field, p.id, fmt::join(conflicts, "; "), m.name,
                        options.onto, m.name));
      stop(repo, m, state, in.head, conflicts, ctx);
    }
    reloaded = finish(ctx, repo, m, state);
  }  // the lock is released: sync and apply below take it again

  if (!bring_checkout) {
    out << fmt::format(
        "{}: the checkout has local work, so it stays where it is; run patchmgr sync {} and patchmgr apply {} when "
        "ready\n",
        m.name, m.name, m.name);
    return;
  }
  sync(ctx, *reloaded, {});
  if (was_patched) apply(ctx, *reloaded, {});
}

void resume(const Context& ctx, const Manifest& m) {
  auto& out = *ctx.out;
  StoppedRebase state;
  std::optional<Manifest> reloaded;
  {
    LockedCheckout checkout(ctx, m, "rebase --continue");
    git_repository* repo = checkout.repo();
    auto stopped = read_stopped_rebase(repo);
    if (!stopped) {
      out << fmt::format("{}: no rebase is stopped, nothing to continue\n", m.name);
      return;
    }
    state = *stopped;
    if (sha256_hex(read_file(m.path)) != state.manifest_sha256)
      throw Error(ExitCode::refused,
                  fmt::format("{}: {} changed since the rebase stopped; the rebase carries the series it "
                              "started with. Undo that change, or run patchmgr rebase --abort {} and rebase again",
                              m.name, display_path(m.path, ctx.root), m.name));
    const Patch& p = *m.find(state.series[state.stopped_at]);
    git_oid base = git::from_hex(state.base);
    git::Head head = git::read_head(repo);

    // The resolution: a commit on top of the base, or the index.
    git_index* raw_index = nullptr;
    git::check(git_repository_index(&raw_index, repo), "cannot read the index");
    git::Index index(raw_index);
    git::check(git_index_read(raw_index, 1), "cannot read the index");
    if (git_index_has_conflicts(raw_index)) {
      std::vector<std::string> files;
      git_index_conflict_iterator* it = nullptr;
      git::check(git_index_conflict_iterator_new(&it, raw_index), "cannot list conflicts");
      const git_index_entry *a = nullptr, *o = nullptr, *t = nullptr;
      while (git_index_conflict_next(&a, &o, &t, it) == 0) files.push_back(o ? o->path : t ? t->path : a->path);
      git_index_conflict_iterator_free(it);
      throw Error(ExitCode::failed,
                  fmt::format("{}: {} still has conflicts in {}; edit them, git add them, then run patchmgr rebase "
                              "--continue {} again",
                              m.name, display_path(m.checkout, ctx.root), fmt::join(files, ", "), m.name));
    }
    std::vector<std::string> unstaged;
    for (const auto& e : git::local_edits(repo))
      if (e.code != '?') unstaged.push_back(e.path);
    git_oid tree{};
    bool on_base = head.oid && git_oid_equal(&*head.oid, &base);
    if (!on_base && !(head.oid && git::is_ancestor(repo, base, *head.oid)))
      throw Error(ExitCode::refused,
                  fmt::format("{}: HEAD is no longer on the rebase's commit {}; check it out again (git checkout "
                              "{}), resolve, then patchmgr rebase --continue {}; or patchmgr rebase --abort {}",
                              m.name, state.base.substr(0, 12), state.base.substr(0, 12), m.name, m.name));
    if (on_base) {
      // Staged: every change must be in the index, none left only in the working tree.
      git_status_options so = GIT_STATUS_OPTIONS_INIT;
      so.show = GIT_STATUS_SHOW_WORKDIR_ONLY;
      git_status_list* raw_list = nullptr;
      git::check(git_status_list_new(&raw_list, repo, &so), "cannot read the status");
      git::StatusList list(raw_list);
      std::vector<std::string> left;
      for (size_t i = 0; i < git_status_list_entrycount(raw_list); ++i) {
        const git_status_entry* e = git_status_byindex(raw_list, i);
        if (e->status & (GIT_STATUS_WT_MODIFIED | GIT_STATUS_WT_DELETED | GIT_STATUS_WT_TYPECHANGE))
          left.push_back(e->index_to_workdir->new_file.path);
      }
      if (!left.empty())
        throw Error(ExitCode::failed,
                    fmt::format("{}: changes in {} are not staged; git add them (or git checkout -- them), then "
                                "run patchmgr rebase --continue {} again",
                                m.name, fmt::join(left, ", "), m.name));
      git::check(git_index_write_tree(&tree, raw_index), "cannot write the resolved tree");
    } else {
      if (!unstaged.empty())
        throw Error(ExitCode::failed,
                    fmt::format("{}: uncommitted changes in {} on top of your resolution commit; commit them (git "
                                "commit --amend) or drop them, then run patchmgr rebase --continue {} again",
                                m.name, fmt::join(unstaged, ", "), m.name));
      git::Commit c = git::lookup_commit(repo, *head.oid);
      tree = *git_commit_tree_id(c.get());
    }
    git_repository_state_cleanup(repo);
    git::Commit base_commit = git::lookup_commit(repo, base);
    if (git_oid_equal(&tree, git_commit_tree_id(base_commit.get()))) {
      state.upstreamed[p.id] = state.onto;
      out << fmt::format(
          "{}: the resolution of patch {} changes nothing: upstream has it; it leaves the series as upstreamed\n",
          m.name, p.id);
    } else {
      state.base = git::to_hex(commit_patch(repo, base, tree, p));
      out << fmt::format("{}: patch {} resolved\n", m.name, p.id);
    }
    reset_detached(repo, git::from_hex(state.base), m);  // the resolution is in that commit now
    std::vector<std::string> conflicts;
    if (!carry(repo, m, state, state.stopped_at + 1, conflicts, out)) {
      write_stopped_rebase(repo, state);
      stop(repo, m, state, git::read_head(repo), conflicts, ctx);
    }
    // The series is through: the files, then the checkout to the new pin (and patched by apply, as before).
    reloaded = finish(ctx, repo, m, state);
    reset_detached(repo, git::from_hex(state.onto), m);
    remove_stopped_rebase(repo);
    git_reference_remove(repo, old_series_ref(m).c_str());
  }
  if (state.was_patched) apply(ctx, *reloaded, {});
}

void abort_stopped(const Context& ctx, const Manifest& m) {
  auto& out = *ctx.out;
  LockedCheckout checkout(ctx, m, "rebase --abort");
  git_repository* repo = checkout.repo();
  auto state = read_stopped_rebase(repo);
  if (!state) {
    out << fmt::format("{}: no rebase is stopped, nothing to abort\n", m.name);
    return;
  }
  // Back to the commit and branch the rebase started from, the conflict and its resolution dropped.
  git_oid orig = git::from_hex(state->orig_head);
  reset_detached(repo, orig, m);
  std::optional<git_oid> branch_at = state->orig_branch ? git::resolve_ref(repo, *state->orig_branch) : std::nullopt;
  if (branch_at && git_oid_equal(&*branch_at, &orig))
    git::check(git_repository_set_head(repo, state->orig_branch->c_str()),
               fmt::format("{}: cannot check out {}", m.name, *state->orig_branch));
  git_repository_state_cleanup(repo);
  remove_stopped_rebase(repo);
  git_reference_remove(repo, old_series_ref(m).c_str());
  out << fmt::format(
      "{}: rebase onto {} aborted: the checkout is back at {}{}; the manifest and the patch files were not changed\n",
      m.name, state->onto.substr(0, 12), state->orig_head.substr(0, 12),
      state->orig_branch ? " on " + state->orig_branch->substr(11) : std::string(" (detached)"));
}

}  // namespace

void rebase(const Context& ctx, const Manifest& m, const RebaseOptions& options) {
  int asked = int(!options.onto.empty()) + int(options.resume) + int(options.abort);
  if (asked != 1)
    throw Error(ExitCode::usage,
                "rebase: give one of --onto latest|SHA (start), --continue (after resolving a conflict) or --abort");
  if (options.resume)
    resume(ctx, m);
  else if (options.abort)
    abort_stopped(ctx, m);
  else
    start(ctx, m, options);
}

}  // namespace patchmgr
