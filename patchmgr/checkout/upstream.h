// Naming an upstream commit the way the commands accept it: "pin", "latest"
// (the tip of upstream.track, fetched first) or a full commit SHA (fetched
// when the clone lacks it).
#pragma once

#include <git2.h>

#include <string>

#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

// Throws Error(usage) for a malformed spec and Error(failed) when the commit
// cannot be found or fetched.
git_oid resolve_upstream_commit(const Context& ctx, git_repository* repo, const Manifest& m, const std::string& spec,
                                const std::string& option);

}  // namespace patchmgr
