// Does each checkout hold exactly the patch set its manifest describes? The
// runtime build is stamped with the answer (its fingerprint, or what differs),
// and build steps and verify --regenerate refuse a checkout that differs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "patchmgr/manifest/manifest.h"
#include "patchmgr/report/fingerprint.h"

namespace patchmgr {

// Why the checkout is not the pin plus every enabled patch (and nothing else,
// no tracked edits), or nullopt when it is. Opt-in patches applied on top
// count as a difference: the fingerprint says they are off.
std::optional<std::string> checkout_mismatch(const Manifest& manifest);

struct Stamp {
  Fingerprint fingerprint;              // of the manifests
  std::vector<std::string> mismatches;  // "demucs: partially patched (1/2 patches applied)", one per differing checkout
  bool matches() const { return mismatches.empty(); }
  // One line for --version: "checkouts match patch set 8056e58f60434274" or
  // "checkouts DIFFER from patch set ... (built with --allow-mismatch): demucs: ...".
  std::string line(bool allow_mismatch) const;
};

Stamp stamp_checkouts(const std::vector<Manifest>& manifests);

}  // namespace patchmgr
