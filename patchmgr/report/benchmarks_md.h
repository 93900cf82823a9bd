// The "Benchmarks" part of each component in PATCHES.md: the newest stored
// result as the table users kept by hand (mode, speed as realtime factor,
// peak GPU memory, notes), then the older results as history. Reads nothing
// and asks no clock: the same results give the same bytes.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "patchmgr/bench/result.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

// `results`: this component's, in load_results() order (oldest first).
std::string render_benchmarks(const Manifest& m, const std::vector<const bench::Result*>& results,
                              const std::filesystem::path& root);

}  // namespace patchmgr
