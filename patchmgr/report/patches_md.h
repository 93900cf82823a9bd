// PATCHES.md: the status page of every component's patch series, rendered
// from the manifests (and, later, from benchmark results). Deterministic: the
// same manifests give the same bytes, so `patchmgr docs --check` can tell a
// stale page in CI.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

std::string render_patches_md(const std::vector<Manifest>& manifests, const std::filesystem::path& root);

}  // namespace patchmgr
