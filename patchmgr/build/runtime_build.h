// `patchmgr build runtime`: configure (once) and build runtime/ and separate
// with cmake, as a subprocess (patchmgr never links libtorch), against a
// libtorch found by find_libtorch, stamped with whether the checkouts hold the
// manifests' patch set (separate --version shows it).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "patchmgr/build/libtorch.h"
#include "patchmgr/build/stamp.h"
#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

struct RuntimeBuildOptions {
  std::string flavor;               // "", "cpu", "cuda", "rocm"
  std::string libtorch;             // --libtorch PREFIX
  std::string python = "python3";   // asked for its torch's CMake prefix
  std::filesystem::path build_dir;  // default: <root>/build, or <root>/build-<flavor> with a flavor
  bool allow_mismatch = false;
  int jobs = 0;                      // 0: the number of CPUs
  std::vector<std::string> targets;  // empty: everything (the runtime, separate, the tests verify runs)
  int timeout = 4 * 3600;            // seconds, configure and build each
};

struct RuntimeBuild {
  Libtorch torch;
  Stamp stamp;
  std::filesystem::path build_dir;
  bool configured = false;  // cmake's configure step ran this time
};

// <root>/build, or <root>/build-<flavor> when a flavor is asked.
std::filesystem::path default_build_dir(const std::filesystem::path& root, const std::string& flavor);

// True when `root` holds the runtime's sources (CMakeLists.txt and runtime/).
bool has_runtime_sources(const std::filesystem::path& root);

// Builds; prints what it found and did. Throws Error(refused) when the
// checkouts differ from the manifests (unless allow_mismatch), Error(usage)
// when no libtorch fits, Error(failed) when cmake fails (with its log's tail).
// Writes <build_dir>/patchmgr-build.json (read by verify).
RuntimeBuild build_runtime(const Context& ctx, const std::vector<Manifest>& manifests,
                           const RuntimeBuildOptions& options);

// What build_runtime recorded in `build_dir`, if anything: the patch-set id it
// built, and its stamp line. Empty strings when there is no record.
struct RuntimeBuildRecord {
  std::string patch_set;
  std::string checkouts;
  std::string libtorch;
};
RuntimeBuildRecord read_build_record(const std::filesystem::path& build_dir);

}  // namespace patchmgr
