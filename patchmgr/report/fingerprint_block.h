// Reading one component's block out of `patchmgr fingerprint`'s text: its pin
// line and the indented patch lines under it. Header-only and std-only, so that
// the runtime (runtime/version.cpp, from the text patchmgr stamps into it) and
// patchmgr's fixture check read the format the same way.
#pragma once

#include <sstream>
#include <string>

namespace patchmgr {

// Empty when the text has no such component.
inline std::string component_block(const std::string& fingerprint_text, const std::string& component) {
  std::string block, line;
  std::istringstream in(fingerprint_text);
  while (std::getline(in, line)) {
    if (!block.empty() && line.rfind("  ", 0) == 0)
      block += line + "\n";
    else if (!block.empty())
      break;
    else if (line.rfind(component + " ", 0) == 0)
      block = line + "\n";
  }
  return block;
}

}  // namespace patchmgr
