// Reading and writing patch files in `git format-patch` form (an mbox message: From/Date/Subject headers, a
// description, "---", a diffstat, the diff), for every kind of change git writes (docs/cli.md, "export").
#pragma once

#include <git2.h>

#include <string>
#include <vector>

#include "patchmgr/git/git.h"

namespace patchmgr::git {

struct PatchProblem {
  int line;  // 1-based line in the patch file
  std::string message;
};

struct PatchFile {
  std::string author_name;
  std::string author_email;
  git_time date{};          // author date with its UTC offset
  std::string subject;      // unfolded, RFC 2047-decoded (UTF-8), without the "[PATCH n/m]" prefix
  std::string description;  // the message body before "---", trimmed
  std::string diff_text;    // the file's lines from the first "diff --git" to the end of the last hunk or binary patch
  int diff_line = 0;        // line where diff_text starts
  std::vector<std::string> touched_files;  // every old and new path in the diff, sorted, unique
  std::vector<PatchProblem> problems;      // empty when the file is a usable patch

  bool ok() const { return problems.empty(); }
  // The commit message patchmgr records: subject, blank line, description.
  std::string message() const;
};

// Parses `text` (author and subject RFC 2047-decoded); never throws for bad content, it fills `problems` instead.
PatchFile parse_patch_file(const std::string& text);

// Whether two parsed patch files record the same patch: author, date, subject, description
// and diff, whatever their mail form (header folding, diffstat, signature). `export` leaves a
// file alone when this holds, so a file that an older patchmgr wrote in libgit2's form (with
// its version line) is not rewritten, and its sha256 not changed, for its form alone.
bool same_patch(const PatchFile& a, const PatchFile& b);

// Parses the diff of a valid patch file into a libgit2 diff (rewritten where libgit2 1.5 reads git's form otherwise).
Diff parse_diff(const PatchFile& patch);

// The patch file for `commit` against its parent, in patchmgr's canonical form: the bytes of
// `git format-patch --zero-commit --no-numbered --binary --no-signature -M -C` (no signature, no libgit2 version).
// It depends only on the commit's content (author, date, message without patchmgr's trailers, diff), so apply
// followed by export gives back the same bytes. Throws Error for a merge, a root commit or a submodule change.
std::string format_patch(git_commit* commit);

}  // namespace patchmgr::git
