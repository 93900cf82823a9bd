// `patchmgr rebase`: carry the series onto a new upstream commit with a real
// three-way merge (each patch commit cherry-picked in memory), then move the
// pin, regenerate the patch files and their hashes, and bring the checkout along.
//
// A patch that changes nothing on the new base is already upstream: it is
// dropped (status upstreamed, upstream_status accepted with the upstream
// commit that has it) and the rebase goes on. A conflict stops the rebase in
// the checkout, as `git am -3` would: the new base, the patches before the
// conflicting one as commits, conflict markers in the files. `--continue`
// takes the resolution (staged or committed) and goes on; `--abort` puts the
// checkout back. The manifest and the patch files are written once, when the
// whole series is through (write_series_files), so an abort has nothing to undo there.
#pragma once

#include <string>

#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

struct RebaseOptions {
  std::string onto;     // "latest" or a full commit SHA (starts a rebase)
  bool resume = false;  // --continue: go on after a resolved conflict
  bool abort = false;   // --abort: back to where the stopped rebase started
};

void rebase(const Context& ctx, const Manifest& manifest, const RebaseOptions& options);

}  // namespace patchmgr
