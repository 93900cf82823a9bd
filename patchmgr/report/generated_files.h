// The files patchmgr renders from the manifests into the project: PATCHES.md
// (`patchmgr docs`) and the patch-set header the runtime's build includes
// (`patchmgr fingerprint --header`). Each is rewritten only when its bytes
// change: an unchanged header keeps its time stamp, so the build does not
// recompile what includes it.
#pragma once

#include <filesystem>
#include <vector>

#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"
#include "patchmgr/report/fingerprint.h"

namespace patchmgr {

struct DocsOptions {
  bool check = false;                           // compare only; never write
  std::filesystem::path output = "PATCHES.md";  // relative to the project root, or absolute
};

// `patchmgr docs`: renders PATCHES.md from `manifests` (render_patches_md) and
// writes it unless it is up to date, saying which on ctx.out. With
// `options.check`, a stale page is Error(failed) naming the first line that
// differs, so a CI log points at the stale part.
void write_patches_md(const Context& ctx, const std::vector<Manifest>& manifests, const DocsOptions& options);

// `patchmgr fingerprint --header FILE`: fingerprint_header(fp) written to
// `file` (and its directory made) unless the file holds those bytes already.
void write_fingerprint_header(const Fingerprint& fp, const std::filesystem::path& file);

}  // namespace patchmgr
