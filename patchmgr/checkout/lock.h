// One patchmgr process per checkout at a time. The lock is an flock(2) on
// `.<checkout-name>.patchmgr.lock` beside the checkout, so the kernel drops it
// when a process dies: a killed run never leaves a stale lock behind.
#pragma once

#include <filesystem>
#include <string>

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

}  // namespace patchmgr
