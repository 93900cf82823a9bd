#include "patchmgr/checkout/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "patchmgr/checkout/journal.h"
#include "patchmgr/util/error.h"

namespace patchmgr {

std::filesystem::path CheckoutLock::path_for(const std::filesystem::path& checkout) {
  return checkout.parent_path() / ("." + checkout.filename().string() + ".patchmgr.lock");
}

CheckoutLock::CheckoutLock(const std::filesystem::path& checkout, const std::string& command) {
  auto path = path_for(checkout);
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw Error(ExitCode::failed,
                fmt::format("cannot create the lock file {}: {}", path.string(), std::strerror(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    char holder[256] = {};
    ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
    std::string who = n > 0 ? std::string(holder, size_t(n)) : std::string("another process");
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    ::close(fd_);
    fd_ = -1;
    if (e == EWOULDBLOCK)
      throw Error(ExitCode::refused,
                  fmt::format("{} is in use by {}; wait for it to finish and run the command again (lock: {})",
                              checkout.string(), who, path.string()));
    throw Error(ExitCode::failed, fmt::format("cannot lock {}: {}", path.string(), std::strerror(e)));
  }
  // Say who holds it, for the message another process prints.
  std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::string info = fmt::format("patchmgr {} (pid {}, since {})\n", command, ::getpid(), when);
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, info.data(), info.size(), 0);
}

CheckoutLock::~CheckoutLock() {
  if (fd_ >= 0) {
    (void)!::ftruncate(fd_, 0);
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

namespace {
git::Repository open_clone(const Manifest& m) {
  if (!git::is_repository(m.checkout))
    throw Error(ExitCode::failed,
                fmt::format("{}: no clone at {}; run patchmgr sync {} first", m.name, m.checkout.string(), m.name));
  return git::open(m.checkout);
}
}  // namespace

LockedCheckout::LockedCheckout(const Context& ctx, const Manifest& m, const std::string& command, bool rescue_edits)
    : lock_(m.checkout, command), repo_(open_clone(m)) {
  if (auto note = recover_interrupted(repo_.get(), rescue_edits)) *ctx.err << m.name << ": " << *note << "\n";
}

}  // namespace patchmgr
