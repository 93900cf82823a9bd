// Test fixtures: synthetic upstream repositories made with libgit2 in a temp
// directory, a project root with manifests/ and patches/ written from real
// commits, and a runner for the patchmgr binary. Nothing touches the network.
#pragma once

#include <git2.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "patchmgr/git/git.h"

namespace testutil {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read(const fs::path& file);
void write(const fs::path& file, const std::string& content);

// A repository where tests write files and commit them.
class Repo {
 public:
  explicit Repo(const fs::path& dir);  // git init
  struct Existing {};
  Repo(const fs::path& dir, Existing);  // open a repository that exists
  git_repository* get() const { return repo_.get(); }
  const fs::path& dir() const { return dir_; }

  // Writes files (path -> content; an empty optional deletes) and commits them
  // on HEAD, with a fixed author and the given time, so commit ids are stable.
  git_oid commit(const std::map<std::string, std::string>& files, const std::string& message,
                 const std::vector<std::string>& remove = {}, long long time = 1767225600);
  // Moves HEAD (detached) and the working tree to `oid`, discarding changes.
  void checkout(const git_oid& oid);
  void branch(const std::string& name, const git_oid& oid);
  git_oid head() const;

 private:
  fs::path dir_;
  patchmgr::git::Repository repo_;
};

// The result of running the patchmgr binary.
struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
  std::string all() const { return out + err; }
};

// A project root (manifests/, patches/) plus an upstream with a base commit.
class Project {
 public:
  Project();
  const fs::path& root() const { return root_.path(); }
  fs::path checkout(const std::string& name = "demo") const { return root() / "upstream" / name; }
  Repo& upstream() { return *upstream_; }
  git_oid pin() const { return pin_; }

  // Turns `files` applied on top of `base` into a patch file under
  // patches/demo/ and returns its manifest entry (YAML, indented for the list).
  struct PatchSpec {
    std::string id;
    std::map<std::string, std::string> files;
    std::vector<std::string> remove;
    std::string status = "implemented";
    std::string extra;  // more YAML keys, e.g. "    enabled: false\n"
  };
  std::string make_patch(const PatchSpec& spec, int number, const git_oid& base);
  // Writes manifests/demo.yaml with the given patch entries.
  void write_manifest(const std::vector<std::string>& entries, const std::string& name = "demo");
  // make_patch for each spec, stacked on the pin, then write_manifest.
  void set_series(const std::vector<PatchSpec>& specs);

  CliRun run(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) const;

 private:
  TempDir root_;
  TempDir upstream_dir_;
  TempDir scratch_dir_;
  std::unique_ptr<Repo> upstream_;
  std::unique_ptr<Repo> scratch_;  // where patch commits are made
  git_oid pin_{};

 public:
  git_oid last_patch_commit{};  // the commit behind the last make_patch
};

// The base files of the synthetic upstream.
extern const std::map<std::string, std::string> kBaseFiles;

// Runs the patchmgr binary with `args` in `cwd`.
CliRun run_patchmgr(const fs::path& cwd, const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env = {});

}  // namespace testutil
