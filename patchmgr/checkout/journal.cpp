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

std::filesystem::path journal_dir(git_repository* repo) {
  return std::filesystem::path(git_repository_path(repo)) / "patchmgr";
}
std::filesystem::path journal_path(git_repository* repo) { return journal_dir(repo) / "journal.json"; }

std::string utc_now(const char* format) {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, format, std::gmtime(&now));
  return buf;
}

nlohmann::json opt(const std::optional<std::string>& s) { return s ? nlohmann::json(*s) : nlohmann::json(nullptr); }
nlohmann::json opt(const std::optional<git_oid>& o) {
  return o ? nlohmann::json(git::to_hex(*o)) : nlohmann::json(nullptr);
}

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
  if (branch)
    git::check(git_repository_set_head(repo, branch->c_str()), fmt::format("cannot point HEAD at {}", *branch));
  else
    git::check(git_repository_set_head_detached(repo, &oid), "cannot detach HEAD");
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

// What write_file_atomic left when killed while writing the journal or a
// step's record: it was never complete, so that move or step never began.
void remove_partial_journals(git_repository* repo) {
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(journal_dir(repo), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    if (it->path().filename().string().find(".json.tmp-") != std::string::npos) std::filesystem::remove(it->path(), ec);
}

// Copies the user's versions of `paths` under `dir`; returns those that the user deleted.
std::vector<std::string> rescue(git_repository* repo, const std::vector<std::string>& paths,
                                const std::filesystem::path& dir) {
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
    fs::copy(src, dir / p,
             fs::copy_options::recursive | fs::copy_options::copy_symlinks | fs::copy_options::overwrite_existing, ec);
    if (ec)
      throw Error(ExitCode::failed,
                  fmt::format("cannot copy your version of {} to {}: {}; nothing was changed, copy the "
                              "file elsewhere yourself and run the command again",
                              src.string(), (dir / p).string(), ec.message()));
  }
  return deleted;
}

std::filesystem::path stash_record_path(git_repository* repo) { return journal_dir(repo) / "stash.json"; }
std::filesystem::path fetch_record_path(git_repository* repo) { return journal_dir(repo) / "fetch.json"; }

void write_record(const std::filesystem::path& path, nlohmann::json j) {
  j["pid"] = ::getpid();
  j["started"] = utc_now("%Y-%m-%dT%H:%M:%SZ");
  std::filesystem::create_directories(path.parent_path());
  write_file_atomic(path, j.dump(2) + "\n");
}

nlohmann::json read_record(const std::filesystem::path& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ExitCode::failed,
                fmt::format("{} is damaged ({}); check the checkout with git status, then delete the file",
                            path.string(), e.what()));
  }
}

std::string who_was(const nlohmann::json& j) {
  return fmt::format("pid {}, started {}", j.value("pid", 0), j.value("started", std::string()));
}

void drop_unlanded_stash_log(git_repository* repo, const std::optional<git_oid>& stash_now) {
  // libgit2 appends the reflog line before it renames refs/stash.lock: killed
  // in between, the newest line names a stash that refs/stash never held.
  git_reflog* log = nullptr;
  if (git_reflog_read(&log, repo, "refs/stash") < 0) return;
  if (git_reflog_entrycount(log) > 0) {
    const git_reflog_entry* newest = git_reflog_entry_byindex(log, 0);
    if (!stash_now || !git_oid_equal(git_reflog_entry_id_new(newest), &*stash_now)) {
      if (git_reflog_drop(log, 0, 0) == 0) git_reflog_write(log);
    }
  }
  git_reflog_free(log);
}

