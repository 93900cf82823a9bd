// `patchmgr export`: the patch commits in the checkout, written back to
// patches/<name>/ (after a user edited and amended them), with the sha256 of
// each rewritten file updated in the manifest. Ids and metadata are kept.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

void export_series(const Context& ctx, const Manifest& manifest);

// New text for a patch file.
struct PatchFileUpdate {
  const Patch* patch;
  std::string text;
};

// Writes the patch files whose text changed, then the manifest with their new
// sha256 values (and `new_pin` as upstream.commit when given), editing only
// those values so comments and layout survive. Prints a line per patch and
// returns how many files changed.
size_t write_series_files(const Context& ctx, const Manifest& manifest, const std::vector<PatchFileUpdate>& updates,
                          const std::optional<std::string>& new_pin);

}  // namespace patchmgr
