#include "patchmgr/checkout/worktree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "patchmgr/git/git.h"
#include "patchmgr/util/error.h"

namespace patchmgr {
namespace {

namespace fs = std::filesystem;

fs::path full_path(git_repository* repo, const std::string& path) {
  return fs::path(git_repository_workdir(repo)) / path;
}

fs::path temp_for(const fs::path& file) {
  return file.parent_path() / ("." + file.filename().string() + kPartialWriteSuffix);
}

// The tree's entry at `path` when it is a file or a symlink (not a directory, not a submodule).
struct TreeBlob {
  git_oid oid{};
  git_filemode_t mode = GIT_FILEMODE_BLOB;
};
std::optional<TreeBlob> tree_blob(git_tree* tree, const std::string& path) {
  git_tree_entry* e = nullptr;
  if (git_tree_entry_bypath(&e, tree, path.c_str()) < 0) return std::nullopt;
  TreeBlob b{*git_tree_entry_id(e), git_tree_entry_filemode(e)};
  git_tree_entry_free(e);
  if (b.mode != GIT_FILEMODE_BLOB && b.mode != GIT_FILEMODE_BLOB_EXECUTABLE && b.mode != GIT_FILEMODE_LINK)
    return std::nullopt;
  return b;
}

[[noreturn]] void fail(const std::string& what, const fs::path& where, int err, const std::string& fix) {
  throw Error(ExitCode::failed, fmt::format("cannot {} {}: {}; {}", what, where.string(), std::strerror(err), fix));
}

const char* kRerun = "fix that and run the command again: the next patchmgr command finishes the move";

// rmdir `dir` and its parents up to the working tree's root while they are empty.
void prune_empty_dirs(const fs::path& root, fs::path dir) {
  while (!dir.empty() && dir != root && dir.string().size() > root.string().size()) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) return;  // not empty (user files), or not ours to remove
    dir = dir.parent_path();
  }
}

// Creates the directories above `file` that are missing, top down.
void make_parents(const fs::path& root, const fs::path& file) {
  std::vector<fs::path> missing;
  struct stat st;
  for (fs::path d = file.parent_path(); d.string().size() > root.string().size(); d = d.parent_path()) {
    if (::lstat(d.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) break;  // lstat: never write through a symlink
    missing.push_back(d);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0777) == 0) continue;
    int e = errno;
    if (e == EEXIST && ::lstat(it->c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    fail("create the directory", *it, e == EEXIST ? ENOTDIR : e,
         "a file is in the way; move it elsewhere and " + std::string(kRerun));
  }
}

void write_all(int fd, const char* data, size_t size, const fs::path& where) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      fail("write", where, e, kRerun);
    }
    done += size_t(n);
  }
}

// Whether the working-tree file already has `blob`'s content and mode.
bool up_to_date(git_repository* repo, const std::string& path, const TreeBlob& blob) {
  WorktreeFile f = look_at(repo, path);
  if (f.state != PathState::blob || !git_oid_equal(&f.oid, &blob.oid)) return false;
  struct stat st;
  if (::lstat(full_path(repo, path).c_str(), &st) != 0) return false;
  if (blob.mode == GIT_FILEMODE_LINK) return S_ISLNK(st.st_mode);
  return S_ISREG(st.st_mode) && bool(st.st_mode & S_IXUSR) == (blob.mode == GIT_FILEMODE_BLOB_EXECUTABLE);
}

