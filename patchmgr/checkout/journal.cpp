#include "patchmgr/checkout/journal.h"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <ctime>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patchmgr/util/error.h"
#include "patchmgr/util/fs.h"

namespace patchmgr {
namespace {

std::filesystem::path journal_dir(git_repository* repo) { return std::filesystem::path(git_repository_path(repo)) / "patchmgr"; }
std::filesystem::path journal_path(git_repository* repo) { return journal_dir(repo) / "journal.json"; }

std::string utc_now(const char* format) {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, format, std::gmtime(&now));
  return buf;
}

nlohmann::json opt(const std::optional<std::string>& s) { return s ? nlohmann::json(*s) : nlohmann::json(nullptr); }
nlohmann::json opt(const std::optional<git_oid>& o) { return o ? nlohmann::json(git::to_hex(*o)) : nlohmann::json(nullptr); }

void write_journal(git_repository* repo, const Transition& t) {
  nlohmann::json j = {
      {"command", t.command},
      {"pid", ::getpid()},
      {"started", utc_now("%Y-%m-%dT%H:%M:%SZ")},
      {"from", git::to_hex(t.from)},
      {"from_branch", opt(t.from_branch)},
      {"to", git::to_hex(t.to)},
      {"to_branch", opt(t.to_branch)},
      {"to_branch_old", opt(t.to_branch_old)},
      {"reflog_message", t.reflog_message},
  };
  std::filesystem::create_directories(journal_dir(repo));
  write_file_atomic(journal_path(repo), j.dump(2) + "\n");
}

void set_head(git_repository* repo, const std::optional<std::string>& branch, const git_oid& oid) {
  if (branch) git::check(git_repository_set_head(repo, branch->c_str()), fmt::format("cannot point HEAD at {}", *branch));
  else git::check(git_repository_set_head_detached(repo, &oid), "cannot detach HEAD");
}

struct CheckoutPayload {
  std::vector<std::string> conflicts;
  size_t written = 0;
};

int notify_conflict(git_checkout_notify_t, const char* path, const git_diff_file*, const git_diff_file*,
                    const git_diff_file*, void* payload) {
  static_cast<CheckoutPayload*>(payload)->conflicts.push_back(path);
  return 0;
}

void progress(const char* path, size_t, size_t, void* payload) {
  if (!path) return;
  auto* p = static_cast<CheckoutPayload*>(payload);
  ++p->written;
  test_kill_point(fmt::format("checkout:{}", p->written));
}

}  // namespace

void test_kill_point(const std::string& point) {
  const char* at = std::getenv("PATCHMGR_TEST_KILL_AT");
  if (at && point == at) ::kill(::getpid(), SIGKILL);
}

void run_transition(git_repository* repo, const Transition& t) {
  git::Commit target = git::lookup_commit(repo, t.to);
  write_journal(repo, t);
  test_kill_point("journal");

  // The working tree first: libgit2 checks every path for conflicts before it
  // writes any, so a refusal here leaves the checkout untouched.
  CheckoutPayload payload;
  git_checkout_options opts = GIT_CHECKOUT_OPTIONS_INIT;
  opts.checkout_strategy = GIT_CHECKOUT_SAFE;
  opts.notify_flags = GIT_CHECKOUT_NOTIFY_CONFLICT;
  opts.notify_cb = notify_conflict;
  opts.notify_payload = &payload;
  opts.progress_cb = progress;
  opts.progress_payload = &payload;
  int rc = git_checkout_tree(repo, reinterpret_cast<git_object*>(target.get()), &opts);
  if (rc < 0) {
    std::string why = git_error_last() && git_error_last()->message ? git_error_last()->message : "checkout failed";
    std::filesystem::remove(journal_path(repo));
    if (!payload.conflicts.empty())
      throw Error(ExitCode::refused,
                  fmt::format("{} would overwrite files that are not committed in the checkout: {}; commit, move or "
                              "delete them and run the command again",
                              t.command, fmt::join(payload.conflicts, ", ")));
    throw Error(ExitCode::failed, fmt::format("{}: cannot update the working tree: {}", t.command, why));
  }
  test_kill_point("checkout-done");
  if (t.to_branch)
    git::check(git_reference_create(nullptr, repo, t.to_branch->c_str(), &t.to, 1, t.reflog_message.c_str()),
               fmt::format("cannot update branch {}", *t.to_branch));
  test_kill_point("branch");
  set_head(repo, t.to_branch, t.to);
  test_kill_point("head");
  std::filesystem::remove(journal_path(repo));
}

void detach_head(git_repository* repo, const std::string& command, const git::Head& head, const git_oid& target) {
  Transition t;
  t.command = command;
  t.from = *head.oid;
  t.from_branch = head.branch;
  t.to = target;
  t.reflog_message = "patchmgr " + command;
  run_transition(repo, t);
}

