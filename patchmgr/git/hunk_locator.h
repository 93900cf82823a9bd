// Finding a patch's hunks in a file that has moved on since the patch was
// written, the way the reference tools do, on text in memory:
//
//   exact   the hunk's whole preimage (context and '-' lines) at the recorded
//           line: what libgit2's apply accepts, and nothing else;
//   offset  the whole preimage N lines away: what `git apply` accepts. As in
//           git, a hunk recorded at line 1 must still match at the start of
//           the file, and one without trailing context at its end;
//   fuzz    only with up to 2 context lines dropped at the hunk's ends, by
//           GNU patch's rule (`patch -F2`); a hunk recorded at line 1 may then
//           also match elsewhere, as patch allows;
//   upstream the hunk's postimage (context and '+' lines) is already there.
//
// The search starts at the recorded line shifted by the offset found for the
// previous hunk of the file (GNU patch's rule), goes outward (later lines
// first at each distance), and never places a hunk over an earlier one.
// Nothing here knows about git objects: callers hand in a file's text and the
// hunks of its delta (from libgit2's parsed patch).
#pragma once

#include <string>
#include <vector>

namespace patchmgr::git {

// One hunk of a file's delta, as parsed: its header and its lines, each with
// its origin (' ', '-' or '+') and its text including the newline ("\ No
// newline at end of file" already folded into the line before it).
struct Hunk {
  std::string header;  // "@@ -60,11 +60,19 @@ class Attend(nn.Module):"
  int old_start = 0;   // 1-based; 0 for a hunk that adds to an empty file
  struct Line {
    char origin;
    std::string text;
  };
  std::vector<Line> lines;
};

// Where one hunk went.
struct HunkPlacement {
  enum class How { exact, offset, fuzz, upstream, missing } how = How::missing;
  int offset = 0;  // lines from the recorded place (offset, fuzz, upstream)
  int fuzz = 0;    // context lines dropped (fuzz)
  int line = 0;    // 1-based line in the given file where the match starts
};

struct FileLocation {
  std::vector<HunkPlacement> hunks;  // one per hunk, in order
  // The file with every exact/offset/fuzz hunk applied at its place, when no
  // hunk is missing (a hunk already upstream leaves the file as it is there).
  bool applied = false;
  std::string result;
};

// Splits text into lines, each keeping its '\n' (the last may lack one).
std::vector<std::string> split_lines(const std::string& text);

// Locates every hunk in `file` (max_fuzz: 0 to 2 context lines).
FileLocation locate_hunks(const std::string& file, const std::vector<Hunk>& hunks, int max_fuzz = 2);

}  // namespace patchmgr::git
