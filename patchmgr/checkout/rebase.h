// `patchmgr rebase`: carry the series onto a new upstream commit with a real
// three-way merge (each patch commit cherry-picked in memory), then move the
// pin, regenerate the patch files and their hashes, and bring the checkout along.
#pragma once

#include <string>

#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

struct RebaseOptions {
  std::string onto;  // "latest" or a full commit SHA
};

void rebase(const Context& ctx, const Manifest& manifest, const RebaseOptions& options);

}  // namespace patchmgr
