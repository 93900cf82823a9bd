#include "fixture.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "patchmgr/git/patch_file.h"
#include "patchmgr/util/sha256.h"

namespace testutil {

using patchmgr::git::check;

TempDir::TempDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() / fmt::format("patchmgr-test-{:08x}{:08x}", rd(), rd());
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!std::getenv("PATCHMGR_TEST_KEEP")) fs::remove_all(path_, ec);
}

std::string read(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write(const fs::path& file, const std::string& content) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << content;
}

Repo::Repo(const fs::path& dir) : dir_(dir) {
  git_repository* r = nullptr;
  check(git_repository_init(&r, dir.c_str(), 0), "git init");
  repo_.reset(r);
  check(git_repository_set_head(r, "refs/heads/main"), "set HEAD");
}

Repo::Repo(const fs::path& dir, Existing) : dir_(dir), repo_(patchmgr::git::open(dir)) {}

git_oid Repo::commit(const std::map<std::string, std::string>& files, const std::string& message,
                     const std::vector<std::string>& remove, long long time) {
  git_index* idx = nullptr;
  check(git_repository_index(&idx, get()), "index");
  patchmgr::git::Index index(idx);
  for (const auto& [path, content] : files) {
    write(dir_ / path, content);
    check(git_index_add_bypath(idx, path.c_str()), "add " + path);
  }
  for (const auto& path : remove) {
    fs::remove(dir_ / path);
    check(git_index_remove_bypath(idx, path.c_str()), "rm " + path);
  }
  check(git_index_write(idx), "write index");
  git_oid tree_id;
  check(git_index_write_tree(&tree_id, idx), "write tree");
  patchmgr::git::Tree tree = patchmgr::git::lookup_tree(get(), tree_id);
  git_signature* sig = nullptr;
  check(git_signature_new(&sig, "Upstream Author", "author@example.org", time, 60), "signature");
  patchmgr::git::Signature holder(sig);
  git_oid parent_id;
  git_oid oid;
  // The variadic form: the array form's parameter type changed in libgit2 1.8.
  if (git_reference_name_to_id(&parent_id, get(), "HEAD") == 0) {
    patchmgr::git::Commit parent = patchmgr::git::lookup_commit(get(), parent_id);
    check(git_commit_create_v(&oid, get(), "HEAD", sig, sig, "UTF-8", message.c_str(), tree.get(), 1, parent.get()),
          "commit");
  } else {
    check(git_commit_create_v(&oid, get(), "HEAD", sig, sig, "UTF-8", message.c_str(), tree.get(), 0), "commit");
  }
  return oid;
}

void Repo::checkout(const git_oid& oid) {
  patchmgr::git::Commit c = patchmgr::git::lookup_commit(get(), oid);
  git_checkout_options opts = GIT_CHECKOUT_OPTIONS_INIT;
  opts.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_REMOVE_UNTRACKED;
  check(git_checkout_tree(get(), reinterpret_cast<git_object*>(c.get()), &opts), "checkout");
  check(git_repository_set_head_detached(get(), &oid), "detach");
}

void Repo::branch(const std::string& name, const git_oid& oid) {
  check(git_reference_create(nullptr, get(), ("refs/heads/" + name).c_str(), &oid, 1, "test"), "branch");
}

git_oid Repo::head() const {
  git_oid oid;
  check(git_reference_name_to_id(&oid, get(), "HEAD"), "HEAD");
  return oid;
}

const std::map<std::string, std::string> kBaseFiles = {
    {"README.md", "# demo upstream\n\nA model that separates stems.\n"},
    {"model/attend.py",
     "import torch\n\n\nclass Attend:\n    def __init__(self, flash=False):\n        self.flash = flash\n\n"
     "    def config(self, major, minor):\n        if major == 8 and minor == 0:\n            return 'flash'\n"
     "        return 'math'\n\n    def forward(self, q, k, v):\n        scale = q.shape[-1] ** -0.5\n"
     "        sim = (q @ k.transpose(-1, -2)) * scale\n        return sim.softmax(-1) @ v\n"},
    {"model/transformer.py",
     "from .attend import Attend\n\n\nclass Layer:\n    def __init__(self, dim):\n        self.dim = dim\n"
     "        self.attend = Attend()\n\n    def forward(self, x):\n        return self.attend.forward(x, x, x)\n"},
};

