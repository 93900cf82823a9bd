// `patchmgr revert`: back to the pristine pin, without ever losing work.
#pragma once

#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

struct RevertOptions {
  // Set aside local edits (git stash) and unrecorded commits (a ref under
  // refs/patchmgr/discarded/) instead of refusing.
  bool discard = false;
};

void revert(const Context& ctx, const Manifest& manifest, const RevertOptions& options);

}  // namespace patchmgr
