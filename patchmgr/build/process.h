// Running a child process with a time limit, an environment, a working
// directory and a log file (stdout and stderr both go to the log), and the
// tail of that log for error messages. The one place patchmgr forks.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace patchmgr {

struct Process {
  std::vector<std::string> argv;                 // argv[0] is looked up in PATH
  std::filesystem::path cwd;                     // empty: the current directory
  std::map<std::string, std::string> env;        // set on top of the inherited environment
  std::filesystem::path log;                     // appended to (created with its directory)
  int timeout = 600;                             // seconds; then SIGTERM to the process group, SIGKILL 5 s later
};

struct ProcessResult {
  bool started = false;      // false: the log says why (cwd missing, exec failed)
  bool timed_out = false;
  int exit_code = -1;        // when it exited
  int signal = 0;            // when a signal ended it
  double seconds = 0;
  bool ok() const { return started && !timed_out && signal == 0 && exit_code == 0; }
  std::string describe() const;  // "exit code 2", "killed by signal 9", "timed out after 10 s"
};

ProcessResult run_process(const Process& p);

// The last `lines` lines of a log file, each indented by `indent`.
std::string log_tail(const std::filesystem::path& log, size_t lines = 20, const std::string& indent = "    ");

}  // namespace patchmgr