Project::Project() {
  upstream_ = std::make_unique<Repo>(upstream_dir_.path());
  pin_ = upstream_->commit(kBaseFiles, "Initial import\n");
  // Upstream moves on after the pin, so a fresh clone's HEAD is not the pin.
  upstream_->commit({{"CHANGELOG.md", "## next\n- newer work\n"}}, "Start a changelog\n", {}, 1767312000);
  scratch_ = std::make_unique<Repo>(scratch_dir_.path());
  git_oid same = scratch_->commit(kBaseFiles, "Initial import\n");
  EXPECT_TRUE(git_oid_equal(&same, &pin_));
  fs::create_directories(root() / "manifests");
  fs::create_directories(root() / "patches" / "demo");
}

std::string Project::make_patch(const PatchSpec& spec, int number, const git_oid& base) {
  scratch_->checkout(base);
  std::string message =
      fmt::format("Add {}\n\nThis patch adds {} so the tests can check the series.\n", spec.id, spec.id);
  git_oid oid = scratch_->commit(spec.files, message, spec.remove, 1769000000 + number * 3600);
  patchmgr::git::Commit c = patchmgr::git::lookup_commit(scratch_->get(), oid);
  std::string text = patchmgr::git::format_patch(c.get());
  std::string file = fmt::format("{:04d}-{}.patch", number, spec.id);
  write(root() / "patches" / "demo" / file, text);
  std::set<std::string> touched;
  for (const auto& [path, content] : spec.files) touched.insert(path);
  for (const auto& path : spec.remove) touched.insert(path);
  std::string files;
  for (const auto& t : touched) files += fmt::format("      - {}\n", t);
  last_patch_commit = oid;
  return fmt::format(
      "  - id: {}\n    file: {}\n    sha256: {}\n    title: The {} patch\n    purpose: Exercise patchmgr with {}.\n"
      "    status: {}\n    since: 2026-01-25\n    files:\n{}{}",
      spec.id, file, patchmgr::sha256_hex(text), spec.id, spec.id, spec.status, files, spec.extra);
}

void Project::write_manifest(const std::vector<std::string>& entries, const std::string& name) {
  std::string yaml = fmt::format(
      "schema: 1\nname: {}\nupstream:\n  url: https://example.invalid/{}.git\n  commit: {}\n  track: main\n"
      "checkout: upstream/{}\npatches:\n",
      name, name, patchmgr::git::to_hex(pin_), name);
  for (const auto& e : entries) yaml += e;
  if (entries.empty()) yaml += "  []\n";
  write(root() / "manifests" / (name + ".yaml"), yaml);
}

void Project::set_series(const std::vector<PatchSpec>& specs) {
  std::vector<std::string> entries;
  git_oid base = pin_;
  int n = 1;
  for (const auto& s : specs) {
    entries.push_back(make_patch(s, n++, base));
    base = last_patch_commit;
  }
  write_manifest(entries);
}

CliRun Project::run(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) const {
  auto full = env;
  full.emplace("PATCHMGR_UPSTREAM_DEMO", upstream_dir_.path().string());
  return run_patchmgr(root(), args, full);
}

CliRun run_patchmgr(const fs::path& cwd, const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env) {
  TempDir io;
  fs::path out = io.path() / "out", err = io.path() / "err";
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(cwd.c_str()) != 0) _exit(126);
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    unsetenv("PATCHMGR_TEST_KILL_AT");
    unsetenv("PATCHMGR_ROOT");
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    std::string bin = PATCHMGR_BIN;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CliRun r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read(out);
  r.err = read(err);
  return r;
}

}  // namespace testutil
