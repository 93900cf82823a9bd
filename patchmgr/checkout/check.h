// `patchmgr check`: does the series still apply? Applies every patch in
// memory (libgit2's apply to a tree; the working tree is never touched) on
// the pin, on the tip of the tracked branch, or on any commit, and reports
// per patch, as text, JSON or JUnit XML for CI dashboards.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

struct CheckOptions {
  std::string against = "pin";  // "pin", "latest" (fetches upstream.track first) or a commit SHA
};

struct PatchCheck {
  std::string id;
  std::string file;      // patch file name; empty for runtime patches
  enum class Result { applies, fails, skipped } result = Result::skipped;
  std::string reason;    // why it fails (file, hunk, libgit2's message) or is skipped
};

struct CheckReport {
  std::string component;
  std::string against;           // as asked
  std::string target;            // the commit checked against (40 hex); empty if none was reached
  std::string error;             // a problem that kept the check from running (no clone, fetch failed...)
  std::vector<PatchCheck> patches;
  bool ok() const;
};

// Runs the check for one component. Never throws for a patch that fails:
// that is a result. Throws Error for a lock held by another process.
CheckReport check(const Context& ctx, const Manifest& manifest, const CheckOptions& options);

// A report for a manifest that did not load, so CI still gets a failing test case.
CheckReport manifest_failure(const std::string& component, const std::string& against, const std::string& diagnostics);

std::string check_text(const std::vector<CheckReport>& reports);
std::string check_json(const std::vector<CheckReport>& reports);
std::string check_junit(const std::vector<CheckReport>& reports);

}  // namespace patchmgr
