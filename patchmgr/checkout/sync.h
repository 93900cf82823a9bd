// `patchmgr sync`: clone (or fetch into) the checkout and put it on the pin.
#pragma once

#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

struct SyncOptions {
  bool fetch = false;  // fetch even when the pinned commit is already in the clone
};

void sync(const Context& ctx, const Manifest& manifest, const SyncOptions& options);

}  // namespace patchmgr