void write_blob(git_repository* repo, const std::string& path, const TreeBlob& blob) {
  fs::path root = git_repository_workdir(repo);
  fs::path file = root / path;
  make_parents(root, file);
  struct stat st;
  if (::lstat(file.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && ::rmdir(file.c_str()) != 0)
    fail("replace the directory", file, errno,
         "it holds files that are not in git; move them elsewhere and " + std::string(kRerun));

  git_blob* raw = nullptr;
  git::check(git_blob_lookup(&raw, repo, &blob.oid), fmt::format("cannot read {} from the object database", path));
  git::Blob holder(raw);
  fs::path tmp = temp_for(file);
  if (blob.mode == GIT_FILEMODE_LINK) {
    // symlink(2) does not replace; open(O_TRUNC) below does.
    if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) fail("remove", tmp, errno, kRerun);
    std::string target(static_cast<const char*>(git_blob_rawcontent(raw)), size_t(git_blob_rawsize(raw)));
    if (::symlink(target.c_str(), tmp.c_str()) != 0) fail("create the symlink", tmp, errno, kRerun);
  } else {
    // The content as checkout would write it (autocrlf, ident and other filters).
    git_buf buf = GIT_BUF_INIT;
    git_blob_filter_options opts = GIT_BLOB_FILTER_OPTIONS_INIT;
    opts.flags &= ~GIT_BLOB_FILTER_CHECK_FOR_BINARY;
    git::check(git_blob_filter(&buf, raw, path.c_str(), &opts), fmt::format("cannot filter {}", path));
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    blob.mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0777 : 0666);
    if (fd < 0) {
      int e = errno;
      git_buf_dispose(&buf);
      fail("write", tmp, e, kRerun);
    }
    try {
      write_all(fd, buf.ptr, buf.size, tmp);
    } catch (...) {
      git_buf_dispose(&buf);
      throw;
    }
    git_buf_dispose(&buf);
    if (::close(fd) != 0) fail("write", tmp, errno, kRerun);
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) fail("rename into place", tmp, errno, kRerun);
}

}  // namespace

std::vector<std::string> changed_paths(git_repository* repo, git_tree* from, git_tree* to) {
  git_diff* raw = nullptr;
  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  git::check(git_diff_tree_to_tree(&raw, repo, from, to, &opts), "cannot diff trees");
  git::Diff diff(raw);
  std::set<std::string> paths;
  for (size_t i = 0; i < git_diff_num_deltas(raw); ++i) {
    const git_diff_delta* d = git_diff_get_delta(raw, i);
    paths.insert(d->old_file.path);
    paths.insert(d->new_file.path);
  }
  return {paths.begin(), paths.end()};
}

WorktreeFile look_at(git_repository* repo, const std::string& path) {
  fs::path file = full_path(repo, path);
  struct stat st;
  WorktreeFile f;
  if (::lstat(file.c_str(), &st) != 0) {
    f.state = (errno == ENOENT || errno == ENOTDIR) ? PathState::absent : PathState::other;
    return f;
  }
  if (S_ISDIR(st.st_mode)) {
    f.state = PathState::directory;
    return f;
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(size_t(st.st_size) + 1, '\0');
    ssize_t n = ::readlink(file.c_str(), target.data(), target.size());
    if (n < 0) return {PathState::other, {}};
    f.state = git_odb_hash(&f.oid, target.data(), size_t(n), GIT_OBJECT_BLOB) == 0 ? PathState::blob : PathState::other;
    return f;
  }
  if (!S_ISREG(st.st_mode)) return {PathState::other, {}};
  // Hashed through the repository's filters, as `git add` would, so it compares with the tree's blob.
  f.state = git_repository_hashfile(&f.oid, repo, file.c_str(), GIT_OBJECT_BLOB, path.c_str()) == 0 ? PathState::blob
                                                                                                    : PathState::other;
  return f;
}

bool holds(const WorktreeFile& file, git_tree* tree, const std::string& path) {
  auto blob = tree_blob(tree, path);
  if (!blob) return file.state == PathState::absent || file.state == PathState::directory;
  return file.state == PathState::blob && git_oid_equal(&file.oid, &blob->oid);
}

std::vector<std::string> move_conflicts(git_repository* repo, git_tree* from, git_tree* to,
                                        const std::vector<std::string>& paths) {
  std::set<std::string> removed;  // files the move deletes
  for (const auto& p : paths)
    if (tree_blob(from, p) && !tree_blob(to, p)) removed.insert(p);
  std::set<std::string> conflicts;
  fs::path root = git_repository_workdir(repo);
  for (const auto& p : paths) {
    WorktreeFile f = look_at(repo, p);
    if (!holds(f, from, p) && !holds(f, to, p)) conflicts.insert(p);
    if (!tree_blob(to, p)) continue;
    // A directory where the new file goes must hold only files the move deletes.
    if (f.state == PathState::directory) {
      std::error_code ec;
      for (auto it = fs::recursive_directory_iterator(root / p, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec))
        if (!it->is_directory() && !removed.count(it->path().lexically_relative(root).string()))
          conflicts.insert(it->path().lexically_relative(root).string());
    }
    // A file where one of its directories goes must be one the move deletes.
    for (fs::path d = fs::path(p).parent_path(); !d.empty(); d = d.parent_path()) {
      struct stat st;
      if (::lstat((root / d).c_str(), &st) == 0 && !S_ISDIR(st.st_mode) && !removed.count(d.string()))
        conflicts.insert(d.string());
    }
  }
  return {conflicts.begin(), conflicts.end()};
}

