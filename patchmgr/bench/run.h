// `patchmgr bench`: runs `separate --bench` (and, with --against-upstream, the
// component's upstream reference script on the same track and weights) as
// child processes, and stores one dated result under docs/benchmarks/.
// patchmgr itself never links libtorch.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"
#include "patchmgr/report/fingerprint.h"

namespace patchmgr::bench {

struct BenchOptions {
  bool against_upstream = false;
  std::string separate;                  // the separate binary; empty: found in the build directories
  std::string model, checkpoint, track;  // override the bench section's
  std::optional<double> seconds;
  std::optional<int> repeats;                   // timed runs per configuration (default bench.repeats)
  std::string precisions, batch_sizes, graphs;  // comma-separated overrides
  std::string python;                  // {python}: --python, else $STEMKIT_PYTHON (the CLI fills it), else bench.python
  std::vector<std::string> vars;       // NAME=VALUE, override bench.vars
  std::string work;                    // scratch directory; default .bench/<component>
  std::string machine;                 // label (and file name part) of the machine
  std::vector<std::string> notes;      // recorded with the result
  std::filesystem::path patchmgr_exe;  // {patchmgr}, and where to look for separate first
};

// Runs the benchmark of `m` and writes the result; returns its path.
// Throws Error: usage (no bench section, bad option), failed (a command failed).
std::filesystem::path run_bench(const Context& ctx, const Manifest& m, const Fingerprint& fp, const BenchOptions& o);

// The separate binary to run: `option`, else $STEMKIT_SEPARATE, else
// runtime/separate/separate in the build directory holding `patchmgr_exe`,
// else the newest ROOT/build*/runtime/separate/separate.
std::filesystem::path find_separate(const std::string& option, const std::filesystem::path& patchmgr_exe,
                                    const std::filesystem::path& root);

}  // namespace patchmgr::bench
