#include "patchmgr/checkout/journal.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patchmgr/checkout/worktree.h"
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

void kill_point_after_path(size_t n) { test_kill_point(fmt::format("checkout:{}", n)); }

// Lock files that libgit2 writes beside what it replaces (index.lock,
// HEAD.lock, refs/heads/x.lock) and renames over it at the end. A kill in
// between leaves them, and then every later write of that file fails. Called
// only while a journal says our move was interrupted, so they are its locks.
void remove_stale_locks(git_repository* repo, const Transition& t) {
  std::filesystem::path gitdir = git_repository_path(repo);
  std::vector<std::string> files = {"index", "HEAD", "packed-refs"};
  if (t.from_branch) files.push_back(*t.from_branch);
  if (t.to_branch) files.push_back(*t.to_branch);
  std::error_code ec;
  for (const auto& f : files) std::filesystem::remove(gitdir / (f + ".lock"), ec);
}

// What write_file_atomic left when killed while writing the journal: the
// journal was never complete, so no move began.
void remove_partial_journals(git_repository* repo) {
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(journal_dir(repo), ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec))
    if (it->path().filename().string().rfind("journal.json.tmp-", 0) == 0) std::filesystem::remove(it->path(), ec);
}

// Copies the user's versions of `paths` under `dir`; returns those that the user deleted.
std::vector<std::string> rescue(git_repository* repo, const std::vector<std::string>& paths, const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> deleted;
  for (const auto& p : paths) {
    fs::path src = fs::path(git_repository_workdir(repo)) / p;
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(src, ec))) {
      deleted.push_back(p);
      continue;
    }
    fs::create_directories((dir / p).parent_path(), ec);
    fs::copy(src, dir / p, fs::copy_options::recursive | fs::copy_options::copy_symlinks | fs::copy_options::overwrite_existing, ec);
    if (ec)
      throw Error(ExitCode::failed, fmt::format("cannot copy your version of {} to {}: {}; nothing was changed, copy the "
                                                "file elsewhere yourself and run the command again",
                                                src.string(), (dir / p).string(), ec.message()));
  }
  return deleted;
}

}  // namespace

void test_kill_point(const std::string& point) {
  const char* at = std::getenv("PATCHMGR_TEST_KILL_AT");
  if (at && point == at) ::kill(::getpid(), SIGKILL);
}

void run_transition(git_repository* repo, const Transition& t) {
  git::Commit from = git::lookup_commit(repo, t.from);
  git::Commit to = git::lookup_commit(repo, t.to);
  git::Tree from_tree = git::commit_tree(from.get());
  git::Tree to_tree = git::commit_tree(to.get());
  std::vector<std::string> paths = changed_paths(repo, from_tree.get(), to_tree.get());

  // Every path is checked before the journal exists: a refusal changes nothing.
  auto conflicts = move_conflicts(repo, from_tree.get(), to_tree.get(), paths);
  if (!conflicts.empty())
    throw Error(ExitCode::refused,
                fmt::format("{} would overwrite files that are not committed in the checkout: {}; commit, move or "
                            "delete them and run the command again",
                            t.command, fmt::join(conflicts, ", ")));

  write_journal(repo, t);
  test_kill_point("journal");
  write_worktree(repo, to_tree.get(), paths, kill_point_after_path);
  test_kill_point("checkout-done");
  write_index(repo, to_tree.get(), paths);
  test_kill_point("index");
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

std::set<std::string> written_by_interrupted_move(git_repository* repo, const JournalInfo& journal) {
  git::Commit from = git::lookup_commit(repo, journal.transition.from);
  git::Commit to = git::lookup_commit(repo, journal.transition.to);
  git::Tree from_tree = git::commit_tree(from.get());
  git::Tree to_tree = git::commit_tree(to.get());
  std::set<std::string> ours;
  for (const auto& p : changed_paths(repo, from_tree.get(), to_tree.get())) {
    auto path = std::filesystem::path(p);
    ours.insert((path.parent_path() / ("." + path.filename().string() + kPartialWriteSuffix)).string());
    WorktreeFile f = look_at(repo, p);
    if (holds(f, from_tree.get(), p) || holds(f, to_tree.get(), p)) ours.insert(p);
  }
  return ours;
}

std::optional<std::string> recover_interrupted(git_repository* repo, bool rescue_edits) {
  remove_partial_journals(repo);
  auto info = read_journal(repo);
  if (!info) return std::nullopt;
  const Transition& t = info->transition;
  git::Commit from = git::lookup_commit(repo, t.from);
  git::Commit to = git::lookup_commit(repo, t.to);
  git::Tree from_tree = git::commit_tree(from.get());
  git::Tree to_tree = git::commit_tree(to.get());

  // The only paths the interrupted command could have touched. Each holds
  // its old or its new version (write_worktree renames whole files into
  // place); anything else was edited by the user since.
  std::vector<std::string> paths = changed_paths(repo, from_tree.get(), to_tree.get());
  remove_partial_writes(repo, paths);
  remove_stale_locks(repo, t);
  std::vector<std::string> edited;
  for (const auto& p : paths) {
    WorktreeFile f = look_at(repo, p);
    if (!holds(f, from_tree.get(), p) && !holds(f, to_tree.get(), p)) edited.push_back(p);
  }
  std::string rescued_note;
  if (!edited.empty()) {
    if (!rescue_edits)
      throw Error(ExitCode::refused,
                  fmt::format("an interrupted patchmgr {} (pid {}, started {}) left this checkout half-way, and these "
                              "files were edited since: {}; save them elsewhere, or run patchmgr revert --discard "
                              "to copy them aside and restore the checkout",
                              t.command, info->pid, info->started, fmt::join(edited, ", ")));
    auto dir = journal_dir(repo) / "rescued" / utc_now("%Y%m%dT%H%M%SZ");
    std::vector<std::string> deleted = rescue(repo, edited, dir);
    std::vector<std::string> copied;
    for (const auto& p : edited)
      if (std::find(deleted.begin(), deleted.end(), p) == deleted.end()) copied.push_back(p);
    if (!copied.empty()) rescued_note += fmt::format("; your edits to {} were copied to {}", fmt::join(copied, ", "), dir.string());
    if (!deleted.empty()) rescued_note += fmt::format("; {} (deleted since) restored", fmt::join(deleted, ", "));
  }

  // Back to `from`, in the order of a move, each step safe to repeat if this is killed too.
  write_worktree(repo, from_tree.get(), paths);
  write_index(repo, from_tree.get(), paths);
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
  set_head(repo, t.from_branch, t.from);
  std::filesystem::remove(journal_path(repo));
  return fmt::format("recovered from an interrupted patchmgr {} (pid {}, started {}): the checkout is back at {}{}{}",
                     t.command, info->pid, info->started, git::short_hex(t.from),
                     t.from_branch ? " on " + *t.from_branch : std::string(" (detached)"), rescued_note);
}

}  // namespace patchmgr
