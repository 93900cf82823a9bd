#include "runtime/version.h"

#include "runtime/kernels/lt_gemm.h"
#include "runtime/kernels/roformer_kernels.h"

#include "runtime/compat/torch_compat.h"
#include "stemkit/build_stamp.h"  // generated at configure time from STEMKIT_CHECKOUTS
#include "stemkit/patchset.h"     // generated at build time by patchmgr fingerprint --header

namespace stemkit {

std::string patchset_id() { return STEMKIT_PATCHSET_ID; }
std::string patchset_summary() { return STEMKIT_PATCHSET_SUMMARY; }

std::string component_patchset(const std::string& name) {
  const std::string text = STEMKIT_PATCHSET_TEXT;
  std::string block;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!block.empty() && line.rfind("  ", 0) == 0)
      block += line + "\n";
    else if (!block.empty())
      break;
    else if (line.rfind(name + " ", 0) == 0)
      block = line + "\n";
  }
  return block;
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
