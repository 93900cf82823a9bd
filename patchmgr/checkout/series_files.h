// Writing a component's series back to the project: the patch files and the
// manifest change together or not at all. `export` and `rebase` describe what
// changes as a SeriesEdit; write_series_files stages the result, loads it as
// any command would (load_manifest), and only then moves it into place.
//
// It does not touch the checkout, and it never writes a manifest that does not
// load: when the staged result has a problem, or a step fails half-way, the
// files already replaced are put back and the error says nothing was changed.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

// New text for the patch file of an existing patch.
struct PatchFileUpdate {
  const Patch* patch;
  std::string text;
};

// A patch that is not in the manifest yet (export of a new commit): appended
// at the end of the series, with placeholders for what a person must write.
struct NewPatch {
  std::string id;
  std::string file_name;  // NNNN-slug.patch
  std::string text;       // the patch file
  std::string title;
  std::string since;  // YYYY-MM-DD
  std::vector<std::string> files;
};

// A patch the new base already has: status becomes upstreamed, upstream_status
// accepted with the upstream commit that has it.
struct UpstreamedPatch {
  const Patch* patch;
  std::string commit;  // 40 hex
};

struct SeriesEdit {
  std::vector<PatchFileUpdate> updates;
  std::vector<NewPatch> added;
  std::vector<UpstreamedPatch> upstreamed;
  std::optional<std::string> new_pin;  // upstream.commit
  // Called with the staged manifest (its patches parsed from the staged files)
  // before anything is moved into place; throwing Error stops the write.
  std::function<void(const Manifest& staged)> verify;
};

struct SeriesWrite {
  size_t changed = 0;  // patch files written (new ones included)
  Manifest manifest;   // the manifest as it loads now
};

// Applies `edit` to `manifest`'s files, editing only the values it changes so
// comments and layout survive (a `files:` list becomes a flow list when it
// changes). Prints a line per patch. Throws Error(failed) with the manifest's
// diagnostics when the result would not load; nothing was changed then.
SeriesWrite write_series_files(const Context& ctx, const Manifest& manifest, const SeriesEdit& edit);

// The earlier form: patch file texts and a new pin. Returns how many files changed.
size_t write_series_files(const Context& ctx, const Manifest& manifest, const std::vector<PatchFileUpdate>& updates,
                          const std::optional<std::string>& new_pin);

// Finishes or undoes a write_series_files that was killed between its renames
// (its copies of the old files, *.patchmgr-old-<pid>, are still there): when the
// manifest was not replaced yet, every old file goes back; when it was, the
// copies go. Writes from live processes are left alone. Returns a line per
// repaired write, for the user; run before the manifests are loaded.
std::vector<std::string> recover_series_writes(const std::filesystem::path& root);

// Fault injection for the tests: when PATCHMGR_TEST_FAIL_AT equals `point`,
// throws Error(failed), as a full disk or a failed rename would.
void test_fail_point(const std::string& point);

}  // namespace patchmgr
