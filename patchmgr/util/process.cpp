#include "patchmgr/util/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "patchmgr/util/error.h"

namespace patchmgr {

namespace {

// A Ctrl-C or kill of patchmgr while a child runs: the child is in its own
// process group (so a time limit can end all it started), so the signal is
// passed on to that group, and patchmgr then dies of it as it would have.
volatile sig_atomic_t g_signal = 0;
void remember_signal(int sig) { g_signal = sig; }

// Reads what the pipe holds now; false at its end.
bool drain(int fd, std::string& out) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && errno == EAGAIN;
  }
}

}  // namespace

std::string ProcessResult::describe() const {
  if (!started) return "could not be started";
  if (timed_out) return fmt::format("timed out after {:.0f} s and was killed", seconds);
  if (signal != 0) return fmt::format("killed by signal {} ({})", signal, strsignal(signal));
  return fmt::format("exit code {}", exit_code);
}

ProcessResult run_process(const Process& p) {
  ProcessResult r;
  if (p.argv.empty()) throw Error(ExitCode::failed, "internal error: empty command");
  std::error_code ec;
  int log_fd = -1;
  if (!p.log.empty()) {
    std::filesystem::create_directories(p.log.parent_path(), ec);
    log_fd = open(p.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0)
      throw Error(ExitCode::failed,
                  fmt::format("cannot write the log file {}: {}; check the directory's permissions and free space",
                              p.log.string(), strerror(errno)));
  }
  int pipe_fd[2] = {-1, -1};
  if (p.capture && pipe2(pipe_fd, O_CLOEXEC) != 0) {
    if (log_fd >= 0) close(log_fd);
    throw Error(ExitCode::failed, fmt::format("cannot start {}: pipe failed: {}", p.argv[0], strerror(errno)));
  }
  // Built before the fork: the child only calls what is safe after one.
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : p.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> args;
  for (const auto& a : p.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    if (log_fd >= 0) close(log_fd);
    if (p.capture) close(pipe_fd[0]), close(pipe_fd[1]);
    throw Error(ExitCode::failed, fmt::format("cannot start {}: fork failed: {}", p.argv[0], strerror(err)));
  }
  if (pid == 0) {
    // The child: its own process group, so a timeout kills everything it started.
    setpgid(0, 0);
    int null_in = open("/dev/null", O_RDONLY);
    if (null_in >= 0) dup2(null_in, STDIN_FILENO);
    if (log_fd >= 0) {
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
    }
    if (p.capture) dup2(pipe_fd[1], STDOUT_FILENO);
    if (p.quiet) {
      int null_out = open("/dev/null", O_WRONLY);
      if (null_out >= 0) dup2(null_out, STDERR_FILENO);
    }
    if (!p.cwd.empty() && chdir(p.cwd.c_str()) != 0) {
      dprintf(STDERR_FILENO, "patchmgr: cannot enter %s: %s\n", p.cwd.c_str(), strerror(errno));
      _exit(126);
    }
    for (auto& e : env_strings) putenv(e.data());
    execvp(args[0], args.data());
    dprintf(STDERR_FILENO, "patchmgr: cannot run %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid);  // also here, so kill(-pid) works even before the child ran
  if (log_fd >= 0) close(log_fd);
  int out_fd = -1;
  if (p.capture) {
    close(pipe_fd[1]);
    out_fd = pipe_fd[0];
    fcntl(out_fd, F_SETFL, fcntl(out_fd, F_GETFL) | O_NONBLOCK);
  }
  struct sigaction forward {
  }, old_int{}, old_term{}, old_hup{};
  forward.sa_handler = remember_signal;
  sigemptyset(&forward.sa_mask);
  g_signal = 0;
  sigaction(SIGINT, &forward, &old_int);
  sigaction(SIGTERM, &forward, &old_term);
  sigaction(SIGHUP, &forward, &old_hup);
  r.started = true;
  auto deadline = start + std::chrono::seconds(p.timeout);
  int status = 0;
  bool exited = false, terminated = false;
  std::chrono::steady_clock::time_point kill_at{};
  // Until the child has ended and, with capture, the pipe is at its end (what
  // the child started may still write to it).
  for (;;) {
    if (!exited) {
      pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid || (w < 0 && errno != EINTR)) exited = true;
    }
    if (exited && out_fd < 0) break;
    auto now = std::chrono::steady_clock::now();
    if (!terminated && g_signal != 0) {
      terminated = true;
      kill(-pid, SIGTERM);
      kill_at = now + std::chrono::seconds(5);
    } else if (!terminated && p.timeout > 0 && now >= deadline) {
      r.timed_out = terminated = true;
      kill(-pid, SIGTERM);
      kill_at = now + std::chrono::seconds(5);
    } else if (terminated && now >= kill_at) {
      kill(-pid, SIGKILL);
      kill_at = now + std::chrono::hours(1);
    }
    if (out_fd >= 0) {
      // Waits for output or 20 ms, whichever comes first; a full pipe would stop the child.
      pollfd pfd{out_fd, POLLIN, 0};
      poll(&pfd, 1, 20);
      if (!drain(out_fd, r.out) || (exited && terminated)) {
        close(out_fd);
        out_fd = -1;
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  if (terminated) kill(-pid, SIGKILL);  // whatever of the group is left
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  if (int sig = g_signal; sig != 0) {
    signal(sig, SIG_DFL);
    raise(sig);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  if (r.timed_out) r.signal = 0, r.exit_code = -1;
  return r;
}

std::string log_tail(const std::filesystem::path& log, size_t lines, const std::string& indent) {
  std::ifstream in(log, std::ios::binary);
  if (!in) return indent + "(no log)\n";
  std::vector<std::string> all;
  std::string line;
  while (std::getline(in, line)) all.push_back(line);
  while (!all.empty() && all.back().find_first_not_of(" \t\r") == std::string::npos) all.pop_back();
  size_t from = all.size() > lines ? all.size() - lines : 0;
  std::string out;
  for (size_t i = from; i < all.size(); ++i) out += indent + all[i] + "\n";
  if (out.empty()) out = indent + "(the log is empty)\n";
  return out;
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain =
        !a.empty() && a.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+=/.,:@%") ==
                          std::string::npos;
    if (plain) {
      out += a;
    } else {
      out += '\'';
      for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
      out += '\'';
    }
  }
  return out;
}

}  // namespace patchmgr
