// What a runtime binary is: its version, the libtorch it was built against,
// and the patch set (manifests/) it implements, as `--version` prints it.
#pragma once

#include <string>

namespace stemkit {

std::string patchset_id();       // 16 hex digits, as `patchmgr fingerprint` prints
std::string patchset_summary();  // "bs-roformer@c05f497215b4+2 demucs@b9ab48cad459+2"
std::string version_text();      // several lines for --version
// Whether the upstream checkouts held this patch set when the build was
// configured, as `patchmgr build runtime` stamped it ("checkouts match patch
// set ...", "checkouts DIFFER from ... (built with --allow-mismatch): ..."),
// or "checkouts not checked (...)" for a plain cmake build.
std::string checkouts_stamp();
// One component's block of the fingerprint text: its pin and the hash of
// every patch ("demucs b9ab48c...\n  source static-shape-wrapper enabled 9a3b...\n...").
// Reference data records the block it was made from, so stale data is told
// apart from a failure. Empty when the manifests have no such component.
std::string component_patchset(const std::string& name);

}  // namespace stemkit