std::optional<JournalInfo> read_journal(git_repository* repo) {
  auto path = journal_path(repo);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  JournalInfo info;
  try {
    auto j = nlohmann::json::parse(read_file(path));
    auto& t = info.transition;
    t.command = j.at("command").get<std::string>();
    t.from = git::from_hex(j.at("from").get<std::string>());
    t.to = git::from_hex(j.at("to").get<std::string>());
    if (!j.at("from_branch").is_null()) t.from_branch = j.at("from_branch").get<std::string>();
    if (!j.at("to_branch").is_null()) t.to_branch = j.at("to_branch").get<std::string>();
    if (!j.at("to_branch_old").is_null()) t.to_branch_old = git::from_hex(j.at("to_branch_old").get<std::string>());
    t.reflog_message = j.value("reflog_message", "");
    info.pid = j.value("pid", 0);
    info.started = j.value("started", "");
  } catch (const nlohmann::json::exception& e) {
    throw Error(ExitCode::failed, fmt::format("{} is damaged ({}); check the checkout with git status, then delete the file",
                                              path.string(), e.what()));
  }
  return info;
}

std::optional<std::string> recover_interrupted(git_repository* repo, bool rescue_edits) {
  auto info = read_journal(repo);
  if (!info) return std::nullopt;
  const Transition& t = info->transition;
  git::Commit from = git::lookup_commit(repo, t.from);
  git::Commit to = git::lookup_commit(repo, t.to);
  git::Tree from_tree = git::commit_tree(from.get());
  git::Tree to_tree = git::commit_tree(to.get());

  // The only paths the interrupted command could have touched.
  git::Diff diff = git::diff_trees(repo, from_tree.get(), to_tree.get());
  std::set<std::string> paths;
  for (size_t i = 0; i < git_diff_num_deltas(diff.get()); ++i) {
    const git_diff_delta* d = git_diff_get_delta(diff.get(), i);
    paths.insert(d->old_file.path);
    paths.insert(d->new_file.path);
  }
  // A path is safe to restore when it holds the old or the new content (or is
  // absent where one side lacks it); anything else was edited by the user since.
  auto blob_in = [&](git_tree* tree, const std::string& path) -> std::optional<git_oid> {
    git_tree_entry* e = nullptr;
    if (git_tree_entry_bypath(&e, tree, path.c_str()) < 0) return std::nullopt;
    git_oid oid = *git_tree_entry_id(e);
    git_tree_entry_free(e);
    return oid;
  };
  std::vector<std::string> edited;
  for (const auto& p : paths) {
    auto now = git::hash_workdir_file(repo, p);
    auto a = blob_in(from_tree.get(), p), b = blob_in(to_tree.get(), p);
    auto same = [](const std::optional<git_oid>& x, const std::optional<git_oid>& y) {
      return x.has_value() == y.has_value() && (!x || git_oid_equal(&*x, &*y));
    };
    if (!same(now, a) && !same(now, b)) edited.push_back(p);
  }
  std::string rescued_note;
  if (!edited.empty()) {
    if (!rescue_edits)
      throw Error(ExitCode::refused,
                  fmt::format("an interrupted patchmgr {} (pid {}, started {}) left this checkout half-way, and these "
                              "files were edited since: {}; save them elsewhere, or run patchmgr revert --discard "
                              "to copy them aside and restore the checkout",
                              t.command, info->pid, info->started, fmt::join(edited, ", ")));
    auto dir = std::filesystem::path(git_repository_path(repo)) / "patchmgr" / "rescued" / utc_now("%Y%m%dT%H%M%SZ");
    for (const auto& p : edited) {
      auto src = std::filesystem::path(git_repository_workdir(repo)) / p;
      std::filesystem::create_directories((dir / p).parent_path());
      std::filesystem::copy_file(src, dir / p, std::filesystem::copy_options::overwrite_existing);
    }
    rescued_note = fmt::format("; your edits to {} were copied to {}", fmt::join(edited, ", "), dir.string());
  }

  set_head(repo, t.from_branch, t.from);
  if (!paths.empty()) {
    std::vector<std::string> storage(paths.begin(), paths.end());
    std::vector<char*> ptrs;
    for (auto& s : storage) ptrs.push_back(s.data());
    git_strarray spec{ptrs.data(), ptrs.size()};
    git::check(git_reset_default(repo, reinterpret_cast<git_object*>(from.get()), &spec), "cannot restore the index");
    git_checkout_options opts = GIT_CHECKOUT_OPTIONS_INIT;
    opts.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_REMOVE_UNTRACKED | GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH;
    opts.paths = spec;
    git::check(git_checkout_tree(repo, reinterpret_cast<git_object*>(from.get()), &opts), "cannot restore the working tree");
  }
  if (t.to_branch) {
    if (t.to_branch_old)
      git::check(git_reference_create(nullptr, repo, t.to_branch->c_str(), &*t.to_branch_old, 1, "patchmgr: recover"),
                 fmt::format("cannot restore branch {}", *t.to_branch));
    else if (auto now = git::resolve_ref(repo, *t.to_branch); now && git_oid_equal(&*now, &t.to)) {
      git_reference* ref = nullptr;
      if (git_reference_lookup(&ref, repo, t.to_branch->c_str()) == 0) {
        git_reference_delete(ref);
        git_reference_free(ref);
      }
    }
  }
  std::filesystem::remove(journal_path(repo));
  return fmt::format("recovered from an interrupted patchmgr {} (pid {}, started {}): the checkout is back at {}{}{}",
                     t.command, info->pid, info->started, git::short_hex(t.from),
                     t.from_branch ? " on " + *t.from_branch : std::string(" (detached)"), rescued_note);
}

}  // namespace patchmgr
