// Running a shell command, or the `separate` binary, from a test and keeping
// its exit status and output (no libtorch: the format tests use it too).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace stemkit::separate::test {

struct CliResult {
  int code;            // the exit status, or -signal
  std::string output;  // stdout and stderr
};

// `command` through sh, stderr with stdout.
inline CliResult run_shell(const std::string& command) {
  std::array<char, 4096> buf{};
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  while (p && fgets(buf.data(), buf.size(), p)) out += buf.data();
  const int status = p ? pclose(p) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? -WTERMSIG(status) : -100, out};
}

#ifdef STEMKIT_SEPARATE
// `env` (assignments, "ulimit ...;" and the like), then `separate ARGS`, with
// the environment of this process.
inline CliResult run_separate(const std::string& args, const std::string& env = "") {
  return run_shell(env + " exec " + std::string(STEMKIT_SEPARATE) + " " + args);
}
#endif

}  // namespace stemkit::separate::test