std::optional<std::string> recover_stash(git_repository* repo) {
  auto path = stash_record_path(repo);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  nlohmann::json j = read_record(path);
  git_oid head_oid;
  std::optional<git_oid> before;
  try {
    head_oid = git::from_hex(j.at("head").get<std::string>());
    if (!j.at("stash_before").is_null()) before = git::from_hex(j.at("stash_before").get<std::string>());
  } catch (const nlohmann::json::exception& e) {
    throw Error(ExitCode::failed,
                fmt::format("{} is damaged ({}); check the checkout with git status, then delete the file",
                            path.string(), e.what()));
  }
  std::filesystem::path gitdir = git_repository_path(repo);
  for (const char* f : {"index.lock", "refs/stash.lock", "logs/refs/stash.lock"})
    std::filesystem::remove(gitdir / f, ec);

  std::optional<git_oid> now = git::resolve_ref(repo, "refs/stash");
  git_oid head_now{};
  bool head_moved = git_reference_name_to_id(&head_now, repo, "HEAD") < 0 || !git_oid_equal(&head_now, &head_oid);
  std::string note;
  if (now && !(before && git_oid_equal(&*now, &*before)) &&
      (head_moved || !git_oid_equal(git_commit_parent_id(git::lookup_commit(repo, *now).get(), 0), &head_oid))) {
    // Someone else moved HEAD or stashed since (git checkout -f, git stash): the files are theirs now.
    note = fmt::format(
        "an interrupted stash of the local edits (patchmgr revert --discard, {}) was left as it is: "
        "HEAD or refs/stash changed since; check git stash list and git status",
        who_was(j));
  } else if (!now || (before && git_oid_equal(&*now, &*before))) {
    drop_unlanded_stash_log(repo, now);
    note = fmt::format(
        "an interrupted stash of the local edits (patchmgr revert --discard, {}) had not saved them: "
        "they are where they were",
        who_was(j));
  } else {
    // The edits are safe in the stash: finish its reset to HEAD, whole files only.
    git::Commit stash = git::lookup_commit(repo, *now);
    git::Commit head = git::lookup_commit(repo, head_oid);
    git::Tree head_tree = git::commit_tree(head.get());
    git::Tree work_tree = git::commit_tree(stash.get());
    git_commit* index_commit = nullptr;
    git::check(git_commit_parent(&index_commit, stash.get(), 1), "cannot read the stash's index commit");
    git::Commit index_holder(index_commit);
    git::Tree index_tree = git::commit_tree(index_commit);
    std::vector<std::string> paths = changed_paths(repo, head_tree.get(), work_tree.get());
    for (const auto& p : changed_paths(repo, head_tree.get(), index_tree.get())) paths.push_back(p);
    std::sort(paths.begin(), paths.end());
    paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
    remove_partial_writes(repo, paths);
    // Half-rewritten by libgit2's reset, or edited since the kill: not in the stash as it is now.
    std::vector<std::string> neither;
    for (const auto& p : paths) {
      WorktreeFile f = look_at(repo, p);
      if (f.state != PathState::absent && !holds(f, head_tree.get(), p) && !holds(f, work_tree.get(), p) &&
          !holds(f, index_tree.get(), p))
        neither.push_back(p);
    }
    std::string rescued_note;
    if (!neither.empty()) {
      auto dir = journal_dir(repo) / "rescued" / utc_now("%Y%m%dT%H%M%SZ");
      rescue(repo, neither, dir);
      rescued_note = fmt::format(
          "; {} held neither HEAD's version nor the stash's (half-reset, or edited since) and "
          "were copied to {}",
          fmt::join(neither, ", "), dir.string());
    }
    write_worktree(repo, head_tree.get(), paths);
    write_index(repo, head_tree.get(), paths);
    note = fmt::format(
        "finished an interrupted stash of the local edits (patchmgr revert --discard, {}): they are "
        "saved as stash {} (git stash list), and the files are back at HEAD{}",
        who_was(j), git::short_hex(*now), rescued_note);
  }
  std::filesystem::remove(path);
  return note;
}

