// Running a child process: an argv (no shell), in a working directory, with
// variables added to the environment, under an optional time limit. Its
// output is appended to a log file, captured in a string, or shared with
// ours. The one place patchmgr forks: build steps, cmake, the runtime's
// tests, and the benchmark's commands and GPU probes all run through it.
//
// The child runs in a process group of its own, so that a time limit ends
// everything it started (a build step's background jobs too). A Ctrl-C or
// kill of patchmgr while it runs is passed on to that group, and patchmgr
// then dies of the same signal, as it would have without a child. The child's
// stdin is /dev/null: nothing patchmgr runs may wait for the terminal.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace patchmgr {

struct Process {
  std::vector<std::string> argv;           // argv[0] is looked up in PATH when it has no '/'
  std::filesystem::path cwd;               // empty: the current directory
  std::map<std::string, std::string> env;  // set on top of the inherited environment
  std::filesystem::path log;               // stdout and stderr appended here (created with its directory); empty: ours
  bool capture = false;                    // stdout into ProcessResult::out instead (a probe's answer)
  bool quiet = false;                      // stderr to /dev/null (a probe that complains where it finds nothing)
  int timeout = 0;                         // seconds, 0 for none; then SIGTERM to the group, SIGKILL 5 s later
};

struct ProcessResult {
  bool started = false;
  bool timed_out = false;
  int exit_code = -1;  // when it exited; 127 when argv[0] could not be run, 126 when cwd could not be entered
  int signal = 0;      // when a signal ended it
  double seconds = 0;
  std::string out;  // stdout, with Process::capture
  bool ok() const { return started && !timed_out && signal == 0 && exit_code == 0; }
  std::string describe() const;  // "exit code 2", "killed by signal 9 (Killed)", "timed out after 10 s and was killed"
};

// Runs `p` to its end. Throws Error(failed) only when it cannot try: an empty
// argv, a log file it cannot open, a failed fork or pipe.
ProcessResult run_process(const Process& p);

// The last `lines` lines of a log file, each indented by `indent`.
std::string log_tail(const std::filesystem::path& log, size_t lines = 20, const std::string& indent = "    ");

// The command as a user would type it in a POSIX shell (quoted where needed).
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace patchmgr
