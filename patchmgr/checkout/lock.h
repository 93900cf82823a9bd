// One patchmgr process per checkout at a time. The lock is an flock(2) on
// `.<checkout-name>.patchmgr.lock` beside the checkout, so the kernel drops it
// when a process dies: a killed run never leaves a stale lock behind.
#pragma once

#include <filesystem>
#include <string>

#include "patchmgr/checkout/context.h"
#include "patchmgr/git/git.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

class CheckoutLock {
 public:
  // Takes the lock for `checkout` or throws Error(refused) naming the holder.
  CheckoutLock(const std::filesystem::path& checkout, const std::string& command);
  ~CheckoutLock();
  CheckoutLock(const CheckoutLock&) = delete;
  CheckoutLock& operator=(const CheckoutLock&) = delete;

  static std::filesystem::path path_for(const std::filesystem::path& checkout);

 private:
  int fd_ = -1;
};

// What every command that changes a checkout starts with: take the lock,
// open the clone (or say to run sync), and undo an interrupted earlier command.
class LockedCheckout {
 public:
  LockedCheckout(const Context& ctx, const Manifest& m, const std::string& command, bool rescue_edits = false);
  git_repository* repo() const { return repo_.get(); }

 private:
  CheckoutLock lock_;
  git::Repository repo_;
};

}  // namespace patchmgr