void write_worktree(git_repository* repo, git_tree* target, const std::vector<std::string>& paths,
                    void (*after_each)(size_t done)) {
  fs::path root = fs::path(git_repository_workdir(repo)).lexically_normal();
  if (root.filename().empty()) root = root.parent_path();
  size_t done = 0;
  // Removals first: a file that becomes a directory (or the reverse) needs its old form gone.
  for (const auto& p : paths) {
    if (tree_blob(target, p)) continue;
    fs::path file = root / p;
    struct stat st;
    if (::lstat(file.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
      git_tree_entry* e = nullptr;  // a submodule's directory is not ours to remove
      bool gitlink =
          git_tree_entry_bypath(&e, target, p.c_str()) == 0 && git_tree_entry_filemode(e) == GIT_FILEMODE_COMMIT;
      git_tree_entry_free(e);
      if (!gitlink && ::unlink(file.c_str()) != 0 && errno != ENOENT) fail("remove", file, errno, kRerun);
      if (after_each) after_each(++done);
    }
    prune_empty_dirs(root, file.parent_path());
  }
  for (const auto& p : paths) {
    auto blob = tree_blob(target, p);
    if (!blob || up_to_date(repo, p, *blob)) continue;
    write_blob(repo, p, *blob);
    if (after_each) after_each(++done);
  }
}

void remove_partial_writes(git_repository* repo, const std::vector<std::string>& paths) {
  for (const auto& p : paths) {
    fs::path tmp = temp_for(full_path(repo, p));
    if (::unlink(tmp.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR) fail("remove", tmp, errno, kRerun);
  }
}

void write_index(git_repository* repo, git_tree* target, const std::vector<std::string>& paths) {
  git_index* raw = nullptr;
  git::check(git_repository_index(&raw, repo), "cannot open the index");
  git::Index index(raw);
  git::check(git_index_read(raw, 1), "cannot read the index");
  // Removals first, so that a file replacing a directory (or the reverse) never meets its old form.
  using Entry = git::Handle<git_tree_entry, git_tree_entry_free>;
  std::vector<std::pair<std::string, Entry>> entries;
  for (const auto& p : paths) {
    git_tree_entry* e = nullptr;
    if (git_tree_entry_bypath(&e, target, p.c_str()) == 0 && git_tree_entry_type(e) != GIT_OBJECT_TREE) {
      entries.emplace_back(p, Entry(e));
      continue;
    }
    git_tree_entry_free(e);
    git::check(git_index_remove_bypath(raw, p.c_str()), fmt::format("cannot remove {} from the index", p));
  }
  for (const auto& [p, e] : entries) {
    git_index_entry entry{};
    entry.path = p.c_str();
    entry.mode = git_tree_entry_filemode(e.get());
    entry.id = *git_tree_entry_id(e.get());
    // The stat data of the file just written, as `git add` records it, so
    // that `git status` need not hash it again. (git_index_add_bypath would
    // hash it and write the blob to the object database once more.)
    struct stat st;
    if (entry.mode != GIT_FILEMODE_COMMIT && ::lstat(full_path(repo, p).c_str(), &st) == 0) {
      entry.ctime = {int32_t(st.st_ctim.tv_sec), uint32_t(st.st_ctim.tv_nsec)};
      entry.mtime = {int32_t(st.st_mtim.tv_sec), uint32_t(st.st_mtim.tv_nsec)};
      entry.dev = uint32_t(st.st_dev);
      entry.ino = uint32_t(st.st_ino);
      entry.uid = uint32_t(st.st_uid);
      entry.gid = uint32_t(st.st_gid);
      entry.file_size = uint32_t(st.st_size);
    }
    git::check(git_index_add(raw, &entry), fmt::format("cannot add {} to the index", p));
  }
  git::check(git_index_write(raw), "cannot write the index");
}

}  // namespace patchmgr
