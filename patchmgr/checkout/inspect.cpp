#include "patchmgr/checkout/inspect.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "patchmgr/checkout/apply.h"

namespace patchmgr {

const char* to_string(CheckoutState state) {
  switch (state) {
    case CheckoutState::missing: return "missing";
    case CheckoutState::pristine: return "pristine";
    case CheckoutState::patched: return "patched";
    case CheckoutState::partial: return "partially patched";
    case CheckoutState::diverged: return "diverged";
  }
  return "?";
}

const char* to_string(PatchState state) {
  switch (state) {
    case PatchState::applied: return "applied";
    case PatchState::modified: return "applied-but-modified";
    case PatchState::not_applied: return "not applied";
    case PatchState::would_conflict: return "would conflict";
    case PatchState::disabled: return "disabled";
    case PatchState::runtime: return "runtime";
  }
  return "?";
}

const char* to_key(CheckoutState state) { return state == CheckoutState::partial ? "partial" : to_string(state); }

const char* to_key(PatchState state) {
  switch (state) {
    case PatchState::not_applied: return "not-applied";
    case PatchState::would_conflict: return "would-conflict";
    default: return to_string(state);
  }
}

bool Inspection::has_tracked_edits() const {
  return std::any_of(edits.begin(), edits.end(), [](const git::LocalEdit& e) { return e.code != '?'; });
}

std::vector<const ChainCommit*> Inspection::unrecorded_commits() const {
  std::vector<const ChainCommit*> out;
  for (const auto& c : chain)
    if (c.kind == CommitKind::edited || c.kind == CommitKind::foreign) out.push_back(&c);
  return out;
}

git_oid patch_file_id(const Patch& patch) {
  git::Diff diff = git::parse_diff(patch.parsed);
  return git::patch_id(diff.get());
}

namespace {

// The value of "Key: value" trailer lines in a commit message.
std::string trailer(const char* message, const std::string& key) {
  std::string msg = message ? message : "";
  std::string needle = "\n" + key + ": ";
  auto pos = msg.rfind(needle);
  if (pos == std::string::npos) return "";
  auto start = pos + needle.size();
  auto end = msg.find('\n', start);
  return msg.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// Whether applying `patch` to `parent_tree` gives exactly `tree`: the
// semantic comparison behind patch-id, for diffs that hunk differently.
bool same_effect(git_repository* repo, git_tree* parent_tree, const git_oid& tree, const Patch& patch) {
  TreeApply r = apply_patch_to_tree(repo, parent_tree, patch);
  return r.tree && git_oid_equal(&*r.tree, &tree);
}

ChainCommit classify(git_repository* repo, const Manifest& m, const git_oid& oid,
                     std::map<const Patch*, git_oid>& file_ids) {
  ChainCommit c;
  c.oid = oid;
  git::Commit commit = git::lookup_commit(repo, oid);
  c.subject = git_commit_summary(commit.get()) ? git_commit_summary(commit.get()) : "";
  c.recorded_id = trailer(git_commit_message(commit.get()), kPatchTrailer);
  std::string recorded_patch_id = trailer(git_commit_message(commit.get()), kPatchIdTrailer);
  git::Tree tree = git::commit_tree(commit.get());
  git::Commit parent = git::lookup_commit(repo, *git_commit_parent_id(commit.get(), 0));
  git::Tree parent_tree = git::commit_tree(parent.get());
  git::Diff diff = git::diff_trees(repo, parent_tree.get(), tree.get());
  git_oid actual = git::patch_id(diff.get());

  // Candidates: the patch the trailer names first, then every other source patch.
  std::vector<const Patch*> candidates;
  if (const Patch* named = m.find(c.recorded_id); named && named->kind == PatchKind::source)
    candidates.push_back(named);
  for (const Patch* p : m.source_patches())
    if (std::find(candidates.begin(), candidates.end(), p) == candidates.end()) candidates.push_back(p);
  for (const Patch* p : candidates) {
    auto it = file_ids.find(p);
    if (it == file_ids.end()) it = file_ids.emplace(p, patch_file_id(*p)).first;
    if (git_oid_equal(&actual, &it->second) ||
        (p->id == c.recorded_id && same_effect(repo, parent_tree.get(), *git_commit_tree_id(commit.get()), *p))) {
      c.kind = CommitKind::patch;
      c.patch = p;
      return c;
    }
  }
  if (!c.recorded_id.empty()) {
    c.patch = m.find(c.recorded_id);
    c.kind = recorded_patch_id == git::to_hex(actual) ? CommitKind::old_version : CommitKind::edited;
  }
  return c;
}

}  // namespace

Inspection inspect(git_repository* repo, const Manifest& m, bool check_conflicts) {
  Inspection in;
  for (const auto& p : m.patches) {
    PatchReport r;
    r.patch = &p;
    r.state = p.kind == PatchKind::runtime ? PatchState::runtime
                                           : (p.enabled ? PatchState::not_applied : PatchState::disabled);
    in.patches.push_back(r);
  }
  if (!repo) {
    in.state = CheckoutState::missing;
    in.detail = "no clone yet; run patchmgr sync";
    return in;
  }
  in.interrupted = read_journal(repo);
  in.stopped_rebase = read_stopped_rebase(repo);
  in.head = git::read_head(repo);
  in.edits = git::local_edits(repo);
  if (in.interrupted) {  // the half-done move is not the user's work; the next command undoes it
    auto ours = written_by_interrupted_move(repo, *in.interrupted);
    std::erase_if(in.edits, [&](const git::LocalEdit& e) { return ours.count(e.path) > 0; });
  }
  git_oid pin = git::from_hex(m.commit);
  in.pin_present = git::try_commit(repo, pin).has_value();
  if (!in.head.oid) {
    in.state = CheckoutState::diverged;
    in.detail = "HEAD points at a branch with no commits; run patchmgr sync";
    return in;
  }
  if (!in.pin_present) {
    in.state = CheckoutState::diverged;
    in.detail = fmt::format("the pinned commit {} is not in the clone; run patchmgr sync", m.commit.substr(0, 12));
    return in;
  }
  in.based_on_pin = git::is_ancestor(repo, pin, *in.head.oid);
  if (!in.based_on_pin) {
    in.state = CheckoutState::diverged;
    in.detail = fmt::format("HEAD {} is not based on the pin {}; run patchmgr sync", git::short_hex(*in.head.oid),
                            m.commit.substr(0, 12));
    return in;
  }

  std::map<const Patch*, git_oid> file_ids;
  for (const auto& oid : git::first_parent_chain(repo, pin, *in.head.oid))
    in.chain.push_back(classify(repo, m, oid, file_ids));

  auto report_for = [&](const Patch* p) -> PatchReport& {
    return *std::find_if(in.patches.begin(), in.patches.end(), [&](const PatchReport& r) { return r.patch == p; });
  };
  bool clean_chain = true;
  int last_index = -1;
  for (const auto& c : in.chain) {
    if (c.kind == CommitKind::patch) {
      auto& r = report_for(c.patch);
      int index = int(c.patch - m.patches.data());
      if (r.commit || index < last_index) clean_chain = false;  // twice, or out of order
      last_index = std::max(last_index, index);
      r.state = PatchState::applied;
      r.commit = c.oid;
      in.applied_ids.push_back(c.patch->id);
    } else if (c.patch && (c.kind == CommitKind::old_version || c.kind == CommitKind::edited)) {
      auto& r = report_for(c.patch);
      r.state = PatchState::modified;
      r.commit = c.oid;
      r.detail = c.kind == CommitKind::old_version
                     ? fmt::format("commit {} holds an older version of {}; apply again to update it",
                                   git::short_hex(c.oid), c.patch->file_field)
                     : fmt::format("commit {} was changed in the checkout and no longer matches {}",
                                   git::short_hex(c.oid), c.patch->file_field);
      clean_chain = false;
    } else {
      clean_chain = false;
    }
  }

  if (in.chain.empty()) {
    in.state = CheckoutState::pristine;
  } else if (!clean_chain) {
    in.state = CheckoutState::diverged;
    size_t foreign = 0, modified = 0, old = 0;
    for (const auto& c : in.chain) {
      if (c.kind == CommitKind::foreign || (c.kind != CommitKind::patch && !c.patch))
        ++foreign;
      else if (c.kind == CommitKind::edited)
        ++modified;
      else if (c.kind == CommitKind::old_version)
        ++old;
    }
    std::vector<std::string> why;
    if (foreign) why.push_back(fmt::format("{} commit(s) that are not patches", foreign));
    if (modified) why.push_back(fmt::format("{} patch commit(s) changed in the checkout", modified));
    if (old) why.push_back(fmt::format("{} patch commit(s) from older patch files", old));
    if (why.empty()) why.push_back("patches applied out of order or twice");
    in.detail = fmt::format("on top of the pin: {}", fmt::join(why, ", "));
  } else {
    bool all_enabled = std::all_of(m.patches.begin(), m.patches.end(), [&](const Patch& p) {
      return p.kind != PatchKind::source || !p.enabled || report_for(&p).state == PatchState::applied;
    });
    in.state = all_enabled ? CheckoutState::patched : CheckoutState::partial;
  }

  if (check_conflicts) {
    // Trial-apply what is missing, in order, on top of HEAD's tree.
    git::Commit head = git::lookup_commit(repo, *in.head.oid);
    git::Tree tree = git::commit_tree(head.get());
    for (auto& r : in.patches) {
      if (r.state != PatchState::not_applied) continue;
      TreeApply t = apply_patch_to_tree(repo, tree.get(), *r.patch);
      if (t.tree)
        tree = git::lookup_tree(repo, *t.tree);
      else
        r.state = PatchState::would_conflict, r.detail = t.describe();
    }
  }
  return in;
}

std::vector<git_oid> orphaned_work(git_repository* repo, const git_oid& tip, const std::string& except_ref) {
  // Every ref but `except_ref` (and HEAD) protects what it reaches.
  std::vector<git_oid> protectors;
  git_reference_iterator* it = nullptr;
  git::check(git_reference_iterator_new(&it, repo), "cannot list references");
  git_reference* ref = nullptr;
  while (git_reference_next(&ref, it) == 0) {
    git::Reference holder(ref);
    if (except_ref == git_reference_name(ref)) continue;
    git_reference* resolved = nullptr;
    if (git_reference_resolve(&resolved, ref) == 0) {
      git_object* peeled = nullptr;
      if (git_reference_peel(&peeled, resolved, GIT_OBJECT_COMMIT) == 0) {
        protectors.push_back(*git_object_id(peeled));
        git_object_free(peeled);
      }
      git_reference_free(resolved);
    }
  }
  git_reference_iterator_free(it);

  std::vector<git_oid> orphaned;
  git_oid cur = tip;
  for (int depth = 0; depth < 1000; ++depth) {
    bool held = std::any_of(protectors.begin(), protectors.end(),
                            [&](const git_oid& p) { return git::is_ancestor(repo, cur, p); });
    if (held) break;
    git::Commit c = git::lookup_commit(repo, cur);
    std::string msg = git_commit_message(c.get()) ? git_commit_message(c.get()) : "";
    bool made_by_patchmgr = false;
    if (std::string recorded = trailer(msg.c_str(), kPatchIdTrailer);
        !recorded.empty() && git_commit_parentcount(c.get()) == 1) {
      git::Commit parent = git::lookup_commit(repo, *git_commit_parent_id(c.get(), 0));
      git::Tree a = git::commit_tree(parent.get()), b = git::commit_tree(c.get());
      git::Diff d = git::diff_trees(repo, a.get(), b.get());
      made_by_patchmgr = recorded == git::to_hex(git::patch_id(d.get()));
    }
    if (!made_by_patchmgr) orphaned.push_back(cur);
    if (git_commit_parentcount(c.get()) == 0) break;
    cur = *git_commit_parent_id(c.get(), 0);
  }
  return orphaned;
}

}  // namespace patchmgr
