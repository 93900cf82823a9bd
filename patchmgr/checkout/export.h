// `patchmgr export`: the patch commits in the checkout, written back to
// patches/<name>/ (after a user edited and amended them), with the sha256 of
// each rewritten file updated in the manifest. Ids and metadata are kept.
// Commits on top of the series that are no patch yet become new patches at the
// end of the series, with placeholders (purpose, upstream_status) that `lint`
// asks a person to write. Afterwards HEAD and branch patchmgr/<name> hold the
// commits `apply` makes from the written files (same trees), so the branch and
// the series agree and no later command takes the exported commits for
// unrecorded work.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "patchmgr/checkout/context.h"
#include "patchmgr/checkout/series_files.h"  // write_series_files, which rebase shares
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

void export_series(const Context& ctx, const Manifest& manifest);

}  // namespace patchmgr
