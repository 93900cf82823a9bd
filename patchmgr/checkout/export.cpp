#include "patchmgr/checkout/export.h"

#include <ctime>
#include <map>
#include <regex>
#include <set>

#include <fmt/format.h>

#include "patchmgr/checkout/apply.h"
#include "patchmgr/checkout/inspect.h"
#include "patchmgr/checkout/journal.h"
#include "patchmgr/checkout/lock.h"
#include "patchmgr/checkout/rebase_state.h"
#include "patchmgr/git/patch_file.h"
#include "patchmgr/util/fs.h"

namespace patchmgr {
namespace {

// "Add a thing: faster" -> "add-a-thing-faster", at most 40 characters, cut at a '-'.
std::string slug_of(const std::string& subject) {
  std::string s;
  for (char ch : subject) {
    if (std::isalnum(static_cast<unsigned char>(ch)))
      s += char(std::tolower(static_cast<unsigned char>(ch)));
    else if (!s.empty() && s.back() != '-')
      s += '-';
  }
  if (s.size() > 40) s = s.substr(0, s.rfind('-', 40) == std::string::npos ? 40 : s.rfind('-', 40));
  while (!s.empty() && s.back() == '-') s.pop_back();
  return s.empty() ? "patch" : s;
}

std::string today_utc() {
  std::time_t now = std::time(nullptr);
  char day[16];
  std::strftime(day, sizeof day, "%Y-%m-%d", std::gmtime(&now));
  return day;
}

// One commit of the chain and what it becomes: an existing patch, or a new one.
struct Exported {
  git_oid oid{};
  const Patch* patch = nullptr;  // null: a new patch
  std::string id;                // the patch's id (new ones: from the subject)
};

}  // namespace

void export_series(const Context& ctx, const Manifest& m) {
  auto& out = *ctx.out;
  LockedCheckout checkout(ctx, m, "export");
  git_repository* repo = checkout.repo();
  refuse_while_rebase_stopped(repo, m, "export");
  Inspection in = inspect(repo, m, false);
  if (!in.based_on_pin) throw Error(ExitCode::failed, fmt::format("{}: {}", m.name, in.detail));
  if (in.chain.empty())
    throw Error(ExitCode::failed,
                fmt::format("{}: the checkout is pristine, there is nothing to export; run patchmgr apply {} first",
                            m.name, m.name));
  if (in.has_tracked_edits())
    throw Error(ExitCode::refused,
                fmt::format("{}: the checkout has uncommitted edits; commit them into the patch commits "
                            "(git commit --amend, or git commit --fixup and git rebase --autosquash) and export again",
                            m.name));

  // Upstream's own commits between the pin and HEAD (a checkout moved to a newer
  // upstream commit by hand) are no patches: the pin has to move, which rebase does.
  if (auto upstream = git::resolve_ref(repo, "refs/remotes/origin/" + m.track)) {
    const ChainCommit* newest = nullptr;
    for (const auto& c : in.chain)
      if (!c.patch && git::is_ancestor(repo, c.oid, *upstream)) newest = &c;
    if (newest)
      throw Error(
          ExitCode::failed,
          fmt::format("{}: commit {} \"{}\" is upstream's (origin/{} has it), not a patch: the series sits on a newer "
                      "upstream commit than the pin {}. Move the pin there with patchmgr rebase --onto {} {} (it "
                      "stops at a conflict for you to resolve), then export again",
                      m.name, git::short_hex(newest->oid), newest->subject, m.track, m.commit.substr(0, 12),
                      git::to_hex(newest->oid), m.name));
  }

  // Every commit must be one of the series' patches, each once, in series
  // order; commits after the last of them that are no patch become new ones.
  std::vector<Exported> chain;
  std::set<const Patch*> seen;
  std::set<std::string> ids;
  for (const auto& p : m.patches) ids.insert(p.id);
  int last = -1;
  bool adding = false;
  for (const auto& c : in.chain) {
    bool known = c.patch && c.patch->kind == PatchKind::source;
    if (!known) {
      adding = true;
      std::string id = slug_of(c.subject);
      for (int k = 2; ids.count(id); ++k) id = fmt::format("{}-{}", slug_of(c.subject), k);
      ids.insert(id);
      chain.push_back({c.oid, nullptr, id});
      continue;
    }
    if (adding)
      throw Error(
          ExitCode::failed,
          fmt::format("{}: commit {} \"{}\" is not one of the series' patches and sits below patch {}; a new patch "
                      "goes on top of the series: move the commit after the patch commits (git rebase -i), or "
                      "squash it into a patch commit, and export again",
                      m.name, git::short_hex(chain.back().oid), in.chain[chain.size() - 1].subject, c.patch->id));
    int index = int(c.patch - m.patches.data());
    if (!seen.insert(c.patch).second || index < last)
      throw Error(ExitCode::failed,
                  fmt::format("{}: commit {} holds patch {} out of series order (or twice); reorder the "
                              "commits (git rebase -i) or the manifest, then export again",
                              m.name, git::short_hex(c.oid), c.patch->id));
    last = index;
    chain.push_back({c.oid, c.patch, c.patch->id});
  }
  // A new patch goes at the end of the series, so `apply` puts it after every
  // enabled patch: the commit must sit on all of them.
  if (adding) {
    std::vector<std::string> missing;
    for (const Patch* p : m.source_patches())
      if (p->enabled && !seen.count(p)) missing.push_back(p->id);
    if (!missing.empty())
      throw Error(
          ExitCode::failed,
          fmt::format("{}: commit {} \"{}\" would become a new patch at the end of the series, but the checkout lacks "
                      "the enabled patch{} {} before it; put it on the whole series (patchmgr apply in a clean "
                      "checkout, then git cherry-pick {}) and export again",
                      m.name, git::short_hex(chain.back().oid), in.chain.back().subject,
                      missing.size() == 1 ? "" : "es", fmt::join(missing, ", "), git::short_hex(chain.back().oid)));
  }

  // Branch patchmgr/<name> will point at the rewritten commits: it must not hold other work.
  std::string branch = patch_branch(m);
  std::optional<git_oid> branch_old = git::resolve_ref(repo, branch);
  if (branch_old && !git_oid_equal(&*branch_old, &*in.head.oid)) {
    std::vector<std::string> work;
    for (const auto& oid : orphaned_work(repo, *branch_old, branch))
      if (std::none_of(chain.begin(), chain.end(), [&](const Exported& e) { return git_oid_equal(&e.oid, &oid); }))
        work.push_back(git::short_hex(oid));
    if (!work.empty())
      throw Error(ExitCode::refused,
                  fmt::format("{}: refusing to export: branch {} holds commits found nowhere else ({}) and "
                              "export moves it to the exported series; rename the branch (git branch -m) "
                              "and export again",
                              m.name, branch.substr(11), fmt::join(work, ", ")));
  }

  SeriesEdit edit;
  int number = 0;
  for (const Patch* p : m.source_patches())
    if (p->file_field.size() >= 4) number = std::max(number, std::atoi(p->file_field.substr(0, 4).c_str()));
  for (const auto& e : chain) {
    git::Commit commit = git::lookup_commit(repo, e.oid);
    std::string text = git::format_patch(commit.get());
    if (e.patch) {
      edit.updates.push_back({e.patch, text});
      continue;
    }
    git::PatchFile parsed = git::parse_patch_file(text);
    edit.added.push_back({e.id, fmt::format("{:04d}-{}.patch", ++number, e.id), text,
                          parsed.subject.empty() ? e.id : parsed.subject, today_utc(), parsed.touched_files});
  }
  // The files must give back exactly the commits, or apply would make something else.
  git_oid pin = git::from_hex(m.commit);
  edit.verify = [&](const Manifest& staged) {
    git::Commit base = git::lookup_commit(repo, pin);
    git::Tree tree = git::commit_tree(base.get());
    for (const auto& e : chain) {
      const Patch* p = staged.find(e.id);
      git::Commit commit = git::lookup_commit(repo, e.oid);
      TreeApply r = apply_patch_to_tree(repo, tree.get(), *p);
      if (!r.tree || !git_oid_equal(&*r.tree, git_commit_tree_id(commit.get())))
        throw Error(ExitCode::failed,
                    fmt::format("{}: the patch file written for commit {} ({}) would not give back that commit{}; "
                                "nothing was written. This is a bug in patchmgr's patch format: please report it "
                                "with the commit",
                                m.name, git::short_hex(e.oid), e.id, r.tree ? "" : ": " + r.describe()));
      tree = git::commit_tree(commit.get());
    }
  };
  SeriesWrite written = write_series_files(ctx, m, edit);

  // The branch and HEAD to the commits apply makes from the files: same trees, patchmgr's commits.
  git_oid tip = pin;
  for (const auto& e : chain) {
    git::Commit commit = git::lookup_commit(repo, e.oid);
    tip = commit_patch(repo, tip, *git_commit_tree_id(commit.get()), *written.manifest.find(e.id));
  }
  if (!git_oid_equal(&tip, &*in.head.oid) || !in.head.branch || *in.head.branch != branch) {
    move_to_branch(repo, "export", in.head, tip, branch, branch_old,
                   fmt::format("patchmgr export: {} patches on {}", chain.size(), m.commit.substr(0, 12)));
  }
  out << fmt::format("{}: exported {} patch{}{}, {} changed{}\n", m.name, chain.size(), chain.size() == 1 ? "" : "es",
                     edit.added.empty() ? "" : fmt::format(" ({} new)", edit.added.size()), written.changed,
                     written.changed ? fmt::format("; {} updated", display_path(m.path, ctx.root)) : "");
  std::vector<std::string> added;
  for (const auto& n : edit.added) added.push_back(n.id);
  if (!added.empty())
    out << fmt::format("{}: now write the purpose and upstream_status of {} in {} (patchmgr lint lists what is left)\n",
                       m.name, fmt::join(added, ", "), display_path(m.path, ctx.root));
}

}  // namespace patchmgr
