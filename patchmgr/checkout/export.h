// `patchmgr export`: the patch commits in the checkout, written back to
// patches/<name>/ (after a user edited and amended them), with the sha256 of
// each rewritten file updated in the manifest. Ids and metadata are kept.
#pragma once

#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

void export_series(const Context& ctx, const Manifest& manifest);

}  // namespace patchmgr
