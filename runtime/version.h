// What a runtime binary is: its version, the libtorch it was built against,
// and the patch set (manifests/) it implements, as `--version` prints it.
#pragma once

#include <string>

namespace stemkit {

std::string patchset_id();       // 16 hex digits, as `patchmgr fingerprint` prints
std::string patchset_summary();  // "bs-roformer@c05f497215b4+2 demucs@b9ab48cad459+2"
std::string version_text();      // several lines for --version

}  // namespace stemkit
