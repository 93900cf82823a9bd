#include "patchmgr/util/error.h"

namespace patchmgr {

ExitCode worst(ExitCode a, ExitCode b) {
  auto rank = [](ExitCode c) {
    switch (c) {
      case ExitCode::ok: return 0;
      case ExitCode::failed: return 1;
      case ExitCode::usage: return 2;
      case ExitCode::refused: return 3;
    }
    return 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

}  // namespace patchmgr
