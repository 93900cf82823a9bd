// Which upstream commit changed a patch's drift class: a bisection of the
// pin's first-parent line between the pin and the target, classifying the
// series in memory at about log2(N) commits. It assumes that, as upstream
// moves away from the pin, a patch only gets further from applying.
#pragma once

#include <git2.h>

#include <string>
#include <vector>

#include "patchmgr/checkout/drift.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

struct DriftChange {
  std::string error;   // why there is no answer (the target is off the pin's first-parent line...); else empty
  std::string commit;  // 40 hex
  std::string date;    // author date, YYYY-MM-DD (UTC)
  std::string author;
  std::string subject;
  Drift before = Drift::applies;  // the patch's class just before `commit`
  Drift after = Drift::applies;   // and at `commit`
  // The target is older than the pin: `commit` is the newest commit whose
  // absence makes the patch worse (the patch depends on it), found walking back.
  bool backwards = false;
  int commits = 0;          // commits between the pin and the target
  int classifications = 0;  // commits classified to find it
};

// Bisects for patch `index` of `series`, whose class at `target` is `at_target`
// and worse than at the pin. Never throws for a commit outside the first-parent
// line: that is an error in the result.
DriftChange bisect_drift(git_repository* repo, const git_oid& pin, const git_oid& target,
                         const std::vector<const Patch*>& series, size_t index, Drift at_target);

}  // namespace patchmgr
