#include "patchmgr/checkout/upstream.h"

#include <regex>

#include <fmt/format.h>

#include "patchmgr/git/git.h"

namespace patchmgr {

git_oid resolve_upstream_commit(const Context& ctx, git_repository* repo, const Manifest& m, const std::string& against,
                                const std::string& option) {
  std::string url = ctx.upstream_url(m);
  if (against == "pin") {
    git_oid pin = git::from_hex(m.commit);
    if (!git::try_commit(repo, pin))
      throw Error(ExitCode::failed,
                  fmt::format("the pinned commit {} is not in the clone; run patchmgr sync {}", m.commit, m.name));
    return pin;
  }
  if (against == "latest") {
    std::string ref = "refs/remotes/origin/" + m.track;
    git::fetch(repo, url, {fmt::format("+refs/heads/{}:{}", m.track, ref)}, m.name);
    auto oid = git::resolve_ref(repo, ref);
    if (!oid) throw Error(ExitCode::failed, fmt::format("upstream {} has no branch {} (upstream.track)", url, m.track));
    return *oid;
  }
  if (!std::regex_match(against, std::regex("^[0-9a-f]{40}$")))
    throw Error(ExitCode::usage,
                fmt::format("{} {}: expected pin, latest or a full 40-hex commit SHA", option, against));
  git_oid oid = git::from_hex(against);
  if (!git::try_commit(repo, oid)) {
    git::fetch(repo, url, {"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}, m.name);
    if (!git::try_commit(repo, oid))
      throw Error(ExitCode::failed,
                  fmt::format("commit {} is not in {} (all branches and tags fetched)", against, url));
  }
  return oid;
}

}  // namespace patchmgr
