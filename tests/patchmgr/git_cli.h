// Running git (or any shell command) as a user would, in a test: the real
// git CLI, with a fixed identity and no user or system configuration.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace testutil {

struct ShellRun {
  int code = -1;
  std::string out;  // stdout and stderr together
};

inline ShellRun sh(const std::filesystem::path& dir, const std::string& command) {
  std::string full = "cd '" + dir.string() +
                     "' && export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 "
                     "GIT_AUTHOR_NAME='Test User' GIT_AUTHOR_EMAIL=user@example.org GIT_COMMITTER_NAME='Test User' "
                     "GIT_COMMITTER_EMAIL=user@example.org GIT_AUTHOR_DATE='2026-02-01T10:00:00Z' "
                     "GIT_COMMITTER_DATE='2026-02-01T10:00:00Z' && (\n" +
                     command + "\n) 2>&1";
  ShellRun r;
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace testutil
