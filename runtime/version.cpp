#include "runtime/version.h"

#include "runtime/compat/torch_compat.h"
#include "stemkit/patchset.h"  // generated at build time by patchmgr fingerprint --header

namespace stemkit {

std::string patchset_id() { return STEMKIT_PATCHSET_ID; }
std::string patchset_summary() { return STEMKIT_PATCHSET_SUMMARY; }

std::string version_text() {
  return std::string("stemkit ") + STEMKIT_VERSION + "\nlibtorch " + compat::torch_version() + " (" + STEMKIT_TORCH_FLAVOR +
         ")\npatch set " + STEMKIT_PATCHSET_ID + ": " + STEMKIT_PATCHSET_SUMMARY + "\n";
}

}  // namespace stemkit
