// PATCHES.md: the status page of every component's patch series, rendered
// from the manifests and the benchmark results in docs/benchmarks/. Deterministic: the
// same manifests give the same bytes, so `patchmgr docs --check` can tell a
// stale page in CI.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "patchmgr/bench/result.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

// Reads the benchmark results under ROOT/docs/benchmarks/ (bench::load_results);
// a malformed result throws Error(usage) naming the file and the key.
std::string render_patches_md(const std::vector<Manifest>& manifests, const std::filesystem::path& root);
// The same with the results given (in load_results() order).
std::string render_patches_md(const std::vector<Manifest>& manifests, const std::filesystem::path& root,
                              const std::vector<bench::Result>& results);

}  // namespace patchmgr
