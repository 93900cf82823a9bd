// Running the benchmark's commands (separate, the upstream script, prepare
// steps) as child processes: argv, no shell, in a given directory, with
// variables added to the environment.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace patchmgr::bench {

struct ProcessResult {
  int code = -1;       // the exit status; 128 + signal when killed; 127 when it could not be started
  std::string out;     // stdout, when captured
};

// Runs argv[0] (looked up in PATH when it has no '/') with `argv`. stdout is
// captured when `capture` is set, else shared with ours (the user sees the
// table); stderr is shared unless `quiet` (probes such as nvidia-smi).
ProcessResult run_process(const std::vector<std::string>& argv, const std::filesystem::path& cwd,
                          const std::map<std::string, std::string>& env, bool capture, bool quiet = false);

// The command as a user would type it in a POSIX shell (quoted where needed).
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace patchmgr::bench
