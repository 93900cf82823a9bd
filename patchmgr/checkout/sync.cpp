#include "patchmgr/checkout/sync.h"

#include <unistd.h>

#include <fmt/format.h>

#include "patchmgr/checkout/inspect.h"
#include "patchmgr/checkout/journal.h"
#include "patchmgr/checkout/lock.h"
#include "patchmgr/checkout/rebase_state.h"
#include "patchmgr/git/git.h"

namespace patchmgr {
namespace {

void require_pin(git_repository* repo, const Manifest& m, const std::string& url) {
  if (!git::try_commit(repo, git::from_hex(m.commit)))
    throw Error(ExitCode::failed,
                fmt::format("{}: the pinned commit {} is not in {} (all branches and tags were fetched); check "
                            "upstream.commit in {}",
                            m.name, m.commit, url, m.path.filename().string()));
}

}  // namespace

void sync(const Context& ctx, const Manifest& m, const SyncOptions& options) {
  auto& out = *ctx.out;
  std::string url = ctx.upstream_url(m);
  CheckoutLock lock(m.checkout, "sync");
  git_oid pin = git::from_hex(m.commit);
  std::error_code ec;

  if (!git::is_repository(m.checkout)) {
    if (std::filesystem::exists(m.checkout, ec) && !std::filesystem::is_empty(m.checkout, ec))
      throw Error(ExitCode::refused, fmt::format("{}: {} exists and is not a git clone; move it away, or set checkout: "
                                                 "in {} to another directory",
                                                 m.name, m.checkout.string(), m.path.filename().string()));
    // Clone beside the checkout and rename at the end: an interrupted clone
    // never leaves a half-made checkout behind.
    std::string prefix = fmt::format(".{}.patchmgr-clone-", m.checkout.filename().string());
    auto tmp = m.checkout.parent_path() / fmt::format("{}{}", prefix, ::getpid());
    // Those of killed clones: stale, since we hold the lock.
    for (auto it = std::filesystem::directory_iterator(m.checkout.parent_path(), ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
      if (it->path().filename().string().rfind(prefix, 0) == 0) std::filesystem::remove_all(it->path(), ec);
    ec.clear();
    out << fmt::format("{}: cloning {}\n", m.name, url);
    out.flush();
    try {
      git_clone_options opts = GIT_CLONE_OPTIONS_INIT;
      opts.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE;
      git_repository* raw = nullptr;
      git::check(git_clone(&raw, url.c_str(), tmp.c_str(), &opts), fmt::format("{}: cannot clone {}", m.name, url));
      git::Repository repo(raw);
      require_pin(repo.get(), m, url);
      git::Commit target = git::lookup_commit(repo.get(), pin);
      git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
      co.checkout_strategy = GIT_CHECKOUT_FORCE;
      git::check(git_checkout_tree(repo.get(), reinterpret_cast<git_object*>(target.get()), &co),
                 fmt::format("{}: cannot check out the pin", m.name));
      git::check(git_repository_set_head_detached(repo.get(), &pin), fmt::format("{}: cannot detach HEAD", m.name));
    } catch (...) {
      std::filesystem::remove_all(tmp, ec);
      throw;
    }
    std::filesystem::remove(m.checkout, ec);  // an empty directory left by the user
    std::filesystem::rename(tmp, m.checkout);
    out << fmt::format("{}: cloned into {}, HEAD at the pin {} (detached)\n", m.name, m.checkout.string(),
                       m.commit.substr(0, 12));
    return;
  }

  git::Repository repo = git::open(m.checkout);
  if (auto note = recover_interrupted(repo.get(), false)) *ctx.err << m.name << ": " << *note << "\n";
  refuse_while_rebase_stopped(repo.get(), m, "sync");
  bool have_pin = git::try_commit(repo.get(), pin).has_value();
  if (!have_pin || options.fetch) {
    out << fmt::format("{}: fetching {}\n", m.name, url);
    out.flush();
    fetch_recorded(repo.get(), url, {"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}, m.name);
  }
  require_pin(repo.get(), m, url);

  Inspection in = inspect(repo.get(), m, false);
  if (in.based_on_pin) {
    // Already on the pin (perhaps with patches or the user's commits on top): leave it.
    if (in.chain.empty())
      out << fmt::format("{}: at the pin {}, up to date\n", m.name, m.commit.substr(0, 12));
    else
      out << fmt::format("{}: {} on the pin {} ({} of {} patches applied); patchmgr status tells more\n", m.name,
                         to_string(in.state), m.commit.substr(0, 12), in.applied_ids.size(), m.source_patches().size());
    return;
  }
  // HEAD is elsewhere (a fresh clone on a branch, an older pin): move it, unless that loses work.
  if (in.has_tracked_edits())
    throw Error(ExitCode::refused,
                fmt::format("{}: refusing to move {} to the pin: it has uncommitted edits; commit or "
                            "stash them, or run patchmgr revert --discard {}",
                            m.name, m.checkout.string(), m.name));
  std::vector<std::string> work;
  if (!in.head.branch) {
    for (const auto& oid : orphaned_work(repo.get(), *in.head.oid, "")) work.push_back(git::short_hex(oid));
  }
  if (!work.empty())
    throw Error(ExitCode::refused,
                fmt::format("{}: refusing to move HEAD to the pin: it holds commits found on no branch "
                            "({}); create a branch for them (git branch <name>) and sync again",
                            m.name, fmt::join(work, ", ")));
  detach_head(repo.get(), "sync", in.head, pin);
  out << fmt::format("{}: HEAD moved to the pin {} (detached)\n", m.name, m.commit.substr(0, 12));
}

}  // namespace patchmgr
