// The patch-set fingerprint: which upstream pins and which patch files a
// build corresponds to. The runtime embeds it at build time (--version), and
// reference data records it, so "does this binary match that patched
// upstream?" has a checkable answer.
#pragma once

#include <string>
#include <vector>

#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

struct Fingerprint {
  std::string id;       // 16 hex digits: the start of the SHA-256 of `text`
  std::string text;     // canonical: per component its pin, per patch kind, id, enabled, sha256
  std::string summary;  // "bs-roformer@c05f497215b4+2 demucs@b9ab48cad459+2"
};

Fingerprint fingerprint(const std::vector<Manifest>& manifests);

// One component's block of the fingerprint text: "demucs <pin>\n  source ...\n".
// Benchmark results record it; a result whose block differs is stale.
std::string component_fingerprint(const Manifest& m);

// A C++ header defining STEMKIT_PATCHSET_ID, STEMKIT_PATCHSET_SUMMARY and STEMKIT_PATCHSET_TEXT.
std::string fingerprint_header(const Fingerprint& f);

}  // namespace patchmgr
