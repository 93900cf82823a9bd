// Errors that end a patchmgr command, each carrying the exit code the CLI
// returns. The codes are part of the CLI contract (docs/cli.md).
#pragma once

#include <stdexcept>
#include <string>

namespace patchmgr {

enum class ExitCode : int {
  ok = 0,
  failed = 1,   // the operation failed: conflict, a check that did not pass, a fetch error
  usage = 2,    // bad command line or invalid manifest
  refused = 3,  // refused to protect the user's work, or another patchmgr holds the lock
};

// A failure to report to the user. `what()` is the full, user-facing text:
// what happened, where, and how to fix it.
class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

// Returns the more severe of two exit codes (refused > usage > failed > ok),
// used when one command runs over several components.
ExitCode worst(ExitCode a, ExitCode b);

}  // namespace patchmgr
