// `patchmgr check`: does the series still apply? Classifies every patch in
// memory (drift.h: applies, offset, fuzz, 3-way, already upstream, partly
// upstream, conflict; the working tree is never touched) on the pin, on the
// tip of the tracked branch, or on any commit, each on top of the ones before,
// and reports per patch, as text, JSON or JUnit XML for CI dashboards. With
// --bisect it names the upstream commit that changed a patch's class.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "patchmgr/checkout/context.h"
#include "patchmgr/checkout/drift.h"
#include "patchmgr/checkout/drift_bisect.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

struct CheckOptions {
  std::string against = "pin";      // "pin", "latest" (fetches upstream.track first) or a commit SHA
  Drift fail_on = Drift::conflict;  // a patch fails when its class is at least this bad (severity())
  bool bisect = false;              // name the commit that made each patch worse than at the pin
};

struct PatchCheck {
  std::string id;
  std::string file;  // patch file name; empty for runtime patches
  // fails: its class is at least --fail-on's; applies: any better class.
  enum class Result { applies, fails, skipped } result = Result::skipped;
  std::string reason;                 // why it is skipped; else the drift's detail
  std::optional<PatchDrift> drift;    // unset when skipped
  std::optional<DriftChange> change;  // with --bisect, for a patch worse than at the pin
  // From the manifest: the upstream commit that took the patch (upstream_status
  // accepted or backport), so an already-upstream patch can say where it went.
  std::string upstream_commit;
};

struct CheckReport {
  std::string component;
  std::string against;              // as asked
  std::string target;               // the commit checked against (40 hex); empty if none was reached
  std::string error;                // a problem that kept the check from running (no clone, fetch failed...)
  Drift fail_on = Drift::conflict;  // as asked (CheckOptions::fail_on), for the summary line
  std::vector<PatchCheck> patches;
  bool ok() const;
};

// Runs the check for one component. Never throws for a patch that fails:
// that is a result. Throws Error for a lock held by another process.
CheckReport check(const Context& ctx, const Manifest& manifest, const CheckOptions& options);

// A report for a manifest that did not load, so CI still gets a failing test case.
CheckReport manifest_failure(const std::string& component, const std::string& against, const std::string& diagnostics);

// One patch's line of the text report (also JUnit's <system-out>), without
// the indentation: "0001 flash-attention              offset: model/attend.py hunk 1 +3".
// What to do about a class is said here (already upstream: "drop it, or set
// its status to upstreamed"); facts from the manifest about where upstream took
// a patch belong here too, copied into PatchCheck by check().
std::string check_patch_line(const PatchCheck& patch);

std::string check_text(const std::vector<CheckReport>& reports);
std::string check_json(const std::vector<CheckReport>& reports);
std::string check_junit(const std::vector<CheckReport>& reports);

}  // namespace patchmgr
