#include "patchmgr/checkout/revert.h"

#include <ctime>

#include <fmt/format.h>

#include "patchmgr/checkout/inspect.h"
#include "patchmgr/checkout/journal.h"
#include "patchmgr/checkout/lock.h"
#include "patchmgr/checkout/rebase_state.h"
#include "patchmgr/git/git.h"

namespace patchmgr {

void revert(const Context& ctx, const Manifest& m, const RevertOptions& options) {
  auto& out = *ctx.out;
  LockedCheckout checkout(ctx, m, "revert", options.discard);
  git_repository* repo = checkout.repo();
  refuse_while_rebase_stopped(repo, m, "revert");

  Inspection in = inspect(repo, m, false);
  git_oid pin = git::from_hex(m.commit);
  if (!in.pin_present) throw Error(ExitCode::failed, fmt::format("{}: {}", m.name, in.detail));

  // What reverting would lose: tracked edits, and commits that are not recorded patches.
  std::vector<std::string> edited;
  for (const auto& e : in.edits)
    if (e.code != '?') edited.push_back(fmt::format("{} {}", e.code, e.path));
  std::vector<git_oid> work;
  std::vector<std::string> work_lines;
  if (in.based_on_pin) {
    for (const auto* c : in.unrecorded_commits()) {
      work.push_back(c->oid);
      work_lines.push_back(fmt::format("{} {}", git::short_hex(c->oid), c->subject));
    }
  } else if (!in.head.branch) {
    for (const auto& oid : orphaned_work(repo, *in.head.oid, "")) {
      git::Commit c = git::lookup_commit(repo, oid);
      work.push_back(oid);
      work_lines.push_back(fmt::format("{} {}", git::short_hex(oid), git_commit_summary(c.get())));
    }
  }

  bool at_pin = in.head.oid && git_oid_equal(&*in.head.oid, &pin);
  if (at_pin && edited.empty()) {
    out << fmt::format("{}: already pristine at {}, nothing to do\n", m.name, m.commit.substr(0, 12));
    return;
  }
  if (!options.discard && (!edited.empty() || !work.empty())) {
    std::string msg = fmt::format("{}: refusing to revert, it would lose work in {}:", m.name, m.checkout.string());
    if (!edited.empty()) msg += fmt::format("\n  uncommitted edits: {}", fmt::join(edited, ", "));
    if (!work.empty()) msg += fmt::format("\n  commits that are not recorded patches: {}", fmt::join(work_lines, "; "));
    msg += fmt::format(
        "\ncommit or move that work elsewhere, or run patchmgr revert --discard {} to set it aside "
        "(edits go to git stash, commits to refs/patchmgr/discarded/)",
        m.name);
    throw Error(ExitCode::refused, msg);
  }

  std::time_t now = std::time(nullptr);
  if (!edited.empty()) {
    git_signature* sig = nullptr;
    if (git_signature_default(&sig, repo) < 0)
      git::check(git_signature_now(&sig, "patchmgr", "patchmgr@localhost"), "cannot make a signature");
    git::Signature holder(sig);
    git_oid stash = stash_edits(repo, sig, fmt::format("patchmgr revert --discard {}", m.name));
    *ctx.err << fmt::format("{}: local edits saved as stash {} (git stash list; git stash pop to get them back)\n",
                            m.name, git::short_hex(stash));
  }
  if (!work.empty()) {
    std::string ref = fmt::format("refs/patchmgr/discarded/{}/{}", m.name, static_cast<long long>(now));
    git::check(git_reference_create(nullptr, repo, ref.c_str(), &*in.head.oid, 0, "patchmgr revert --discard"),
               fmt::format("{}: cannot save the commits under {}", m.name, ref));
    *ctx.err << fmt::format("{}: commits saved under {} (git log {})\n", m.name, ref, ref);
  }
  if (at_pin) {
    out << fmt::format("{}: pristine at {}\n", m.name, m.commit.substr(0, 12));
    return;
  }

  detach_head(repo, "revert", in.head, pin);
  std::string kept = in.head.branch ? fmt::format("; branch {} keeps its commits", in.head.branch->substr(11)) : "";
  out << fmt::format("{}: reverted to the pristine pin {} (HEAD detached{})\n", m.name, m.commit.substr(0, 12), kept);
}

}  // namespace patchmgr