// Deletes what an interrupted fetch left that would block the next one, if
// a fetch record says one was running; returns whether it did.
bool recover_fetch(git_repository* repo) {
  namespace fs = std::filesystem;
  auto path = fetch_record_path(repo);
  std::error_code ec;
  if (!fs::exists(path, ec)) return false;
  auto since = fs::last_write_time(path, ec);
  fs::path gitdir = git_repository_path(repo);
  auto ours = [&](const fs::path& p) {
    std::error_code e;
    auto t = fs::last_write_time(p, e);
    return !e && t >= since;
  };
  std::vector<fs::path> stale;
  for (const char* f : {"FETCH_HEAD.lock", "packed-refs.lock"})
    if (fs::exists(gitdir / f, ec)) stale.push_back(gitdir / f);
  for (auto it = fs::recursive_directory_iterator(gitdir / "refs", ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->path().filename().string().ends_with(".lock")) stale.push_back(it->path());
  ec.clear();
  for (auto it = fs::directory_iterator(gitdir / "objects" / "pack", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.starts_with("pack_git2_") || name.ends_with(".lock")) stale.push_back(it->path());
  }
  for (const auto& p : stale)
    if (ours(p)) fs::remove(p, ec);
  fs::remove(path, ec);
  return true;
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

void move_to_branch(git_repository* repo, const std::string& command, const git::Head& head, const git_oid& target,
                    const std::string& branch, const std::optional<git_oid>& branch_old,
                    const std::string& reflog_message) {
  Transition t;
  t.command = command;
  t.from = *head.oid;
  t.from_branch = head.branch;
  t.to = target;
  t.to_branch = branch;
  t.to_branch_old = branch_old;
  t.reflog_message = reflog_message;
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
    throw Error(ExitCode::failed,
                fmt::format("{} is damaged ({}); check the checkout with git status, then delete the file",
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

git_oid stash_edits(git_repository* repo, const git_signature* who, const std::string& message) {
  git_oid head;
  git::check(git_reference_name_to_id(&head, repo, "HEAD"), "cannot read HEAD");
  std::optional<git_oid> before = git::resolve_ref(repo, "refs/stash");
  write_record(stash_record_path(repo),
               {{"step", "stash"}, {"head", git::to_hex(head)}, {"stash_before", opt(before)}});
  test_kill_point("stash-record");
  git_oid stash;
  int error = git_stash_save(&stash, repo, who, message.c_str(), GIT_STASH_DEFAULT);
  if (error < 0) {
    // Failed before refs/stash moved: nothing to finish. After: recovery finishes the reset.
    std::optional<git_oid> now = git::resolve_ref(repo, "refs/stash");
    std::error_code ec;
    if (now.has_value() == before.has_value() && (!now || git_oid_equal(&*now, &*before)))
      std::filesystem::remove(stash_record_path(repo), ec);
    git::check(error, "cannot stash the local edits");
  }
  std::filesystem::remove(stash_record_path(repo));
  return stash;
}

void fetch_recorded(git_repository* repo, const std::string& url, const std::vector<std::string>& refspecs,
                    const std::string& what) {
  write_record(fetch_record_path(repo), {{"step", "fetch"}, {"url", url}});
  try {
    git::fetch(repo, url, refspecs, what);
  } catch (...) {
    recover_fetch(repo);
    throw;
  }
  std::filesystem::remove(fetch_record_path(repo));
}

std::optional<std::string> recover_interrupted(git_repository* repo, bool rescue_edits) {
  remove_partial_journals(repo);
  recover_fetch(repo);
  std::optional<std::string> stash_note = recover_stash(repo);
  auto info = read_journal(repo);
  if (!info) return stash_note;
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
    if (!copied.empty())
      rescued_note += fmt::format("; your edits to {} were copied to {}", fmt::join(copied, ", "), dir.string());
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
  return (stash_note ? *stash_note + "; " : std::string()) +
         fmt::format("recovered from an interrupted patchmgr {} (pid {}, started {}): the checkout is back at {}{}{}",
                     t.command, info->pid, info->started, git::short_hex(t.from),
                     t.from_branch ? " on " + *t.from_branch : std::string(" (detached)"), rescued_note);
}

}  // namespace patchmgr
