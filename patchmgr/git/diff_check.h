// Reads the diff section of a patch file the way `git apply` does, before
// libgit2 parses it, for what libgit2 1.5 lets through or reports without a
// place: where the diff ends (the mail signature follows the last hunk, and
// hunk line counts say where that is), hunks whose counts do not match their
// lines, "GIT binary patch" data that is truncated or corrupt, binary changes
// without data ("Binary files a/x and b/x differ"), and submodule changes,
// which patchmgr does not apply.
#pragma once

#include <string>
#include <vector>

namespace patchmgr::git {

struct DiffCheck {
  size_t end = 0;  // index of the first line after the diff (the signature, or lines.size())
  struct Problem {
    size_t index;  // 0-based line index in `lines`
    std::string message;
  };
  std::vector<Problem> problems;
};

// `lines` are the patch file's lines; the diff starts at lines[first], a "diff --git" line.
DiffCheck check_diff(const std::vector<std::string>& lines, size_t first);

// Decodes one line of git's base85 binary patch data ("zcmV+{..."), appending
// its bytes to `out`. Returns false with `error` set when the line is malformed.
bool decode_base85_line(const std::string& line, std::string& out, std::string& error);

}  // namespace patchmgr::git
