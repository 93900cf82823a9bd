// Reading and writing patch files in `git format-patch` form (an mbox message:
// From/Date/Subject headers, a description, "---", a diffstat, the diff).
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
  git_time date{};            // author date with its UTC offset
  std::string subject;        // without the "[PATCH n/m]" prefix
  std::string description;    // the message body before "---", trimmed
  std::string diff_text;      // from the first "diff --git" line, without the mail signature
  int diff_line = 0;          // line where diff_text starts
  std::vector<std::string> touched_files;  // every old and new path in the diff, sorted, unique
  std::vector<PatchProblem> problems;      // empty when the file is a usable patch

  bool ok() const { return problems.empty(); }
  // The commit message patchmgr records: subject, blank line, description.
  std::string message() const;
};

// Parses `text`; never throws for bad content, it fills `problems` instead.
PatchFile parse_patch_file(const std::string& text);

// Parses the diff of a valid patch file into a libgit2 diff.
Diff parse_diff(const PatchFile& patch);

// The patch file for `commit` against its parent, in patchmgr's canonical
// form of `git format-patch --zero-commit --no-numbered`: it depends only on
// the commit's content (author, date, message without patchmgr's trailers,
// diff), so apply followed by export gives back the same bytes.
std::string format_patch(git_commit* commit);

}  // namespace patchmgr::git
