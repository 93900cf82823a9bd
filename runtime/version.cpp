#include "runtime/version.h"

#include "runtime/kernels/lt_gemm.h"
#include "runtime/kernels/roformer_kernels.h"

#include "patchmgr/report/fingerprint_block.h"
#include "runtime/compat/torch_compat.h"
#include "stemkit/build_stamp.h"  // generated at configure time from STEMKIT_CHECKOUTS
#include "stemkit/patchset.h"     // generated at build time by patchmgr fingerprint --header

namespace stemkit {

std::string patchset_id() { return STEMKIT_PATCHSET_ID; }
std::string patchset_summary() { return STEMKIT_PATCHSET_SUMMARY; }

std::string component_patchset(const std::string& name) {
  return patchmgr::component_block(STEMKIT_PATCHSET_TEXT, name);
}

std::string checkouts_stamp() {
  const std::string stamp = STEMKIT_CHECKOUTS;
  return stamp.empty() ? "checkouts not checked (built without patchmgr build runtime)" : stamp;
}

std::string version_text() {
  return std::string("stemkit ") + STEMKIT_VERSION + "\nlibtorch " + compat::torch_version() + " (" +
         STEMKIT_TORCH_FLAVOR + ")\nRoFormer kernels: " + kernels::describe() +
         "\nRoFormer GEMMs: " + kernels::lt_describe() + "\npatch set " + STEMKIT_PATCHSET_ID + ": " +
         STEMKIT_PATCHSET_SUMMARY + "\n" + checkouts_stamp() + "\n";
}

}  // namespace stemkit
