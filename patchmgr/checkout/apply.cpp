// The apply logic. All commits are built in memory first (apply_patch_to_tree
// and git_commit_create without a ref): if patch k fails, nothing on disk or
// in the refs has changed. Only a complete series is then checked out, as one
// journaled Transition.
#include "patchmgr/checkout/apply.h"

#include <algorithm>

#include <fmt/format.h>

#include "patchmgr/checkout/inspect.h"
#include "patchmgr/checkout/journal.h"
#include "patchmgr/checkout/lock.h"
#include "patchmgr/checkout/rebase_state.h"
#include "patchmgr/git/git.h"

namespace patchmgr {

std::string patch_branch(const Manifest& manifest) { return "refs/heads/patchmgr/" + manifest.name; }

std::string TreeApply::describe() const {
  if (failed_hunk.empty()) return fmt::format("{}: {}", failed_file.empty() ? "the patch" : failed_file, message);
  return fmt::format("{}, hunk {} ({}): {}", failed_file, failed_hunk_number, failed_hunk, message);
}

namespace {

struct ApplyTrace {
  std::string file;
  std::string hunk;
  int hunk_number = 0;
};

int on_delta(const git_diff_delta* delta, void* payload) {
  auto* t = static_cast<ApplyTrace*>(payload);
  t->file = delta->new_file.path ? delta->new_file.path : delta->old_file.path;
  t->hunk.clear();
  t->hunk_number = 0;
  return 0;
}

// libgit2 calls this just before it applies each hunk, so when applying
// fails, the last hunk seen is the one that did not apply.
int on_hunk(const git_diff_hunk* hunk, void* payload) {
  auto* t = static_cast<ApplyTrace*>(payload);
  t->hunk.assign(hunk->header, hunk->header_len);
  while (!t->hunk.empty() && (t->hunk.back() == '\n' || t->hunk.back() == '\r')) t->hunk.pop_back();
  ++t->hunk_number;
  return 0;
}

git_signature* signature_at(const std::string& name, const std::string& email, const git_time& when) {
  git_signature* sig = nullptr;
  git::check(git_signature_new(&sig, name.c_str(), email.c_str(), when.time, when.offset),
             fmt::format("invalid author \"{} <{}>\"", name, email));
  return sig;
}

}  // namespace

TreeApply apply_patch_to_tree(git_repository* repo, git_tree* base, const Patch& patch) {
  TreeApply result;
  git::Diff diff = git::parse_diff(patch.parsed);
  ApplyTrace trace;
  git_apply_options opts = GIT_APPLY_OPTIONS_INIT;
  opts.delta_cb = on_delta;
  opts.hunk_cb = on_hunk;
  opts.payload = &trace;
  git_index* index = nullptr;
  if (git_apply_to_tree(&index, repo, base, diff.get(), &opts) < 0) {
    const git_error* e = git_error_last();
    result.message = e && e->message ? e->message : "the patch does not apply";
    result.failed_file = trace.file;
    result.failed_hunk = trace.hunk;
    result.failed_hunk_number = trace.hunk_number;
    return result;
  }
  git::Index holder(index);
  git_oid tree;
  git::check(git_index_write_tree_to(&tree, index, repo), "cannot write the patched tree");
  result.tree = tree;
  return result;
}

git_oid commit_patch(git_repository* repo, const git_oid& parent_id, const git_oid& tree_id, const Patch& p) {
  // The committer is patchmgr at the author's time: the same parent and patch
  // file give the same commit id on every machine.
  git::Signature author(signature_at(p.parsed.author_name, p.parsed.author_email, p.parsed.date));
  git::Signature committer(signature_at("patchmgr", "patchmgr@localhost", p.parsed.date));
  git::Commit parent = git::lookup_commit(repo, parent_id);
  git::Tree tree = git::lookup_tree(repo, tree_id);
  git::Diff diff = git::diff_trees(repo, git::commit_tree(parent.get()).get(), tree.get());
  std::string message = fmt::format("{}\n{}: {}\n{}: {}\n", p.parsed.message(), kPatchTrailer, p.id, kPatchIdTrailer,
                                    git::to_hex(git::patch_id(diff.get())));
  git_oid oid;
  // The variadic form: the array form's parameter type changed in libgit2 1.8.
  git::check(git_commit_create_v(&oid, repo, nullptr, author.get(), committer.get(), "UTF-8", message.c_str(),
                                 tree.get(), 1, parent.get()),
             fmt::format("cannot record patch {}", p.id));
  return oid;
}

void apply(const Context& ctx, const Manifest& m, const ApplyOptions& options) {
  auto& out = *ctx.out;
  // The series to apply: enabled source patches plus the ones asked for, in manifest order.
  for (const auto& id : options.with) {
    const Patch* p = m.find(id);
    if (!p)
      throw Error(ExitCode::usage,
                  fmt::format("{}: --with {}: no such patch in {}", m.name, id, m.path.filename().string()));
    if (p->kind != PatchKind::source)
      throw Error(ExitCode::usage,
                  fmt::format("{}: --with {}: a runtime patch is applied by the runtime, not by patchmgr", m.name, id));
    if (p->status == PatchStatus::upstreamed)
      throw Error(ExitCode::usage,
                  fmt::format("{}: --with {}: the patch is upstreamed; the pin already has it", m.name, id));
  }
  std::vector<const Patch*> series;
  for (const Patch* p : m.source_patches())
    if (p->enabled || std::count(options.with.begin(), options.with.end(), p->id)) series.push_back(p);

  LockedCheckout checkout(ctx, m, "apply");
  git_repository* repo = checkout.repo();
  refuse_while_rebase_stopped(repo, m, "apply");

  Inspection in = inspect(repo, m, false);
  if (!in.pin_present || !in.based_on_pin) throw Error(ExitCode::failed, fmt::format("{}: {}", m.name, in.detail));
  if (in.has_tracked_edits()) {
    std::vector<std::string> files;
    for (const auto& e : in.edits)
      if (e.code != '?') files.push_back(fmt::format("{} {}", e.code, e.path));
    throw Error(ExitCode::refused,
                fmt::format("{}: refusing to apply over local edits in {}: {}; commit or stash them, or "
                            "run patchmgr revert --discard {} to set them aside",
                            m.name, m.checkout.string(), fmt::join(files, ", "), m.name));
  }
  if (auto work = in.unrecorded_commits(); !work.empty()) {
    std::vector<std::string> list;
    for (const auto* c : work) list.push_back(fmt::format("{} {}", git::short_hex(c->oid), c->subject));
    throw Error(ExitCode::refused,
                fmt::format("{}: refusing to apply: HEAD has commits on top of the pin that are not "
                            "the recorded patches: {}; move them to a branch of your own, or run "
                            "patchmgr revert --discard {} (they are kept under refs/patchmgr/discarded/)",
                            m.name, fmt::join(list, "; "), m.name));
  }

  std::vector<std::string> wanted;
  for (const Patch* p : series) wanted.push_back(p->id);
  std::string branch = patch_branch(m);
  if (in.applied_ids == wanted && in.state != CheckoutState::diverged) {
    out << fmt::format("{}: already applied ({} patch{} on {}), nothing to do\n", m.name, wanted.size(),
                       wanted.size() == 1 ? "" : "es", m.commit.substr(0, 12));
    return;
  }

  // Continue from HEAD when it holds a clean prefix of the series; else rebuild from the pin.
  git_oid pin = git::from_hex(m.commit);
  git_oid base = pin;
  size_t first = 0;
  bool prefix = in.state != CheckoutState::diverged && in.applied_ids.size() <= wanted.size() &&
                std::equal(in.applied_ids.begin(), in.applied_ids.end(), wanted.begin());
  if (prefix) {
    base = *in.head.oid;
    first = in.applied_ids.size();
  }

  git::Commit parent = git::lookup_commit(repo, base);
  git::Tree tree = git::commit_tree(parent.get());
  git_oid tip = base;
  for (size_t k = first; k < series.size(); ++k) {
    const Patch& p = *series[k];
    TreeApply r = apply_patch_to_tree(repo, tree.get(), p);
    if (!r.tree)
      throw Error(ExitCode::failed, fmt::format("{}: patch {} ({}) does not apply: {}\n{}: nothing was changed; the "
                                                "checkout is as it was before this command",
                                                m.name, p.file_field, p.id, r.describe(), m.name));
    tree = git::lookup_tree(repo, *r.tree);
    tip = commit_patch(repo, tip, *r.tree, p);
    test_kill_point(fmt::format("after-patch:{}", k + 1));
  }

  // Moving the branch must not orphan user work left on it.
  std::optional<git_oid> branch_old = git::resolve_ref(repo, branch);
  if (branch_old && !git_oid_equal(&*branch_old, &*in.head.oid)) {
    auto work = orphaned_work(repo, *branch_old, branch);
    if (!work.empty()) {
      std::vector<std::string> list;
      for (const auto& oid : work) list.push_back(git::short_hex(oid));
      throw Error(ExitCode::refused,
                  fmt::format("{}: refusing to move branch {}: it holds commits found nowhere else ({}); "
                              "rename the branch (git branch -m) and run apply again",
                              m.name, branch.substr(11), fmt::join(list, ", ")));
    }
  }

  move_to_branch(repo, "apply", in.head, tip, branch, branch_old,
                 fmt::format("patchmgr apply: {} patches on {}", series.size(), m.commit.substr(0, 12)));

  out << fmt::format("{}: applied {} patch{} on {} -> branch {} at {}\n", m.name, series.size() - first,
                     series.size() - first == 1 ? "" : "es", m.commit.substr(0, 12), branch.substr(11),
                     git::short_hex(tip));
  for (size_t k = 0; k < series.size(); ++k)
    out << fmt::format("  {:<28} {}\n", series[k]->id, k < first ? "already applied" : "applied");
}

}  // namespace patchmgr
