// libFuzzer target for the patch-file reader (patchmgr/git): arbitrary bytes
// as a patch file must give problems or a parsed patch, never a crash or a
// hang; a file that parses must also parse into libgit2's diff (parse_diff),
// which apply and drift use, without a crash.
//   tests/fuzz/run.sh [seconds]   builds it with clang and runs it on the
//   patches tools/patch-corpus/make.sh writes with git format-patch
#include <cstdint>
#include <string>

#include "patchmgr/git/patch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  patchmgr::git::PatchFile p = patchmgr::git::parse_patch_file(text);
  if (!p.ok()) return 0;
  try {
    patchmgr::git::Diff diff = patchmgr::git::parse_diff(p);
  } catch (const patchmgr::Error&) {
  }
  return 0;
}
