// The "GIT binary patch" section of a diff, written as git writes it.
//
// libgit2 computes the same literal and delta payloads as git (its delta code
// is git's), but deflates them at zlib's default level where git uses level 1
// (core.compression's default, Z_BEST_SPEED), so its base85 text differs from
// `git format-patch --binary`. This re-deflates libgit2's payloads the way git
// does, so exported binary patches are git's bytes.
#pragma once

#include <git2.h>

#include <string>

namespace patchmgr::git {

// "GIT binary patch\n" + the forward block + "\n" + the reverse block + "\n",
// from a binary delta that contains data (binary.contains_data).
// Throws Error when libgit2's payload does not inflate to its stated size.
std::string format_binary_patch(const git_diff_binary& binary);

// git's base85 line encoding of `data`: lines of up to 52 bytes, each led by
// its length ('A'..'Z' for 1..26, 'a'..'z' for 27..52).
std::string base85_lines(const std::string& data);

}  // namespace patchmgr::git
